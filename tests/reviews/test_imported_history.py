"""An imported incident's review events become the rows the page shows (for the importer)."""

from __future__ import annotations

import pytest

from tests.factories import make_pact_version
from tests.reviews.helpers import fresh, repaired_incident
from trustdesk.incidents.journal import append_event, locked_incident
from trustdesk.incidents.transitions import advance
from trustdesk.reviews import actions
from trustdesk.reviews.models import (
    Attestation,
    OperatingModelChange,
    RecoveryDecision,
    ReentryCondition,
)

pytestmark = pytest.mark.django_db


def replay(incident, events):
    """What the importer does: append events as history (the columns follow from the transition
    table), without the reviews rows."""
    with locked_incident(incident) as inc:
        for type_, by, data in events:
            name = by.username if by else ""
            event = append_event(inc, type=type_, by=by, data=data, by_name=name)
            fields = advance(inc, event)
            if fields:
                inc.save(update_fields=fields)
    return fresh(incident)


def test_imported_review_events_become_rows_once(people):
    inc = repaired_incident(by=people.op)
    newer = make_pact_version(agent=inc.agent, pact_key=inc.pact_version.pact.key)
    inc = replay(
        inc,
        [
            (
                "operating_model_changed",
                people.op,
                {"kind": "pact_amended", "summary": "Limit lowered.", "pact_version": newer.label},
            ),
            ("operating_model_changed", people.op, {"kind": "control_added", "summary": "Gate."}),
            (
                "reentry_condition_set",
                people.op,
                {"kind": "dispute_free", "params": {}, "statement": "No open dispute."},
            ),
            ("review_requested", people.op, {}),
            (
                "decision_recorded",
                people.im,
                {
                    "decision": "reopen_full",
                    "scope_after": "full",
                    "rationale": "Urgent.",
                    "override": True,
                    "justification": "Contract deadline.",
                },
            ),
            ("reopened", people.im, {"scope_after": "full"}),
            ("attested", people.risk, {"decision_seq": None, "can_explain": True, "comment": "x"}),
        ],
    )
    decision_seq = inc.version - 2  # decision_recorded, reopened, attested
    inc = replay(
        inc,
        [
            (
                "attested",
                people.op,
                {"decision_seq": decision_seq, "can_explain": False, "comment": "Thin rationale."},
            )
        ],
    )
    counts = actions.record_imported_history(inc)
    assert counts == {
        "changes": 2,
        "conditions": 1,
        "decisions": 1,
        "attestations": 1,
        "signoffs": 0,
        "skipped": 1,
    }
    assert OperatingModelChange.objects.get(kind="pact_amended").pact_version == newer
    decision = RecoveryDecision.objects.get(incident=inc)
    assert decision.override and decision.justification == "Contract deadline."
    assert decision.decided_by == people.im and decision.event.seq == decision_seq
    assert decision.gate_snapshot == [] and decision.conditions_snapshot == []
    (attestation,) = Attestation.objects.all()
    assert attestation.by == people.op and attestation.can_explain is False
    assert ReentryCondition.objects.get().statement == "No open dispute."
    # A second run finds every row in place.
    again = actions.record_imported_history(inc)
    assert again == {
        "changes": 0,
        "conditions": 0,
        "decisions": 0,
        "attestations": 0,
        "signoffs": 0,
        "skipped": 1,
    }


def test_imported_events_that_cannot_be_rows_faithfully_are_skipped(people):
    inc = repaired_incident(by=people.op)
    inc = replay(
        inc,
        [
            ("operating_model_changed", None, {"kind": "other", "summary": "No actor."}),
            (
                "operating_model_changed",
                people.op,
                {"kind": "pact_amended", "summary": "x", "pact_version": "nope@9"},
            ),
            (
                "decision_recorded",
                people.im,
                {
                    "decision": "reopen_full",
                    "scope_after": "full",
                    "rationale": "r",
                    "override": True,
                    "justification": "",
                },
            ),
        ],
    )
    assert actions.record_imported_history(inc)["skipped"] == 3
    assert not OperatingModelChange.objects.exists() and not RecoveryDecision.objects.exists()

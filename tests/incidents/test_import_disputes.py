"""An imported history's classification disputes become the dispute rows the live steps write,
so a `dispute_free` condition and the reclassification rule read the same on an imported
incident."""

from __future__ import annotations

import pytest

from tests.builders import load_history
from trustdesk.incidents.ownership import reclassification_allowed
from trustdesk.pacts.models import Dispute
from trustdesk.reviews.conditions import evaluate_condition
from trustdesk.reviews.models import ReentryCondition

pytestmark = pytest.mark.django_db


def ev(type_, minute, by="ana", **data):
    out = {"type": type_, "at": f"2026-11-02T10:{minute:02d}:00Z", "by": by}
    if data:
        out["data"] = data
    return out


def history(key, *events):
    return {
        "key": key,
        "agent": "imp-bot",
        "severity": "sev3",
        "title": f"Incident {key}",
        "events": [
            ev("detected", 0),
            ev("contained", 1, action="suspend", scope_after="suspended"),
            ev("evidence_preserved", 2, acknowledged_gaps=[], reason=""),
            ev("classified", 3, assumption="authority", statement="Out of bounds.", clauses=[]),
            ev(
                "reentry_condition_set",
                4,
                kind="dispute_free",
                params={},
                statement="No open dispute.",
            ),
            *events,
        ],
    }


def test_imported_disputes_become_rows_open_or_resolved_as_their_events_say():
    still_open, upheld = load_history(
        {
            "format": "trustdesk.incidents/v1",
            "agents": [{"key": "imp-bot", "name": "Imported bot"}],
            "incidents": [
                history("INC-31", ev("dispute_opened", 5, by="dora", dispute=7, reason="Wrong.")),
                history(
                    "INC-32",
                    ev("dispute_opened", 5, by="dora", dispute=7, reason="Not authority."),
                    ev(
                        "dispute_resolved",
                        6,
                        by="rita",
                        dispute=7,
                        status="upheld",
                        resolution="Capability, not authority.",
                    ),
                ),
            ],
        }
    )
    opened = Dispute.objects.get(incident=still_open)
    assert (opened.status, opened.reason, opened.opened_by.username) == ("open", "Wrong.", "dora")
    met, observed = evaluate_condition(ReentryCondition.objects.get(incident=still_open))
    assert met is False and observed["open_on_incident"] == [opened.pk]

    resolved = Dispute.objects.get(incident=upheld)
    assert (resolved.status, resolved.resolution, resolved.resolved_by.username) == (
        "upheld",
        "Capability, not authority.",
        "rita",
    )
    assert resolved.resolved_at.isoformat() == "2026-11-02T10:06:00+00:00"
    met, _ = evaluate_condition(ReentryCondition.objects.get(incident=upheld))
    assert met is True
    assert reclassification_allowed(upheld) is None

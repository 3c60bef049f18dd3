"""Build incidents for tests the way the product does: through the real actions.

- `walk(incident, to)` moves an incident forward to any state with the lifecycle steps
  (contain, evidence, preserve, classify, repair) and the reviews actions (an operating-model
  change, a re-entry condition, request review, a decision). Nothing sets a column by hand.
- `incident_in(state)` opens a fresh incident (with its own agent and pact) and walks it.
- `load_history(document)` stores a whole history through the importer (the exchange format of
  docs/exchange-format.md), for tests that need exact times and authors.

After every database test the suite checks each incident's columns against its events
(tests/state_machine.py), so a helper that wrote them by hand would fail there.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.factories import make_incident, make_pact_version
from trustdesk.incidents import exchange, lifecycle
from trustdesk.incidents.models import Incident

ORDER = [
    "detected",
    "contained",
    "evidence_preserved",
    "classified",
    "repaired",
    "in_review",
]
# The two ends of the lifecycle: reached from in_review by a decision.
DECISION_FOR = {"recovered": "reopen_partial", "closed_restricted": "keep_restricted"}
STATES = [*ORDER, *DECISION_FOR, "closed_not_incident"]


def fresh(incident: Incident) -> Incident:
    return Incident.objects.select_related("agent", "pact_version__pact").get(pk=incident.pk)


def _reviewer(by):
    """The reviews records name a person: `by` when given, else a user who may decide."""
    if by is not None:
        return by
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user, _ = get_user_model().objects.get_or_create(username="builder-incident-manager")
    user.groups.add(Group.objects.get_or_create(name="incident_manager")[0])
    return user


def walk(
    incident: Incident,
    to: str,
    *,
    by=None,
    at: datetime | None = None,
    assumption: str = "authority",
    skip_kinds: tuple[str, ...] = (),
    repair_summary: str = "Approval check enforced.",
) -> Incident:
    """Walk `incident` forward to state `to` through the real actions. With `at`, each step is
    dated 5 minutes after the previous one from there; `skip_kinds` are required evidence kinds
    left out and acknowledged as gaps (completeness below 1)."""
    from trustdesk.incidents import ownership
    from trustdesk.reviews import actions

    if to == "closed_not_incident":  # closed from any state before a decision
        inc = fresh(incident)
        ownership.close_not_incident(
            inc,
            by=_reviewer(by),
            expected_version=inc.version,
            reason="false_positive",
            explanation="The alert fired on a test account.",
            at=at,
        )
        return fresh(inc)
    target = ORDER.index(to) if to in ORDER else len(ORDER)
    inc = fresh(incident)
    stamp = at

    def when() -> datetime | None:
        nonlocal stamp
        if stamp is not None:
            stamp = stamp + timedelta(minutes=5)
        return stamp

    while inc.state in ORDER and ORDER.index(inc.state) < target:
        state = inc.state
        if state == "detected":
            lifecycle.contain_incident(
                inc,
                by=by,
                expected_version=inc.version,
                action="suspend",
                scope_after="suspended",
                at=when(),
            )
        elif state == "contained":
            required = list(inc.pact_version.evidence_required) if inc.pact_version else []
            moment = when()
            for kind in required:
                if kind in skip_kinds:
                    continue
                inc = fresh(inc)
                lifecycle.add_evidence(
                    inc,
                    by=by,
                    expected_version=inc.version,
                    kind=kind,
                    description=f"{kind} of {inc.key}",
                    text=f"{kind} content for {inc.key}",
                    at=moment,
                )
            inc = fresh(inc)
            gaps = [k for k in required if k in skip_kinds]
            lifecycle.mark_evidence_preserved(
                inc,
                by=by,
                expected_version=inc.version,
                acknowledged_gaps=gaps,
                reason="Not retained by the vendor." if gaps else "",
                at=moment,
            )
        elif state == "evidence_preserved":
            lifecycle.classify_incident(
                inc,
                by=by,
                expected_version=inc.version,
                assumption=assumption,
                statement="Refunds above the limit went out without approval.",
                clauses=list(inc.pact_version.clauses.all()) if inc.pact_version else [],
                confidence="known",
                at=when(),
            )
        elif state == "classified":
            lifecycle.record_repair(
                inc,
                by=by,
                expected_version=inc.version,
                summary=repair_summary,
                reference="PR-101",
                at=when(),
            )
        elif state == "repaired":
            person = _reviewer(by)
            moment = when()
            actions.add_operating_model_change(
                inc,
                by=person,
                expected_version=inc.version,
                kind="control_added",
                summary="Refunds above 200 EUR now need a second approver in the tool.",
                at=moment,
            )
            inc = fresh(inc)
            actions.set_reentry_condition(
                inc,
                by=person,
                expected_version=inc.version,
                kind="operating_model_changed",
                params={},
                at=moment,
            )
            inc = fresh(inc)
            actions.request_review(inc, by=person, expected_version=inc.version, at=moment)
        elif state == "in_review":
            actions.record_recovery_decision(
                inc,
                by=_reviewer(by),
                expected_version=inc.version,
                decision=DECISION_FOR[to],
                rationale="The control holds and the condition is met.",
                at=when(),
            )
            return fresh(inc)  # decided: a reopening held by another incident stays in review
        inc = fresh(inc)
    return inc


def incident_in(
    state: str,
    *,
    by=None,
    version=None,
    detected_at=None,
    assumption: str = "authority",
    skip_kinds: tuple[str, ...] = (),
    **pact: Any,
) -> Incident:
    """A new incident walked to `state`: under `version`, or under a new agent and pact made
    with `pact` (make_pact_version's options, e.g. `evidence_required=[]`)."""
    incident = make_incident(
        version=version or make_pact_version(**pact), by=by, detected_at=detected_at
    )
    return walk(
        incident, state, by=by, at=detected_at, assumption=assumption, skip_kinds=skip_kinds
    )


def decide_while_held(incident: Incident) -> Incident:
    """Walk `incident` to review and decide to reopen it while a second open incident of its
    agent holds the agent suspended: it stays in review, decided (decided_at set), its
    `reopened` event waiting for the hold to lift."""
    held = walk(incident, "in_review")
    incident_in("contained", version=held.pact_version)
    return walk(held, "recovered")


def load_history(document: dict[str, Any]) -> list[Incident]:
    """Store a `trustdesk.incidents/v1` document through the importer (all or nothing) and
    return its incidents, in the document's order."""
    exchange.import_document(document)
    keys = [raw["key"] for raw in document.get("incidents", [])]
    found = {i.key: i for i in Incident.objects.filter(key__in=keys).select_related("agent")}
    return [found[key] for key in keys]

"""Build incidents for tests the way the product does: through the real actions.

- `walk(incident, to)` moves an incident forward to any state with the lifecycle steps
  (contain, evidence, preserve, classify, repair) and the reviews actions (an operating-model
  change, a re-entry condition, request review, a decision). Nothing sets a column by hand.
- `incident_in(state)` opens a fresh incident (with its own agent and pact) and walks it.
- `walk` is made of one function per step (`contain`, `preserve_evidence`, `classify`, `repair`,
  `ready_for_review`, `request_review`, `decide`), each run on a fresh copy with the version it
  read; tests that take a single step call them directly.
- `load_history(document)` stores a whole history through the importer (the exchange format of
  docs/exchange-format.md), for tests that need exact times and authors.

After every database test the suite checks each incident's columns against its events
(tests/state_machine.py), so a helper that wrote them by hand would fail there.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.factories import make_incident, make_pact_version
from trustdesk.incidents import exchange, lifecycle, ownership
from trustdesk.incidents.models import STATE_ORDER, Incident
from trustdesk.reviews import actions as reviews

# The walk, in the model's order, up to review; a decision ends it at one of the two ends.
ORDER = STATE_ORDER[: STATE_ORDER.index("in_review") + 1]
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


def act(step, incident: Incident, /, **arguments: Any) -> Incident:
    """Run one step function on a fresh copy of `incident`, with the version that copy read,
    and return the incident fresh again: what every step below does."""
    inc = fresh(incident)
    step(inc, expected_version=inc.version, **arguments)
    return fresh(inc)


def contain(
    incident: Incident,
    *,
    by=None,
    at: datetime | None = None,
    action: str = "suspend",
    scope_after: str = "suspended",
    **options: Any,
) -> Incident:
    """Contain `incident` (by suspending its agent unless told); `options` are contain_incident's
    others (reason)."""
    return act(
        lifecycle.contain_incident,
        incident,
        by=by,
        at=at,
        action=action,
        scope_after=scope_after,
        **options,
    )


def preserve_evidence(
    incident: Incident, *, by=None, at: datetime | None = None, skip_kinds: tuple[str, ...] = ()
) -> Incident:
    """Add each evidence kind the pact requires as text, but those in `skip_kinds`, which are
    acknowledged as gaps; then mark the evidence preserved."""
    inc = fresh(incident)
    required = list(inc.pact_version.evidence_required) if inc.pact_version else []
    for kind in required:
        if kind not in skip_kinds:
            inc = act(
                lifecycle.add_evidence,
                inc,
                by=by,
                kind=kind,
                description=f"{kind} of {inc.key}",
                text=f"{kind} content for {inc.key}",
                at=at,
            )
    gaps = [k for k in required if k in skip_kinds]
    reason = "Not retained by the vendor." if gaps else ""
    return act(
        lifecycle.mark_evidence_preserved, inc, by=by, acknowledged_gaps=gaps, reason=reason, at=at
    )


def classify(
    incident: Incident,
    *,
    by=None,
    at: datetime | None = None,
    assumption: str = "authority",
    statement: str = "Refunds above the limit went out without approval.",
    confidence: str = "known",
    **options: Any,
) -> Incident:
    """Classify `incident` under every clause of its pact version; `options` are
    classify_incident's others (harm_category, secondary)."""
    version = fresh(incident).pact_version
    return act(
        lifecycle.classify_incident,
        incident,
        by=by,
        assumption=assumption,
        statement=statement,
        clauses=list(version.clauses.all()) if version else [],
        confidence=confidence,
        at=at,
        **options,
    )


def repair(
    incident: Incident,
    *,
    by=None,
    at: datetime | None = None,
    summary: str = "Approval check enforced.",
    reference: str = "PR-101",
    **options: Any,
) -> Incident:
    """Record the repair; `options` are record_repair's others (override, justification)."""
    return act(
        lifecycle.record_repair,
        incident,
        by=by,
        summary=summary,
        reference=reference,
        at=at,
        **options,
    )


def ready_for_review(
    incident: Incident,
    *,
    by=None,
    at: datetime | None = None,
    condition: tuple[str, dict] = ("operating_model_changed", {}),
    summary: str = "Refunds above 200 EUR now need a second approver in the tool.",
) -> Incident:
    """Add one operating-model change and one re-entry condition (met by default) to a repaired
    incident; `by` defaults to an incident manager."""
    person = _reviewer(by)
    kind, params = condition
    inc = act(
        reviews.add_operating_model_change,
        incident,
        by=person,
        kind="control_added",
        summary=summary,
        at=at,
    )
    return act(reviews.set_reentry_condition, inc, by=person, kind=kind, params=params, at=at)


def request_review(incident: Incident, *, by=None, at: datetime | None = None) -> Incident:
    return act(reviews.request_review, incident, by=_reviewer(by), at=at)


def decide(
    incident: Incident,
    decision: str,
    *,
    by=None,
    at: datetime | None = None,
    rationale: str = "The control holds and the condition is met.",
    **options: Any,
):
    """Record a recovery decision on an incident in review; returns the decision record.
    `options` are record_recovery_decision's others (justification, meeting, ...)."""
    inc = fresh(incident)
    return reviews.record_recovery_decision(
        inc,
        by=_reviewer(by),
        expected_version=inc.version,
        decision=decision,
        rationale=rationale,
        at=at,
        **options,
    )


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
    moment = at
    while inc.state in ORDER and ORDER.index(inc.state) < target:
        if moment is not None:
            moment += timedelta(minutes=5)
        if inc.state == "detected":
            inc = contain(inc, by=by, at=moment)
        elif inc.state == "contained":
            inc = preserve_evidence(inc, by=by, at=moment, skip_kinds=skip_kinds)
        elif inc.state == "evidence_preserved":
            inc = classify(inc, by=by, at=moment, assumption=assumption)
        elif inc.state == "classified":
            inc = repair(inc, by=by, at=moment, summary=repair_summary)
        elif inc.state == "repaired":
            inc = request_review(ready_for_review(inc, by=by, at=moment), by=by, at=moment)
        else:  # in review: decided (a reopening held by another incident stays in review)
            decide(inc, DECISION_FOR[to], by=by, at=moment)
            return fresh(inc)
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

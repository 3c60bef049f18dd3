"""Helpers for the reviews tests: incidents brought to `repaired` (and on to review) through the
real lifecycle functions, and the review steps on top of them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from tests.builders import fresh, ready_for_review, request_review, walk
from tests.factories import make_incident, make_pact_version
from trustdesk.incidents.models import Incident
from trustdesk.pacts.models import Clause, Evaluation
from trustdesk.reviews import actions

# fresh and ready_for_review are the builders', named here for the reviews tests.
__all__ = [
    "advance",
    "evaluations",
    "fresh",
    "in_review_incident",
    "meeting_decision_form",
    "repaired_incident",
    "review_meeting",
    "ready_for_review",
    "repaired_incident",
]


def advance(
    incident: Incident,
    to: str = "repaired",
    *,
    by=None,
    assumption: str = "authority",
    skip_kinds: tuple[str, ...] = (),
) -> Incident:
    """Walk an incident forward to `to` through the lifecycle (tests/builders.py); `skip_kinds`
    are evidence kinds left out (acknowledged as gaps), so evidence completeness can be below 1."""
    return walk(
        incident,
        to,
        by=by,
        assumption=assumption,
        skip_kinds=skip_kinds,
        repair_summary="Approval check enforced in the refund tool.",
    )


def repaired_incident(*, by=None, version=None, agent=None, detected_at=None, **kw) -> Incident:
    version = version or make_pact_version(agent=agent)
    incident = make_incident(
        version=version,
        by=by,
        detected_at=detected_at or timezone.now() - timedelta(days=2),
    )
    return advance(incident, "repaired", by=by, **kw)


def in_review_incident(*, by, condition=("operating_model_changed", {}), **kw) -> Incident:
    inc = ready_for_review(repaired_incident(by=by, **kw), by=by, condition=condition)
    return request_review(inc, by=by)


def review_meeting(by, *agenda: Incident, title="Weekly review", starts_in=timedelta(hours=1)):
    """A review meeting facilitated by `by` with `agenda` on it, starting in `starts_in`."""
    return actions.create_meeting(
        by=by,
        title=title,
        scheduled_at=timezone.now() + starts_in,
        facilitator=by,
        agenda=list(agenda),
    )


def meeting_decision_form(incident: Incident, decision: str, rationale: str, **more) -> dict:
    """What the meeting screen posts to decide one agenda item: its fields are prefixed with
    the incident (i<pk>-), the version is the incident's current one."""
    fields = {"version": fresh(incident).version, "decision": decision, "rationale": rationale}
    return {f"i{incident.pk}-{name}": value for name, value in {**fields, **more}.items()}


def evaluations(clause: Clause, outcomes: list[bool], *, start=None, voided=()) -> list[Evaluation]:
    """One evaluation per outcome, one minute apart, oldest first; indexes in `voided` voided."""
    start = start or timezone.now() - timedelta(hours=len(outcomes) + 1)
    rows = []
    for i, passed in enumerate(outcomes):
        rows.append(
            Evaluation.objects.create(
                clause=clause,
                value=Decimal(0 if passed else 1),
                passed=passed,
                measured_at=start + timedelta(minutes=i),
                source="tests",
                external_id=f"{clause.pk}-{start.timestamp()}-{i}",
                voided_at=timezone.now() if i in voided else None,
            )
        )
    return rows

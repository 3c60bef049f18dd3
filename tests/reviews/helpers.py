"""Helpers for the reviews tests: incidents brought to `repaired` (and on to review) through the
real lifecycle functions, and the review steps on top of them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from tests.builders import walk
from tests.factories import make_incident, make_pact_version
from trustdesk.incidents.models import Incident
from trustdesk.pacts.models import Clause, Evaluation
from trustdesk.reviews import actions

ORDER = ["detected", "contained", "evidence_preserved", "classified", "repaired"]


def fresh(incident: Incident) -> Incident:
    return Incident.objects.select_related("agent", "pact_version__pact").get(pk=incident.pk)


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


def ready_for_review(incident: Incident, *, by, condition=("operating_model_changed", {})):
    """Add one operating-model change and one condition (met by default)."""
    inc = fresh(incident)
    actions.add_operating_model_change(
        inc,
        by=by,
        expected_version=inc.version,
        kind="control_added",
        summary="Refunds above 200 EUR now need a second approver in the tool.",
    )
    inc = fresh(inc)
    kind, params = condition
    actions.set_reentry_condition(
        inc, by=by, expected_version=inc.version, kind=kind, params=params
    )
    return fresh(inc)


def in_review_incident(*, by, condition=("operating_model_changed", {}), **kw) -> Incident:
    inc = ready_for_review(repaired_incident(by=by, **kw), by=by, condition=condition)
    actions.request_review(inc, by=by, expected_version=inc.version)
    return fresh(inc)


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

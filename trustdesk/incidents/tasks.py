"""Celery tasks of the incidents app. A task takes ids, fetches, and calls the lifecycle."""

from __future__ import annotations

from celery import shared_task

from trustdesk.incidents import breach
from trustdesk.pacts.models import Evaluation


@shared_task(name="trustdesk.incidents.tasks.open_incident_for_breach")
def open_incident_for_breach(evaluation_id: int) -> str | None:
    """Open (or attach to) the incident for a failing evaluation. Idempotent: a retry or a
    duplicate message finds the evaluation already linked and does nothing."""
    evaluation = (
        Evaluation.objects.select_related("clause__version__pact__agent")
        .filter(pk=evaluation_id)
        .first()
    )
    if evaluation is None:
        return None
    incident = breach.open_incident_for_breach(evaluation, by=None)
    return incident.key if incident else None


@shared_task(name="trustdesk.incidents.tasks.publish_obligation_alerts")
def publish_obligation_alerts() -> int:
    """Announce obligations that became due soon or overdue, once per obligation and status.
    Idempotent: the alert row remembers what was announced."""
    from trustdesk.incidents.obligations import publish_obligation_alerts as publish

    return publish()

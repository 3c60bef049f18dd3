"""Celery tasks of the notify app: names are an API (core.effects.publish names fan_out)."""

from __future__ import annotations

from celery import shared_task

from trustdesk.notify import actions


@shared_task(name="trustdesk.notify.tasks.fan_out", ignore_result=True)
def fan_out(event_type: str, data: dict, severity: str | None = None) -> int:
    """Record an announced event and a message for each subscription, channel and person that
    hears it; their deliveries are enqueued after commit. Returns how many messages."""
    publication = actions.record_publication(event_type, data, severity)
    return publication.messages.count() if publication is not None else 0


@shared_task(name="trustdesk.notify.tasks.deliver", ignore_result=True)
def deliver(message_id: int) -> str:
    """Try one message now if it is due and first in its queue. Safe to run twice: a message
    is claimed before it is sent, and a delivered one is left alone."""
    return actions.deliver_message(message_id)


@shared_task(name="trustdesk.notify.tasks.deliver_due", ignore_result=True)
def deliver_due() -> dict:
    """Beat: every due message (long retries, and whatever a broker outage left behind)."""
    return actions.deliver_due()

"""The incident page's "Webhooks and notifications" region, without incidents importing notify:
the incident template loads this library and calls `{% incident_deliveries incident %}`."""

from __future__ import annotations

from django import template
from django.db.models import Prefetch

from trustdesk.notify.models import Message, Publication

register = template.Library()

#: The region shows the latest events of the incident; each message page has the full log.
REGION_EVENTS = 30


def incident_events(incident_key: str) -> list[Publication]:
    """The incident's latest announced events with their messages: two queries."""
    messages = Message.objects.select_related("subscription", "channel", "recipient").order_by("pk")
    return list(
        Publication.objects.filter(incident_key=incident_key)
        .prefetch_related(Prefetch("messages", queryset=messages))
        .order_by("-pk")[:REGION_EVENTS]
    )


@register.inclusion_tag("notify/_incident_deliveries.html")
def incident_deliveries(incident) -> dict:
    return {"notify_events": incident_events(incident.key)}

"""Filters for clocks and deadlines: `{{ delta|span }}`, `{{ deadline|countdown }}`."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone

from trustdesk.incidents.clocks import format_span

register = template.Library()


@register.filter
def span(value: timedelta | None) -> str:
    return "" if value is None else format_span(value)


@register.filter
def countdown(deadline: datetime | None) -> str:
    """'2 d 3 h left' before the deadline, 'overdue by 4 h' after it."""
    if deadline is None:
        return ""
    left = deadline - timezone.now()
    if left.total_seconds() < 0:
        return f"overdue by {format_span(left)}"
    return f"{format_span(left)} left"

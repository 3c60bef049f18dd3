"""Formatting of metric values: durations in words, rates as percentages, null as a dash."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()

DASH = "—"


@register.filter
def duration(seconds) -> str:
    """7.5 min, 3.2 h, 2.1 d; null is a dash (never 0)."""
    if seconds is None or seconds == "":
        return DASH
    s = float(seconds)
    if abs(s) < 60:
        return f"{s:.0f} s"
    if abs(s) < 3600:
        minutes = s / 60
        return f"{minutes:.1f} min" if minutes < 10 else f"{minutes:.0f} min"
    if abs(s) < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


@register.filter
def percent(value) -> str:
    if value is None or value == "":
        return DASH
    v = float(value) * 100
    return f"{v:.0f}%" if v == round(v) or v >= 10 else f"{v:.1f}%"


@register.filter
def age(when: datetime | None) -> str:
    """How long ago a figure was computed: "just now", "4 min ago", "3 h ago", "2 d ago"."""
    if when is None:
        return "never"
    seconds = max(0.0, (timezone.now() - when).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 48 * 3600:
        return f"{seconds // 3600:.0f} h ago"
    return f"{seconds // 86400:.0f} d ago"

"""`{% when value %}`: the one way a page shows a time.

Renders `<time datetime="2026-11-02T10:00:00Z" title="2026-11-02 10:00 UTC">2026-11-02 11:00
CET</time>`: the person's time zone on the page, UTC on hover and in the machine-readable
attribute. `{% when value seconds=True %}` adds seconds. None renders `default` (an em dash).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from django import template
from django.utils import timezone
from django.utils.html import format_html

from trustdesk.core.canonical import format_time
from trustdesk.core.timezones import request_zone

register = template.Library()


def time_element(value: datetime, zone: tzinfo, *, seconds: bool = False) -> str:
    """The `<time>` element of an aware datetime, shown in `zone`. Also writes the incident list's
    cells (incidents.list_rows), which know the zone already."""
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    utc = value.astimezone(UTC)
    local = value.astimezone(zone)
    return format_html(
        '<time datetime="{}" title="{} UTC">{} {}</time>',
        format_time(utc),
        utc.strftime(pattern),
        local.strftime(pattern),
        local.tzname() or "UTC",
    )


@register.simple_tag(takes_context=True)
def when(context, value: datetime | None, seconds: bool = False, default: str = "—") -> str:
    if value is None or not isinstance(value, datetime) or value.tzinfo is None:
        return default if value is None else str(value)
    return time_element(value, request_zone(context.get("request")), seconds=seconds)


@register.simple_tag(takes_context=True)
def now_when(context) -> str:
    return when(context, timezone.now())

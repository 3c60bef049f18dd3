"""The incident list's table rows, built in Python in one pass.

The list page shows up to 50 rows of ten cells; written as a template loop, each row cost about
thirty variable lookups, two URL reversals, a tag and several filters, which made the rows most
of the page's server time. `rows_html` writes the same markup with the same escaping (every value
goes through `format_html`/`escape`) for a fraction of that. The row markup lives here only: the
template (`incidents/incidents_index.html`) prints the result. Reads only what the view and
`annotate_list_rows` already loaded (`agent`, `lead`, `clock`, `next_report`): no query.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, tzinfo
from urllib.parse import quote

from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from trustdesk.core.templatetags.when import time_element
from trustdesk.incidents.models import Incident, Severity
from trustdesk.incidents.templatetags.clock_tags import countdown, span
from trustdesk.incidents.templatetags.incident_tags import assumption_label

SEVERITY_LABELS = dict(Severity.choices)
# What Django's reverse() leaves unquoted in a path argument.
_PATH_SAFE = "!$&'()*+,;=/~:@"
_MARK = "KEY-PLACEHOLDER"


def _path(name: str) -> tuple[str, str]:
    """The URL of `name` for any key, as the parts before and after the key."""
    before, _, after = reverse(name, args=[_MARK]).partition(_MARK)
    return before, after


def _when(value, zone: tzinfo) -> str:
    """What `{% when value %}` renders, for a list cell."""
    return "—" if value is None else time_element(value, zone)


def _clocks(incident: Incident) -> str:
    parts = []
    clock = getattr(incident, "clock", None)
    if clock is not None and clock.overrun and incident.state != "closed_not_incident":
        parts.append(
            format_html(
                '<span class="badge badge-overrun" title="Time to containment over its {} '
                'target">containment {}</span>',
                span(clock.target),
                "overrun" if clock.running else "late",
            )
        )
    ob = getattr(incident, "next_report", None)
    if ob:
        deadline = ob.deadline.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if ob.deadline else ""
        parts.append(
            format_html(
                '<span class="badge badge-obligation-{}" title="{}, due {} UTC">{}: {}</span>',
                ob.status,
                ob.title,
                deadline,
                ob.regime,
                countdown(ob.deadline),
            )
        )
    return "\n            ".join(parts)


def rows_html(incidents: Iterable[Incident], *, zone: tzinfo = UTC) -> SafeString:
    """The `<tr>` of each incident, in order; times in `zone` (the person's time zone)."""
    detail_before, detail_after = _path("incident_detail")
    agent_before, agent_after = _path("agent_detail")
    out = []
    for incident in incidents:
        detail = escape(detail_before + quote(incident.key, safe=_PATH_SAFE) + detail_after)
        agent = incident.agent
        agent_url = escape(agent_before + quote(agent.key, safe=_PATH_SAFE) + agent_after)
        if incident.assumption:
            assumption = escape(assumption_label(incident.assumption))
        else:
            assumption = '<span class="muted">not yet classified</span>'
        lead = getattr(incident, "lead", None)
        lead_cell = escape(lead.get_username()) if lead else '<span class="muted">nobody</span>'
        out.append(
            "<tr>"
            f'<td class="nowrap" data-label="Key"><a href="{detail}" class="incident-key">'
            f"{escape(incident.key)}</a></td>"
            f'<td data-label="Title"><a href="{detail}" class="incident-title">'
            f"{escape(incident.title)}</a></td>"
            f'<td data-label="Agent"><a href="{agent_url}" class="agent-link">'
            f'{escape(agent.name)}</a> <span class="muted small">{escape(agent.key)}</span></td>'
            f'<td data-label="Severity"><span class="badge badge-{escape(incident.severity)}">'
            f"{escape(SEVERITY_LABELS.get(incident.severity, incident.severity))}</span></td>"
            f'<td data-label="State"><span class="badge badge-{escape(incident.state)}">'
            f"{escape(incident.state_words)}</span></td>"
            f'<td data-label="Broken assumption">{assumption}</td>'
            f'<td class="nowrap" data-label="Detected">{_when(incident.detected_at, zone)}</td>'
            f'<td data-label="Lead">{lead_cell}</td>'
            f'<td class="clocks" data-label="Clocks">{_clocks(incident)}</td>'
            f'<td class="num" data-label="Events">{incident.event_count}</td>'
            "</tr>"
        )
    return mark_safe("\n".join(out))  # noqa: S308 - every value above is escaped

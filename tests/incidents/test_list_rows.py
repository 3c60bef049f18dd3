# ruff: noqa: E501 (the reference row is the template markup, one cell a line)
"""The incident list's rows written in Python (incidents/list_rows.py) give the markup the row
template gave: same cells, links, badges, escaping and times in the person's zone."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.template import Context, Template
from django.test.html import parse_html

from tests.factories import AgentFactory, make_incident
from trustdesk.core.timezones import SESSION_KEY
from trustdesk.incidents.list_rows import rows_html
from trustdesk.incidents.models import Incident

pytestmark = pytest.mark.django_db

# The row loop as the template wrote it before the rows moved to Python: the reference.
REFERENCE = """{% load when incident_tags clock_tags %}{% for incident in incidents %}
<tr>{% url 'incident_detail' incident.key as detail_url %}
  <td class="nowrap" data-label="Key"><a href="{{ detail_url }}" class="incident-key">{{ incident.key }}</a></td>
  <td data-label="Title"><a href="{{ detail_url }}" class="incident-title">{{ incident.title }}</a></td>
  <td data-label="Agent"><a href="{% url 'agent_detail' incident.agent.key %}" class="agent-link">{{ incident.agent.name }}</a> <span class="muted small">{{ incident.agent.key }}</span></td>
  <td data-label="Severity"><span class="badge badge-{{ incident.severity }}">{{ incident.get_severity_display }}</span></td>
  <td data-label="State"><span class="badge badge-{{ incident.state }}">{{ incident.state_words }}</span></td>
  <td data-label="Broken assumption">{% if incident.assumption %}{{ incident.assumption|assumption_label }}{% else %}<span class="muted">not yet classified</span>{% endif %}</td>
  <td class="nowrap" data-label="Detected">{% when incident.detected_at %}</td>
  <td data-label="Lead">{% if incident.lead %}{{ incident.lead.get_username }}{% else %}<span class="muted">nobody</span>{% endif %}</td>
  <td class="clocks" data-label="Clocks">{% if incident.clock.overrun and incident.state != "closed_not_incident" %}<span class="badge badge-overrun" title="Time to containment over its {{ incident.clock.target|span }} target">containment {% if incident.clock.running %}overrun{% else %}late{% endif %}</span>{% endif %}
    {% with ob=incident.next_report %}{% if ob %}<span class="badge badge-obligation-{{ ob.status }}" title="{{ ob.title }}, due {{ ob.deadline|date:'Y-m-d H:i' }} UTC">{{ ob.regime }}: {{ ob.deadline|countdown }}</span>{% endif %}{% endwith %}</td>
  <td class="num" data-label="Events">{{ incident.event_count }}</td>
</tr>{% endfor %}"""


def _reference(incidents, zone_name: str | None) -> str:
    session = {SESSION_KEY: zone_name} if zone_name else {}
    request = SimpleNamespace(session=session)
    return Template(REFERENCE).render(Context({"incidents": incidents, "request": request}))


def _rows(count: int = 6) -> list[Incident]:
    agent = AgentFactory(name='Refunds <script>alert("a")</script> & co')
    made = [
        make_incident(agent=agent if n % 2 else None, severity=f"sev{1 + n % 4}")
        for n in range(count)
    ]
    incidents = list(
        Incident.objects.filter(pk__in=[i.pk for i in made])
        .select_related("agent", "pact_version")
        .order_by("number")
    )
    lead = get_user_model().objects.create_user(username="lead<&>")
    deadline = datetime(2031, 3, 4, 5, 6, tzinfo=UTC)
    for n, incident in enumerate(incidents):
        incident.lead = lead if n % 2 else None
        incident.clock = SimpleNamespace(
            overrun=n % 3 != 0, running=n % 2 == 0, target=timedelta(minutes=30 + n)
        )
        incident.next_report = (
            SimpleNamespace(
                status="due_soon",
                title='Early warning "24 h" <b>',
                deadline=deadline,
                regime="NIS2",
            )
            if n % 2 == 0
            else None
        )
    # Shown as they would be later in their lives (in memory only, the rows just read them).
    incidents[0].title = '<img src=x onerror="alert(1)"> & "quoted"'
    incidents[1].state = "closed_not_incident"
    incidents[2].state, incidents[2].assumption = "classified", "tool_use"
    incidents[3].state, incidents[3].decided_at = "in_review", deadline
    return incidents


@pytest.mark.parametrize("zone_name", [None, "Europe/Berlin", "Asia/Kolkata"])
def test_python_rows_match_the_template_rows(zone_name):
    incidents = _rows()
    zone = zoneinfo.ZoneInfo(zone_name) if zone_name else UTC
    ours = rows_html(incidents, zone=zone)
    assert parse_html(str(ours)) == parse_html(_reference(incidents, zone_name))
    # The difference is visible where it must be: escaped, the zone's local time.
    assert "<img" not in ours and "&lt;img src=x" in ours
    assert "<script>" not in ours and "lead&lt;&amp;&gt;" in ours
    assert ours.count("<tr>") == len(incidents)


def test_the_list_page_shows_the_rows_in_the_persons_zone(client_for):
    make_incident()
    make_incident()
    client = client_for("viewer")
    session = client.session
    session[SESSION_KEY] = "Asia/Kolkata"
    session.save()
    page = client.get("/incidents/").content.decode()
    assert page.count('class="incident-key"') == 2
    assert " IST</time>" in page


def test_no_rows_no_markup():
    assert rows_html([]) == ""

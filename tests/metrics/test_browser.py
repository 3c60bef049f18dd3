"""The dashboard in a real browser: tiles, trend charts, a drill-down and the agent trust panel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.metrics.helpers import (
    agent_with_pact,
    attested,
    classified,
    contained,
    decision,
    evidence,
    model_changed,
    new_incident,
    plus,
    record,
    reopened,
)
from tests.pagechecks import wait_until_true
from trustdesk.metrics import refresh

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups"),
]


def some_weeks_of_history():
    agent, version = agent_with_pact("support-bot")
    now = timezone.now()
    for week in range(10):
        for n in range(week % 3 + 1):
            detected = now - timedelta(weeks=week, days=n + 1, hours=3)
            incident = new_incident(version, detected, title=f"Refund over limit {week}-{n}")
            events = [
                contained(plus(detected, minutes=5 + 4 * week + n)),
                evidence("transcript", plus(detected, minutes=20)),
                classified("authority", plus(detected, hours=1)),
            ]
            if week % 2 == 0:
                events.append(model_changed(plus(detected, hours=2)))
            events.append(decision(plus(detected, hours=3), override=week % 3 == 0, by="rita"))
            made = record(incident, *events)
            record(
                incident,
                attested(plus(detected, hours=3, minutes=5), made[-1].seq, by="rosa"),
                reopened(plus(detected, hours=4 + week)),
            )
    open_one = new_incident(version, now - timedelta(hours=5), severity="sev1", title="Open one")
    record(open_one, contained(now - timedelta(hours=4)))
    return agent


def test_dashboard_tiles_trends_and_a_drilldown(page, live_server, login_page, screenshot):
    some_weeks_of_history()
    refresh.recompute_all()
    login_page(page, "incident_manager")
    page.goto(f"{live_server.url}/?window=90d")
    page.wait_for_selector("#tile-time_to_containment")
    assert page.locator(".metrics-tile").count() == 12
    assert page.locator("svg.chart-svg").count() == 4
    screenshot(page, "dashboard")
    page.locator("#tile-override_rate .tile-value a").click()
    page.wait_for_selector("h1:has-text('Override rate')")
    assert page.locator("tbody tr").count() >= 1
    screenshot(page, "drilldown")
    page.goto(f"{live_server.url}/?window=90d")
    # Choosing does not submit (arrow keys through the options must not reload the page):
    # Apply does, and htmx swaps the body in place.
    page.select_option("#id_agent", "support-bot")
    page.wait_for_timeout(300)
    assert "agent=support-bot" not in page.url
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**agent=support-bot**")
    # Focus follows the step to the region that changed, not to the top of the page.
    wait_until_true(
        page, "document.getElementById('metrics-body').contains(document.activeElement)"
    )
    assert "support-bot" in page.locator(".metrics-status").inner_text()
    screenshot(page, "dashboard-agent")


def test_the_agent_page_shows_the_trust_panel(page, live_server, login_page, screenshot):
    agent = some_weeks_of_history()
    refresh.recompute_all()
    login_page(page, "viewer")
    page.goto(f"{live_server.url}/agents/{agent.key}/")
    page.wait_for_selector(".trust-panel")
    assert "Why this score" in page.locator(".trust-panel").inner_text()
    screenshot(page, "agent-trust")

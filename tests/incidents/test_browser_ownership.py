"""An incident manager in a real browser: assign a lead, add and finish an action item, assess
the incident as serious, see the clocks, file the Article 73 report from its draft, repair;
a screenshot after each step, at desktop width and at 390 px."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import AgentFactory, make_incident
from tests.incidents.backend_helpers import incident_in
from trustdesk.incidents.models import ActionItem, Event, Incident

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1360, 390])
def test_lead_action_item_assessment_clock_filing_and_repair(
    role_groups, page, live_server, login_page, screenshot, width
):
    incident = incident_in("classified", agent=AgentFactory(key="triage-bot", high_risk_ai=True))
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.set_viewport_size({"width": width, "height": 900})
    me = login_page(page, "incident_manager")
    page.goto(f"{live_server.url}/incidents/{incident.key}/")
    screenshot(page, "classified")

    # Assign a lead.
    page.get_by_text("Assign a role").click()
    page.select_option("#id_assign-role", "lead")
    page.select_option("#id_assign-user", label=me.username)
    page.get_by_role("button", name="Assign").click()
    expect(page.locator("dd[data-role=lead]")).to_have_text(me.username)
    screenshot(page, "lead-assigned")
    # The remove button beside the name ends the role; assigned again for the rest of the walk.
    page.get_by_role("button", name=f"Remove {me.username} as lead").click()
    expect(page.locator("dd[data-role=lead]")).to_have_text("nobody")
    page.get_by_text("Assign a role").click()
    page.select_option("#id_assign-role", "lead")
    page.select_option("#id_assign-user", label=me.username)
    page.get_by_role("button", name="Assign").click()
    expect(page.locator("dd[data-role=lead]")).to_have_text(me.username)

    # Add an action item, then finish it.
    page.get_by_text("Add an action item").click()
    page.fill("#id_action-title", "Add a second approver for refunds")
    page.check("#id_action-required")
    page.get_by_role("button", name="Add action item").click()
    item = page.locator("article[data-action='1']")
    expect(item).to_contain_text("Add a second approver for refunds")
    item.locator("select").select_option("done")
    item.get_by_role("button", name="Update").click()
    expect(page.locator("article[data-action='1'] .badge-action-done")).to_have_text("Done")
    assert ActionItem.objects.get(incident=incident).status == "done"
    screenshot(page, "action-done")

    # Assess as serious: the Article 73 clock starts and repair is refused until filed.
    page.get_by_text("Assess for reporting").click()
    page.check("#id_assess-serious")
    page.get_by_role("button", name="Record assessment").click()
    report = page.locator("article[data-obligation='eu_ai_act_art73/report']")
    expect(report).to_contain_text("left")
    expect(page.locator("#containment-clock")).to_contain_text("Contained after")
    screenshot(page, "clock")
    page.fill("#id_repair-summary", "Approval check enforced.")
    page.fill("#id_repair-reference", "PR-7")
    page.get_by_role("button", name="Record repair").click()
    expect(page.locator(".form-error")).to_contain_text("Article 73(6)")
    expect(page.locator("#incident-state")).to_have_text("Classified")
    screenshot(page, "repair-refused")

    # File the report from its draft.
    report.get_by_role("link", name="Draft and file the report").click()
    expect(page.locator("#draft-markdown")).to_contain_text(incident.key)
    page.fill("#id_file-reference", "MSA-2026-99")
    screenshot(page, "filing")
    page.get_by_role("button", name="Record as filed").click()
    expect(page.locator("article[data-obligation='eu_ai_act_art73/report']")).to_contain_text(
        "MSA-2026-99"
    )
    screenshot(page, "filed")

    # Now the repair goes through.
    page.fill("#id_repair-summary", "Approval check enforced.")
    page.fill("#id_repair-reference", "PR-7")
    page.get_by_role("button", name="Record repair").click()
    expect(page.locator("#incident-state")).to_have_text("Repaired")
    screenshot(page, "repaired")
    assert Incident.objects.get(pk=incident.pk).state == "repaired"
    assert Event.objects.filter(incident=incident, type="report_filed").count() == 1
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not overflow, "the page is wider than the screen"
    assert problems == []


def test_a_running_containment_clock_counts_on_in_the_browser(
    role_groups, page, live_server, login_page
):
    """The page's clock moves without a reload and turns to "overrun" at the target, counted
    from the server's seconds: the browser's clock is faked and jumped forward."""
    detected = timezone.now() - timedelta(minutes=2, seconds=30)
    incident = make_incident(severity="sev1", detected_at=detected)  # a 15 min target
    login_page(page, "operator")
    page.clock.install()
    page.goto(f"{live_server.url}/incidents/{incident.key}/")
    clock = page.locator("#containment-clock")
    expect(clock.locator("[data-clock-headline]")).to_have_text("12 min left")
    expect(clock.locator("[data-clock-running-for]")).to_have_text("2 min")

    page.clock.fast_forward("05:00")
    expect(clock.locator("[data-clock-headline]")).to_have_text("7 min left")
    expect(clock.locator("[data-clock-running-for]")).to_have_text("7 min")
    expect(clock).not_to_have_class(re.compile(r"\boverrun\b"))

    page.clock.fast_forward("08:00")
    expect(clock.locator("[data-clock-headline]")).to_have_text(
        re.compile(r"^Target overrun by \d+ s$")
    )
    expect(clock.locator("[data-clock-running-for]")).to_have_text("15 min")
    expect(clock).to_have_class(re.compile(r"\boverrun\b"))

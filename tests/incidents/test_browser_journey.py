"""The operator's journey in a real browser: open an incident, contain, upload evidence, mark it
preserved, classify, record the repair; a screenshot and the state badge after each step."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import make_pact_version
from trustdesk.incidents import lifecycle
from trustdesk.incidents.models import Evidence, Incident

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KINDS = {
    "transcript": "Chat transcript of the refund conversation",
    "tool_calls": "Refund tool calls with arguments",
    "evaluation_result": "Nightly refund audit result",
    "impact_assessment": "Finance impact assessment",
}


def test_operator_walks_an_incident_from_detection_to_repair(
    role_groups, page, live_server, login_page, screenshot, media, tmp_path
):
    version = make_pact_version()
    agent = version.pact.agent
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.set_viewport_size({"width": 1360, "height": 900})
    login_page(page, "operator")

    # Open an incident from the list.
    page.goto(f"{live_server.url}/incidents/")
    expect(page.get_by_text("No incidents yet")).to_be_visible()
    page.get_by_role("link", name="Open an incident").click()
    page.fill("#id_title", "Refund of 450 EUR without approval")
    page.select_option("#id_agent", agent.key)
    # htmx narrows the pact fields to the agent's active versions, and picks its only one.
    expect(page.locator("#id_pact_version")).to_have_value(str(version.pk))
    expect(page.locator("#id_pact_version option")).to_have_count(2)
    page.locator("input[name=clauses]").first.check()
    page.select_option("#id_severity", "sev2")
    page.fill("#id_summary", "Found by the nightly refund audit.")
    screenshot(page, "new-incident")
    page.get_by_role("button", name="Open incident").click()
    state = page.locator("#incident-state")
    expect(state).to_have_text("Detected")
    incident = Incident.objects.get()
    assert page.url.endswith(f"/incidents/{incident.key}/")
    screenshot(page, "detected")

    region_fetches: list[str] = []
    page.on(
        "request",
        lambda r: (
            region_fetches.append(r.url)
            if r.method == "GET" and r.url.endswith(f"/incidents/{incident.key}/")
            else None
        ),
    )

    # Contain (the form, not the one-click proposal, so each field is exercised).
    page.select_option("#id_contain-action", "suspend")
    page.select_option("#id_contain-scope_after", "suspended")
    page.fill("#id_contain-reason", "Refund tool disabled for this agent")
    page.get_by_role("button", name="Record containment").click()
    expect(state).to_have_text("Contained")
    expect(page.locator("#agent-scope")).to_have_text("Suspended")
    expect(page.locator("#incident-main .messages")).to_contain_text("Containment recorded.")
    expect(page.get_by_text(f"{incident.key} opened.")).to_be_hidden()
    # The step's own answer is the region: its incidentChanged event fetches nothing more.
    assert region_fetches == []
    screenshot(page, "contained")

    # Upload every kind of evidence the pact requires.
    for n, (kind, description) in enumerate(KINDS.items(), start=1):
        path = tmp_path / f"{kind}.txt"
        path.write_text(f"{description}\nline two of {kind}\n")
        page.select_option("#id_evidence-kind", kind)
        page.fill("#id_evidence-description", description)
        page.set_input_files("#id_evidence-upload", str(path))
        page.get_by_role("button", name="Add evidence").click()
        expect(page.locator(".evidence-table tbody tr")).to_have_count(n)
    expect(page.locator(".kind-checklist li.missing")).to_have_count(0)
    expect(state).to_have_text("Contained")
    assert sorted(Evidence.objects.values_list("kind", flat=True)) == sorted(KINDS)
    screenshot(page, "evidence-uploaded")

    page.get_by_role("button", name="Mark evidence preserved").click()
    expect(state).to_have_text("Evidence preserved")
    screenshot(page, "evidence-preserved")

    page.check("input[name='classify-assumption'][value='authority']")
    page.fill("#id_classify-statement", "Refunds above 200 EUR went out without human approval.")
    expect(page.locator("input[name='classify-clauses']").first).to_be_checked()
    page.select_option("#id_classify-confidence", "known")
    page.get_by_role("button", name="Classify").click()
    expect(state).to_have_text("Classified")
    expect(page.locator(".classification")).to_contain_text("Authority")
    screenshot(page, "classified")

    page.fill("#id_repair-summary", "Approval check enforced server-side for refunds over 200 EUR.")
    page.fill("#id_repair-reference", "PR-101")
    page.get_by_role("button", name="Record repair").click()
    expect(state).to_have_text("Repaired")
    expect(page.locator("#chain-status")).to_have_text("Chain verified · 9 events")
    screenshot(page, "repaired")

    # Another part of the page (the reviews panel) changing the incident refreshes the region.
    lifecycle.add_note(Incident.objects.get(), by=None, text="Changed elsewhere on the page")
    page.evaluate("htmx.trigger(document.body, 'incidentChanged')")
    expect(page.locator("#timeline")).to_contain_text("Changed elsewhere on the page")
    assert len(region_fetches) == 1

    # The htmx swaps pushed nothing stale: a reload shows the same state.
    page.reload()
    expect(page.locator("#incident-state")).to_have_text("Repaired")
    assert Incident.objects.get().state == "repaired"

    # Back on the list, the filters swap the results in place and keep the URL shareable.
    page.goto(f"{live_server.url}/incidents/")
    page.select_option("#id_state", "detected")
    expect(page.locator("#incident-results")).to_contain_text("No incident matches these filters")
    assert "state=detected" in page.url
    page.fill("#id_q", "450 EUR")
    page.select_option("#id_state", "repaired")
    expect(page.locator(".incident-table tbody tr")).to_have_count(1)
    assert "state=repaired" in page.url and "q=450" in page.url
    screenshot(page, "list-filtered")
    assert not [p for p in problems if _real_problem(p)], problems


# Playwright's full-page screenshots leave empty `style=""` attributes on some inputs, and htmx's
# settle step copies them onto the swapped-in elements: CSP reports that with the hash of the
# empty string. The page itself never has a style attribute (see test_views_detail).
EMPTY_STYLE_HASH = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def _real_problem(text: str) -> bool:
    return not ("Applying inline style" in text and EMPTY_STYLE_HASH in text)

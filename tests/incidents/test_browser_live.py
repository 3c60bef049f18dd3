"""The incident page in a real browser: another person's containment and note arrive without a
reload while half-typed text stays; a keyboard-only step keeps focus on the region it updated."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import make_incident
from tests.pagechecks import wait_until_true
from tests.reviews.helpers import advance
from trustdesk.incidents.models import Incident

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_another_persons_containment_and_note_appear_without_a_reload(
    role_groups, live_server, pages_of, screenshot
):
    incident = make_incident()
    url = f"{live_server.url}/incidents/{incident.key}/"
    a, b = pages_of("operator", "operator")  # a watches, b acts
    a.goto(url)
    b.goto(url)
    a.evaluate("window.__sameDocument = true")
    a.fill("#id_note-text", "Half-typed: the refund tool owner says")
    a.fill("#id_contain-reason", "My own containment reason, not sent yet")

    b.select_option("#id_contain-action", "suspend")
    b.select_option("#id_contain-scope_after", "suspended")
    b.fill("#id_contain-reason", "Refund tool disabled for this agent")
    b.get_by_role("button", name="Record containment").click()
    expect(b.locator("#incident-state")).to_have_text("Contained")

    # Within 5 s the watcher sees it, on the same document, with the typing intact.
    expect(a.locator("#incident-state")).to_have_text("Contained", timeout=5000)
    expect(a.locator("#agent-scope")).to_have_text("Suspended")
    expect(a.locator("#timeline")).to_contain_text("Refund tool disabled for this agent")
    expect(a.locator("#live-notice")).to_contain_text("moved on meanwhile")
    expect(a.locator("#id_note-text")).to_have_value("Half-typed: the refund tool owner says")
    expect(a.locator("#id_contain-reason")).to_have_value("My own containment reason, not sent yet")
    screenshot(a, "watcher-after-containment")

    b.fill("#id_note-text", "Vendor confirmed the tool is off.")
    b.locator("#notes").get_by_role("button", name="Add note").click()
    expect(b.locator("#notes-list")).to_contain_text("Vendor confirmed the tool is off.")
    expect(a.locator("#notes-list")).to_contain_text(
        "Vendor confirmed the tool is off.", timeout=5000
    )
    expect(a.locator("#id_note-text")).to_have_value("Half-typed: the refund tool owner says")
    assert a.evaluate("window.__sameDocument") is True
    screenshot(a, "watcher-after-note")

    # The notice offers the current step; taking it replaces the stale form.
    a.locator("#live-notice").get_by_role("link", name="Show the current step").click()
    expect(a.locator("#step-title")).to_have_text("Preserve evidence")
    expect(a.locator("#live-notice")).to_have_text("")


def test_a_keyboard_only_step_keeps_focus_on_the_updated_region(
    role_groups, page, live_server, login_page, screenshot
):
    incident = advance(make_incident(), "classified")
    login_page(page, "operator")
    page.goto(f"{live_server.url}/incidents/{incident.key}/")
    page.set_viewport_size({"width": 1360, "height": 900})
    for _ in range(120):  # Tab from the top of the page to the repair summary
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "id_repair-summary":
            break
    else:
        pytest.fail("Tab never reached the repair summary")
    page.keyboard.type("Approval check enforced server-side for refunds over 200 EUR.")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "id_repair-reference"
    page.keyboard.type("PR-101")
    page.keyboard.press("Enter")
    expect(page.locator("#incident-state")).to_have_text("Repaired")
    # Focus is on the region the step updated (its message), not back at the top of the page.
    wait_until_true(
        page, "document.activeElement && document.activeElement.matches('#incident-main .messages')"
    )
    assert "Repair recorded." in page.evaluate("document.activeElement.textContent")
    screenshot(page, "after-keyboard-step")
    assert Incident.objects.get(pk=incident.pk).state == "repaired"

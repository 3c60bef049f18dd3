"""The span tree of an agent trace in a real browser at phone width (390 px): readable, errors
highlighted, subtrees collapsible without JavaScript, nothing wider than the screen."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import expect

from tests.factories import make_incident
from tests.incidents.test_traces import trace_json
from trustdesk.incidents import lifecycle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_span_tree_reads_and_folds_at_390_px_without_javascript(
    role_groups, browser, live_server, login_page, screenshot, media
):
    incident = make_incident()
    lifecycle.add_evidence(
        incident,
        by=None,
        expected_version=None,
        kind="trace",
        description="Agent run that issued the refund",
        upload=SimpleUploadedFile("run.json", trace_json(), content_type="application/json"),
    )
    # No JavaScript at all: the tree must work on <details> alone.
    context = browser.new_context(viewport={"width": 390, "height": 844}, java_script_enabled=False)
    page = context.new_page()
    login_page(page, "viewer")
    page.goto(f"{live_server.url}/incidents/{incident.key}/#evidence")
    tree = page.locator(".trace-view")
    expect(tree).to_be_visible()
    expect(tree.get_by_text("invoke_agent support-bot")).to_be_visible()
    tool = tree.locator(".span-error")
    expect(tool).to_have_count(1)
    expect(tool).to_contain_text("tool issue_refund")
    expect(tool).to_contain_text("refund of 640 EUR over limit")
    # Highlighted: the error span's line has the "bad" background, the others none.
    colors = tree.locator(".span-leaf").evaluate_all(
        "els => els.map(e => getComputedStyle(e).backgroundColor)"
    )
    assert len(set(colors)) == 2
    # The tree fits a phone column: squeezed to 350 px (the card's width at 390 px, whatever
    # the rest of the page does), no span, attribute or message sticks out of it.
    overflow = tree.evaluate(
        """e => {
            e.style.width = '350px';
            const right = e.getBoundingClientRect().right + 0.5;
            const wide = [...e.querySelectorAll('*')].filter(
                d => d.getBoundingClientRect().right > right);
            return {scroll: e.scrollWidth - e.clientWidth, wide: wide.map(d => d.className)};
        }"""
    )
    assert overflow == {"scroll": 0, "wide": []}
    shot = screenshot(page, "trace-open")
    tree.screenshot(path=str(shot.with_name("trace-tree-at-350px.png")))

    # Folding the root hides its children; unfolding shows them again.
    chat = tree.get_by_text("chat gpt-4o")
    expect(chat).to_be_visible()
    tree.locator("summary").first.click()
    expect(chat).to_be_hidden()
    screenshot(page, "trace-folded")
    tree.locator("summary").first.click()
    expect(chat).to_be_visible()
    context.close()

"""One journey in a real browser: draft a pact, see the problem by its path, fix it, activate."""

from __future__ import annotations

import pytest

from tests.pacts.documents import as_yaml, valid_document
from trustdesk.pacts.models import PactVersion

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups"),
]


def test_draft_with_an_inline_error_then_activate(page, live_server, login_page, screenshot):
    login_page(page, "risk")
    page.goto(f"{live_server.url}/pacts/new/")
    good = as_yaml(valid_document())
    page.fill("#id_text", good.replace("op: <=", "op: =<", 1))
    page.click("button.primary")
    problem = page.locator(".pacts-problems li").first
    problem.wait_for()
    assert problem.locator("code").inner_text() == "spec.clauses[0].objective.op"
    assert "must be one of <, <=, ==, >=, >" in problem.inner_text()
    assert page.url.endswith("/pacts/new/")  # swapped in place by htmx
    screenshot(page, "authoring-error")
    assert not PactVersion.objects.exists()

    page.fill("#id_text", good)
    page.click("button.primary")
    page.wait_for_url("**/pacts/support-refunds/v1/")
    assert "Draft" in page.locator("h1 + .subtitle").inner_text()
    screenshot(page, "draft")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Activate v1")
    page.wait_for_selector(".message-success")
    assert "now the active version" in page.locator(".message-success").inner_text()
    screenshot(page, "activated")
    assert PactVersion.objects.get().status == "active"

"""The buyer journey in a real browser: a manager makes a link, a stranger opens it without
logging in, downloads the bundle, and the bundle verifies."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.management import call_command

from tests.diligence.helpers import SECRET_NOTE, recovered_incident
from tests.factories import AgentFactory
from trustdesk.diligence.models import Checkpoint

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_buyer_opens_a_new_link_without_login_and_the_bundle_verifies(
    page, browser, live_server, login_page, screenshot, tmp_path
):
    incident = recovered_incident(agent=AgentFactory(key="support-bot", name="Support Bot"))
    login_page(page, "incident_manager")
    page.goto(f"{live_server.url}/diligence/")
    screenshot(page, "links-empty")
    page.get_by_role("link", name="Create a share link").click()
    page.get_by_label("Label").fill("Northwind procurement")
    page.get_by_label("Support Bot").check()
    page.get_by_label("Include evidence files in the bundle").check()
    screenshot(page, "new-link-form")
    page.get_by_role("button", name="Create the link").click()
    page.get_by_role("heading", name="Copy this link now").wait_for()
    url = page.locator("#share-url").input_value()
    assert url.startswith(f"{live_server.url}/d/")
    screenshot(page, "copy-link-now")

    # A stranger: a fresh browser context with no session cookie.
    stranger = browser.new_context(accept_downloads=True)
    try:
        buyer = stranger.new_page()
        buyer.goto(url)
        assert "/login/" not in buyer.url
        buyer.get_by_role("heading", name="Diligence record: Northwind procurement").wait_for()
        assert incident.key in buyer.content()
        assert SECRET_NOTE not in buyer.content()
        assert buyer.locator("#key-fingerprint").inner_text().strip()
        screenshot(buyer, "buyer-view")
        with buyer.expect_download() as info:
            buyer.locator("#download-bundle").click()
        download = info.value
        path = tmp_path / download.suggested_filename
        download.save_as(path)
        # The transparency log section names the checkpoint the bundle is anchored to, and
        # its plain GET form bundles a consistency proof from a size the buyer kept.
        size = int(buyer.locator("#log-size").inner_text())
        assert size == Checkpoint.objects.order_by("-size").first().size
        assert buyer.locator("#log-root").inner_text().strip().endswith("=")
        buyer.get_by_label("Tree size of your previous bundle's checkpoint").fill("1")
        screenshot(buyer, "buyer-log-section")
        with buyer.expect_download() as info:
            buyer.get_by_role("button", name="Download with a consistency proof").click()
        later = tmp_path / "later" / info.value.suggested_filename
        later.parent.mkdir()
        info.value.save_as(later)
    finally:
        stranger.close()
    manifest = json.loads(zipfile.ZipFile(later).read("manifest.json"))
    assert manifest["log"]["consistency"]["from"] == 1
    assert path.suffix == ".zip"
    out = io.StringIO()
    call_command("verify_bundle", str(path), stdout=out)
    assert out.getvalue().startswith("OK: every check holds.")
    assert "evidence file(s) match" in out.getvalue()

    # Back on the internal side: the visit is counted; revoking ends the link.
    page.goto(f"{live_server.url}/diligence/")
    row = page.locator("tr", has_text="Northwind procurement")
    # The page and the two bundles (the second with a consistency proof).
    assert row.locator("td.num").inner_text() == "3"
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    page.locator("tr", has_text="Northwind procurement").locator(".badge-revoked").wait_for()
    screenshot(page, "revoked")
    gone = browser.new_context()
    try:
        buyer = gone.new_page()
        response = buyer.goto(url)
        assert response.status == 410
        assert "revoked" in buyer.content()
        screenshot(buyer, "buyer-gone")
    finally:
        gone.close()

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_log_in_and_see_the_shell(page, live_server, login_page, screenshot):
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url
    screenshot(page, "login")
    user = login_page(page, "incident_manager")
    nav = page.locator("nav.mainnav")
    for label in ("Dashboard", "Agents", "Pacts", "Incidents", "Reviews", "Diligence"):
        assert nav.get_by_role("link", name=label).is_visible()
    assert page.locator(".who-name").inner_text() == user.username
    assert page.locator(".badge-role").inner_text() == "Incident manager"
    path = screenshot(page, "dashboard")
    assert path.stat().st_size > 1000

"""At phone width (390 px), in a real browser: subscribe, read the log, send a message again."""

from __future__ import annotations

import pytest
from django.utils import timezone

from trustdesk.notify import actions
from trustdesk.notify.models import Message, WebhookSubscription

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_subscribe_and_send_a_failed_message_again_at_390px(
    page, live_server, login_page, screenshot, receiver
):
    page.set_viewport_size({"width": 390, "height": 844})
    login_page(page, "incident_manager")
    page.goto(f"{live_server.url}/webhooks/")
    assert fits(page)
    page.click("text=Add a subscription")
    page.fill("#id_url", receiver.url)
    page.check("input[value='pact.stale']")
    page.click("button:has-text('Subscribe')")
    secret = page.locator("#new-secret").input_value()
    assert secret.startswith("whsec_")
    assert WebhookSubscription.objects.get().secret == secret
    screenshot(page, "secret-once")
    assert fits(page)

    receiver.status = 500
    message = actions.record_publication("pact.stale", {"pact": "p"}).messages.get()
    # Its last try of the round (the first went out on commit), due now.
    Message.objects.filter(pk=message.pk).update(tries=6, next_attempt_at=timezone.now())
    assert actions.deliver_message(message.pk) == "failed"
    page.click("text=Go to the subscription")
    assert "failed" in page.locator(".notify-log").inner_text()
    screenshot(page, "log")
    assert fits(page)

    receiver.status = 200
    page.click(f"text={message.webhook_id}")
    assert "HTTP 500" in page.inner_text("main")
    page.click("button:has-text('Send again')")
    page.locator(".notify-delivered").first.wait_for()
    assert "/deliveries/" in page.url  # swapped in place by htmx
    screenshot(page, "sent-again")
    assert fits(page)
    message.refresh_from_db()
    assert message.status == "delivered" and len(receiver.accepted()) == 1


def test_a_containment_in_the_browser_reaches_a_receiver_signed(
    page, live_server, login_page, screenshot, receiver
):
    import standardwebhooks

    from tests.factories import make_incident

    sub, secret = actions.add_webhook(
        url=receiver.url, events="agent.scope_changed,incident.state_changed", by=None
    )
    incident = make_incident()
    login_page(page, "operator")
    page.goto(f"{live_server.url}/incidents/{incident.key}/")
    page.select_option("#id_contain-action", "suspend")
    page.select_option("#id_contain-scope_after", "suspended")
    page.fill("#id_contain-reason", "Refund tool disabled for this agent")
    page.get_by_role("button", name="Record containment").click()
    page.locator("#incident-main .messages").wait_for()
    received = receiver.wait_for(2)
    payloads = [standardwebhooks.Webhook(secret).verify(r.body, r.headers) for r in received]
    scope = next(p for p in payloads if p["type"] == "agent.scope_changed")
    assert scope["data"]["agent"] == incident.agent.key
    assert scope["data"]["scope"] == "suspended"
    # The incident page lists what the step sent, delivered.
    page.reload()
    region = page.locator("#deliveries")
    assert "agent.scope_changed" in region.inner_text()
    assert "delivered" in region.inner_text()
    screenshot(page, "deliveries")

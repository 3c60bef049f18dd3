"""The subscription and notification pages, the `webhooks` command, and the incident page region."""

from __future__ import annotations

import io

import pytest
import standardwebhooks
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import make_incident
from trustdesk.notify import actions, delivery
from trustdesk.notify.models import Message, NotificationChannel, WebhookSubscription


def run(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("webhooks", *args, stdout=out)
    return out.getvalue().splitlines()


# ---------------------------------------------------------------- the command


def test_webhooks_add_prints_a_generated_secret_on_its_last_line(receiver):
    lines = run("add", receiver.url, "--events", "pact.stale,incident.opened")
    secret = lines[-1]
    assert secret.startswith("whsec_") and delivery.secret_problem(secret) is None
    sub = WebhookSubscription.objects.get()
    assert sub.secret == secret and sub.event_types == ["pact.stale", "incident.opened"]
    # The printed secret is the one a receiver verifies with.
    message = actions.record_publication("pact.stale", {"pact": "p"}).messages.get()
    actions.deliver_message(message.pk)
    [request] = receiver.accepted()
    assert standardwebhooks.Webhook(secret).verify(request.body, request.headers)["type"] == (
        "pact.stale"
    )


def test_webhooks_add_keeps_a_given_secret():
    given = delivery.new_secret()
    lines = run("add", "https://example.org/h", "--events", "pact.stale", "--secret", given)
    assert lines[-1] == given
    assert WebhookSubscription.objects.get().secret == given


def test_webhooks_add_refuses_bad_input_and_stores_nothing():
    with pytest.raises(CommandError) as exc:
        run("add", "ftp://example.org/h", "--events", "incident.opened,bogus", "--secret", "x")
    text = str(exc.value)
    assert "url: a webhook URL must start with http:// or https://" in text
    assert "unknown event type 'bogus'" in text and "secret: a secret starts with whsec_" in text
    assert not WebhookSubscription.objects.exists()


def test_webhooks_list_and_disable():
    assert run("list") == ["No webhook subscriptions."]
    run("add", "https://example.org/a", "--events", "pact.stale")
    run("add", "https://example.org/b", "--events", "incident.opened")
    first, second = WebhookSubscription.objects.order_by("pk")
    assert run("disable", str(first.pk), "--reason", "receiver retired") == [
        f"Webhook #{first.pk} disabled."
    ]
    lines = run("list")
    assert lines[0].startswith(f"{first.pk}\tdisabled\thttps://example.org/a\tpact.stale")
    assert lines[1].startswith(f"{second.pk}\tenabled\thttps://example.org/b\tincident.opened")
    first.refresh_from_db()
    assert "receiver retired" in first.disabled_reason and first.disabled_at is not None
    with pytest.raises(CommandError, match="already disabled"):
        run("disable", str(first.pk))
    with pytest.raises(CommandError, match="No webhook subscription #999"):
        run("disable", "999")
    with pytest.raises(CommandError, match="must be a subscription number"):
        run("disable", "abc")
    assert WebhookSubscription.objects.count() == 2  # nothing is ever deleted


# ---------------------------------------------------------------- the pages


def test_an_incident_manager_adds_a_subscription_and_sees_its_secret_once(client_for):
    client = client_for("incident_manager")
    response = client.post(
        "/webhooks/new/",
        {"url": "https://example.org/hook", "events": ["incident.opened", "pact.stale"]},
    )
    assert response.status_code == 201
    sub = WebhookSubscription.objects.get()
    assert sub.created_by == client.user and sub.event_types == ["incident.opened", "pact.stale"]
    assert sub.secret in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    detail = client.get(f"/webhooks/{sub.pk}/").content.decode()
    assert sub.secret not in detail and sub.secret_hint in detail


@pytest.mark.parametrize(
    "post, field",
    [
        ({"url": "javascript:alert(1)", "events": ["pact.stale"]}, "http://"),
        ({"url": "https://example.org/h", "events": ["nope"]}, "Select a valid choice"),
        ({"url": "https://example.org/h"}, "This field is required"),
        (
            {"url": "https://example.org/h", "events": ["pact.stale"], "secret": "whsec_!!"},
            "base64",
        ),
    ],
)
def test_bad_subscriptions_are_refused_with_a_message(client_for, post, field):
    response = client_for("incident_manager").post("/webhooks/new/", post)
    assert response.status_code == 400
    assert field in response.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_only_incident_managers_manage(client_for):
    sub, _ = actions.add_webhook(url="https://example.org/h", events="pact.stale", by=None)
    for role in ("viewer", "operator", "risk"):
        client = client_for(role)
        assert client.get("/webhooks/").status_code == 200
        assert client.get(f"/webhooks/{sub.pk}/").status_code == 200
        assert client.get("/notifications/").status_code == 200
        new = client.post("/webhooks/new/", {"url": "https://x.org/", "events": ["pact.stale"]})
        assert new.status_code == 403
        assert client.post(f"/webhooks/{sub.pk}/disable/").status_code == 403
        assert client.post("/notifications/new/", {"name": "x"}).status_code == 403
    assert WebhookSubscription.objects.get().enabled and WebhookSubscription.objects.count() == 1
    assert client_for("viewer").get("/webhooks/new/").status_code == 403
    anonymous = client_for()
    anonymous.logout()
    assert anonymous.get("/webhooks/").status_code == 302


def test_disable_and_enable_from_the_page(client_for):
    sub, _ = actions.add_webhook(url="https://example.org/h", events="pact.stale", by=None)
    client = client_for("incident_manager")
    response = client.post(f"/webhooks/{sub.pk}/disable/", {"reason": "moving hosts"}, follow=True)
    body = response.content.decode()
    assert "moving hosts" in body and "Enable" in body
    sub.refresh_from_db()
    assert not sub.enabled and sub.disabled_by == client.user
    again = client.post(f"/webhooks/{sub.pk}/disable/", follow=True).content.decode()
    assert "already disabled" in again
    client.post(f"/webhooks/{sub.pk}/enable/")
    sub.refresh_from_db()
    assert sub.enabled and sub.disabled_reason == ""
    assert client.get(f"/webhooks/{sub.pk}/disable/").status_code == 405


def test_an_incident_manager_adds_a_channel(client_for):
    client = client_for("incident_manager")
    response = client.post(
        "/notifications/new/",
        {
            "name": "#incidents",
            "apprise_url": "json://127.0.0.1:9/x",
            "events": ["incident.opened"],
            "min_severity": "sev2",
        },
    )
    channel = NotificationChannel.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/notifications/{channel.pk}/"
    assert channel.min_severity == "sev2" and channel.event_types == ["incident.opened"]
    bad = client.post(
        "/notifications/new/",
        {"name": "x", "apprise_url": "not a url", "events": ["incident.opened"]},
    )
    assert bad.status_code == 400 and "Apprise does not understand" in bad.content.decode()
    assert NotificationChannel.objects.count() == 1


def test_the_log_page_runs_a_fixed_number_of_queries(client_for, receiver):
    sub, _ = actions.add_webhook(url=receiver.url, events="pact.stale", by=None)
    client = client_for("viewer")

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/webhooks/{sub.pk}/").status_code == 200
        return len(ctx.captured_queries)

    message = actions.record_publication("pact.stale", {"pact": "p"}).messages.get()
    actions.deliver_message(message.pk)
    few = count()
    for n in range(15):
        m = actions.record_publication("pact.stale", {"pact": f"p{n}"}).messages.get()
        actions.deliver_message(m.pk)
    assert count() == few
    assert client.get("/webhooks/").status_code == 200


def test_the_incident_page_shows_what_each_event_sent_and_whether_it_arrived(
    client_for, receiver, django_capture_on_commit_callbacks
):
    from tests.incidents.backend_helpers import advance

    actions.add_webhook(url=receiver.url, events="incident.opened", by=None, description="SIEM")
    failing, _ = actions.add_webhook(
        url="http://127.0.0.1:9/down", events="incident.state_changed", by=None
    )
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident()
    with django_capture_on_commit_callbacks(execute=True):
        advance(incident, "contained")
    client = client_for("viewer")
    body = client.get(f"/incidents/{incident.key}/").content.decode()
    region = body[body.index('id="deliveries"') :]
    assert "incident.opened" in region and "SIEM" in region and "delivered" in region
    assert "incident.state_changed" in region and "pending" in region
    sent = Message.objects.get(subscription=failing)
    assert f"/deliveries/{sent.pk}/" in region

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            client.get(f"/incidents/{incident.key}/")
        return len(ctx.captured_queries)

    before = count()
    for n in range(5):
        actions.record_publication("incident.state_changed", {"incident": incident.key, "n": n})
    assert count() == before


def test_a_too_long_reason_changes_nothing(client_for):
    sub, _ = actions.add_webhook(url="https://example.org/h", events="pact.stale", by=None)
    client = client_for("incident_manager")
    response = client.post(f"/webhooks/{sub.pk}/disable/", {"reason": "x" * 501}, follow=True)
    assert "Not changed" in response.content.decode()
    sub.refresh_from_db()
    assert sub.enabled

"""Notifications for people: Apprise channels with rules, and e-mail to the person concerned."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from tests.factories import make_incident
from trustdesk.notify import actions
from trustdesk.notify.models import Message, NotificationChannel


def json_target(receiver) -> str:
    """Apprise's JSON target posting to the local receiver."""
    return f"json://127.0.0.1:{receiver.port}/notify"


def channel_to(receiver, name: str, events: str, min_severity: str = ""):
    """A channel delivering `events` to the local receiver."""
    return actions.add_channel(
        name=name,
        apprise_url=json_target(receiver),
        events=events,
        min_severity=min_severity,
        by=None,
    )


def test_a_channel_hears_its_event_types_at_or_above_its_severity(receiver):
    receiver.status = 200
    channel = channel_to(receiver, "#incidents", "incident.opened", "sev2")
    data = {"incident": "INC-7", "agent": "support-bot", "url": "/incidents/INC-7/"}
    loud = actions.record_publication("incident.opened", data, "sev1")
    quiet = actions.record_publication("incident.opened", {**data, "incident": "INC-8"}, "sev3")
    other = actions.record_publication("pact.stale", {"pact": "p"})
    assert loud.messages.count() == 1
    assert quiet.messages.count() == 0 and other.messages.count() == 0
    message = loud.messages.get()
    assert actions.deliver_message(message.pk) == "delivered"
    [request] = receiver.accepted()
    assert request.path == "/notify"
    sent = json.loads(request.body)
    assert sent["title"] == "TrustDesk incident.opened: INC-7"
    assert "severity: sev1" in sent["message"] and "url: /incidents/INC-7/" in sent["message"]
    attempt = message.attempts.get()
    assert attempt.ok and "Notifying 1 service" in attempt.response_excerpt
    channel.refresh_from_db()
    assert channel.failing_since is None


def test_events_without_severity_pass_a_severity_rule(receiver):
    channel_to(receiver, "risk", "pact.stale", "sev1")
    assert actions.record_publication("pact.stale", {"pact": "p"}).messages.count() == 1


def test_a_failing_channel_retries_like_a_webhook_and_logs_each_attempt(receiver):
    channel = channel_to(receiver, "down", "pact.stale")
    receiver.status = 500
    message = actions.record_publication("pact.stale", {"pact": "p"}).messages.get()
    now = timezone.now()
    assert actions.deliver_message(message.pk, now=now) == "retry"
    message.refresh_from_db()
    assert message.next_attempt_at == now + timedelta(seconds=5)
    attempt = message.attempts.get()
    assert not attempt.ok and attempt.error == "Apprise reported a failure"
    assert attempt.response_excerpt  # Apprise's own account of the failure
    channel.refresh_from_db()
    assert channel.failing_since == now
    receiver.status = 200
    assert actions.deliver_message(message.pk, now=now + timedelta(seconds=6)) == "delivered"
    assert message.attempts.count() == 2


def test_bad_channels_are_refused_and_nothing_is_stored():
    with pytest.raises(actions.NotifyError) as exc:
        actions.add_channel(
            name="", apprise_url="nonsense://", events="nope", min_severity="sev9", by=None
        )
    fields = [p.split(":")[0] for p in exc.value.problems]
    assert fields == ["name", "apprise_url", "events", "min_severity"]
    assert not NotificationChannel.objects.exists()


def test_the_channel_page_masks_the_tokens_in_its_url(client_for):
    channel = actions.add_channel(
        name="slack",
        apprise_url="slack://T1ABCDEF/B2ABCDEF/verysecrettokenvalue",
        events="incident.opened",
        min_severity="",
        by=None,
    )
    for path in ("/notifications/", f"/notifications/{channel.pk}/"):
        body = client_for("viewer").get(path).content.decode()
        assert "slack://" in body and "verysecrettokenvalue" not in body


def test_the_person_who_opened_an_incident_gets_an_email(
    make_user, django_capture_on_commit_callbacks
):
    lead = make_user("operator", username="lena")
    lead.email = "lena@example.org"
    lead.save()
    nobody = make_user("operator")  # no address: no e-mail
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(by=lead, severity="sev2")
        make_incident(by=nobody)
    [email] = mail.outbox
    assert email.to == ["lena@example.org"]
    assert email.subject == f"TrustDesk incident.opened: {incident.key}"
    assert f"url: /incidents/{incident.key}/" in email.body
    message = Message.objects.get(kind="email")
    assert message.recipient == lead and message.status == "delivered"
    assert message.attempts.get().response_excerpt == "sent to lena@example.org"


def test_the_current_lead_is_the_one_told(make_user):
    from trustdesk.incidents.ownership import assign_role
    from trustdesk.notify.people import incident_lead

    opener = make_user("operator")
    lead = make_user("incident_manager", username="lee")
    incident = make_incident(by=opener)
    assert incident_lead(incident.key) == opener
    assign_role(incident, by=opener, role="lead", user=lead)
    assert incident_lead(incident.key) == lead
    assert incident_lead("INC-404") is None


def test_a_failed_email_is_retried(make_user, settings):
    settings.MAILERS = {"default": {"BACKEND": "tests.notify.test_notifications.BrokenMail"}}
    user = make_user("operator")
    user.email = "u@example.org"
    user.save()
    incident = make_incident(by=user)
    message = actions.record_publication(
        "incident.opened", {"incident": incident.key, "agent": incident.agent.key}, "sev2"
    ).messages.get()
    assert message.kind == "email"
    assert actions.deliver_message(message.pk) == "retry"
    attempt = message.attempts.get()
    assert "SMTP is down" in attempt.error


class BrokenMail:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("SMTP is down")

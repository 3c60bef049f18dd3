"""Webhooks (docs/design.md section 12): signed deliveries to a real local receiver, verified with
the `standardwebhooks` package; retries, ordering, disabling, redelivery and redirects."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import standardwebhooks
from django.utils import timezone

from tests.builders import classify, contain
from tests.factories import make_incident, make_pact_version
from tests.incidents.backend_helpers import advance
from trustdesk.notify import actions, delivery
from trustdesk.notify.models import Attempt, Message, Publication, WebhookSubscription

ALL_TYPES = "incident.opened,incident.state_changed,review.requested,decision.recorded"


def verify(secret: str, request) -> dict:
    """What a receiver does, with an independent implementation: raises unless it verifies."""
    return standardwebhooks.Webhook(secret).verify(request.body, request.headers)


def subscribe(url: str, events: str = ALL_TYPES) -> tuple[WebhookSubscription, str]:
    return actions.add_webhook(url=url, events=events, by=None)


def deliver_all(now=None, rounds: int = 20) -> None:
    """Run the beat sweep until nothing due is left (time travel by `now`)."""
    for _ in range(rounds):
        if not actions.due_message_ids(now=now):
            return
        actions.deliver_due(now=now)


def test_our_signature_is_what_standardwebhooks_expects():
    secret = delivery.new_secret()
    body = b'{"type":"incident.opened","timestamp":"2026-11-30T10:00:00Z","data":{}}'
    ts = int(timezone.now().timestamp())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(ts),
        "webhook-signature": delivery.sign(secret, "msg_1", ts, body),
    }
    assert standardwebhooks.Webhook(secret).verify(body, headers)["type"] == "incident.opened"
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(delivery.new_secret()).verify(body, headers)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body + b" ", headers)


def test_an_opened_incident_reaches_the_receiver_signed_and_logged(
    receiver, django_capture_on_commit_callbacks
):
    sub, secret = subscribe(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(severity="sev1")
    [request] = receiver.wait_for(1)
    payload = verify(secret, request)
    assert payload["type"] == "incident.opened"
    assert payload["data"] == {
        "incident": incident.key,
        "agent": incident.agent.key,
        "state": "detected",
        "url": f"/incidents/{incident.key}/",
    }
    assert json.loads(request.body)["timestamp"].endswith("Z")
    message = Message.objects.get(subscription=sub)
    assert request.headers["webhook-id"] == message.webhook_id
    assert message.status == "delivered"
    [attempt] = message.attempts.all()
    assert attempt.ok and attempt.status_code == 204 and attempt.latency_ms >= 0


def test_every_lifecycle_transition_is_announced_once_in_order(
    receiver, django_capture_on_commit_callbacks
):
    subscribe(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident()
    with django_capture_on_commit_callbacks(execute=True):
        advance(incident, "repaired")
    changes = [
        (p.data["previous_state"], p.data["state"])
        for p in Publication.objects.filter(type="incident.state_changed").order_by("pk")
    ]
    assert changes == [
        ("detected", "contained"),
        ("contained", "evidence_preserved"),
        ("evidence_preserved", "classified"),
        ("classified", "repaired"),
    ]
    bodies = [json.loads(r.body) for r in receiver.wait_for(5)]
    assert [b["type"] for b in bodies] == ["incident.opened"] + ["incident.state_changed"] * 4
    assert [b["data"].get("state") for b in bodies[1:]] == [
        "contained",
        "evidence_preserved",
        "classified",
        "repaired",
    ]


def test_a_refused_step_announces_nothing(django_capture_on_commit_callbacks):
    from trustdesk.incidents.errors import GateError

    incident = make_incident()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(GateError):
        classify(incident)  # still detected
    assert not Publication.objects.filter(type="incident.state_changed").exists()


def test_a_receiver_down_for_a_while_gets_every_message_in_order_with_the_same_id(
    receiver, django_capture_on_commit_callbacks
):
    sub, secret = subscribe(receiver.url)
    receiver.stop()  # down: connections are refused
    with django_capture_on_commit_callbacks(execute=True):
        first = make_incident(title="first")
        second = make_incident(title="second")
    with django_capture_on_commit_callbacks(execute=True):
        advance(first, "evidence_preserved")
        advance(second, "contained")
    # One attempt per incident so far (the head of each queue); the rest wait behind it.
    assert Attempt.objects.count() == 2
    assert Message.objects.filter(status="pending").count() == 5
    # An hour later the receiver answers again, but with errors at first.
    receiver.start()
    receiver.status = 503
    deliver_all(now=timezone.now() + timedelta(minutes=1))
    assert receiver.requests and not receiver.accepted()
    refused_ids = {r.headers["webhook-id"] for r in receiver.requests}
    receiver.status = 200
    deliver_all(now=timezone.now() + timedelta(hours=1))
    accepted = receiver.accepted()
    assert len(accepted) == 5
    assert not Message.objects.exclude(status="delivered").exists()
    payloads = [verify(secret, r) for r in accepted]
    for incident, states in ((first, ["contained", "evidence_preserved"]), (second, ["contained"])):
        mine = [p for p in payloads if p["data"]["incident"] == incident.key]
        assert [p["type"] for p in mine] == ["incident.opened"] + ["incident.state_changed"] * len(
            states
        )
        assert [p["data"]["state"] for p in mine[1:]] == states
    # The heads were tried while down and while failing: their id never changed.
    delivered_ids = {r.headers["webhook-id"] for r in accepted}
    assert refused_ids <= delivered_ids
    heads = Message.objects.filter(publication__type="incident.opened")
    for message in heads:
        assert message.attempts.count() >= 3
        assert message.attempts.last().ok
        assert not any(a.ok for a in list(message.attempts.all())[:-1])


def test_retries_follow_the_schedule_then_the_message_fails(receiver):
    sub, _ = subscribe(receiver.url, "pact.stale")
    receiver.status = 500
    receiver.answer = b"boom " * 400  # 2000 bytes: only the first 1 KB is kept
    publication = actions.record_publication("pact.stale", {"pact": "p", "version": 1})
    message = publication.messages.get()
    now = timezone.now()
    delays = []
    for _ in range(7):
        result = actions.deliver_message(message.pk, now=now)
        message.refresh_from_db()
        if result == "retry":
            delays.append(message.next_attempt_at - now)
            now = message.next_attempt_at
    assert delays == [
        timedelta(seconds=5),
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(hours=1),
        timedelta(hours=6),
    ]
    assert result == "failed" and message.status == "failed"
    attempts = list(message.attempts.all())
    assert len(attempts) == 7 and {a.status_code for a in attempts} == {500}
    assert len(attempts[0].response_excerpt) == 1024
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    # A failed message stays failed until someone sends it again.
    assert actions.deliver_message(message.pk) == "done"


def test_a_retry_is_not_sent_before_its_time(receiver):
    subscribe(receiver.url, "pact.stale")
    receiver.status = 500
    message = actions.record_publication("pact.stale", {"pact": "p"}).messages.get()
    assert actions.deliver_message(message.pk) == "retry"
    assert actions.deliver_message(message.pk) == "not due"
    assert len(receiver.requests) == 1


def test_a_subscription_failing_for_24_hours_is_disabled_with_a_notice(receiver, client_for):
    sub, _ = subscribe(receiver.url, "pact.stale")
    receiver.status = 502
    first = actions.record_publication("pact.stale", {"pact": "a"}).messages.get()
    start = timezone.now()
    assert actions.deliver_message(first.pk, now=start) == "retry"
    sub.refresh_from_db()
    assert sub.failing_since == start and sub.enabled
    waiting = actions.record_publication("pact.stale", {"pact": "b"}).messages.get()
    later = actions.record_publication("pact.stale", {"pact": "c"}).messages.get()
    # 24 hours of failures later, the next failed attempt disables it.
    assert actions.deliver_message(later.pk, now=start + timedelta(hours=24)) == "failed"
    sub.refresh_from_db()
    assert not sub.enabled and "24 hours" in sub.disabled_reason
    assert set(Message.objects.values_list("status", flat=True)) == {"failed"}
    assert Message.objects.get(pk=waiting.pk).last_error.endswith("24 hours of failures.")
    # Nothing new is recorded for it, and its page says why.
    assert actions.record_publication("pact.stale", {"pact": "d"}).messages.count() == 0
    page = client_for("viewer").get(f"/webhooks/{sub.pk}/")
    assert page.status_code == 200
    assert "Disabled automatically" in page.content.decode()
    # A success in between resets the clock.
    sub2, _ = subscribe(receiver.url, "pact.stale")
    receiver.status = 200
    ok = actions.record_publication("pact.stale", {"pact": "e"}).messages.get()
    WebhookSubscription.objects.filter(pk=sub2.pk).update(failing_since=start)
    assert actions.deliver_message(ok.pk, now=start + timedelta(hours=30)) == "delivered"
    sub2.refresh_from_db()
    assert sub2.enabled and sub2.failing_since is None


def test_a_failed_message_is_sent_again_from_its_page_with_the_same_id(
    receiver, client_for, django_capture_on_commit_callbacks
):
    sub, secret = subscribe(receiver.url, "pact.stale")
    receiver.status = 500
    message = actions.record_publication("pact.stale", {"pact": "p"}).messages.get()
    Message.objects.filter(pk=message.pk).update(tries=6)  # the last try of the round
    assert actions.deliver_message(message.pk) == "failed"
    # Others may read the page but not send again.
    viewer = client_for("viewer")
    assert "Send again" not in viewer.get(f"/deliveries/{message.pk}/").content.decode()
    assert viewer.post(f"/deliveries/{message.pk}/redeliver/").status_code == 403
    assert Message.objects.get(pk=message.pk).status == "failed"
    receiver.status = 200
    manager = client_for("incident_manager")
    page = manager.get(f"/deliveries/{message.pk}/").content.decode()
    assert "Send again" in page and "500" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = manager.post(f"/deliveries/{message.pk}/redeliver/")
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status == "delivered" and message.attempts.count() == 2
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids == [message.webhook_id, message.webhook_id]
    verify(secret, receiver.accepted()[0])
    # A delivered message cannot be sent again: a clear message, nothing changes.
    again = manager.post(f"/deliveries/{message.pk}/redeliver/", follow=True)
    assert "Only a failed message can be sent again" in again.content.decode()
    assert message.attempts.count() == 2


def test_redeliver_answers_htmx_with_the_region(receiver, client_for):
    subscribe(receiver.url, "pact.stale")
    receiver.status = 500
    message = actions.record_publication("pact.stale", {"pact": "p"}).messages.get()
    Message.objects.filter(pk=message.pk).update(tries=6)
    actions.deliver_message(message.pk)
    response = client_for("incident_manager").post(
        f"/deliveries/{message.pk}/redeliver/", HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body and message.webhook_id in body
    assert Message.objects.get(pk=message.pk).status == "pending"


def test_redirects_are_never_followed(receiver):
    target = receiver.__class__().start()
    try:
        receiver.status = 302
        for location in (target.url, "file:///etc/passwd", "gopher://127.0.0.1/"):
            receiver.extra_headers = {"Location": location}
            subscribe(receiver.url, "pact.stale")
            message = actions.record_publication("pact.stale", {"pact": "p"}).messages.get()
            assert actions.deliver_message(message.pk) == "retry"
            attempt = message.attempts.get()
            assert attempt.status_code == 302 and not attempt.ok
            assert "not followed" in attempt.error and location in attempt.error
            WebhookSubscription.objects.update(enabled=False)
        assert target.requests == []
    finally:
        target.stop()


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/x", "file:///etc/passwd", "javascript:alert(1)", "example.org/hook", ""],
)
def test_only_http_and_https_urls_are_accepted(url):
    with pytest.raises(actions.NotifyError) as exc:
        actions.add_webhook(url=url, events="incident.opened", by=None)
    assert any(p.startswith("url:") for p in exc.value.problems)
    assert not WebhookSubscription.objects.exists()


def test_bad_events_and_secret_are_all_named_and_nothing_is_stored():
    with pytest.raises(actions.NotifyError) as exc:
        actions.add_webhook(
            url="https://example.org/h", events="incident.opened,nope", secret="abc", by=None
        )
    assert exc.value.problems == [
        "events: unknown event type 'nope': one of " + ", ".join(actions.EVENT_TYPES),
        "secret: a secret starts with whsec_ followed by base64",
    ]
    assert not WebhookSubscription.objects.exists()


def test_an_unreachable_host_is_a_logged_failure_not_an_error():
    subscribe("http://127.0.0.1:9/nothing-listens", "pact.stale")
    message = actions.record_publication("pact.stale", {"pact": "p"}).messages.get()
    assert actions.deliver_message(message.pk) == "retry"
    attempt = message.attempts.get()
    assert not attempt.ok and attempt.status_code is None and "Error" in attempt.error


def test_unknown_event_types_are_dropped():
    assert actions.record_publication("incident.exploded", {"incident": "INC-1"}) is None
    assert not Publication.objects.exists()


def test_page_paths_become_absolute_when_the_public_url_is_known(settings, receiver):
    settings.TRUSTDESK_PUBLIC_URL = "https://trustdesk.example.org/"
    subscribe(receiver.url, "pact.stale")
    publication = actions.record_publication("pact.stale", {"pact": "p", "url": "/pacts/p/v1/"})
    assert (
        json.loads(publication.body)["data"]["url"] == "https://trustdesk.example.org/pacts/p/v1/"
    )


def test_two_workers_never_send_one_message_twice(receiver):
    subscribe(receiver.url, "pact.stale")
    message = actions.record_publication("pact.stale", {"pact": "p"}).messages.get()
    now = timezone.now()
    # Another worker claimed it a moment ago and is sending it.
    Message.objects.filter(pk=message.pk).update(claimed_until=now + timedelta(seconds=30))
    assert actions.deliver_message(message.pk, now=now) == "not due"
    assert receiver.requests == []


def test_messages_of_one_incident_wait_for_the_earlier_one(receiver):
    version = make_pact_version()
    subscribe(receiver.url, "incident.state_changed")
    receiver.status = 500
    data = {"incident": "INC-9", "agent": version.pact.agent.key}
    first = actions.record_publication("incident.state_changed", {**data, "state": "contained"})
    second = actions.record_publication("incident.state_changed", {**data, "state": "x"})
    other = actions.record_publication("incident.state_changed", {**data, "incident": "INC-10"})
    assert actions.deliver_message(second.messages.get().pk) == "waiting"
    assert actions.deliver_message(first.messages.get().pk) == "retry"
    assert actions.deliver_message(second.messages.get().pk) == "waiting"
    # Another incident's queue is not held up.
    assert actions.deliver_message(other.messages.get().pk) == "retry"


def test_a_containment_sends_a_signed_agent_scope_changed(
    receiver, django_capture_on_commit_callbacks
):
    sub, secret = subscribe(receiver.url, "agent.scope_changed")
    incident = make_incident()
    with django_capture_on_commit_callbacks(execute=True):
        contain(incident)
    [request] = receiver.wait_for(1)
    payload = verify(secret, request)
    assert payload["type"] == "agent.scope_changed"
    assert payload["data"]["agent"] == incident.agent.key
    assert payload["data"]["scope"] == "suspended"
    assert payload["data"]["incident"] == incident.key


def test_an_answer_or_event_with_nul_bytes_is_logged_not_a_crash(receiver):
    subscribe(receiver.url, "sharelink.viewed")
    receiver.status = 500
    receiver.answer = b"bad\x00answer"
    publication = actions.record_publication(
        "sharelink.viewed", {"share_link": 1, "label": "Acme\x00", "what": "page"}
    )
    assert publication.data["label"] == "Acme\ufffd"
    message = publication.messages.get()
    assert actions.deliver_message(message.pk) == "retry"
    assert message.attempts.get().response_excerpt == "bad\ufffdanswer"

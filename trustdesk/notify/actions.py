"""Every state change of the notify app, one function each.

Fan-out records an announced event and one message per webhook subscription, channel and person
that hears it; delivery tries one message, logs the attempt and schedules the retry; people
manage subscriptions and channels and send a failed message again. A refused action raises
NotifyError naming every problem.

Delivery order: within one target (a subscription, a channel, a person) the messages of one
incident go out one at a time in the order fan-out recorded them; a message waits while an
earlier one of the same queue is pending (being retried). Messages without an incident are
not ordered.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from trustdesk.core.canonical import format_time, to_canonical_value
from trustdesk.core.errors import Refused
from trustdesk.notify import delivery
from trustdesk.notify.events import EVENT_TYPES, SEVERITIES, parse_event_types, severity_passes
from trustdesk.notify.models import (
    Attempt,
    Message,
    MessageKind,
    MessageStatus,
    NotificationChannel,
    Publication,
    WebhookSubscription,
)
from trustdesk.notify.people import people_for

logger = logging.getLogger(__name__)

DELIVER_TASK = "trustdesk.notify.tasks.deliver"
# After the 1st, 2nd, ... failed attempt of a round; after the last one the message has failed.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)
DISABLE_AFTER = timedelta(hours=24)
# How long a worker holds a message it is sending (longer than any sender's timeout).
CLAIM = timedelta(seconds=60)
# Retries further out than this are left to the beat sweep (a Redis countdown past the broker's
# visibility timeout would be delivered twice; the claim would catch it, but why risk it).
COUNTDOWN_LIMIT = timedelta(minutes=10)
MAX_URL = 500


class NotifyError(Refused):
    """A refused notify action; `problems` says what to fix."""


# ---------------------------------------------------------------- fan-out


def _absolute(data: dict[str, Any]) -> dict[str, Any]:
    """Page paths (keys named `url` or ending in `_url`) made absolute when the instance knows
    its public address (TRUSTDESK_PUBLIC_URL); otherwise kept as paths."""
    base = (getattr(settings, "TRUSTDESK_PUBLIC_URL", "") or "").rstrip("/")
    if not base:
        return data
    return {
        key: (
            base + value
            if (key == "url" or key.endswith("_url"))
            and isinstance(value, str)
            and value.startswith("/")
            else value
        )
        for key, value in data.items()
    }


def _without_nul(value: Any) -> Any:
    """PostgreSQL text and jsonb cannot hold NUL: replace it wherever a string carries one."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def webhook_body(event_type: str, data: dict[str, Any], at: datetime) -> str:
    """The Standard Webhooks payload, `{"type", "timestamp", "data"}`, as compact JSON."""
    return json.dumps(
        {"type": event_type, "timestamp": format_time(at), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def record_publication(
    event_type: str,
    data: dict[str, Any],
    severity: str | None = None,
    *,
    at: datetime | None = None,
) -> Publication | None:
    """Record one announced event and a pending message for everything that hears it.

    Unknown event types are logged and dropped (a publisher's typo must not fail its caller's
    task). Returns the publication; its messages are delivered after commit.
    """
    if event_type not in EVENT_TYPES:
        logger.warning("unknown event type %r published; dropped", event_type)
        return None
    at = at or timezone.now()
    data = _absolute(_without_nul(to_canonical_value(dict(data or {}))))
    severity = severity if severity in SEVERITIES else ""
    incident_key = data.get("incident") if isinstance(data.get("incident"), str) else ""
    with transaction.atomic():
        publication = Publication.objects.create(
            type=event_type,
            data=data,
            severity=severity,
            incident_key=incident_key[:40],
            at=at,
            body=webhook_body(event_type, data, at),
        )
        common = {"publication": publication, "incident_key": incident_key[:40], "created_at": at}
        messages = [
            Message(kind=MessageKind.WEBHOOK, subscription=sub, next_attempt_at=at, **common)
            for sub in WebhookSubscription.objects.filter(enabled=True).order_by("pk")
            if sub.hears(event_type)
        ]
        messages += [
            Message(kind=MessageKind.CHANNEL, channel=channel, next_attempt_at=at, **common)
            for channel in NotificationChannel.objects.filter(enabled=True).order_by("pk")
            if channel.hears(event_type) and severity_passes(channel.min_severity, severity)
        ]
        messages += [
            Message(kind=MessageKind.EMAIL, recipient=user, next_attempt_at=at, **common)
            for user in people_for(event_type, data)
        ]
        created = Message.objects.bulk_create(messages)
        for message in created:
            _enqueue(message.pk)
    return publication


# ---------------------------------------------------------------- delivery


def _enqueue(message_id: int, *, delay: timedelta | None = None) -> None:
    """After commit, ask a worker to deliver the message (now, or after `delay`)."""
    from trustdesk.celery import app

    if delay is not None and (delay > COUNTDOWN_LIMIT or app.conf.task_always_eager):
        # In-process (eager) tasks cannot wait, and long waits belong to the beat sweep.
        return

    options: dict[str, Any] = {}
    if delay is not None:
        options["countdown"] = delay.total_seconds()
    if queue := _current_queue():
        options["queue"] = queue

    def send() -> None:
        task = app.tasks.get(DELIVER_TASK)
        if task is None:
            return
        try:
            task.apply_async((message_id,), **options)
        except Exception:  # the broker is down: the beat sweep delivers it when it is back
            logger.exception("could not enqueue delivery of message %s", message_id)

    transaction.on_commit(send, robust=True)


def _current_queue() -> str | None:
    """Inside a worker's task, the queue it came from: follow-ups go to the same workers."""
    from celery import current_task

    request = getattr(current_task, "request", None)
    info = getattr(request, "delivery_info", None) or {}
    return info.get("routing_key") or None


def _title(publication: Publication) -> str:
    subject = (
        publication.data.get("incident")
        or publication.data.get("agent")
        or publication.data.get("pact")
        or ""
    )
    return f"TrustDesk {publication.type}" + (f": {subject}" if subject else "")


def _text(publication: Publication) -> str:
    lines = [EVENT_TYPES.get(publication.type, publication.type)]
    if publication.severity:
        lines.append(f"severity: {publication.severity}")
    lines += [f"{key}: {value}" for key, value in sorted(publication.data.items())]
    return "\n".join(lines)


def _send(message: Message) -> delivery.Outcome:
    publication = message.publication
    if message.kind == MessageKind.WEBHOOK:
        sub = message.subscription
        assert sub is not None
        return delivery.post_webhook(
            sub.url,
            secret=sub.secret,
            msg_id=message.webhook_id,
            body=publication.body.encode(),
        )
    if message.kind == MessageKind.CHANNEL:
        assert message.channel is not None
        return delivery.notify_apprise(
            message.channel.apprise_url, title=_title(publication), body=_text(publication)
        )
    assert message.recipient is not None
    return delivery.send_email(
        message.recipient.email, subject=_title(publication), body=_text(publication)
    )


def _target_model(message: Message):
    if message.kind == MessageKind.WEBHOOK:
        return WebhookSubscription, message.subscription_id
    if message.kind == MessageKind.CHANNEL:
        return NotificationChannel, message.channel_id
    return None, None


def _kick_next(message: Message) -> None:
    """Once a message is done, the next pending one of its queue may go."""
    if not message.incident_key:
        return
    following = (
        Message.objects.same_queue(message)
        .filter(status=MessageStatus.PENDING, pk__gt=message.pk)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    if following is not None:
        _enqueue(following)


def _fail(message: Message, *, at: datetime, reason: str) -> None:
    reason = _without_nul(reason)
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.FAILED, failed_at=at, claimed_until=None, last_error=reason[:2000]
    )
    message.status, message.failed_at, message.last_error = MessageStatus.FAILED, at, reason


def deliver_message(message_id: int, *, now: datetime | None = None) -> str:
    """Try to deliver one message if it is due and first in its queue; log the attempt.

    Returns what happened: "delivered", "retry", "failed", or why nothing was tried ("done",
    "waiting", "not due", "missing"). `now` lets tests travel in time; the signature's timestamp
    is always the real clock.
    """
    message = (
        Message.objects.select_related("publication", "subscription", "channel", "recipient")
        .filter(pk=message_id)
        .first()
    )
    if message is None:
        return "missing"
    if message.status != MessageStatus.PENDING:
        return "done"
    now = now or timezone.now()
    if (
        message.incident_key
        and Message.objects.same_queue(message)
        .filter(status=MessageStatus.PENDING, pk__lt=message.pk)
        .exists()
    ):
        return "waiting"
    target = message.target
    if target is not None and not target.enabled:
        with transaction.atomic():
            _fail(message, at=now, reason=f"Not sent: {target} is disabled.")
            _kick_next(message)
        return "failed"
    # Claim it (conditional UPDATE), so that a second worker given the same id does nothing.
    claimed = Message.objects.due(now).filter(pk=message.pk).update(claimed_until=now + CLAIM)
    if not claimed:
        return "not due"
    outcome = _send(message)
    return _record_attempt(message, outcome, at=now)


def _record_attempt(message: Message, outcome: delivery.Outcome, *, at: datetime) -> str:
    model, target_id = _target_model(message)
    with transaction.atomic():
        Attempt.objects.create(
            message=message,
            at=at,
            ok=outcome.ok,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            response_excerpt=_without_nul(outcome.excerpt),
            error=_without_nul(outcome.error),
        )
        tries = message.tries + 1
        if outcome.ok:
            Message.objects.filter(pk=message.pk).update(
                status=MessageStatus.DELIVERED,
                tries=tries,
                delivered_at=at,
                claimed_until=None,
                last_error="",
            )
            if model is not None:
                model.objects.filter(pk=target_id, failing_since__isnull=False).update(
                    failing_since=None
                )
            _kick_next(message)
            return "delivered"
        if model is not None:
            model.objects.filter(pk=target_id, failing_since__isnull=True).update(failing_since=at)
            target = model.objects.select_for_update().get(pk=target_id)
            failing_for = at - target.failing_since if target.failing_since else timedelta(0)
            if target.enabled and failing_for >= DISABLE_AFTER:
                _disable_failing(target, at=at)
                _fail(message, at=at, reason=f"{outcome.error}; {target} was disabled.")
                _kick_next(message)
                return "failed"
        if tries > len(RETRY_DELAYS):
            Message.objects.filter(pk=message.pk).update(tries=tries)
            _fail(message, at=at, reason=outcome.error or "failed")
            _kick_next(message)
            return "failed"
        delay = RETRY_DELAYS[tries - 1]
        Message.objects.filter(pk=message.pk).update(
            tries=tries,
            next_attempt_at=at + delay,
            claimed_until=None,
            last_error=_without_nul(outcome.error or "failed")[:2000],
        )
        _enqueue(message.pk, delay=delay)
        return "retry"


def _disable_failing(target, *, at: datetime) -> None:
    """A target failing for 24 hours is disabled with a notice; its pending messages fail."""
    reason = (
        f"Disabled automatically on {at:%Y-%m-%d %H:%M} UTC: every delivery failed since "
        f"{target.failing_since:%Y-%m-%d %H:%M} UTC (24 hours). Fix the receiver, enable it "
        "again and send the failed messages again."
    )
    type(target).objects.filter(pk=target.pk).update(
        enabled=False, disabled_at=at, disabled_by=None, disabled_reason=reason
    )
    target.enabled, target.disabled_at, target.disabled_reason = False, at, reason
    field = "subscription" if isinstance(target, WebhookSubscription) else "channel"
    Message.objects.filter(**{field: target}, status=MessageStatus.PENDING).update(
        status=MessageStatus.FAILED,
        failed_at=at,
        claimed_until=None,
        last_error=f"Not sent: {target} was disabled after 24 hours of failures.",
    )


def due_message_ids(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Pending messages whose time has come (the beat sweep's catch-up), oldest first."""
    now = now or timezone.now()
    return list(Message.objects.due(now).order_by("pk").values_list("pk", flat=True)[:limit])


def deliver_due(*, now: datetime | None = None) -> dict[str, int]:
    """Try every due message in order (each queue's head goes first, the rest wait)."""
    counts: dict[str, int] = {}
    for pk in due_message_ids(now=now):
        result = deliver_message(pk, now=now)
        counts[result] = counts.get(result, 0) + 1
    return counts


def redeliver_message(message: Message, *, by: AbstractBaseUser | None) -> Message:
    """Send a failed message again: a new round of attempts, the same webhook-id."""
    with transaction.atomic():
        current = (
            Message.objects.select_for_update(of=("self",))
            .select_related("subscription", "channel")
            .get(pk=message.pk)
        )
        problems = []
        if current.status != MessageStatus.FAILED:
            problems.append(
                f"Only a failed message can be sent again; {current.webhook_id} is "
                f"{current.get_status_display().lower()}."
            )
        target = current.target
        if target is not None and not target.enabled:
            problems.append(f"{target} is disabled; enable it before sending again.")
        if problems:
            raise NotifyError(problems)
        now = timezone.now()
        Message.objects.filter(pk=current.pk).update(
            status=MessageStatus.PENDING,
            tries=0,
            next_attempt_at=now,
            failed_at=None,
            claimed_until=None,
            last_error=f"Sent again by {by.get_username() if by else 'the system'}.",
        )
        _enqueue(current.pk)
    current.refresh_from_db()
    return current


# ---------------------------------------------------------------- subscriptions and channels


def add_webhook(
    *,
    url: str,
    events: str | list[str],
    by: AbstractBaseUser | None,
    secret: str | None = None,
    description: str = "",
) -> tuple[WebhookSubscription, str]:
    """Subscribe a URL to event types. Returns the subscription and its secret (generated when
    none is given; shown once)."""
    url = (url or "").strip()
    problems = []
    if len(url) > MAX_URL:
        problems.append(f"url: at most {MAX_URL} characters")
    elif problem := delivery.url_problem(url):
        problems.append(f"url: {problem}")
    wanted, event_problems = parse_event_types(events)
    problems += [f"events: {p}" for p in event_problems]
    secret = (secret or "").strip() or delivery.new_secret()
    if problem := delivery.secret_problem(secret):
        problems.append(f"secret: {problem}")
    description = (description or "").strip()
    if len(description) > 200:
        problems.append("description: at most 200 characters")
    if problems:
        raise NotifyError(problems)
    sub = WebhookSubscription.objects.create(
        url=url, event_types=wanted, secret=secret, description=description, created_by=by
    )
    return sub, secret


def add_channel(
    *,
    name: str,
    apprise_url: str,
    events: str | list[str],
    min_severity: str,
    by: AbstractBaseUser | None,
) -> NotificationChannel:
    """A notification channel for people: an Apprise URL with its rules."""
    name = (name or "").strip()
    apprise_url = (apprise_url or "").strip()
    problems = []
    if not name:
        problems.append("name: name the channel (e.g. #incidents on Slack)")
    elif len(name) > 120:
        problems.append("name: at most 120 characters")
    if len(apprise_url) > 2000:
        problems.append("apprise_url: at most 2000 characters")
    elif problem := delivery.apprise_url_problem(apprise_url):
        problems.append(f"apprise_url: {problem}")
    wanted, event_problems = parse_event_types(events)
    problems += [f"events: {p}" for p in event_problems]
    if min_severity and min_severity not in SEVERITIES:
        problems.append(f"min_severity: one of {', '.join(SEVERITIES)}, or empty for all")
    if problems:
        raise NotifyError(problems)
    return NotificationChannel.objects.create(
        name=name,
        apprise_url=apprise_url,
        event_types=wanted,
        min_severity=min_severity or "",
        created_by=by,
    )


def disable_target(target, *, by: AbstractBaseUser | None, reason: str = ""):
    """Stop sending to a subscription or channel (kept, with who disabled it and why)."""
    reason = (reason or "").strip()
    with transaction.atomic():
        current = type(target).objects.select_for_update().get(pk=target.pk)
        if not current.enabled:
            raise NotifyError(f"{current} is already disabled.")
        now = timezone.now()
        who = by.get_username() if by is not None else "the command line"
        notice = f"Disabled by {who} on {now:%Y-%m-%d %H:%M} UTC" + (
            f": {reason}" if reason else "."
        )
        type(target).objects.filter(pk=current.pk).update(
            enabled=False, disabled_at=now, disabled_by=by, disabled_reason=notice
        )
    current.refresh_from_db()
    return current


def enable_target(target, *, by: AbstractBaseUser | None):
    """Send to a disabled subscription or channel again (from now on; failed messages can be
    sent again one by one)."""
    with transaction.atomic():
        current = type(target).objects.select_for_update().get(pk=target.pk)
        if current.enabled:
            raise NotifyError(f"{current} is already enabled.")
        type(target).objects.filter(pk=current.pk).update(
            enabled=True, failing_since=None, disabled_at=None, disabled_by=None, disabled_reason=""
        )
    current.refresh_from_db()
    return current

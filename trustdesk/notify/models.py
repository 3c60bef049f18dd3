"""Webhook subscriptions, notification channels, and the messages and attempts they receive.

Nothing here is deleted: a subscription or channel is disabled (by a person or after 24 hours of
failure), a message keeps every attempt, and a redelivery adds attempts to the same message.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from trustdesk.core.models import user_reference
from trustdesk.notify.events import EVENT_TYPES


def new_message_id() -> str:
    """`msg_` and 32 random characters: the `webhook-id`, the same on every retry."""
    return "msg_" + secrets.token_hex(16)


class Target(models.Model):
    """What a message is sent to; the rules of which events it hears."""

    event_types = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    created_by = user_reference(optional=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set by the first failed attempt after a success; cleared by the next success.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_by = user_reference(optional=True)
    # The notice shown on the target's page when it was disabled (by whom, or after 24 h failing).
    disabled_reason = models.TextField(blank=True)

    #: The name of the URL of the target's page.
    detail_view: str

    class Meta:
        abstract = True

    def get_absolute_url(self) -> str:
        return reverse(self.detail_view, args=[self.pk])

    def hears(self, event_type: str) -> bool:
        return self.enabled and event_type in (self.event_types or [])

    @property
    def event_labels(self) -> list[str]:
        return [t for t in self.event_types or [] if t in EVENT_TYPES]


class WebhookSubscription(Target):
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    # `whsec_` + base64 of the key; needed in clear to sign, shown once when generated.
    secret = models.CharField(max_length=120)

    detail_view = "webhook_detail"

    class Meta:
        ordering = ["-enabled", "pk"]

    def __str__(self) -> str:
        return f"Webhook #{self.pk} {self.url}"

    @property
    def secret_hint(self) -> str:
        return self.secret[:10] + "…"


class NotificationChannel(Target):
    name = models.CharField(max_length=120)
    # An Apprise URL (slack://, msteams://, matrix://, mailto://, json://, ...). It may hold a
    # token: pages show Apprise's privacy form of it, never the whole URL.
    apprise_url = models.TextField()
    # "" hears every severity; "sev2" hears sev1 and sev2.
    min_severity = models.CharField(max_length=8, blank=True)

    detail_view = "channel_detail"

    class Meta:
        ordering = ["-enabled", "name", "pk"]

    def __str__(self) -> str:
        return f"Channel {self.name}"

    @property
    def private_url(self) -> str:
        from trustdesk.notify.delivery import private_apprise_url

        return private_apprise_url(self.apprise_url)


class Publication(models.Model):
    """One announced event, as fan-out recorded it: the body every webhook of it receives."""

    type = models.CharField(max_length=60)
    data = models.JSONField(default=dict)
    severity = models.CharField(max_length=8, blank=True)
    incident_key = models.CharField(max_length=40, blank=True, db_index=True)
    at = models.DateTimeField(default=timezone.now)
    # The exact JSON body posted to webhooks ({"type", "timestamp", "data"}), identical on retries.
    body = models.TextField()

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.type} {self.incident_key}".strip()


class MessageKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    CHANNEL = "channel", "Notification channel"
    EMAIL = "email", "E-mail"


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class MessageQuerySet(models.QuerySet):
    def same_queue(self, message: Message) -> MessageQuerySet:
        """The messages of the same target and incident (delivered in order, one at a time)."""
        qs = self.filter(
            kind=message.kind,
            subscription_id=message.subscription_id,
            channel_id=message.channel_id,
            recipient_id=message.recipient_id,
        )
        return qs.filter(incident_key=message.incident_key)

    def due(self, now: datetime) -> MessageQuerySet:
        return self.filter(status=MessageStatus.PENDING, next_attempt_at__lte=now).filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
        )


class Message(models.Model):
    """One event for one target (a webhook, a channel, or a person's e-mail)."""

    publication = models.ForeignKey(Publication, on_delete=models.PROTECT, related_name="messages")
    kind = models.CharField(max_length=10, choices=MessageKind.choices)
    subscription = models.ForeignKey(
        WebhookSubscription,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="messages",
    )
    channel = models.ForeignKey(
        NotificationChannel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="messages",
    )
    recipient = user_reference(optional=True)
    webhook_id = models.CharField(max_length=40, unique=True, default=new_message_id)
    incident_key = models.CharField(max_length=40, blank=True)
    status = models.CharField(
        max_length=10, choices=MessageStatus.choices, default=MessageStatus.PENDING
    )
    # Attempts in the current round (a redelivery starts a new round); all attempts stay logged.
    tries = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker sending it holds it until then, so two workers never send it at once.
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["-pk"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notify_msg_due"),
            models.Index(
                fields=["kind", "subscription", "channel", "recipient", "incident_key", "status"],
                name="notify_msg_queue",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind="webhook", subscription__isnull=False)
                    | Q(kind="channel", channel__isnull=False)
                    | Q(kind="email", recipient__isnull=False)
                ),
                name="notify_message_has_its_target",
            )
        ]

    def __str__(self) -> str:
        return f"{self.webhook_id} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("message_detail", args=[self.pk])

    @property
    def target(self) -> WebhookSubscription | NotificationChannel | None:
        return self.subscription or self.channel

    @property
    def target_label(self) -> str:
        if self.kind == MessageKind.WEBHOOK and self.subscription is not None:
            return self.subscription.description or self.subscription.url
        if self.kind == MessageKind.CHANNEL and self.channel is not None:
            return self.channel.name
        if self.recipient is not None:
            return f"e-mail to {self.recipient.get_username()}"
        return self.kind


class Attempt(models.Model):
    """One try at delivering a message: what came back and how long it took. Written once."""

    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="attempts")
    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    # The first 1 KB of the answer (or of the sender's log for channels and e-mail).
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"attempt {self.pk} of {self.message_id}: {'ok' if self.ok else 'failed'}"

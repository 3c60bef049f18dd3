"""Share links for buyers and the log of their views (docs/design.md section 8)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from trustdesk.core.models import user_reference

DEFAULT_LIFETIME = timedelta(days=14)
MAX_LIFETIME = timedelta(days=90)


def token_hash(token: str) -> str:
    """Only this is stored: a leaked database cannot be turned back into working links."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ShareLinkStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class ShareLinkQuerySet(models.QuerySet):
    def active(self, now: datetime | None = None) -> ShareLinkQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=now or timezone.now())

    def expired(self, now: datetime | None = None) -> ShareLinkQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__lte=now or timezone.now())

    def revoked(self) -> ShareLinkQuerySet:
        return self.filter(revoked_at__isnull=False)

    def with_status(self, status: str, now: datetime | None = None) -> ShareLinkQuerySet:
        return {
            ShareLinkStatus.ACTIVE: self.active,
            ShareLinkStatus.EXPIRED: self.expired,
            ShareLinkStatus.REVOKED: lambda now=None: self.revoked(),
        }[status](now)

    def search(self, text: str) -> ShareLinkQuerySet:
        if not text:
            return self
        shared = ShareLink.agents.through.objects.filter(
            Q(agent__key__icontains=text) | Q(agent__name__icontains=text)
        ).values("sharelink_id")
        return self.filter(Q(label__icontains=text) | Q(pk__in=shared))


class ShareLink(models.Model):
    """A read-only diligence view of chosen agents (and optionally chosen incidents)."""

    label = models.CharField(max_length=200)
    token_hash = models.CharField(max_length=64, unique=True)
    agents = models.ManyToManyField("pacts.Agent", related_name="+")
    # Empty means every incident of the agents, now and later.
    incidents = models.ManyToManyField("incidents.Incident", blank=True, related_name="+")
    expires_at = models.DateTimeField()
    include_evidence = models.BooleanField(default=False)
    created_by = user_reference()
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = user_reference(optional=True)

    objects = ShareLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="share_link_expires_after_creation",
            ),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True) | Q(revoked_by__isnull=False),
                name="share_link_revocation_has_author",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    def status(self, now: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return ShareLinkStatus.REVOKED
        if self.expires_at <= (now or timezone.now()):
            return ShareLinkStatus.EXPIRED
        return ShareLinkStatus.ACTIVE

    @property
    def current_status(self) -> str:
        return self.status()

    @property
    def is_active(self) -> bool:
        return self.status() == ShareLinkStatus.ACTIVE


class ShareLinkView(models.Model):
    """One request to a share link (page, download or refusal). Never edited or deleted."""

    link = models.ForeignKey(ShareLink, on_delete=models.PROTECT, related_name="views")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    # HMAC-SHA-256 of the IP with the SECRET_KEY: repeat visits group together, the address
    # itself is not kept.
    ip_hash = models.CharField(max_length=64)
    user_agent = models.CharField(max_length=300, blank=True)
    what = models.CharField(max_length=40)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.link_id} {self.what} @ {self.at:%Y-%m-%d %H:%M}"


class Checkpoint(models.Model):
    """A signed statement of the transparency log's size and root (docs/design.md section 15): the
    C2SP tlog-checkpoint text signed as a C2SP signed note. Every one is kept, never edited."""

    size = models.BigIntegerField(unique=True)
    root_hash = models.BinaryField(max_length=32)
    origin = models.CharField(max_length=200)
    # The signed note exactly as served and bundled (checkpoint.txt).
    note = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-size"]

    def __str__(self) -> str:
        return f"checkpoint {self.origin} @ {self.size}"

    @property
    def root_base64(self) -> str:
        import base64

        return base64.b64encode(bytes(self.root_hash)).decode("ascii")

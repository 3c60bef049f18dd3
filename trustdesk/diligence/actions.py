"""Every state change of the diligence app: share links made, revoked, and their views logged."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from trustdesk.core.effects import publish
from trustdesk.core.errors import Refused
from trustdesk.core.roles import can, roles_for
from trustdesk.diligence.models import (
    DEFAULT_LIFETIME,
    MAX_LIFETIME,
    ShareLink,
    ShareLinkView,
    token_hash,
)

# Who may download an internal bundle of one incident: everyone who works incidents or decides
# on them. Viewers read pages but do not take the full record (with internal notes) away.
INTERNAL_BUNDLE_ROLES = roles_for("export_internal_bundles")  # who may: core.roles.PERMISSIONS


class DiligenceError(Refused):
    """A refused diligence step; `problems` lists every reason in plain words."""


def new_token() -> str:
    """32 random bytes, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def create_share_link(
    *,
    by: AbstractBaseUser,
    label: str,
    agents: Iterable,
    incidents: Iterable = (),
    expires_at: datetime | None = None,
    include_evidence: bool = False,
) -> tuple[ShareLink, str]:
    """Make a link and return it with its token. The token exists only in this return value:
    the caller shows it once; afterwards only its SHA-256 is known."""
    now = timezone.now()
    agents = list(agents)
    incidents = list(incidents)
    label = (label or "").strip()
    expires_at = expires_at or now + DEFAULT_LIFETIME
    problems = []
    if not can(by, "share_links"):
        problems.append("Only an incident manager may create share links.")
    if not label:
        problems.append("Give the link a label (who it is for), so it can be found and revoked.")
    if not agents:
        problems.append("Choose at least one agent to share.")
    if expires_at <= now:
        problems.append("The expiry must be in the future.")
    elif expires_at > now + MAX_LIFETIME:
        problems.append(f"A link may last at most {MAX_LIFETIME.days} days.")
    agent_ids = {a.pk for a in agents}
    outside = sorted(i.key for i in incidents if i.agent_id not in agent_ids)
    if outside:
        problems.append(f"{', '.join(outside)}: not an incident of the chosen agents.")
    if problems:
        raise DiligenceError(problems)
    token = new_token()
    with transaction.atomic():
        link = ShareLink.objects.create(
            label=label,
            token_hash=token_hash(token),
            expires_at=expires_at,
            include_evidence=include_evidence,
            created_by=by,
            created_at=now,
        )
        link.agents.set(agents)
        if incidents:
            link.incidents.set(incidents)
    return link, token


def revoke_share_link(link: ShareLink, *, by: AbstractBaseUser) -> ShareLink:
    """Revoke a link now; its URL answers 410 from then on. A second revoke is refused."""
    if not can(by, "share_links"):
        raise DiligenceError("Only an incident manager may revoke share links.")
    now = timezone.now()
    with transaction.atomic():
        # A conditional UPDATE: two concurrent revokes cannot both succeed.
        changed = ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=by
        )
        link.refresh_from_db()
    if not changed:
        raise DiligenceError(
            f"'{link.label}' was already revoked on {link.revoked_at:%Y-%m-%d %H:%M} UTC."
        )
    return link


def ip_hash(ip: str) -> str:
    """HMAC-SHA-256 of the address, keyed with the SECRET_KEY (not reversible by a lookup table
    without the key)."""
    return hmac.new(settings.SECRET_KEY.encode(), ip.encode(), hashlib.sha256).hexdigest()


def record_view(link: ShareLink, *, ip: str, user_agent: str, what: str) -> ShareLinkView:
    view = ShareLinkView.objects.create(
        link=link,
        ip_hash=ip_hash(ip or "unknown"),
        user_agent=(user_agent or "").replace("\x00", "")[:300],
        # What was asked for can name a long pact key or version from the address: the log keeps
        # its start (the column is short) rather than failing the request.
        what=what[: ShareLinkView._meta.get_field("what").max_length],
    )
    if not what.startswith("refused"):
        # Its creator hears that a buyer opened it (keys and the link's internal page only).
        publish(
            "sharelink.viewed",
            {
                "share_link": link.pk,
                "label": link.label,
                "what": view.what,
                "url": reverse("share_link_detail", args=[link.pk]),
            },
        )
    return view

"""How one message leaves: a signed webhook POST, an Apprise notification, or an e-mail.

Each sender returns an `Outcome` and never raises for a failure of the far side: the caller logs
the attempt and schedules the retry. Nothing here touches the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import logging
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail

EXCERPT_BYTES = 1024
SECRET_PREFIX = "whsec_"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    latency_ms: int = 0
    excerpt: str = ""
    error: str = ""


# ---------------------------------------------------------------- Standard Webhooks signing


def new_secret() -> str:
    """A `whsec_` secret: base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_problem(secret: str) -> str | None:
    """Why `secret` is not a usable `whsec_...` secret, or None."""
    if not secret.startswith(SECRET_PREFIX):
        return "a secret starts with whsec_ followed by base64"
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return "the part after whsec_ is not valid base64"
    if not 24 <= len(key) <= 64:
        return "the key after whsec_ must be 24 to 64 bytes"
    return None


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with the decoded secret."""
    key = base64.b64decode(secret[len(SECRET_PREFIX) :])
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def url_problem(url: str) -> str | None:
    """Why a webhook URL cannot be used, or None: only absolute http and https URLs."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https"):
        return "a webhook URL must start with http:// or https://"
    if not parts.hostname:
        return "a webhook URL needs a host"
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return "the port of the webhook URL is not a number from 0 to 65535"
    return None


def _excerpt(raw: bytes) -> str:
    return raw[:EXCERPT_BYTES].decode("utf-8", errors="replace")


def post_webhook(url: str, *, secret: str, msg_id: str, body: bytes) -> Outcome:
    """POST `body` signed for this attempt; a 2xx answer delivers. Redirects are not followed:
    a 3xx is a failure that names where it pointed (the subscription should use that URL)."""
    if problem := url_problem(url):
        return Outcome(False, error=problem)
    parts = urlsplit(url)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "TrustDesk-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    timeout = float(getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 5))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    conn = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read(EXCERPT_BYTES)
        status = response.status
        location = response.getheader("Location", "")
    except (OSError, http.client.HTTPException) as exc:
        latency = int((time.monotonic() - started) * 1000)
        return Outcome(False, latency_ms=latency, error=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        conn.close()
    latency = int((time.monotonic() - started) * 1000)
    ok = 200 <= status < 300
    error = ""
    if 300 <= status < 400:
        error = f"redirect to {location[:300] or '(no Location)'} not followed"
    elif not ok:
        error = f"HTTP {status}"
    return Outcome(ok, status, latency, _excerpt(raw), error)


# ---------------------------------------------------------------- Apprise channels


def apprise_url_problem(url: str) -> str | None:
    import apprise

    if not url or apprise.Apprise.instantiate(url) is None:
        return "Apprise does not understand this URL (e.g. slack://..., json://host/path)"
    return None


def private_apprise_url(url: str) -> str:
    """The URL with its secrets masked, as Apprise prints it for logs."""
    import apprise

    plugin = apprise.Apprise.instantiate(url) if url else None
    if plugin is None:
        return "(unreadable URL)"
    return plugin.url(privacy=True)


def notify_apprise(url: str, *, title: str, body: str) -> Outcome:
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        return Outcome(False, error="Apprise does not understand this URL")
    started = time.monotonic()
    try:
        with apprise.LogCapture(level=logging.INFO) as log:
            ok = bool(notifier.notify(body=body, title=title))
            captured = log.getvalue()
    except Exception as exc:  # a plugin failing in an unexpected way is a failed attempt
        captured, ok = f"{type(exc).__name__}: {exc}", False
    latency = int((time.monotonic() - started) * 1000)
    excerpt = captured.encode()[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    return Outcome(ok, None, latency, excerpt, "" if ok else "Apprise reported a failure")


# ---------------------------------------------------------------- e-mail to a person


def send_email(address: str, *, subject: str, body: str) -> Outcome:
    started = time.monotonic()
    try:
        sent = send_mail(subject, body, None, [address], fail_silently=False)
    except Exception as exc:  # SMTP down, refused address: a failed attempt, retried
        latency = int((time.monotonic() - started) * 1000)
        return Outcome(False, latency_ms=latency, error=f"{type(exc).__name__}: {exc}"[:500])
    latency = int((time.monotonic() - started) * 1000)
    return Outcome(bool(sent), None, latency, f"sent to {address}", "" if sent else "not sent")

"""Which client address a request comes from, as the deployment's proxy settings say.

By default no client header is trusted: the address is the socket's (`REMOTE_ADDR`). Behind a
reverse proxy that sets a header, `TRUSTDESK_CLIENT_IP_HEADER` names it (`X-Real-IP`, or
`X-Forwarded-For`, whose last entry is the one the proxy itself appended; earlier entries come from
the client and could be anything). The buyer rate limit and the login lockout both key on this.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def _meta_name(header: str) -> str:
    return "HTTP_" + header.strip().upper().replace("-", "_")


def client_ip(request: HttpRequest) -> str:
    """The client's address; '' when nothing usable is known."""
    header = getattr(settings, "TRUSTDESK_CLIENT_IP_HEADER", "")
    if header:
        raw = request.META.get(_meta_name(header), "")
        candidates = [part.strip() for part in raw.split(",") if part.strip()]
        if candidates:
            return candidates[-1][:100]
    return request.META.get("REMOTE_ADDR", "") or ""

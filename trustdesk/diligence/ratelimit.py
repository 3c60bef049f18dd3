"""A small fixed-window request counter in Django's cache, for the public buyer pages.

Fixed windows are crude (a burst across a window edge gets up to twice the limit) but need one
cache key per client per window and no clean-up; that is enough to stop scraping and token
guessing on pages that anyone on the internet can reach. Counters live in the default cache
(per process with the built-in local-memory cache; shared when CACHES points at Redis).

When the shared cache cannot be reached (Redis down), the counters fall back to this process's
memory: the limit still holds per web process (looser by the number of processes), the page is
served, and a warning is logged. Failing closed would take the buyer pages down with Redis;
failing fully open would drop the limit while it is down.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache

logger = logging.getLogger(__name__)
_local = LocMemCache("trustdesk-ratelimit-fallback", {"OPTIONS": {"MAX_ENTRIES": 10_000}})

# (requests, seconds) per window; settings may override either.
DEFAULT_PER_IP = (60, 60)
DEFAULT_PER_LINK = (300, 60)

# The clock windows are cut from. Tests pin it: with the real clock a window edge can fall between
# two requests of a test, and the count starts again (a CI run failed that way).
clock = time.time


def limits() -> dict[str, tuple[int, int]]:
    return {
        "ip": tuple(getattr(settings, "DILIGENCE_RATE_LIMIT_PER_IP", DEFAULT_PER_IP)),
        "link": tuple(getattr(settings, "DILIGENCE_RATE_LIMIT_PER_LINK", DEFAULT_PER_LINK)),
    }


def hit(kind: str, ident: str) -> int | None:
    """Count one request; return the seconds to wait when over the limit, else None."""
    allowed, window = limits()[kind]
    now = clock()
    slot = int(now // window)
    key = f"diligence-rate:{kind}:{ident}:{slot}"
    try:
        count = _count(cache, key, window)
    except Exception as exc:  # the shared cache is unreachable: count in this process
        logger.warning("diligence rate limit: cache unreachable (%s); counting per process", exc)
        count = _count(_local, key, window)
    if count > allowed:
        return max(1, int((slot + 1) * window - now))
    return None


def _count(store, key: str, window: int) -> int:
    store.add(key, 0, timeout=window + 1)
    try:
        return store.incr(key)
    except ValueError:  # evicted between add and incr: start the window again
        store.set(key, 1, timeout=window + 1)
        return 1

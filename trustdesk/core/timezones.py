"""Each person's time zone: pages show times in it (the `when` tag), with UTC on hover; exports,
bundles and the API stay UTC.

The zone is kept in the person's profile and copied into the session at login (and when they
change it), so showing a time costs no query. Until it is set it is UTC. The browser proposes it:
the login form carries a hidden field that a small script fills with the browser's zone, and the
first login stores it when the profile has none.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, tzinfo
from functools import lru_cache

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from trustdesk.core.models import UserProfile

SESSION_KEY = "trustdesk_time_zone"
DEFAULT = "UTC"


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_known(name: str | None) -> bool:
    return bool(name) and name in known_zones()


def zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(known_zones())]


def zone_of(name: str | None) -> tzinfo:
    return zoneinfo.ZoneInfo(name) if is_known(name) and name != DEFAULT else UTC


def request_zone(request: HttpRequest | None) -> tzinfo:
    session = getattr(request, "session", None)
    return zone_of(session.get(SESSION_KEY) if session is not None else None)


def set_time_zone(user: AbstractBaseUser, name: str, *, request: HttpRequest | None = None) -> str:
    """Store `name` (a known IANA zone) as the user's time zone; returns it. Raises ValueError
    for an unknown name."""
    if not is_known(name):
        raise ValueError(f"'{name}' is not a known time zone (use a name like Europe/Berlin).")
    UserProfile.objects.update_or_create(user=user, defaults={"time_zone": name})
    if request is not None:
        request.session[SESSION_KEY] = name
    return name


def on_login(request: HttpRequest, user: AbstractBaseUser, proposed: str | None) -> None:
    """At login: keep the stored zone, or store the browser's proposal the first time."""
    profile = UserProfile.objects.filter(user=user).first()
    if profile is not None and profile.time_zone:
        request.session[SESSION_KEY] = profile.time_zone
    elif is_known(proposed):
        set_time_zone(user, proposed, request=request)
    else:
        request.session[SESSION_KEY] = DEFAULT

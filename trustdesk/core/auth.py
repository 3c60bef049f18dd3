"""Login throttling: django-axes counts failed logins per (username, client address)."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class ThrottledLoginBackend(AxesStandaloneBackend):
    """axes' backend, which refuses a locked-out (username, address) before the password is
    checked. A call without a request (a management command, the test client's `login()`) has no
    address to count against and is not a login form: it is left to the next backend rather than
    raising."""

    def authenticate(self, request: HttpRequest | None, *args, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    """The page a locked-out login gets: 429, what happened, for how long, and what to do."""
    from axes.helpers import get_client_username
    from django.conf import settings
    from django.shortcuts import render

    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "username": get_client_username(request, credentials) or "",
        "minutes": minutes,
    }
    response = render(request, "core/login_locked.html", context, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response

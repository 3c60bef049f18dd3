"""Login throttling: wrong passwords for one account from one address end in a lockout."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _login(client, username, password, ip="203.0.113.7", **extra):
    return client.post(
        reverse("login"),
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
        **extra,
    )


def test_after_the_limit_even_the_right_password_is_refused_with_a_clear_message(
    client, make_user, settings, caplog
):
    settings.AXES_FAILURE_LIMIT = 3
    make_user("operator", username="olivia", password="right")
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            assert _login(client, "olivia", "wrong").status_code == 200
        locked = _login(client, "olivia", "wrong")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "After 3 wrong passwords" in locked.content.decode()
    assert int(locked["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()
    assert any("Locking out" in r.getMessage() for r in caplog.records)

    right = _login(client, "olivia", "right")
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_account_and_address(client, make_user, settings):
    settings.AXES_FAILURE_LIMIT = 2
    make_user("operator", username="olivia", password="right")
    make_user("operator", username="omar", password="right")
    for _ in range(2):
        _login(client, "olivia", "wrong")
    assert _login(client, "olivia", "right").status_code == 429
    # another account from the same address, and the same account from another address
    assert _login(client, "omar", "right").status_code == 302
    client.post(reverse("logout"))
    assert _login(client, "olivia", "right", ip="198.51.100.9").status_code == 302


def test_a_success_before_the_limit_resets_the_count(client, make_user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    make_user("operator", username="olivia", password="right")
    for _ in range(2):
        _login(client, "olivia", "wrong")
    assert _login(client, "olivia", "right").status_code == 302
    client.post(reverse("logout"))
    for _ in range(2):
        _login(client, "olivia", "wrong")
    assert _login(client, "olivia", "right").status_code == 302


def test_the_lockout_keys_on_the_configured_proxy_header_only(client, make_user, settings):
    settings.AXES_FAILURE_LIMIT = 2
    make_user("operator", username="olivia", password="right")
    # Not trusted by default: a client cannot dodge the lockout by inventing addresses.
    for n in range(2):
        _login(client, "olivia", "wrong", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    assert _login(client, "olivia", "right", HTTP_X_FORWARDED_FOR="10.0.0.9").status_code == 429

    settings.TRUSTDESK_CLIENT_IP_HEADER = "X-Forwarded-For"
    # Behind the proxy, the last hop it appended is the client.
    assert (
        _login(client, "olivia", "right", HTTP_X_FORWARDED_FOR="1.2.3.4, 10.0.0.9").status_code
        == 302
    )

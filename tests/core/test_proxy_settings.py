"""Client headers (X-Forwarded-Proto, X-Forwarded-For) count only when the deployment says a
proxy sets them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, RequestFactory

from tests.factories import make_pact_version
from trustdesk.core.proxy import client_ip
from trustdesk.diligence.actions import create_share_link

ROOT = Path(__file__).resolve().parents[2]


def _setting(name: str, **env: str) -> str:
    code = f"from django.conf import settings; print(repr(settings.{name}))"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "trustdesk.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_x_forwarded_proto_is_not_trusted_unless_configured():
    assert _setting("SECURE_PROXY_SSL_HEADER") == "None"
    trusted = _setting("SECURE_PROXY_SSL_HEADER", TRUSTDESK_TRUST_X_FORWARDED_PROTO="1")
    assert trusted == "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_a_request_claiming_https_is_not_secure_by_default(settings):
    settings.SECURE_PROXY_SSL_HEADER = None
    request = RequestFactory().get("/", HTTP_X_FORWARDED_PROTO="https")
    assert not request.is_secure()


def test_client_ip_is_the_socket_address_unless_a_header_is_configured(settings):
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.5"
    )
    settings.TRUSTDESK_CLIENT_IP_HEADER = ""
    assert client_ip(request) == "10.0.0.2"
    settings.TRUSTDESK_CLIENT_IP_HEADER = "X-Forwarded-For"
    assert client_ip(request) == "203.0.113.5"  # the hop the proxy appended
    settings.TRUSTDESK_CLIENT_IP_HEADER = "X-Real-IP"
    assert client_ip(request) == "10.0.0.2"  # header absent: the socket address


@pytest.mark.django_db
def test_the_buyer_rate_limit_keys_on_the_configured_client_address(
    make_user, settings, rate_clock
):
    version = make_pact_version()
    _link, token = create_share_link(
        by=make_user("incident_manager"), label="Acme", agents=[version.pact.agent]
    )
    settings.DILIGENCE_RATE_LIMIT_PER_IP = (1, 60)
    client = Client()
    url = f"/d/{token}/"
    # Default: a client inventing X-Forwarded-For addresses is still one client.
    assert client.get(url, HTTP_X_FORWARDED_FOR="1.1.1.1").status_code == 200
    assert client.get(url, HTTP_X_FORWARDED_FOR="2.2.2.2").status_code == 429
    # Behind a proxy that writes X-Real-IP, two real clients are two clients.
    settings.TRUSTDESK_CLIENT_IP_HEADER = "X-Real-IP"
    assert client.get(url, HTTP_X_REAL_IP="198.51.100.1").status_code == 200
    assert client.get(url, HTTP_X_REAL_IP="198.51.100.2").status_code == 200
    assert client.get(url, HTTP_X_REAL_IP="198.51.100.2").status_code == 429

"""The 500s that outside testing found, walked one by one: each must be a clear 4xx or a
path-tagged problem, and change nothing."""

from __future__ import annotations

import html
import io
import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import AgentFactory, make_incident, make_pact_version
from tests.pacts.documents import evaluation_item
from trustdesk.diligence import ratelimit
from trustdesk.diligence.actions import create_share_link
from trustdesk.diligence.models import ShareLinkView
from trustdesk.incidents.models import Incident
from trustdesk.pacts import actions as pact_actions
from trustdesk.pacts.models import Evaluation

pytestmark = pytest.mark.django_db


def _patterns(resolver=None, prefix=""):
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _with_nul_key(route: str) -> str:
    path = route.replace("<str:key>", "INC-1%00")
    path = re.sub(r"<int:\w+>", "1", path)
    return "/" + path


def test_a_nul_in_any_incident_key_of_any_url_is_a_400_never_a_500(client_for):
    incident_routes = [r for r in _patterns() if "<str:key>" in r]
    assert len(incident_routes) >= 12  # the incident, review and bundle pages
    client = client_for("incident_manager", "operator")
    for route in incident_routes:
        url = _with_nul_key(route)
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 400, (route, method.__name__, response.status_code)
            assert b"NUL" in response.content


def test_a_nul_in_a_query_parameter_is_a_400(client_for):
    client = client_for("incident_manager", "operator")
    response = client.get("/incidents/new/?agent=%00")
    assert response.status_code == 400
    assert "the query parameter 'agent'" in html.unescape(response.content.decode())
    assert client.get("/incidents/?q=a%00b").status_code == 400


@pytest.fixture
def share_token(make_user):
    version = make_pact_version()
    _link, token = create_share_link(
        by=make_user("incident_manager"), label="Acme", agents=[version.pact.agent]
    )
    return token


def test_a_buyer_pact_download_with_a_long_key_or_huge_version_is_a_404(share_token):
    client = Client()
    long_key = "a" * 60
    for url in (
        f"/d/{share_token}/pacts/{long_key}/v1.json",
        f"/d/{share_token}/pacts/x/v99999999999999999999.json",
        f"/d/{share_token}/pacts/{long_key}/v99999999999999999999.yaml",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
    # every request is still logged, with what was asked for cut to the column
    whats = list(ShareLinkView.objects.values_list("what", flat=True))
    assert len(whats) == 3
    assert all(w.startswith("pact ") and len(w) <= 40 for w in whats)


def test_the_buyer_page_is_served_when_the_rate_limit_cache_is_unreachable(
    share_token, settings, rate_clock
):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # a closed port
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    settings.DILIGENCE_RATE_LIMIT_PER_IP = (2, 60)
    client = Client()
    assert client.get(f"/d/{share_token}/").status_code == 200
    assert client.get(f"/d/{share_token}/").status_code == 200
    # Fails over to a per-process count: the limit still holds.
    assert client.get(f"/d/{share_token}/").status_code == 429
    ratelimit._local.clear()


@pytest.fixture
def api_secret(make_user):
    from tests.pacts.documents import valid_document

    pact_actions.import_pact_documents([valid_document()], by=make_user("risk"))
    _token, secret = pact_actions.create_api_token(source="evals", by=make_user("risk"))
    return secret


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (evaluation_item(external_id="a\u0000b"), "external_id"),
        (evaluation_item(pact="support\u0000refunds"), "pact"),
        ([evaluation_item(external_id="x\ud800")], "[0].external_id"),
        (
            {"evaluations": [evaluation_item(), evaluation_item(clause="\udfff")]},
            "evaluations[1].clause",
        ),
    ],
)
def test_nul_or_a_lone_surrogate_in_an_api_body_is_a_json_400_with_the_field_path(
    api_secret, body, path
):
    raw = json.dumps(body)  # ensure_ascii: "\u0000" and "\ud800" escapes, as a client sends them
    response = Client().post(
        "/api/v1/evaluations",
        raw,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_secret}",
    )
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    errors = response.json()["errors"]
    assert [e["path"] for e in errors] == [path]
    assert "NUL" in errors[0]["message"] or "surrogate" in errors[0]["message"]
    assert Evaluation.objects.count() == 0


@pytest.mark.parametrize(("text", "word"), [("INC-\\u0000", "NUL"), ("INC-\\ud800", "surrogate")])
def test_import_incidents_with_unstorable_text_names_the_path_and_stores_nothing(
    tmp_path, text, word
):
    agent = AgentFactory()
    raw = (
        '{"format": "trustdesk.incidents/v1", "incidents": [{"key": "' + text + '", '
        f'"agent": "{agent.key}", "severity": "sev2", "title": "t", "events": []}}]}}'
    )
    path = tmp_path / "bad.json"
    path.write_text(raw)
    err = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_incidents", str(path), stderr=err)
    assert "nothing was imported" in str(caught.value)
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("incidents[0].key: contains")
    assert word in lines[0]
    assert "Traceback" not in err.getvalue()
    assert Incident.objects.count() == 0


def test_an_incident_page_with_a_huge_number_key_is_a_404(client_for):
    incident = make_incident()
    client = client_for("viewer")
    assert client.get(f"/incidents/{incident.key}/").status_code == 200
    assert client.get("/incidents/INC-99999999999999999999999/").status_code == 404

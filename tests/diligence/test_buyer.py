"""The buyer view: no login, read-only, rate limited, logged; no internal notes or names."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta

import pytest
import yaml
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.diligence.helpers import PUBLIC_NOTE, SECRET_NOTE, read_zip, recovered_incident
from tests.factories import AgentFactory, make_incident, make_pact_version
from trustdesk.diligence import signing
from trustdesk.diligence.actions import create_share_link, revoke_share_link
from trustdesk.diligence.models import ShareLink, ShareLinkView

pytestmark = pytest.mark.django_db

INTERNAL_NAME = "zelda-internal-handle"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def manager(make_user):
    return make_user("incident_manager", username="ivan-the-manager")


@pytest.fixture
def incident(make_user):
    agent = AgentFactory(key="support-bot", name="Support Bot")
    return recovered_incident(agent=agent, by=make_user("operator", username=INTERNAL_NAME))


@pytest.fixture
def shared(manager, incident):
    """(link, token) for the incident's agent, evidence included."""
    return create_share_link(
        by=manager, label="Northwind procurement", agents=[incident.agent], include_evidence=True
    )


def _urls(token, incident):
    version = incident.pact_version
    return [
        reverse("buyer_view", args=[token]),
        reverse("buyer_bundle", args=[token]),
        reverse("buyer_pact_json", args=[token, version.pact.key, version.number]),
        reverse("buyer_pact_yaml", args=[token, version.pact.key, version.number]),
    ]


def expire(link) -> None:
    ShareLink.objects.filter(pk=link.pk).update(
        created_at=timezone.now() - timedelta(days=15),
        expires_at=timezone.now() - timedelta(seconds=1),
    )


def _body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


# ------------------------------------------------------------------ what the buyer sees


def test_the_buyer_page_needs_no_login_and_shows_the_record(client, shared, incident):
    link, token = shared
    response = client.get(reverse("buyer_view", args=[token]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Diligence record: Northwind procurement" in body
    # Active pacts in plain words, with downloads.
    assert "Never issues a refund above 200 EUR without human approval." in body
    assert "at most 0 over 7 days, by an automated check (refund-audit)" in body
    assert "On a breach, the agent is suspended." in body
    assert f"/d/{token}/pacts/{incident.pact_version.pact.key}/v1.yaml" in body
    assert incident.pact_version.sha256 in body
    # Incident history: key, severity, class, state, time to containment, decision, rationale.
    for text in (
        incident.key,
        "SEV2",
        "Authority",
        "Recovered",
        "7 min",
        "Reopened partially",
        "Limit enforced server-side; approval queue staffed.",
    ):
        assert text in body, text
    assert '<td class="num" data-label="Attestations">1</td>' in body  # one attestation
    assert "badge-override" not in body
    # The key and the bundle.
    assert signing.public_key().fingerprint_display in body
    assert f'href="/d/{token}/bundle.zip"' in body
    assert response["Cache-Control"] == "no-store, private"
    assert response["Referrer-Policy"] == "no-referrer"
    assert "noindex" in response["X-Robots-Tag"]


def test_an_override_and_its_justification_are_shown(client, manager):
    from tests.diligence.helpers import step

    incident = make_incident(
        version=make_pact_version(agent=AgentFactory(key="x-bot")),
        detected_at=timezone.now() - timedelta(hours=1),
    )
    t = incident.detected_at
    step(
        incident,
        "decision_recorded",
        by=None,
        at=t + timedelta(minutes=1),
        data={
            "decision": "reopen_full",
            "scope_after": "full",
            "rationale": "Business need.",
            "override": True,
            "justification": "Peak season; risk accepted by the COO.",
        },
    )
    _, token = create_share_link(by=manager, label="x", agents=[incident.agent])
    body = client.get(reverse("buyer_view", args=[token])).content.decode()
    assert "badge-override" in body
    assert "Peak season; risk accepted by the COO." in body
    assert "not contained yet" in body


def test_stale_pacts_are_flagged(client, manager):
    agent = AgentFactory(key="stale-bot")
    make_pact_version(agent=agent, last_reviewed=timezone.now().date() - timedelta(days=60))
    _, token = create_share_link(by=manager, label="x", agents=[agent])
    body = client.get(reverse("buyer_view", args=[token])).content.decode()
    assert "1 pact past its review date" in body
    assert "badge-stale" in body


def test_a_link_with_chosen_incidents_shows_and_bundles_only_those(
    client, manager, incident, tmp_path
):
    other = recovered_incident(agent=incident.agent)
    _, token = create_share_link(by=manager, label="x", agents=[incident.agent], incidents=[other])
    body = client.get(reverse("buyer_view", args=[token])).content.decode()
    assert other.key in body and f"<strong>{incident.key}</strong>" not in body
    manifest = json.loads(
        _zip(client.get(reverse("buyer_bundle", args=[token])), tmp_path)["manifest.json"]
    )
    assert [i["key"] for i in manifest["incidents"]] == [other.key]


def test_other_agents_never_appear(client, manager, incident):
    hidden = recovered_incident(agent=AgentFactory(key="secret-bot", name="Secret Bot"))
    _, token = create_share_link(by=manager, label="x", agents=[incident.agent])
    body = client.get(reverse("buyer_view", args=[token])).content.decode()
    assert "Secret Bot" not in body and hidden.key not in body


def test_the_metrics_section_shows_the_dashboard_measures_for_the_shared_agents(client, shared):
    _, token = shared
    body = client.get(reverse("buyer_view", args=[token])).content.decode()
    assert "<h2>Metrics</h2>" in body
    assert "Time to containment" in body and "p50 7 min" in body
    assert "Decisions others could explain" in body


# ------------------------------------------------------------------ downloads


def _zip(response, tmp_path) -> dict[str, bytes]:
    assert response.status_code == 200, response.status_code
    path = tmp_path / "bundle.zip"
    path.write_bytes(_body(response))
    return read_zip(path)


def test_the_buyer_bundle_verifies_and_includes_evidence_when_the_link_says_so(
    client, shared, tmp_path
):
    _, token = shared
    response = client.get(reverse("buyer_bundle", args=[token]))
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    files = _zip(response, tmp_path)
    assert len([n for n in files if n.startswith("evidence/")]) == 2
    manifest = json.loads(files["manifest.json"])
    assert manifest["bundle"]["audience"] == "buyer"
    out = io.StringIO()
    call_command("verify_bundle", str(tmp_path / "bundle.zip"), stdout=out)
    assert "1 internal note(s) withheld" in out.getvalue()


def test_without_evidence_the_buyer_bundle_lists_hashes_only(client, manager, incident, tmp_path):
    _, token = create_share_link(by=manager, label="x", agents=[incident.agent])
    files = _zip(client.get(reverse("buyer_bundle", args=[token])), tmp_path)
    assert not [n for n in files if n.startswith("evidence/")]
    manifest = json.loads(files["manifest.json"])
    assert [e["included"] for e in manifest["evidence"]] == [False, False]
    out = io.StringIO()
    call_command("verify_bundle", str(tmp_path / "bundle.zip"), stdout=out)
    assert out.getvalue().startswith("OK")


def test_pact_downloads_are_the_canonical_document(client, shared, incident):
    _, token = shared
    version = incident.pact_version
    response = client.get(reverse("buyer_pact_json", args=[token, version.pact.key, 1]))
    assert response["Content-Type"] == "application/json"
    assert hashlib.sha256(response.content.rstrip(b"\n")).hexdigest() == version.sha256
    response = client.get(reverse("buyer_pact_yaml", args=[token, version.pact.key, 1]))
    assert yaml.safe_load(response.content) == json.loads(version.canonical)
    assert "attachment" in response["Content-Disposition"]
    missing = client.get(reverse("buyer_pact_json", args=[token, version.pact.key, 7]))
    assert missing.status_code == 404 and b"No such pact here" in missing.content


def test_a_pact_of_an_agent_outside_the_link_cannot_be_downloaded(client, shared):
    _, token = shared
    other = make_pact_version(agent=AgentFactory(key="other-bot"))
    response = client.get(reverse("buyer_pact_json", args=[token, other.pact.key, other.number]))
    assert response.status_code == 404


# ------------------------------------------------------------------ nothing internal leaks


def test_an_internal_notes_text_never_appears_in_any_buyer_page_or_bundle(
    client, shared, incident, tmp_path
):
    link, token = shared
    assert incident.events.filter(type="note", data__internal=True).exists()
    seen = []
    for url in _urls(token, incident):
        response = client.get(url)
        assert response.status_code == 200, url
        body = _body(response)
        seen.append(body)
        if url.endswith(".zip"):
            path = tmp_path / "b.zip"
            path.write_bytes(body)
            seen.extend(read_zip(path).values())
    revoke_share_link(link, by=link.created_by)
    seen.append(client.get(reverse("buyer_view", args=[token])).content)
    for blob in seen:
        assert SECRET_NOTE.encode() not in blob
    assert any(PUBLIC_NOTE.encode() in blob for blob in seen)  # shareable notes do travel


def test_no_user_name_appears_on_buyer_pages(client, shared, incident):
    _, token = shared
    for url in _urls(token, incident)[:1]:
        body = client.get(url).content.decode()
        assert INTERNAL_NAME not in body
        assert "ivan-the-manager" not in body


# ------------------------------------------------------------------ refusals


def test_an_expired_link_answers_410_with_a_clear_page(client, shared, incident):
    link, token = shared
    expire(link)
    for url in _urls(token, incident):
        response = client.get(url)
        assert response.status_code == 410, url
        assert b"expired on" in response.content
        assert b"Northwind" not in response.content


def test_a_revoked_link_answers_410_with_a_clear_page(client, shared, incident, manager):
    link, token = shared
    revoke_share_link(link, by=manager)
    for url in _urls(token, incident):
        response = client.get(url)
        assert response.status_code == 410
        assert b"The vendor revoked this diligence link" in response.content


@pytest.mark.parametrize("token", ["x" * 43, "short", "has.dots.in.it.and.is.long.enough.xx"])
def test_an_unknown_token_is_a_404(client, shared, token):
    response = client.get(f"/d/{token}/")
    assert response.status_code == 404
    assert b"Unknown link" in response.content
    assert not ShareLinkView.objects.exists()


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_buyer_pages_refuse_unsafe_methods(shared, incident, method):
    _, token = shared
    client = Client(enforce_csrf_checks=True)
    for url in _urls(token, incident):
        response = getattr(client, method)(url)
        assert response.status_code == 405, (url, method)
        assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
    assert not ShareLinkView.objects.exists()


# ------------------------------------------------------------------ logging and limits


def test_every_view_is_logged_with_a_hashed_ip_and_the_user_agent(client, shared, incident):
    link, token = shared
    for url in _urls(token, incident):
        client.get(url, HTTP_USER_AGENT="BuyerBrowser/2.0", REMOTE_ADDR="198.51.100.7")
    views = list(link.views.order_by("pk"))
    assert [v.what for v in views] == [
        "page",
        "bundle",
        f"pact {incident.pact_version.pact.key}@1.json",
        f"pact {incident.pact_version.pact.key}@1.yaml",
    ]
    assert {v.user_agent for v in views} == {"BuyerBrowser/2.0"}
    assert len({v.ip_hash for v in views}) == 1
    assert "198.51.100.7" not in views[0].ip_hash
    expire(link)
    client.get(reverse("buyer_view", args=[token]))
    assert link.views.order_by("-pk").first().what == "refused: expired"


def test_requests_are_rate_limited_per_ip(client, shared, settings, rate_clock):
    settings.DILIGENCE_RATE_LIMIT_PER_IP = (3, 60)
    _, token = shared
    url = reverse("buyer_view", args=[token])
    statuses = [client.get(url, REMOTE_ADDR="192.0.2.1").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get(url, REMOTE_ADDR="192.0.2.1")
    assert b"Too many requests" in limited.content and int(limited["Retry-After"]) >= 1
    assert client.get(url, REMOTE_ADDR="192.0.2.2").status_code == 200  # another address
    # Guessing tokens counts too.
    settings.DILIGENCE_RATE_LIMIT_PER_IP = (1, 60)
    cache.clear()
    assert client.get("/d/" + "y" * 43 + "/", REMOTE_ADDR="192.0.2.9").status_code == 404
    assert client.get("/d/" + "z" * 43 + "/", REMOTE_ADDR="192.0.2.9").status_code == 429


def test_requests_are_rate_limited_per_link(client, shared, settings, rate_clock):
    settings.DILIGENCE_RATE_LIMIT_PER_LINK = (2, 60)
    link, token = shared
    url = reverse("buyer_view", args=[token])
    statuses = [client.get(url, REMOTE_ADDR=f"203.0.113.{n}").status_code for n in range(1, 4)]
    assert statuses == [200, 200, 429]
    assert link.views.count() == 2  # a refused-by-rate request is not a view


def test_the_buyer_page_runs_a_fixed_number_of_queries(
    client, manager, django_assert_max_num_queries
):
    agent = AgentFactory(key="busy-bot")
    version = make_pact_version(agent=agent)
    for _ in range(3):
        recovered_incident(version=version)
    _, token = create_share_link(by=manager, label="x", agents=[agent])
    url = reverse("buyer_view", args=[token])
    # The metrics section runs its own fixed SQL (PostgreSQL adds per-transaction settings);
    # the transparency log section signs a checkpoint when the log grew: up to 7 more.
    with django_assert_max_num_queries(29) as few:
        client.get(url)
    for _ in range(5):
        recovered_incident(version=version)
    make_pact_version(agent=agent, pact_key="busy-bot-second")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert response.content.decode().count("Reopened partially") == 8


def test_an_incident_closed_as_not_one_is_shown_for_what_it_is(client, manager):
    from trustdesk.incidents.ownership import close_not_incident

    agent = AgentFactory(key="dup-bot")
    original = make_incident(version=make_pact_version(agent=agent))
    dup = make_incident(version=original.pact_version)
    close_not_incident(
        dup,
        by=manager,
        expected_version=dup.version,
        reason="duplicate",
        duplicate_of=original,
        explanation="Same alert.",
    )
    _, token = create_share_link(by=manager, label="x", agents=[agent])
    body = client.get(reverse("buyer_view", args=[token])).content.decode()
    assert "Closed, not an incident" in body
    assert f"Not an incident: duplicate of {original.key}." in body

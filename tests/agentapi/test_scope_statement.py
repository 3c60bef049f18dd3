"""GET /api/v1/agents/{key}/scope and /.well-known/trustdesk-keys.json (docs/design.md section
12)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.test import Client

from tests.factories import make_incident, make_pact_version
from tests.reviews.helpers import fresh, in_review_incident
from trustdesk.incidents import journal, lifecycle
from trustdesk.pacts.models import Agent
from trustdesk.reviews import actions as reviews


def get(secret: str | None, key: str, **headers):
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    return Client().get(f"/api/v1/agents/{key}/scope", headers=headers)


def contain(incident, scope="suspended", action=None, reason=""):
    inc = fresh(incident)
    lifecycle.contain_incident(
        inc,
        by=None,
        expected_version=inc.version,
        action=action or {"suspended": "suspend", "restricted": "restrict"}[scope],
        scope_after=scope,
        reason=reason,
    )
    return fresh(inc)


@pytest.fixture
def published(monkeypatch):
    calls = []
    monkeypatch.setattr(
        "trustdesk.incidents.journal.publish",
        lambda t, data, severity=None: calls.append((t, data)),
    )
    return calls


def test_a_new_agent_is_full_at_revision_1_with_its_active_pact(token_for):
    version = make_pact_version()
    agent = version.pact.agent
    response = get(token_for("read"), agent.key)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["ETag"] == '"r1"'
    body = json.loads(response.content)
    assert list(body) == [
        "agent",
        "scope",
        "revision",
        "since",
        "reason",
        "holding_incidents",
        "pact",
        "issued_at",
    ]
    assert body["agent"] == agent.key
    assert (body["scope"], body["revision"], body["holding_incidents"]) == ("full", 1, [])
    assert body["pact"] == {"key": version.pact.key, "version": 1, "sha256": version.sha256}
    assert body["since"].endswith("Z") and body["issued_at"].endswith("Z")


def test_each_scope_change_bumps_the_revision_once_and_only_then(token_for, published):
    secret = token_for("read")
    first = make_incident()
    agent = first.agent
    contain(first, "suspended", reason="refunds over the limit")
    body = json.loads(get(secret, agent.key).content)
    assert (body["scope"], body["revision"]) == ("suspended", 2)
    assert body["holding_incidents"] == [first.key]
    assert first.key in body["reason"]
    assert published == [
        (
            "agent.scope_changed",
            {
                "agent": agent.key,
                "scope": "suspended",
                "revision": 2,
                "reason": body["reason"],
                "incident": first.key,
            },
        )
    ]
    # A second containment at the same scope is no scope change: same revision, one more holder.
    second = make_incident(version=first.pact_version)
    contain(second, "suspended")
    body = json.loads(get(secret, agent.key).content)
    assert (body["scope"], body["revision"]) == ("suspended", 2)
    assert body["holding_incidents"] == [first.key, second.key]
    assert len(published) == 1
    # set_agent_scope itself: the same scope again changes nothing, not even the reason.
    locked = Agent.objects.get(pk=agent.pk)
    assert not journal.set_agent_scope(
        locked, scope="suspended", reason="again", incident=None, at=second.detected_at
    )
    assert Agent.objects.get(pk=agent.pk).scope_reason == body["reason"]
    assert Agent.objects.get(pk=agent.pk).revision == 2


def test_a_reopening_changes_the_statement_and_a_held_one_does_not(token_for, people):
    secret = token_for("read")
    held = in_review_incident(by=people.im)  # contained: suspended
    agent = held.agent
    holder = in_review_incident(by=people.im, version=held.pact_version)  # suspended too
    assert Agent.objects.get(pk=agent.pk).revision == 2

    def decide(incident, decision):
        inc = fresh(incident)
        reviews.record_recovery_decision(
            inc,
            by=people.risk,
            expected_version=inc.version,
            decision=decision,
            rationale="Second approver in place.",
        )
        return fresh(incident)

    held = decide(held, "reopen_partial")
    body = json.loads(get(secret, agent.key).content)
    assert (body["scope"], body["revision"]) == ("suspended", 2)
    # The held reopening waits at its decided scope; the holder still holds.
    assert body["holding_incidents"] == [held.key, holder.key]
    assert held.reopening_held and held.reopened_at is None and held.state_words == "Reopening held"
    holder = decide(holder, "reopen_full")
    body = json.loads(get(secret, agent.key).content)
    # Restricted, not full: the partial reopening of the first incident is what holds now.
    assert (body["scope"], body["revision"], body["holding_incidents"]) == ("restricted", 3, [])
    held = fresh(held)
    assert held.state == "recovered" and held.reopened_at is not None
    assert held.events.order_by("-seq").first().data == {"scope_after": "restricted"}
    assert holder.state == "recovered"


def test_if_none_match_gets_304_with_no_body_in_one_query(token_for, django_assert_num_queries):
    agent = make_pact_version().pact.agent
    secret = token_for(f"agent:{agent.key}")
    first = get(secret, agent.key)
    with django_assert_num_queries(1):
        again = get(secret, agent.key, **{"If-None-Match": first["ETag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == '"r1"'
    stale = get(secret, agent.key, **{"If-None-Match": '"r0", W/"r7"'})
    assert stale.status_code == 200 and stale["ETag"] == '"r1"'


def test_the_signature_covers_the_exact_body_with_the_published_key(token_for):
    agent = make_pact_version().pact.agent
    response = get(token_for("read"), agent.key)
    keys = Client().get("/.well-known/trustdesk-keys.json")
    assert keys.status_code == 200
    (key,) = keys.json()["keys"]
    raw = base64.b64decode(key["public_key"])
    assert len(raw) == 32 and key["alg"] == "Ed25519"
    assert key["kid"] == hashlib.sha256(raw).hexdigest()
    signature = base64.b64decode(response["Signature-Ed25519"])
    public = Ed25519PublicKey.from_public_bytes(raw)
    public.verify(signature, response.content)  # raises if the body was not what was signed
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidSignature
        public.verify(signature, response.content + b" ")


def test_refusals_are_json_with_paths(token_for):
    agent = make_pact_version().pact.agent
    other = make_pact_version().pact.agent
    own = token_for(f"agent:{agent.key}")
    missing = get(None, agent.key)
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert missing.json()["errors"] == []
    assert get("tdk_not-a-token", agent.key).status_code == 401
    denied = get(own, other.key)
    assert denied.status_code == 403
    assert denied.json()["errors"] == [
        {"path": "(token)", "message": f"needs the scope read or agent:{other.key}"}
    ]
    assert get(own, "nobody").status_code == 403  # an agent token learns nothing of others
    unknown = get(token_for("read"), "nobody")
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["path"] == "key"
    assert get(token_for("evaluations:write"), agent.key).status_code == 403

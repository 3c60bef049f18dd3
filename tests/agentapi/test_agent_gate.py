"""examples/agent_gate.py against a live server: the gate closes within one polling interval of a
containment and of a `contain: auto` breach posted to the API, and opens again on a reopening."""

from __future__ import annotations

import importlib.util
import json
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.builders import contain, decide, request_review
from tests.pacts.documents import evaluation_item, valid_document
from tests.reviews.helpers import advance, ready_for_review
from trustdesk.incidents import journal
from trustdesk.incidents.models import Incident
from trustdesk.pacts import actions
from trustdesk.pacts.models import ApiToken

GATE_PATH = Path(__file__).resolve().parents[2] / "examples" / "agent_gate.py"
INTERVAL = 0.25


def load_gate_module():
    spec = importlib.util.spec_from_file_location("agent_gate", GATE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gate_module = load_gate_module()


def flips_within(gate, expected: bool, limit: float) -> float:
    """Seconds until gate.allows() == expected; fails after `limit`."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if gate.allows() is expected:
            return time.monotonic() - start
        time.sleep(0.01)
    pytest.fail(f"allows() did not become {expected} within {limit} s ({gate.last_error})")


@pytest.fixture
def pact(transactional_db, make_user):
    doc = valid_document()
    doc["spec"]["clauses"][0]["contain"] = "auto"  # refund-limit: suspend, automatically
    return actions.import_pact_documents([doc], by=make_user("risk"))[0]


@pytest.fixture
def gate(live_server, pact):
    _token, secret = actions.create_api_token(
        source="gate-support-bot", scopes=["agent:support-bot"], by=None
    )
    gate = gate_module.ScopeGate(live_server.url, "support-bot", token=secret, grace=30)
    gate.start(interval=INTERVAL)
    yield gate
    gate.stop()


def test_the_gate_follows_a_containment_and_a_reopening(gate, pact, make_user):
    im, risk = make_user("incident_manager"), make_user("risk")
    assert gate.signature_note == "signatures checked"
    flips_within(gate, True, 5)
    incident = journal.open_incident(
        agent=pact.pact.agent,
        by=im,
        title="Refund over limit",
        severity="sev2",
        pact_version=pact,
        clauses=list(pact.clauses.all()),
    )
    assert gate.allows()  # detection alone changes no scope
    contain(incident, by=im)
    # Within one polling interval (plus the request itself).
    assert flips_within(gate, False, 2 * INTERVAL + 1) <= INTERVAL + 0.5
    assert gate.statement["scope"] == "suspended"
    assert gate.statement["holding_incidents"] == [incident.key]
    inc = request_review(ready_for_review(advance(incident, "repaired", by=im), by=im), by=im)
    rationale = "A second approver is now required for refunds over the limit."
    decide(inc, "reopen_full", by=risk, rationale=rationale)
    assert flips_within(gate, True, 2 * INTERVAL + 1) <= INTERVAL + 0.5
    assert gate.statement["scope"] == "full" and gate.statement["revision"] == 3


def test_a_contain_auto_breach_posted_to_the_api_closes_the_gate(gate, live_server):
    flips_within(gate, True, 5)
    _token, secret = actions.create_api_token(source="refund-audit", by=None)
    body = evaluation_item(
        value=2, external_id="audit-77", measured_at=timezone.now() - timedelta(minutes=1)
    )
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/evaluations",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
    assert flips_within(gate, False, 2 * INTERVAL + 1) <= INTERVAL + 0.5
    incident = Incident.objects.get()
    assert incident.state == "contained"
    assert gate.statement["holding_incidents"] == [incident.key]


def test_the_gate_fails_closed_when_the_statement_is_older_than_the_grace(live_server, pact):
    _token, secret = actions.create_api_token(source="gate", scopes=["agent:support-bot"], by=None)
    now = [1000.0]
    gate = gate_module.ScopeGate(
        live_server.url, "support-bot", token=secret, grace=10, clock=lambda: now[0]
    )
    assert not gate.allows()  # nothing read yet
    assert gate.refresh() and gate.allows()
    now[0] += 9
    assert gate.refresh()  # a 304 confirms the statement
    assert gate.etag == '"r1"' and gate.allows()
    actions.revoke_api_token(ApiToken.objects.get(source="gate"), by=None)
    now[0] += 5
    assert not gate.refresh() and gate.last_error == "HTTP 401"
    assert gate.allows()  # still within the grace of the last confirmation
    now[0] += 6
    assert not gate.allows()


def test_a_statement_whose_signature_does_not_verify_is_refused(live_server, pact):
    _token, secret = actions.create_api_token(source="gate", scopes=["read"], by=None)
    gate = gate_module.ScopeGate(live_server.url, "support-bot", token=secret)
    body = json.dumps({"agent": "support-bot", "scope": "full", "revision": 1}).encode()
    assert not gate._accept(body, '"r1"', "c2lnbmF0dXJl")
    assert gate.last_error == "the statement's signature does not verify"
    assert not gate.allows()

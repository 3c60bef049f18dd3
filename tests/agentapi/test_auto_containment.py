"""`contain: auto` on a clause (docs/design.md section 12): a breach opens the incident and
contains it at once."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.pacts.documents import evaluation_item, valid_document
from trustdesk.incidents.models import Incident
from trustdesk.pacts import actions
from trustdesk.pacts.document import canonical_document, canonical_text
from trustdesk.pacts.errors import DocumentError
from trustdesk.pacts.models import Agent


def auto_document(contain: str | None = "auto", on_breach: str = "suspend") -> dict:
    doc = valid_document()
    clause = doc["spec"]["clauses"][0]  # refund-limit, evaluated by refund-audit
    clause["on_breach"] = on_breach
    if contain is not None:
        clause["contain"] = contain
    return doc


@pytest.fixture
def breach(django_capture_on_commit_callbacks):
    """Post a failing evaluation; what the request schedules after commit (the breach task,
    eager here) runs as a commit would."""

    def post(secret: str, external_id: str = "audit-1", value: int = 3):
        with django_capture_on_commit_callbacks(execute=True):
            return _post(secret, external_id, value)

    return post


def _post(secret: str, external_id: str, value: int):
    body = evaluation_item(
        value=value, external_id=external_id, measured_at=timezone.now() - timedelta(minutes=5)
    )
    return Client().post(
        "/api/v1/evaluations",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )


def test_old_documents_keep_their_bytes_and_propose_is_the_default_left_out():
    old = canonical_document(valid_document())
    explicit = canonical_document(auto_document("propose"))
    assert "contain" not in json.dumps(old)
    assert canonical_text(explicit) == canonical_text(old)
    auto = canonical_document(auto_document("auto"))
    assert auto["spec"]["clauses"][0]["contain"] == "auto"
    assert canonical_text(auto) != canonical_text(old)


def test_bad_contain_values_name_their_path():
    with pytest.raises(DocumentError) as exc:
        canonical_document(auto_document("always"))
    assert any(p.startswith("spec.clauses[0].contain:") for p in exc.value.problems)
    with pytest.raises(DocumentError) as exc:
        canonical_document(auto_document("auto", on_breach="flag"))
    assert exc.value.problems == [
        "spec.clauses[0].contain: auto needs on_breach restrict or suspend "
        "(a clause that only flags contains nothing)"
    ]


def test_a_breach_posted_to_the_api_contains_the_agent_in_the_same_step(make_user, breach):
    version = actions.import_pact_documents([auto_document()], by=make_user("risk"))[0]
    assert version.clauses.get(key="refund-limit").contain == "auto"
    _token, secret = actions.create_api_token(source="refund-audit", by=None)
    reader = actions.create_api_token(source="gate", scopes=["read"], by=None)[1]
    response = breach(secret)
    assert response.status_code == 201
    evaluation_id = response.json()["evaluations"][0]["id"]
    incident = Incident.objects.get()
    assert incident.state == "contained" and incident.scope_after == "suspended"
    contained = incident.events.get(type="contained")
    assert contained.actor_id is None and contained.actor_name == ""
    assert json.loads(contained.canonical)["by"] is None
    assert contained.data["action"] == "suspend"
    assert f"evaluation #{evaluation_id} from refund-audit (audit-1)" in contained.data["reason"]
    agent = Agent.objects.get(key="support-bot")
    assert (agent.scope, agent.revision) == ("suspended", 2)
    statement = (
        Client()
        .get("/api/v1/agents/support-bot/scope", headers={"Authorization": f"Bearer {reader}"})
        .json()
    )
    assert (statement["scope"], statement["revision"]) == ("suspended", 2)
    assert statement["holding_incidents"] == [incident.key]
    # A second breach joins the open incident and changes nothing more.
    assert breach(secret, "audit-2").status_code == 201
    assert Incident.objects.count() == 1
    assert Agent.objects.get(key="support-bot").revision == 2


def test_without_contain_auto_a_breach_only_proposes(make_user, breach):
    actions.import_pact_documents([auto_document(None)], by=make_user("risk"))
    _token, secret = actions.create_api_token(source="refund-audit", by=None)
    assert breach(secret).status_code == 201
    assert Incident.objects.get().state == "detected"
    assert Agent.objects.get(key="support-bot").scope == "full"

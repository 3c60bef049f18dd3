"""Token scopes and `manage.py api_token create|list|revoke` (docs/design.md section 12)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from tests.core.test_squashed_migrations import (
    migrate_to_head,
    migrate_to_release_1,
    release_1_apps,
)
from tests.factories import AgentFactory
from trustdesk.core.canonical import sha256_hex
from trustdesk.pacts import actions
from trustdesk.pacts.errors import PactError
from trustdesk.pacts.models import ApiToken


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("api_token", *args, stdout=out)
    return out.getvalue()


def test_create_prints_the_secret_alone_on_its_last_line_and_stores_only_its_hash():
    AgentFactory(key="support-bot")
    out = run("create", "gateway", "--scope", "agent:support-bot", "--scope", "read")
    secret = out.rstrip("\n").splitlines()[-1]
    assert secret.startswith("tdk_") and " " not in secret
    token = ApiToken.objects.for_secret(secret)
    assert token.source == "gateway"
    assert token.scopes == ["agent:support-bot", "read"]
    assert token.created_by is None
    assert secret not in str(ApiToken.objects.values().get())


def test_create_refuses_unknown_scopes_and_agents_and_stores_nothing():
    with pytest.raises(CommandError) as exc:
        run("create", "x", "--scope", "write-everything", "--scope", "agent:nobody")
    assert "'write-everything' is not a scope" in str(exc.value)
    assert "no agent 'nobody'" in str(exc.value)
    assert not ApiToken.objects.exists()


def test_list_shows_names_scopes_and_status_and_revoke_ends_a_token():
    run("create", "refund-audit", "--scope", "evaluations:write")
    secret = run("create", "reader", "--scope", "read").splitlines()[-1]
    run("revoke", "reader")
    listing = run("list")
    lines = listing.splitlines()
    assert lines[0].split() == ["NAME", "TOKEN", "SCOPES", "STATUS", "LAST", "USED"]
    assert any(
        line.startswith("refund-audit") and "evaluations:write" in line and " live" in line
        for line in lines
    )
    assert any(line.startswith("reader") and "revoked" in line for line in lines)
    assert ApiToken.objects.for_secret(secret) is None
    with pytest.raises(CommandError, match="No live token named 'reader'"):
        run("revoke", "reader")


def test_only_evaluations_write_may_post_evaluations(token_for):
    secret = token_for("read")
    response = Client().post(
        "/api/v1/evaluations",
        "{}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 403
    body = response.json()
    assert body["errors"] == [{"path": "(token)", "message": "needs the scope evaluations:write"}]
    token = ApiToken.objects.for_secret(secret)
    with pytest.raises(PactError, match="evaluations:write"):
        actions.record_evaluations([{}], token=token)


@pytest.mark.django_db(transaction=True)  # SQLite changes a schema only outside a transaction
def test_first_release_tokens_get_evaluations_write_in_the_upgrade():
    migrate_to_release_1()
    old_apps = release_1_apps()
    User = old_apps.get_model("auth", "User")
    OldToken = old_apps.get_model("pacts", "ApiToken")
    assert "scopes" not in {field.name for field in OldToken._meta.get_fields()}
    user = User.objects.create(username="old-owner")
    OldToken.objects.create(
        source="legacy", token_hash=sha256_hex("tdk_legacy"), prefix="tdk_legacy", created_by=user
    )
    migrate_to_head()
    assert ApiToken.objects.get(source="legacy").scopes == ["evaluations:write"]


def test_the_tokens_page_sets_and_shows_scopes(client_for):
    AgentFactory(key="support-bot")
    c = client_for("incident_manager")
    response = c.post(
        "/api-tokens/",
        {"source": "runtime", "scopes": ["read"], "agents": "support-bot"},
    )
    assert response.status_code == 201
    token = ApiToken.objects.get(source="runtime")
    assert token.scopes == ["read", "agent:support-bot"]
    page = c.get("/api-tokens/").content.decode()
    assert "agent:support-bot" in page and "runtime" in page
    refused = c.post("/api-tokens/", {"source": "other", "agents": "ghost"})
    assert refused.status_code == 400
    assert "no agent &#x27;ghost&#x27;" in refused.content.decode()
    assert not ApiToken.objects.filter(source="other").exists()

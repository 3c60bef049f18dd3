"""The admin shows pacts but cannot change an active version, its clauses or evaluations."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.pacts.documents import valid_document
from trustdesk.pacts import actions
from trustdesk.pacts.models import Clause, PactVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def active(make_user):
    return actions.import_pact_documents([valid_document()], by=make_user("risk"))[0]


def test_the_admin_shows_an_active_version_read_only(admin_client, active):
    url = reverse("admin:pacts_pactversion_change", args=[active.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert active.sha256 in body
    assert 'name="_save"' not in body and 'name="sha256"' not in body


def test_the_admin_cannot_change_an_active_version(admin_client, active):
    url = reverse("admin:pacts_pactversion_change", args=[active.pk])
    response = admin_client.post(
        url, {"status": "draft", "risk_tier": "low", "canonical": "{}", "sha256": "0" * 64}
    )
    assert response.status_code == 403
    fresh = PactVersion.objects.get(pk=active.pk)
    assert (fresh.status, fresh.risk_tier, fresh.sha256) == ("active", "high", active.sha256)


def test_the_admin_cannot_change_or_delete_clauses(admin_client, active):
    clause = active.clauses.first()
    change = reverse("admin:pacts_clause_change", args=[clause.pk])
    assert admin_client.post(change, {"target": "100", "op": ">"}).status_code == 403
    delete = reverse("admin:pacts_clause_delete", args=[clause.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    fresh = Clause.objects.get(pk=clause.pk)
    assert (fresh.op, fresh.target) == (clause.op, clause.target)


@pytest.mark.parametrize("model", ["pactversion", "clause", "evaluation", "dispute", "apitoken"])
def test_the_admin_adds_nothing(admin_client, model):
    assert admin_client.get(reverse(f"admin:pacts_{model}_add")).status_code == 403


def test_the_admin_cannot_delete_a_version(admin_client, active):
    url = reverse("admin:pacts_pactversion_delete", args=[active.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert PactVersion.objects.filter(pk=active.pk).exists()


def test_the_admin_lists_render(admin_client, active):
    for model in ["agent", "pact", "pactversion", "clause", "evaluation", "dispute", "apitoken"]:
        assert admin_client.get(reverse(f"admin:pacts_{model}_changelist")).status_code == 200

"""Share links as a state change: made by incident managers, only a hash stored, revocable."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.diligence.helpers import recovered_incident
from tests.factories import AgentFactory
from trustdesk.diligence.actions import (
    DiligenceError,
    create_share_link,
    ip_hash,
    record_view,
    revoke_share_link,
)
from trustdesk.diligence.models import ShareLink, ShareLinkView

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(make_user):
    return make_user("incident_manager")


def test_the_token_is_32_random_bytes_and_only_its_hash_is_stored(manager):
    agent = AgentFactory()
    link, token = create_share_link(by=manager, label="Acme", agents=[agent])
    assert len(token) == 43  # base64url of 32 bytes, unpadded
    other_link, other_token = create_share_link(by=manager, label="Acme 2", agents=[agent])
    assert token != other_token
    stored = ShareLink.objects.values().get(pk=link.pk)
    assert stored["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert not any(token in str(value) for value in stored.values())


def test_a_link_lasts_14_days_by_default_and_at_most_90(manager):
    agent = AgentFactory()
    before = timezone.now()
    link, _ = create_share_link(by=manager, label="Default", agents=[agent])
    assert before + timedelta(days=14) <= link.expires_at <= timezone.now() + timedelta(days=14)
    create_share_link(
        by=manager, label="Max", agents=[agent], expires_at=timezone.now() + timedelta(days=89)
    )
    with pytest.raises(DiligenceError, match="at most 90 days"):
        create_share_link(
            by=manager, label="Too long", agents=[agent], expires_at=before + timedelta(days=91)
        )
    with pytest.raises(DiligenceError, match="in the future"):
        create_share_link(
            by=manager, label="Past", agents=[agent], expires_at=before - timedelta(minutes=1)
        )
    assert set(ShareLink.objects.values_list("label", flat=True)) == {"Default", "Max"}


@pytest.mark.parametrize("role", ["operator", "risk", "viewer"])
def test_only_an_incident_manager_may_create_a_link(make_user, role):
    with pytest.raises(DiligenceError, match="Only an incident manager"):
        create_share_link(by=make_user(role), label="x", agents=[AgentFactory()])
    assert not ShareLink.objects.exists()


def test_a_link_needs_a_label_and_an_agent_and_names_every_problem(manager):
    with pytest.raises(DiligenceError) as info:
        create_share_link(by=manager, label="  ", agents=[])
    assert len(info.value.problems) == 2
    assert not ShareLink.objects.exists()


def test_chosen_incidents_must_belong_to_the_chosen_agents(manager):
    incident = recovered_incident(agent=AgentFactory(key="support-bot"))
    with pytest.raises(DiligenceError, match=f"{incident.key}: not an incident"):
        create_share_link(
            by=manager, label="x", agents=[AgentFactory(key="other")], incidents=[incident]
        )
    link, _ = create_share_link(
        by=manager, label="ok", agents=[incident.agent], incidents=[incident]
    )
    assert list(link.incidents.all()) == [incident]


def test_status_follows_expiry_and_revocation(manager):
    agent = AgentFactory()
    link, _ = create_share_link(by=manager, label="x", agents=[agent])
    assert link.status() == "active"
    assert link.status(now=link.expires_at) == "expired"
    assert list(ShareLink.objects.active()) == [link]
    assert list(ShareLink.objects.expired(now=link.expires_at + timedelta(seconds=1))) == [link]
    revoke_share_link(link, by=manager)
    assert link.status() == "revoked"
    assert (link.revoked_by, ShareLink.objects.active().count()) == (manager, 0)
    assert list(ShareLink.objects.revoked()) == [link]


def test_revoking_twice_is_refused_with_the_first_revocation_time(manager):
    link, _ = create_share_link(by=manager, label="Acme", agents=[AgentFactory()])
    revoke_share_link(link, by=manager)
    first = link.revoked_at
    with pytest.raises(DiligenceError, match="already revoked"):
        revoke_share_link(link, by=manager)
    link.refresh_from_db()
    assert link.revoked_at == first


def test_only_an_incident_manager_may_revoke(manager, make_user):
    link, _ = create_share_link(by=manager, label="Acme", agents=[AgentFactory()])
    with pytest.raises(DiligenceError):
        revoke_share_link(link, by=make_user("risk"))
    link.refresh_from_db()
    assert link.revoked_at is None


def test_a_view_keeps_a_keyed_hash_of_the_ip_never_the_ip(manager, settings):
    link, _ = create_share_link(by=manager, label="Acme", agents=[AgentFactory()])
    view = record_view(link, ip="203.0.113.9", user_agent="Mozilla/5.0 " * 40, what="page")
    stored = ShareLinkView.objects.values().get(pk=view.pk)
    assert "203.0.113.9" not in str(stored)
    assert stored["ip_hash"] == ip_hash("203.0.113.9") != hashlib.sha256(b"203.0.113.9").hexdigest()
    assert len(stored["user_agent"]) == 300
    settings.SECRET_KEY = "another-key-" * 5
    assert ip_hash("203.0.113.9") != stored["ip_hash"]

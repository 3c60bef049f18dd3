"""The admin shows incidents, events and evidence, and changes none of them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.incidents.backend_helpers import incident_in
from trustdesk.incidents import lifecycle
from trustdesk.incidents.models import Event, Evidence

pytestmark = pytest.mark.django_db


@pytest.fixture
def with_evidence():
    """A contained incident with one evidence text: the incident, its last event, the evidence."""
    incident = incident_in("contained")
    lifecycle.add_evidence(
        incident, by=None, expected_version=2, kind="alert", description="a", text="alert"
    )
    return incident, Event.objects.filter(incident=incident).last(), Evidence.objects.get()


def test_admin_lists_and_shows_but_never_adds_changes_or_deletes(admin_client, with_evidence):
    incident, event, evidence = with_evidence
    for model, obj in (("incident", incident), ("event", event), ("evidence", evidence)):
        changelist = reverse(f"admin:incidents_{model}_changelist")
        assert admin_client.get(changelist).status_code == 200
        change = reverse(f"admin:incidents_{model}_change", args=[obj.pk])
        assert admin_client.get(change).status_code == 200  # a read-only view
        assert admin_client.post(change, {"description": "edited"}).status_code == 403
        assert admin_client.get(reverse(f"admin:incidents_{model}_add")).status_code == 403
        delete = reverse(f"admin:incidents_{model}_delete", args=[obj.pk])
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Event.objects.filter(incident=incident).count() == 3 and Evidence.objects.count() == 1


def test_the_event_and_evidence_lists_show_the_start_of_each_hash(admin_client, with_evidence):
    _, event, evidence = with_evidence
    for model, digest, header in (
        ("event", event.hash, "Hash"),
        ("evidence", evidence.sha256, "SHA-256"),
    ):
        page = admin_client.get(reverse(f"admin:incidents_{model}_changelist")).content.decode()
        assert digest[:12] in page and digest not in page
        assert header in page

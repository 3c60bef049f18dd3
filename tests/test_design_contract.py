"""Checks written from DESIGN.md alone (an audit of the contract), end to end through the
management commands of section 7."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from trustdesk.incidents.models import Incident

pytestmark = pytest.mark.django_db

EVERY_STATE = {
    "detected",
    "contained",
    "evidence_preserved",
    "classified",
    "repaired",
    "in_review",
    "recovered",
    "closed_restricted",
}


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_seed_demo_leaves_an_incident_in_every_state(media):
    """Section 7: seed_demo has incidents in every state, a recurrence, an override."""
    call_command("seed_demo", stdout=io.StringIO())
    states = set(Incident.objects.values_list("state", flat=True))
    assert states == EVERY_STATE
    assert Incident.objects.filter(recurrence_of__isnull=False).exists()

"""Helpers for the incidents backend tests: walk an incident through the lifecycle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tests.builders import walk
from tests.factories import make_incident, make_pact_version
from trustdesk.incidents.models import Incident

ORDER = ["detected", "contained", "evidence_preserved", "classified", "repaired"]


@pytest.fixture
def media(settings, tmp_path):
    """Evidence files go to a private folder per test."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def upload(content: bytes, name: str = "transcript.txt", content_type: str = "text/plain"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def fresh(incident: Incident) -> Incident:
    return Incident.objects.select_related("agent", "pact_version").get(pk=incident.pk)


def advance(incident: Incident, to: str, *, by=None, at=None) -> Incident:
    """Walk an incident forward to state `to` through the lifecycle (tests/builders.py)."""
    return walk(incident, to, by=by, at=at)


def incident_in(state: str, *, by=None, version=None, detected_at=None, **kw) -> Incident:
    if detected_at is None:
        detected_at = timezone.now() - timedelta(days=1)
    incident = make_incident(
        version=version or make_pact_version(**kw), by=by, detected_at=detected_at
    )
    return advance(incident, state, by=by, at=detected_at)

"""Helpers for the incidents backend tests: walk an incident through the lifecycle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tests.factories import make_incident, make_pact_version
from trustdesk.incidents import lifecycle
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
    """Walk an incident forward to state `to` through the lifecycle functions (text evidence)."""
    inc = fresh(incident)
    stamp = at
    while ORDER.index(inc.state) < ORDER.index(to):
        if stamp is not None:
            stamp = stamp + timedelta(minutes=5)
        state = inc.state
        if state == "detected":
            lifecycle.contain_incident(
                inc,
                by=by,
                expected_version=inc.version,
                action="suspend",
                scope_after="suspended",
                at=stamp,
            )
        elif state == "contained":
            for kind in inc.pact_version.evidence_required if inc.pact_version else []:
                inc = fresh(inc)
                lifecycle.add_evidence(
                    inc,
                    by=by,
                    expected_version=inc.version,
                    kind=kind,
                    description=f"{kind} of {inc.key}",
                    text=f"{kind} content for {inc.key}",
                    at=stamp,
                )
            inc = fresh(inc)
            lifecycle.mark_evidence_preserved(inc, by=by, expected_version=inc.version, at=stamp)
        elif state == "evidence_preserved":
            lifecycle.classify_incident(
                inc,
                by=by,
                expected_version=inc.version,
                assumption="authority",
                statement="Refunds above the limit went out without approval.",
                clauses=list(inc.pact_version.clauses.all()),
                confidence="known",
                at=stamp,
            )
        elif state == "classified":
            lifecycle.record_repair(
                inc,
                by=by,
                expected_version=inc.version,
                summary="Approval check enforced.",
                reference="PR-101",
                at=stamp,
            )
        inc = fresh(inc)
    return inc


def incident_in(state: str, *, by=None, version=None, detected_at=None, **kw) -> Incident:
    if detected_at is None:
        detected_at = timezone.now() - timedelta(days=1)
    incident = make_incident(
        version=version or make_pact_version(**kw), by=by, detected_at=detected_at
    )
    return advance(incident, state, by=by, at=detected_at)

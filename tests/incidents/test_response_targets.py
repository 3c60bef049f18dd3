"""Response targets: defaults per severity, a pact's `response_targets` (ISO 8601 durations,
in the JSON Schema) and the containment clock; documents without them keep their exact hash."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import make_incident, make_pact_version
from tests.pacts.documents import valid_document
from trustdesk.incidents.clocks import DEFAULT_TARGETS, containment_clock, format_span, targets_of
from trustdesk.pacts.document import canonical_document, document_sha256, validate_document

pytestmark = pytest.mark.django_db


def test_defaults_and_a_pacts_own_targets():
    assert {
        "sev1": timedelta(minutes=15),
        "sev2": timedelta(hours=1),
        "sev3": timedelta(hours=4),
        "sev4": timedelta(hours=24),
    } == DEFAULT_TARGETS
    doc = canonical_document(valid_document(response_targets={"sev1": "PT10M", "sev4": "P2D"}))
    assert targets_of(doc) == {
        **DEFAULT_TARGETS,
        "sev1": timedelta(minutes=10),
        "sev4": timedelta(days=2),
    }
    assert doc["spec"]["response_targets"] == {"sev1": "PT10M", "sev4": "P2D"}


def test_bad_targets_are_named_with_their_path():
    problems = validate_document(
        valid_document(response_targets={"sev1": "15 minutes", "sev2": "PT0M", "sev9": "PT1H"})
    )
    assert any(
        p.startswith("spec.response_targets.sev1: must be an ISO 8601 duration") for p in problems
    )
    assert "spec.response_targets.sev2: 'PT0M' is not a positive duration" in problems
    assert any(p.startswith("spec.response_targets") and "sev9" in p for p in problems)


def test_documents_without_targets_keep_their_bytes_and_hash():
    plain = canonical_document(valid_document())
    assert "response_targets" not in plain["spec"]
    assert document_sha256(canonical_document(plain)) == document_sha256(plain)


def test_the_clock_runs_until_containment_and_says_when_it_overran():
    version = make_pact_version()
    version.document["spec"]["response_targets"] = {"sev2": "PT30M"}
    incident = make_incident(version=version, detected_at=timezone.now() - timedelta(minutes=45))
    incident.severity = "sev2"
    clock = containment_clock(incident)
    assert clock.running and clock.target == timedelta(minutes=30) and clock.overrun
    incident.contained_at = incident.detected_at + timedelta(minutes=20)
    stopped = containment_clock(incident)
    assert not stopped.running and not stopped.overrun
    assert stopped.elapsed == timedelta(minutes=20)
    assert format_span(timedelta(days=2, hours=3, minutes=5)) == "2 d 3 h"
    assert format_span(timedelta(hours=4, minutes=10)) == "4 h 10 min"

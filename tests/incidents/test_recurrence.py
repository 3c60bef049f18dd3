"""Recurrence: an incident of the same agent and class reopened within 90 days before detection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.builders import classify
from tests.factories import make_pact_version
from tests.incidents.backend_helpers import advance, incident_in
from trustdesk.incidents import journal, transitions
from trustdesk.incidents.models import Incident

pytestmark = pytest.mark.django_db


def reopen(incident: Incident, at) -> Incident:
    """What the reviews app does when scope is restored: a `reopened` event."""
    with journal.locked_incident(incident) as inc:
        event = journal.append_event(
            inc, type="reopened", by=None, data={"scope_after": "full"}, at=at
        )
        inc.save(update_fields=transitions.advance(inc, event))  # the one transition table
    return inc


@pytest.fixture
def setup():
    version = make_pact_version()
    detected = timezone.now() - timedelta(days=1)
    # walked to repaired by the helper, classified "authority"
    earlier = incident_in("repaired", version=version, detected_at=detected - timedelta(days=120))
    later = incident_in("evidence_preserved", version=version, detected_at=detected)
    return version, earlier, later


@pytest.mark.parametrize(
    ("offset", "linked"),
    [
        (timedelta(days=90), True),  # exactly 90 days before detection: inside the window
        (timedelta(days=90, seconds=1), False),  # one second earlier: outside
        (timedelta(seconds=1), True),
        (timedelta(0), False),  # reopened at the detection itself is not "before"
    ],
)
def test_the_recurrence_window_is_the_90_days_before_detection(setup, offset, linked):
    _, earlier, later = setup
    reopen(earlier, later.detected_at - offset)
    later = classify(later)
    assert (later.recurrence_of_id == earlier.pk) is linked


def test_another_class_or_another_agent_is_not_a_recurrence(setup):
    version, earlier, later = setup
    reopen(earlier, later.detected_at - timedelta(days=10))
    other_agent = incident_in("evidence_preserved", detected_at=later.detected_at)
    assert classify(other_agent).recurrence_of is None
    assert classify(later, assumption="capability").recurrence_of is None


def test_an_incident_that_was_never_reopened_is_not_a_recurrence(setup):
    _, earlier, later = setup
    assert classify(later).recurrence_of is None


def test_the_latest_reopened_incident_is_linked(setup):
    version, earlier, later = setup
    middle = incident_in(
        "repaired", version=version, detected_at=later.detected_at - timedelta(days=60)
    )
    reopen(earlier, later.detected_at - timedelta(days=50))
    reopen(middle, later.detected_at - timedelta(days=20))
    assert classify(later).recurrence_of_id == middle.pk


def test_advance_helper_classifies_as_authority():
    incident = advance(incident_in("detected"), "classified")
    assert incident.assumption == "authority"

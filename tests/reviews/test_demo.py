"""The reviews demo tells the whole recovery story and a second run changes nothing."""

from __future__ import annotations

import io

import pytest

from trustdesk.incidents.models import Event, Incident
from trustdesk.pacts.models import Agent
from trustdesk.reviews.models import (
    Attestation,
    MeetingNote,
    RecoveryDecision,
    ReentryCondition,
    ReviewMeeting,
)

pytestmark = pytest.mark.django_db


def seed(*apps: str) -> str:
    import importlib

    out = io.StringIO()
    for app in apps:
        importlib.import_module(f"trustdesk.{app}.demo").seed(out)
    return out.getvalue()


def snapshot() -> tuple:
    return (
        RecoveryDecision.objects.count(),
        Attestation.objects.count(),
        ReviewMeeting.objects.count(),
        MeetingNote.objects.count(),
        ReentryCondition.objects.count(),
        Event.objects.count(),
        Incident.objects.count(),
    )


def assert_the_story() -> None:
    decisions = {d.decision: d for d in RecoveryDecision.objects.select_related("incident")}
    reopening = decisions["reopen_partial"]
    assert not reopening.override and reopening.attestations.count() >= 2
    assert reopening.meeting is not None and not reopening.meeting.is_open
    override = decisions["reopen_full"]
    assert override.override and override.justification
    assert any(c["status"] != "met" for c in override.conditions_snapshot)
    kept = decisions["keep_restricted"]
    assert kept.incident.state == "closed_restricted"
    recurrence = Incident.objects.filter(recurrence_of=reopening.incident).first()
    assert recurrence is not None
    assert recurrence.agent_id == reopening.incident.agent_id
    assert recurrence.assumption == reopening.incident.assumption
    assert Incident.objects.filter(state="in_review").exists()
    upcoming = ReviewMeeting.objects.filter(status="scheduled").get()
    assert upcoming.items.count() >= 1 and upcoming.notes.exists()
    assert all(i.state == "in_review" for i in upcoming.agenda.all())
    assert Agent.objects.get(key="tutor").scope == "full"


def test_the_demo_tells_the_whole_story_and_is_idempotent(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    output = seed("core", "pacts", "incidents", "reviews")
    assert "reopened fully as an override" in output
    assert_the_story()
    before = snapshot()
    again = seed("core", "pacts", "incidents", "reviews")
    assert "reviews: demo reviews already present; nothing to do." in again
    assert snapshot() == before


def test_without_the_incidents_seed_the_demo_walks_its_own_incidents(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    seed("core", "pacts", "reviews")
    assert_the_story()


def test_without_agents_the_demo_says_so_and_stores_nothing():
    output = seed("core", "reviews")
    assert "seed the pacts first" in output
    assert snapshot()[:4] == (0, 0, 0, 0)

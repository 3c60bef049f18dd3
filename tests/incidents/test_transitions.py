"""The one transition table: the steps, the reviews actions and the importer all set an
incident's columns through `transitions.advance`, and the offline verifier agrees with it."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from tests.incidents.backend_helpers import incident_in
from tests.state_machine import CHECKED, columns_off_record
from trustdesk.diligence import verify
from trustdesk.incidents.models import Incident, State
from trustdesk.incidents.transitions import MILESTONES, STATE_AFTER, advance, fold

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


def test_the_offline_verifier_derives_state_and_milestones_from_the_same_table():
    # verify.py runs without Django, so it keeps its own copy; the two must say the same.
    assert {str(k): str(v) for k, v in STATE_AFTER.items()} == verify.STATE_AFTER
    ours = {column: str(event_type) for event_type, column in MILESTONES.items()}
    assert ours == {k: v for k, v in verify.MILESTONES.items() if k != "detected_at"}


def test_every_state_is_reached_by_some_event_and_closed_states_end_the_table():
    assert set(STATE_AFTER.values()) == set(State.values)


def test_the_demo_data_columns_are_the_fold_of_their_events():
    call_command("seed_demo", stdout=io.StringIO())
    states = set(Incident.objects.values_list("state", flat=True))
    assert {"detected", "in_review", "recovered", "closed_restricted"} <= states
    assert columns_off_record() == []


@pytest.mark.columns_off_record
def test_a_column_written_behind_the_lifecycles_back_is_caught():
    incident = incident_in("classified")
    assert columns_off_record() == []
    Incident.objects.filter(pk=incident.pk).update(state=State.REPAIRED)
    [problem] = columns_off_record()
    assert problem == f"{incident.key}.state: stored 'repaired', events say 'classified'"


def test_a_milestone_is_set_once_and_the_state_follows_the_last_event():
    incident = incident_in("repaired")
    events = list(incident.events.order_by("seq"))
    contained = next(e for e in events if e.type == "contained")
    copy = Incident(pk=incident.pk)
    fields = fold(copy, events)
    assert copy.state == "repaired" and copy.contained_at == contained.at
    assert {"state", "detected_at", "contained_at", "repaired_at", "scope_after"} <= set(fields)
    assert {getattr(copy, name) == getattr(incident, name) for name in CHECKED} == {True}
    later = contained.at.replace(year=contained.at.year + 1)
    assert advance(copy, {"type": "contained", "at": later, "data": {"scope_after": "full"}}) == [
        "state",
        "scope_after",
    ]
    assert copy.contained_at == contained.at and copy.state == "contained"
    assert advance(copy, {"type": "note", "at": later, "data": {"text": "x"}}) == []

"""Recurrence stored with each incident's facts: rewritten for the whole agent whenever a row of
the agent is written, and worked out in the query for an agent with a stale row, so that an
earlier incident's reclassification or closing as not an incident changes a later incident's
figure at once and in the stored row."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.metrics.helpers import (
    agent_with_pact,
    classified,
    earlier_then_later,
    new_incident,
    reopened,
    utc,
)
from trustdesk.incidents.journal import append_event, locked_incident
from trustdesk.incidents.models import Event, Incident
from trustdesk.incidents.transitions import advance
from trustdesk.metrics.compute import RECURRENCE_LOOKBACK, Window, compute_windows, refresh_facts
from trustdesk.metrics.models import IncidentFacts

pytestmark = pytest.mark.django_db

ALL = Window("all")


def append(incident: Incident, *events) -> None:
    """Append (type, at, data, by) events and set the incident's columns from them, as the
    lifecycle does (the suite checks the columns against the events after each test)."""
    with locked_incident(incident) as locked:
        for type_, at, data, by in events:
            event = append_event(locked, type=type_, by=None, by_name=by, data=data, at=at)
            fields = advance(locked, event)
            if fields:
                locked.save(update_fields=fields)


def reclassified(assumption, at, by="ana"):
    return ("reclassified", at, {"assumption": assumption, "statement": "What broke."}, by)


def closed_not_incident(at, by="ana"):
    data = {"reason": "false_positive", "duplicate_of": None, "explanation": "A test alert."}
    return ("closed_not_incident", at, data, by)


def stored_recurrent() -> dict[int, int]:
    return dict(IncidentFacts.objects.values_list("incident_id", "recurrent"))


def recurrence(agent_id: int | None = None) -> dict:
    return compute_windows([ALL], agent_id=agent_id)[(agent_id, "all")]["recurrence_rate"]


@pytest.fixture
def earlier_and_later():
    """`earlier` (authority, reopened on 10 January) and `later` (capability, detected on
    1 February) of one agent: `later` does not recur, yet."""
    agent, earlier, later = earlier_then_later("stored-recurrence", "capability")
    assert stored_recurrent() == {earlier.pk: 0, later.pk: 0}
    return agent, earlier, later


def test_reclassifying_an_earlier_incident_makes_a_later_one_recur(earlier_and_later):
    agent, earlier, later = earlier_and_later
    # After the later incident's detection, the earlier one is found to be a capability case.
    append(earlier, reclassified("capability", utc(2026, 2, 10)))
    # Its row is stale now: the figure is worked out from the agent's rows as they are.
    assert recurrence()["numerator"] == 1
    assert recurrence(agent.pk)["numerator"] == 1
    assert stored_recurrent()[later.pk] == 0
    # Writing the earlier incident's row rewrites the later one's recurrence with it.
    assert refresh_facts(agent_id=agent.pk) == 1
    assert stored_recurrent() == {earlier.pk: 0, later.pk: 1}
    assert recurrence() == {"value": 0.5, "numerator": 1, "denominator": 2}


def test_reclassifying_the_later_incident_itself_moves_its_stored_recurrence(earlier_and_later):
    agent, earlier, later = earlier_and_later
    append(later, reclassified("authority", utc(2026, 2, 2)))
    refresh_facts(agent_id=agent.pk)
    assert stored_recurrent() == {earlier.pk: 0, later.pk: 1}
    append(later, reclassified("drift", utc(2026, 2, 3)))
    refresh_facts(agent_id=agent.pk)
    assert stored_recurrent() == {earlier.pk: 0, later.pk: 0}


def test_closing_the_earlier_incident_as_not_an_incident_ends_the_later_ones_recurrence(
    earlier_and_later,
):
    agent, earlier, later = earlier_and_later
    append(earlier, reclassified("capability", utc(2026, 2, 10)))
    refresh_facts()
    assert recurrence()["numerator"] == 1
    append(earlier, closed_not_incident(utc(2026, 2, 11)))
    # Stale: out of the population at once, and the later incident no longer recurs.
    assert recurrence() == {"value": 0.0, "numerator": 0, "denominator": 1}
    refresh_facts(agent_id=agent.pk)
    assert stored_recurrent()[later.pk] == 0
    assert recurrence() == {"value": 0.0, "numerator": 0, "denominator": 1}


def test_a_later_incident_closed_as_not_an_incident_is_not_stored_as_recurring(
    earlier_and_later,
):
    agent, earlier, later = earlier_and_later
    append(later, reclassified("authority", utc(2026, 2, 2)))
    refresh_facts()
    assert stored_recurrent()[later.pk] == 1
    append(later, closed_not_incident(utc(2026, 2, 3)))
    refresh_facts(agent_id=agent.pk)
    assert stored_recurrent()[later.pk] == 0
    assert recurrence()["denominator"] == 1


def test_an_incident_imported_with_an_earlier_reopening_makes_stored_ones_recur(
    earlier_and_later,
):
    agent, earlier, later = earlier_and_later
    version = earlier.pact_version
    older = new_incident(version, utc(2025, 12, 1))
    append(older, classified("capability", utc(2025, 12, 1, 1)), reopened(utc(2026, 1, 20)))
    assert recurrence()["numerator"] == 1  # `later`, through the new incident's reopening
    refresh_facts(agent_id=agent.pk)
    assert stored_recurrent() == {older.pk: 0, earlier.pk: 0, later.pk: 1}


def expected_recurrence() -> dict[int, int]:
    """Recurrence of every incident straight from the definition (docs/design.md section 6),
    one pair at a time, in Python."""
    facts = {}
    for incident in Incident.objects.all():
        events = list(Event.objects.filter(incident=incident).order_by("seq"))
        classes = [e.data["assumption"] for e in events if e.type in ("classified", "reclassified")]
        reopenings = [e.at for e in events if e.type == "reopened"]
        facts[incident.pk] = {
            "agent": incident.agent_id,
            "detected": incident.detected_at,
            "class": classes[-1] if classes else None,
            "reopened": reopenings[0] if reopenings else None,
            "counted": not any(e.type == "closed_not_incident" for e in events),
        }
    out = {}
    for pk, x in facts.items():
        out[pk] = int(
            x["counted"]
            and x["class"] is not None
            and any(
                other != pk
                and y["counted"]
                and y["agent"] == x["agent"]
                and y["class"] == x["class"]
                and y["reopened"] is not None
                and x["detected"] - RECURRENCE_LOOKBACK <= y["reopened"] < x["detected"]
                for other, y in facts.items()
            )
        )
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stored_recurrence_is_the_definitions_after_random_histories(seed):
    rng = random.Random(seed)
    versions = [agent_with_pact(f"walk-{seed}-{n}")[1] for n in range(2)]
    incidents, last_at = [], {}
    for _ in range(14):
        detected = utc(2025, 1, 1) + timedelta(days=rng.randint(0, 240), hours=rng.randint(0, 23))
        incident = new_incident(rng.choice(versions), detected)
        incidents.append(incident)
        last_at[incident.pk] = detected
    for step in range(45):
        incident = rng.choice(incidents)
        at = last_at[incident.pk] + timedelta(hours=rng.randint(1, 24 * 20))
        last_at[incident.pk] = at
        assumption = rng.choice(["authority", "capability", "drift"])
        events = Event.objects.filter(incident=incident)
        if events.filter(type="closed_not_incident").exists():
            continue
        if not events.filter(type="classified").exists():
            append(incident, classified(assumption, at))
        else:
            move = rng.random()
            if move < 0.45:
                append(incident, reclassified(assumption, at))
            elif move < 0.9:
                append(incident, reopened(at))
            else:
                append(incident, closed_not_incident(at))
        # Write some rows now and then: one agent's, or every one.
        if step % 4 == 0:
            refresh_facts(agent_id=incident.agent_id)
        elif step % 9 == 0:
            refresh_facts()
        assert recurrence()["numerator"] == sum(expected_recurrence().values())
    refresh_facts()
    expected = expected_recurrence()
    assert stored_recurrent() == expected
    assert recurrence()["numerator"] == sum(expected.values())
    # The same figures from an empty table (every row worked out from the events).
    warm = compute_windows([ALL], per_agent=[v.pact.agent_id for v in versions])
    IncidentFacts.objects.all().delete()
    assert compute_windows([ALL], per_agent=[v.pact.agent_id for v in versions]) == warm

"""Every metric of docs/design.md section 6 against hand-computed fixtures.

The suite runs on PostgreSQL and on SQLite with the same pinned numbers, which is the proof that
both backends compute the same figures for the same data.
"""

from __future__ import annotations

import pytest

from tests.metrics.helpers import (
    MARCH,
    agent_with_pact,
    attested,
    classified,
    contained,
    decision,
    evidence,
    new_incident,
    plus,
    record,
    reopened,
    utc,
)
from trustdesk.metrics.compute import Window, compute_metrics, compute_windows

pytestmark = pytest.mark.django_db


def window_metrics(**kwargs):
    return compute_metrics(start=MARCH[0], end=MARCH[1], **kwargs)


def test_time_to_containment_uses_the_first_contained_event_and_interpolates(march):
    m = window_metrics()["time_to_containment"]
    # durations 420, 600, 1800, 3600; p50 at rank 1.5 and p90 at rank 2.7
    assert m == {"p50": 1200.0, "p90": 3060.0, "count": 4, "uncontained": 1}


def test_time_to_classification_and_recovery(march):
    data = window_metrics()
    # classification: 1200, 3600, 7200; recovery: 7200, 10800, 18000
    assert data["time_to_classification"] == {"p50": 3600.0, "p90": 6480.0, "count": 3}
    assert data["time_to_recovery"] == {"p50": 10800.0, "p90": 16560.0, "count": 3}


def test_evidence_completeness_counts_only_evidence_at_or_before_the_reopening(march):
    # I1 3/4 (impact assessment came after), I2 2/4 (transcript exactly at it), I5 none required
    assert window_metrics()["evidence_completeness_at_reopen"] == {"value": 0.75, "count": 3}


def test_reopen_without_change_ignores_a_change_after_the_reopening(march):
    # I1 changed before, I2 at the same instant, I5 one microsecond after
    assert window_metrics()["reopen_without_change_rate"] == {
        "value": pytest.approx(1 / 3),
        "numerator": 1,
        "denominator": 3,
    }


def test_override_rate_counts_reopening_decisions_only(march):
    # reopen_full (no override), reopen_partial (override), reopen_full (override); keep_restricted
    # is not a reopening decision
    m = window_metrics()["override_rate"]
    assert (m["numerator"], m["denominator"]) == (2, 3)
    assert m["value"] == pytest.approx(2 / 3)


def test_an_attestation_by_the_decider_or_that_cannot_explain_does_not_count(march):
    assert window_metrics()["explainable_decision_rate"] == {
        "value": 0.75,
        "numerator": 3,
        "denominator": 4,
    }


def test_recurrence_counts_an_earlier_reopened_incident_of_the_same_class(march):
    # I1 and I2 (authority) follow February's authority incident reopened on 21 Feb; I5 is B's
    m = window_metrics()["recurrence_rate"]
    assert (m["numerator"], m["denominator"]) == (2, 3)


def test_an_agent_filter_keeps_only_that_agents_incidents(march):
    data = window_metrics(agent=march["b"])
    assert data["incident_count"] == 1
    assert data["time_to_containment"] == {"p50": 600.0, "p90": 600.0, "count": 1, "uncontained": 0}
    assert data["evidence_completeness_at_reopen"] == {"value": 1.0, "count": 1}
    assert data["reopen_without_change_rate"] == {"value": 1.0, "numerator": 1, "denominator": 1}
    assert data["override_rate"] == {"value": 1.0, "numerator": 1, "denominator": 1}
    assert data["explainable_decision_rate"] == {"value": 1.0, "numerator": 1, "denominator": 1}
    assert data["recurrence_rate"] == {"value": 0.0, "numerator": 0, "denominator": 1}
    assert data["agent"] == "agent-b"


def test_an_empty_window_gives_null_not_zero(march):
    data = compute_metrics(start=utc(2025, 1, 1), end=utc(2025, 2, 1))
    assert data["incident_count"] == 0
    for name in ("time_to_containment", "time_to_classification", "time_to_recovery"):
        assert data[name]["p50"] is None and data[name]["p90"] is None
        assert data[name]["count"] == 0
    assert data["evidence_completeness_at_reopen"] == {"value": None, "count": 0}
    for name in (
        "reopen_without_change_rate",
        "override_rate",
        "explainable_decision_rate",
        "recurrence_rate",
    ):
        assert data[name] == {"value": None, "numerator": 0, "denominator": 0}


def test_windows_are_by_detection_time_start_inclusive_end_exclusive():
    _, v = agent_with_pact("edges")
    at_start = new_incident(v, utc(2026, 5, 1))
    record(at_start, contained(plus(utc(2026, 5, 1), seconds=30)))
    at_end = new_incident(v, utc(2026, 6, 1))
    record(at_end, contained(plus(utc(2026, 6, 1), seconds=90)))
    # detected before the window, contained inside it: belongs to April, not May
    before = new_incident(v, plus(utc(2026, 5, 1), microseconds=-1))
    record(before, contained(plus(utc(2026, 5, 1), minutes=5)))

    may = compute_metrics(start=utc(2026, 5, 1), end=utc(2026, 6, 1))
    assert may["incident_count"] == 1
    assert may["time_to_containment"] == {"p50": 30.0, "p90": 30.0, "count": 1, "uncontained": 0}
    june = compute_metrics(start=utc(2026, 6, 1), end=utc(2026, 7, 1))
    assert june["time_to_containment"]["p50"] == 90.0
    april = compute_metrics(start=utc(2026, 4, 1), end=utc(2026, 5, 1))
    assert april["time_to_containment"]["p50"] == 300.000001


def _reopened_incident(version, detected, assumption, reopened_at):
    incident = new_incident(version, detected)
    record(incident, classified(assumption, plus(detected, hours=1)), reopened(reopened_at))
    return incident


@pytest.mark.parametrize(
    ("gap", "recurs"),
    [
        ({"days": 90}, True),  # exactly 90 days before the detection: inside
        ({"days": 90, "microseconds": 1}, False),  # one microsecond more: outside
        ({"microseconds": 1}, True),  # reopened just before the detection
        ({}, False),  # reopened at the very instant of the detection: not before it
    ],
)
def test_the_90_day_recurrence_boundary(gap, recurs):
    agent, v = agent_with_pact("recur")
    reopened_at = utc(2026, 6, 1, 12)
    _reopened_incident(v, utc(2026, 5, 30), "tool_use", reopened_at)
    detected = plus(reopened_at, **gap)
    later = new_incident(v, detected)
    record(later, classified("tool_use", plus(detected, hours=1)))

    m = compute_metrics(start=detected, end=plus(detected, seconds=1))["recurrence_rate"]
    assert (m["numerator"], m["denominator"]) == (int(recurs), 1)


def test_recurrence_needs_the_same_agent_and_class_and_uses_the_latest_classification():
    agent, v = agent_with_pact("recur-a")
    _, other_v = agent_with_pact("recur-b")
    # Reclassified from authority to drift: drift is its class.
    first = new_incident(v, utc(2026, 7, 1))
    record(
        first,
        classified("authority", utc(2026, 7, 1, 1)),
        classified("drift", utc(2026, 7, 1, 2)),
        reopened(utc(2026, 7, 2)),
    )
    _reopened_incident(other_v, utc(2026, 7, 1), "authority", utc(2026, 7, 2))  # other agent
    never_reopened = new_incident(v, utc(2026, 7, 3))
    record(never_reopened, classified("capability", utc(2026, 7, 3, 1)))

    drift = new_incident(v, utc(2026, 8, 1))
    record(drift, classified("drift", utc(2026, 8, 1, 1)))
    authority = new_incident(v, utc(2026, 8, 2))
    record(authority, classified("authority", utc(2026, 8, 2, 1)))
    capability = new_incident(v, utc(2026, 8, 3))
    record(capability, classified("capability", utc(2026, 8, 3, 1)))
    unclassified = new_incident(v, utc(2026, 8, 4))

    m = compute_metrics(start=utc(2026, 8, 1), end=utc(2026, 9, 1), agent=agent)
    assert m["recurrence_rate"] == {"value": pytest.approx(1 / 3), "numerator": 1, "denominator": 3}
    assert unclassified.pk  # counted in the window, not in the denominator
    assert m["incident_count"] == 4


def test_an_incident_with_no_pact_version_counts_complete():
    from trustdesk.incidents.journal import open_incident

    agent, _ = agent_with_pact("no-pact")
    incident = open_incident(
        agent=agent, by=None, title="t", severity="sev3", detected_at=utc(2026, 9, 1)
    )
    record(incident, reopened(utc(2026, 9, 2)))
    data = compute_metrics(start=utc(2026, 9, 1), end=utc(2026, 10, 1))
    assert data["evidence_completeness_at_reopen"] == {"value": 1.0, "count": 1}
    assert data["time_to_recovery"]["p50"] == 86400.0


def test_many_windows_and_every_agent_in_one_call_match_single_computations(march):
    windows = [
        Window("march", *MARCH),
        Window("feb", utc(2026, 2, 1), utc(2026, 3, 1)),
        Window("all"),
    ]
    ids = [march["a"].pk, march["b"].pk]
    results = compute_windows(windows, per_agent=ids)
    for w in windows:
        for agent in (None, march["a"], march["b"]):
            single = compute_metrics(start=w.start, end=w.end, agent=agent)
            got = results[(agent.pk if agent else None, w.key)]
            for key, value in got.items():
                assert single[key] == value, (w.key, agent, key)
    assert results[(None, "all")]["incident_count"] == 6
    assert results[(march["a"].pk, "feb")]["incident_count"] == 1
    assert results[(march["b"].pk, "feb")]["incident_count"] == 0


def test_only_the_first_reopening_counts_for_recovery_and_completeness():
    _, v = agent_with_pact("twice", evidence_required=["transcript", "tool_calls"])
    d = utc(2026, 10, 1)
    incident = new_incident(v, d)
    record(
        incident,
        evidence("transcript", plus(d, minutes=5)),
        reopened(plus(d, hours=1)),
        evidence("tool_calls", plus(d, hours=2)),  # before the second reopening only
        reopened(plus(d, hours=3)),
    )
    data = compute_metrics(start=d, end=plus(d, days=1))
    assert data["time_to_recovery"] == {"p50": 3600.0, "p90": 3600.0, "count": 1}
    assert data["evidence_completeness_at_reopen"] == {"value": 0.5, "count": 1}


def test_an_attestation_counts_only_for_the_decision_it_names():
    _, v = agent_with_pact("two-decisions")
    d = utc(2026, 10, 5)
    incident = new_incident(v, d)
    first, second = record(
        incident,
        decision(plus(d, hours=1), "keep_restricted", by="rita"),
        decision(plus(d, hours=2), "reopen_full", by="rita"),
    )
    record(
        incident,
        attested(plus(d, hours=3), second.seq, can_explain=True, by="rosa"),
        attested(plus(d, hours=3), 99, can_explain=True, by="rosa"),  # no such decision
        attested(plus(d, hours=4), str(first.seq), can_explain=True, by="rosa"),  # not a number
    )
    m = compute_metrics(start=d, end=plus(d, days=1))["explainable_decision_rate"]
    assert (m["numerator"], m["denominator"]) == (1, 2)


def test_an_override_must_be_json_true_on_a_reopening_decision():
    _, v = agent_with_pact("overrides")
    d = utc(2026, 10, 8)
    incident = new_incident(v, d)
    record(
        incident,
        decision(plus(d, hours=1), "reopen_partial", override=True),
        decision(plus(d, hours=2), "retire", override=True),  # not a reopening
        decision(plus(d, hours=3), "reopen_full", override=False),
    )
    m = compute_metrics(start=d, end=plus(d, days=1))["override_rate"]
    assert (m["numerator"], m["denominator"], m["value"]) == (1, 2, 0.5)

"""Fixtures shared by the metrics tests."""

from __future__ import annotations

import pytest

from tests.metrics.helpers import (
    agent_with_pact,
    attested,
    classified,
    contained,
    decision,
    evidence,
    model_changed,
    new_incident,
    plus,
    record,
    reopened,
    utc,
)


@pytest.fixture
def march():
    """Five incidents detected in March 2026 (four of agent A, one of B) and one in February.

    Times are offsets from each detection; the expected figures are worked out by hand in
    each test.
    """
    a, va = agent_with_pact("agent-a")  # requires transcript, tool_calls, evaluation_result, impact
    b, vb = agent_with_pact("agent-b", evidence_required=[])

    # February (outside March): authority, reopened on 21 Feb at 12:00.
    d6 = utc(2026, 2, 20, 9)
    i6 = new_incident(va, d6)
    record(
        i6,
        contained(plus(d6, minutes=5)),
        classified("authority", plus(d6, hours=1)),
        reopened(utc(2026, 2, 21, 12)),
    )

    # I1: contained at +7 min (a second containment at +20 min must not count), classified at
    # +1 h, three of four kinds before the reopening at +2 h, the fourth after it.
    d1 = utc(2026, 3, 2, 9)
    i1 = new_incident(va, d1)
    ev1 = record(
        i1,
        contained(plus(d1, minutes=7)),
        evidence("transcript", plus(d1, minutes=10)),
        evidence("tool_calls", plus(d1, minutes=15)),
        contained(plus(d1, minutes=20)),
        classified("authority", plus(d1, hours=1)),
        evidence("evaluation_result", plus(d1, minutes=90)),
        model_changed(plus(d1, minutes=100)),
        decision(plus(d1, minutes=110), "reopen_full", by="rita"),
    )
    record(
        i1,
        attested(plus(d1, minutes=115), ev1[-1].seq, can_explain=True, by="rosa"),
        reopened(plus(d1, hours=2)),
        evidence("impact_assessment", plus(d1, minutes=130)),
    )

    # I2: evidence and the operating-model change exactly at the reopening (+5 h) count; the
    # decider's own attestation and a can't-explain attestation do not.
    d2 = utc(2026, 3, 5, 10)
    i2 = new_incident(va, d2)
    ev2 = record(
        i2,
        contained(plus(d2, minutes=30)),
        evidence("tool_calls", plus(d2, minutes=40)),
        classified("authority", plus(d2, hours=2)),
        decision(plus(d2, hours=4), "reopen_partial", override=True, by="ivan"),
    )
    record(
        i2,
        attested(plus(d2, hours=4, minutes=5), ev2[-1].seq, can_explain=True, by="ivan"),
        attested(plus(d2, hours=4, minutes=6), ev2[-1].seq, can_explain=False, by="rosa"),
        evidence("transcript", plus(d2, hours=5)),
        model_changed(plus(d2, hours=5)),
        reopened(plus(d2, hours=5)),
    )

    # I3: contained after 1 h, never classified; a keep_restricted decision, explained.
    d3 = utc(2026, 3, 10, 8)
    i3 = new_incident(va, d3)
    ev3 = record(
        i3, contained(plus(d3, hours=1)), decision(plus(d3, hours=2), "keep_restricted", by="rita")
    )
    record(i3, attested(plus(d3, hours=3), ev3[-1].seq, by="rosa"))

    # I4: detected on 20 March and nothing else yet.
    new_incident(va, utc(2026, 3, 20, 12))

    # I5 (agent B, no evidence required): the operating-model change comes 1 µs after the
    # reopening, so it was reopened without a change.
    d5 = utc(2026, 3, 15)
    i5 = new_incident(vb, d5)
    ev5 = record(
        i5,
        contained(plus(d5, minutes=10)),
        classified("capability", plus(d5, minutes=20)),
        decision(plus(d5, hours=2), "reopen_full", override=True, by="ivan"),
    )
    record(
        i5,
        attested(plus(d5, hours=2, minutes=30), ev5[-1].seq, by="rita"),
        reopened(plus(d5, hours=3)),
        model_changed(plus(d5, hours=3, microseconds=1)),
    )
    return {"a": a, "b": b, "va": va, "vb": vb, "i1": i1, "i2": i2, "i5": i5, "i6": i6}

"""The counts now of one agent's scope (what its refresh computes) are the same as that agent's
entry in the overall computation, though one agent's are found by index probes and the
overall by one anti-join."""

from __future__ import annotations

import pytest

from tests.metrics.helpers import agent_with_pact, classified, new_incident, utc
from tests.metrics.test_stored_recurrence import append, closed_not_incident, reclassified
from trustdesk.metrics.compute import Window, compute_windows, counts_now, unclassified_incidents

pytestmark = pytest.mark.django_db


def test_one_agents_unclassified_count_is_its_share_of_the_overall_one():
    a, va = agent_with_pact("scope-a")
    b, vb = agent_with_pact("scope-b")
    new_incident(va, utc(2026, 5, 1))  # unclassified
    append(new_incident(va, utc(2026, 5, 2)), classified("drift", utc(2026, 5, 2, 1)))
    # Reclassified without a `classified` event: still unclassified.
    append(new_incident(va, utc(2026, 5, 3)), reclassified("drift", utc(2026, 5, 3, 1)))
    # Closed as not an incident before any classification: not counted.
    append(new_incident(va, utc(2026, 5, 4)), closed_not_incident(utc(2026, 5, 4, 1)))
    new_incident(vb, utc(2026, 5, 5))  # unclassified, the other agent
    overall = counts_now()
    assert overall[None]["unclassified_count"] == 3
    one = counts_now(agent_id=a.pk)[a.pk]["unclassified_count"]
    assert one == overall[a.pk]["unclassified_count"] == 2
    assert counts_now(agent_id=b.pk)[b.pk]["unclassified_count"] == 1
    assert set(unclassified_incidents(a.pk)) == set(unclassified_incidents().filter(agent=a))
    # The not-incident is out of the agent's population too (its scope reads its own only).
    for scope in (a.pk, None):
        counted = compute_windows([Window("all")], agent_id=scope)[(scope, "all")]
        assert counted["incident_count"] == (3 if scope else 4)

"""Simultaneous steps on one incident: exactly one succeeds, the chain never forks or gaps.

Each thread has its own database connection (Django opens one per thread) and closes it at the
end. SQLite serializes writers at BEGIN and would not exercise the row lock, so these run on
PostgreSQL only.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.utils import timezone

from tests.factories import make_incident, make_pact_version
from trustdesk.incidents import breach, lifecycle
from trustdesk.incidents.chain import verify_incidents
from trustdesk.incidents.errors import ConflictError, GateError
from trustdesk.incidents.models import Event, Incident
from trustdesk.pacts.models import Evaluation

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks are exercised on PostgreSQL; SQLite serializes whole transactions",
    ),
]
THREADS = 10


def race(work) -> list:
    """Run work(i) in THREADS threads released together; return each result or exception."""
    barrier = threading.Barrier(THREADS)
    results: list = [None] * THREADS

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:  # collected and asserted by the test
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_ten_simultaneous_containments_append_exactly_one_event():
    incident = make_incident()
    pk = incident.pk

    def contain(i: int):
        inc = Incident.objects.get(pk=pk)
        return lifecycle.contain_incident(
            inc,
            by=None,
            expected_version=1,
            action="suspend" if i % 2 else "restrict",
            scope_after="suspended" if i % 2 else "restricted",
            reason=f"attempt {i}",
        )

    results = race(contain)
    winners = [r for r in results if isinstance(r, Event)]
    losers = [r for r in results if isinstance(r, GateError)]
    assert len(winners) == 1 and len(losers) == THREADS - 1, results
    assert all(isinstance(r, ConflictError) for r in losers)
    # the loser is told what changed
    assert all(r.changes == ["contained"] for r in losers)
    assert Event.objects.filter(incident_id=pk, type="contained").count() == 1
    incident.refresh_from_db()
    assert (incident.version, incident.state) == (2, "contained")
    assert incident.agent.scope == winners[0].data["scope_after"]


def test_ten_simultaneous_notes_all_land_without_gaps_or_forks():
    incident = make_incident()
    pk = incident.pk
    results = race(lambda i: lifecycle.add_note(Incident.objects.get(pk=pk), by=None, text=f"{i}"))
    assert all(isinstance(r, Event) for r in results), results
    seqs = sorted(Event.objects.filter(incident_id=pk).values_list("seq", flat=True))
    assert seqs == list(range(1, THREADS + 2))
    assert verify_incidents(Incident.objects.filter(pk=pk))[2] == []


def test_the_same_breach_handled_ten_times_at_once_opens_one_incident():
    clause = make_pact_version().clauses.get()
    evaluation = Evaluation.objects.create(
        clause=clause,
        value=Decimal(3),
        passed=False,
        is_breach=True,
        measured_at=timezone.now() - timedelta(minutes=5),
        source="refund-audit",
        external_id="race",
    )
    results = race(
        lambda i: breach.open_incident_for_breach(Evaluation.objects.get(pk=evaluation.pk), by=None)
    )
    assert all(isinstance(r, Incident) for r in results), results
    assert Incident.objects.count() == 1 and Event.objects.count() == 1

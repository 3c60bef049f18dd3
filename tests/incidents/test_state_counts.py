"""The per-state counts kept by the trigger on PostgreSQL: always the count of the rows, after
any walk through the lifecycle, an import, and changes made by concurrent transactions."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection, transaction
from django.db.models import Count

from tests.builders import ORDER, STATES, fresh, incident_in, walk
from tests.factories import make_pact_version
from trustdesk.incidents.models import Incident, StateCount
from trustdesk.incidents.state_counts import counts_by_state, kept, rebuild_counts

pytestmark = pytest.mark.skipif(not kept(), reason="the counts are kept on PostgreSQL only")


def counted() -> dict[str, int]:
    rows = Incident.objects.order_by().values_list("state").annotate(n=Count("*"))
    return dict(rows.values_list("state", "n"))


def kept_counts() -> dict[str, int]:
    counts = counts_by_state(Incident.objects.all(), every_incident=True)
    return {state: n for state, n in counts.items() if n}


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2])
def test_the_kept_counts_are_the_rows_counted_after_random_walks(seed):
    rng = random.Random(seed)
    # Each with its own agent: a decision then reopens it whatever the others hold.
    incidents = [incident_in(rng.choice(STATES[:4])) for _ in range(6)]
    assert kept_counts() == counted()
    decided: set[int] = set()
    for _ in range(8):
        incident = fresh(rng.choice(incidents))
        targets = []
        if incident.state in ORDER and incident.pk not in decided:
            # forward, or to one of the two ends by a decision (taken once)
            targets = [*ORDER[ORDER.index(incident.state) + 1 :], "recovered", "closed_restricted"]
        if incident.state == "detected":
            targets.append("closed_not_incident")
        if targets:
            target = rng.choice(targets)
            walk(incident, target)
            if target in ("recovered", "closed_restricted"):
                decided.add(incident.pk)
        assert kept_counts() == counted()
    assert sum(kept_counts().values()) == Incident.objects.count() == 6


@pytest.mark.django_db
def test_a_query_with_filters_is_counted_not_read_from_the_kept_counts():
    version = make_pact_version()
    incident_in("contained", version=version)
    other = incident_in("classified")
    only_other = Incident.objects.filter(agent=other.agent)
    assert counts_by_state(only_other, every_incident=False) == {"classified": 1}
    assert kept_counts() == {"contained": 1, "classified": 1}


@pytest.mark.django_db
def test_rebuilding_appends_what_brings_each_state_to_its_count():
    incident_in("contained")
    with transaction.atomic():
        StateCount.objects.create(state="contained", n=5)  # as after writes with no trigger
        StateCount.objects.create(state="repaired", n=2)
    rows_before = StateCount.objects.count()
    with transaction.atomic():
        rebuild_counts()
    assert kept_counts() == counted() == {"contained": 1}
    assert StateCount.objects.count() == rows_before + 2  # appended, nothing deleted


@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_of_state_do_not_wait_for_each_other():
    # Two agents: containing an incident locks its agent's row, and that wait is not ours.
    first, second = incident_in("detected"), incident_in("detected")
    holding = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def hold_a_count_row_open() -> None:
        try:
            with transaction.atomic():
                walk(fresh(first), "contained")  # locks a `detected` and a `contained` row
                holding.set()
                release.wait(timeout=30)
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)
        finally:
            holding.set()
            connection.close()

    worker = threading.Thread(target=hold_a_count_row_open)
    worker.start()
    try:
        assert holding.wait(timeout=30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # waiting would fail the step, not hang
        walk(fresh(second), "contained")  # meanwhile, the same change of state: no wait
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    finally:
        release.set()
        worker.join(timeout=30)
    assert not errors
    assert kept_counts() == counted() == {"contained": 2}
    assert StateCount.objects.filter(state="contained").count() >= 2

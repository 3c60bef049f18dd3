"""The per-incident facts table: a cache the metrics read, never stale, same figures.

The workers and `manage.py metrics` write the rows (`store_facts`, then compute); the metric
statements recompute in place any row that is behind its incident's events, so a figure never
comes from a row older than the events, whoever computes it.
"""

from __future__ import annotations

import pytest

from tests.metrics.helpers import MARCH, contained, record, reopened, utc
from trustdesk.incidents.models import Incident
from trustdesk.metrics import refresh
from trustdesk.metrics.compute import Window, compute_metrics, compute_windows, refresh_facts
from trustdesk.metrics.models import IncidentFacts

pytestmark = pytest.mark.django_db


def march_metrics(**kwargs):
    return compute_metrics(start=MARCH[0], end=MARCH[1], **kwargs)


def stored_counts() -> dict[int, int]:
    return dict(IncidentFacts.objects.values_list("incident_id", "event_count"))


def live_counts() -> dict[int, int]:
    return dict(Incident.objects.values_list("pk", "event_count"))


def test_refresh_facts_writes_every_incident_once_then_nothing(march):
    IncidentFacts.objects.all().delete()
    assert refresh_facts() == len(live_counts()) == 6
    assert stored_counts() == live_counts()
    assert refresh_facts() == 0
    row = IncidentFacts.objects.get(incident=march["i1"])
    assert (row.agent_id, row.detected_at) == (march["a"].pk, march["i1"].detected_at)
    assert row.ttc == 420.0 and row.assumption == "authority" and row.decisions == 1
    # evidence before the reopening: transcript, tool_calls, evaluation_result; not impact
    assert (row.ev_transcript, row.ev_tool_calls, row.ev_evaluation_result) == (1, 1, 1)
    assert (row.ev_impact_assessment, row.reopened_without_change) == (0, 0)


def test_refresh_facts_of_one_agent_writes_only_its_incidents(march):
    IncidentFacts.objects.all().delete()
    assert refresh_facts(agent_id=march["b"].pk) == 1
    assert list(IncidentFacts.objects.values_list("incident_id", flat=True)) == [march["i5"].pk]
    assert refresh_facts(agent_id=march["b"].pk) == 0
    assert refresh_facts(agent_id=march["a"].pk) == 5


def test_the_figures_are_the_same_from_events_and_from_stored_facts(march):
    windows = [Window("march", *MARCH), Window("all"), Window("from-feb", utc(2026, 2, 1))]
    agents = [march["a"].pk, march["b"].pk]
    IncidentFacts.objects.all().delete()
    refresh_facts(agent_id=march["b"].pk)  # some rows stored, some not
    mixed = compute_windows(windows, per_agent=agents)
    IncidentFacts.objects.all().delete()
    cold = compute_windows(windows, per_agent=agents)
    refresh_facts()
    warm = compute_windows(windows, per_agent=agents)
    assert cold == mixed == warm
    assert warm[(None, "march")]["incident_count"] == 5


def test_compute_metrics_stores_the_rows_then_reads_them(march):
    IncidentFacts.objects.all().delete()
    compute_windows([Window("march", *MARCH)])  # a page: reads, never writes
    assert stored_counts() == {}
    march_metrics()  # what `manage.py metrics` calls
    assert stored_counts() == live_counts()


def test_a_new_event_is_never_read_from_an_older_row(march):
    refresh_facts()
    before = compute_windows([Window("march", *MARCH)])[(None, "march")]["time_to_containment"]
    assert before["uncontained"] == 1
    i4 = Incident.objects.get(detected_at=utc(2026, 3, 20, 12))
    record(i4, contained(utc(2026, 3, 20, 13)), reopened(utc(2026, 3, 20, 14)))
    # The stored row of I4 is now two events behind: the figures do not use it.
    after = compute_windows([Window("march", *MARCH)])[(None, "march")]
    assert after["time_to_containment"]["uncontained"] == 0
    assert after["time_to_containment"]["count"] == 5
    assert after["time_to_recovery"]["count"] == 4  # I1, I2, I5 and now I4
    assert stored_counts() != live_counts()
    refresh_facts()
    assert stored_counts() == live_counts()
    assert compute_windows([Window("march", *MARCH)])[(None, "march")] == after


def test_a_row_behind_its_incident_is_recomputed_not_trusted(march):
    refresh_facts()
    expected = compute_windows([Window("march", *MARCH)])
    # A row with wrong figures that is one event behind (as a row written before the latest
    # event would be) is ignored and rewritten.
    i1 = Incident.objects.get(pk=march["i1"].pk)
    IncidentFacts.objects.filter(incident=i1).update(
        event_count=i1.event_count - 1, contained_at=None, ttc=None, decisions=7
    )
    assert compute_windows([Window("march", *MARCH)]) == expected
    refresh_facts()
    assert IncidentFacts.objects.get(incident=i1).decisions == 1


def test_a_row_never_goes_back_to_fewer_events(march):
    """A slower writer holding an older view cannot overwrite a newer row."""
    refresh_facts()
    i1 = Incident.objects.get(pk=march["i1"].pk)
    IncidentFacts.objects.filter(incident=i1).update(event_count=i1.event_count + 5, decisions=9)
    refresh_facts()  # sees the row as different from the incident: recomputes it, but older
    assert IncidentFacts.objects.get(incident=i1).decisions == 9


def test_the_workers_refresh_keeps_the_table_up_to_date(march):
    IncidentFacts.objects.all().delete()
    refresh.refresh_agent(march["b"].pk)
    assert set(stored_counts()) >= {march["i5"].pk}
    refresh.recompute_all()
    assert stored_counts() == live_counts()

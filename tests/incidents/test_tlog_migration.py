"""The migration that introduces the transparency log numbers the events already stored, in
stored (id) order, and builds their tree (docs/design.md section 15)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import make_incident
from tests.incidents.test_tlog import assert_stored_tree_is_the_recomputed_one
from trustdesk.incidents import lifecycle
from trustdesk.incidents.models import Event, LogLeaf


def _latest() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def _before_the_log() -> list[tuple[str, str]]:
    """The incidents migration the transparency log's migration builds on."""
    graph = MigrationExecutor(connection).loader.graph
    (log,) = [key for key in graph.nodes if key[0] == "incidents" and key[1].endswith("_log")]
    return [parent.key for parent in graph.node_map[log].parents if parent.key[0] == "incidents"]


@pytest.mark.django_db(transaction=True)
def test_migrating_numbers_existing_events_in_stored_order():
    for i in range(3):
        incident = make_incident(title=f"before the log {i}")
        for n in range(i + 1):
            lifecycle.add_note(incident, by=None, text=f"note {n}")
    ids = list(Event.objects.order_by("id").values_list("id", flat=True))
    executor = MigrationExecutor(connection)
    executor.migrate(_before_the_log())  # drops the log tables: the events are now unnumbered
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(_latest())
    numbered = dict(LogLeaf.objects.values_list("event_id", "log_index"))
    assert [numbered[i] for i in ids] == list(range(len(ids)))
    assert assert_stored_tree_is_the_recomputed_one() == len(ids)
    # and the next append continues the same log
    lifecycle.add_note(incident, by=None, text="after the log")
    assert assert_stored_tree_is_the_recomputed_one() == len(ids) + 1

"""Upgrading a database of the first release numbers the events already stored in the
transparency log, in stored (id) order, and builds their tree (docs/design.md section 15)."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.core.test_squashed_migrations import migrate_to_head, migrate_to_release_1
from tests.factories import make_incident
from tests.incidents.test_tlog import assert_stored_tree_is_the_recomputed_one
from trustdesk.incidents import lifecycle
from trustdesk.incidents.models import Event, LogLeaf


@pytest.mark.django_db(transaction=True)
def test_migrating_numbers_existing_events_in_stored_order():
    for i in range(3):
        incident = make_incident(title=f"before the log {i}")
        for n in range(i + 1):
            lifecycle.add_note(incident, by=None, text=f"note {n}")
    ids = list(Event.objects.order_by("id").values_list("id", flat=True))
    migrate_to_release_1()  # drops the log tables: the events are now unnumbered
    assert "incidents_logleaf" not in connection.introspection.table_names()
    migrate_to_head()
    numbered = dict(LogLeaf.objects.values_list("event_id", "log_index"))
    assert [numbered[i] for i in ids] == list(range(len(ids)))
    assert assert_stored_tree_is_the_recomputed_one() == len(ids)
    # and the next append continues the same log
    lifecycle.add_note(incident, by=None, text="after the log")
    assert assert_stored_tree_is_the_recomputed_one() == len(ids) + 1

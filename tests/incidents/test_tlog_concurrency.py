"""20 threads appending across incidents on PostgreSQL: the log index stays gapless, nothing
deadlocks, and the stored tree equals the one recomputed from the events (docs/design.md section
15).

The mix opens incidents for one agent (locking the agent, then appending) while others contain
(appending, and changing that agent's scope) and add notes, all released together.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from tests.factories import make_incident, make_pact_version
from tests.incidents.test_tlog import assert_stored_tree_is_the_recomputed_one
from trustdesk.incidents import journal, lifecycle
from trustdesk.incidents.models import Event, Incident, LogLeaf

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="concurrent appends are exercised on PostgreSQL; SQLite serializes transactions",
    ),
]
THREADS = 20
ROUNDS = 4


def test_twenty_threads_appending_across_incidents_leave_a_gapless_log_and_the_same_tree():
    version = make_pact_version()
    agent = version.pact.agent
    incidents = [make_incident(version=version, title=f"seed {i}") for i in range(THREADS)]
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            mine = Incident.objects.get(pk=incidents[i].pk)
            for r in range(ROUNDS):
                if (i + r) % 3 == 0:
                    journal.open_incident(
                        agent=agent,
                        by=None,
                        title=f"opened by {i} in round {r}",
                        severity="sev3",
                        pact_version=version,
                    )
                elif r == 1:
                    lifecycle.contain_incident(
                        mine,
                        by=None,
                        expected_version=None,
                        action="suspend",
                        scope_after="suspended",
                    )
                else:
                    lifecycle.add_note(mine, by=None, text=f"note {i}/{r}", internal=True)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    assert errors == []
    events = Event.objects.count()
    assert events > THREADS * ROUNDS
    assert LogLeaf.objects.count() == events
    assert assert_stored_tree_is_the_recomputed_one() == events

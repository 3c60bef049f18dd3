"""How many incidents are in each state, kept as they change instead of counted each time.

On PostgreSQL a trigger on `incidents_incident` adds +1 to the new state and -1 to the old one
for every insert, change of state and delete, in the same transaction (so a count is never ahead
of or behind the committed incidents), into a row of `StateCount` that no other transaction
holds (`FOR UPDATE SKIP LOCKED`, else a new row): concurrent changes never wait for each other
and cannot deadlock on the counts. The count of a state is the sum of its rows: a handful,
whatever the number of incidents. Writes that bypass triggers (`session_replication_role =
replica`, as the benchmark's bulk loader does) must rebuild the counts (`rebuild_counts`).

Other databases have no trigger: the counts are one GROUP BY there.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Count, QuerySet, Sum

from trustdesk.incidents.models import Incident, StateCount

_T_INCIDENT = Incident._meta.db_table
_T_COUNT = StateCount._meta.db_table

# The trigger's SQL, run by migration 0005_release_2 (and reversed by DROP_TRIGGER_SQL).
CREATE_TRIGGER_SQL = f"""
CREATE FUNCTION incidents_add_to_state_count(counted_state text, delta bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  slot bigint;
BEGIN
  SELECT id INTO slot FROM {_T_COUNT} WHERE state = counted_state
    LIMIT 1 FOR UPDATE SKIP LOCKED;
  IF FOUND THEN
    UPDATE {_T_COUNT} SET n = n + delta WHERE id = slot;
  ELSE
    INSERT INTO {_T_COUNT} (state, n) VALUES (counted_state, delta);
  END IF;
END $$;

CREATE FUNCTION incidents_count_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM incidents_add_to_state_count(OLD.state, -1);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    PERFORM incidents_add_to_state_count(NEW.state, 1);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER incidents_count_state_insert_delete
AFTER INSERT OR DELETE ON {_T_INCIDENT}
FOR EACH ROW EXECUTE FUNCTION incidents_count_state();

CREATE TRIGGER incidents_count_state_update
AFTER UPDATE OF state ON {_T_INCIDENT}
FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
EXECUTE FUNCTION incidents_count_state();
"""

DROP_TRIGGER_SQL = f"""
DROP TRIGGER IF EXISTS incidents_count_state_update ON {_T_INCIDENT};
DROP TRIGGER IF EXISTS incidents_count_state_insert_delete ON {_T_INCIDENT};
DROP FUNCTION IF EXISTS incidents_count_state();
DROP FUNCTION IF EXISTS incidents_add_to_state_count(text, bigint);
"""

# Brings every state's sum to the number of its incidents by appending one correcting row per
# state, with no change of state in between (the lock lets readers through and waits for writers).
REBUILD_SQL = f"""
LOCK TABLE {_T_INCIDENT} IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO {_T_COUNT} (state, n)
SELECT COALESCE(actual.state, kept.state), COALESCE(actual.n, 0) - COALESCE(kept.n, 0)
FROM (SELECT state, COUNT(*) AS n FROM {_T_INCIDENT} GROUP BY state) actual
FULL JOIN (SELECT state, SUM(n) AS n FROM {_T_COUNT} GROUP BY state) kept
  ON kept.state = actual.state
WHERE COALESCE(actual.n, 0) <> COALESCE(kept.n, 0);
"""


def kept() -> bool:
    """Whether the counts are kept by the trigger (PostgreSQL)."""
    return connection.vendor == "postgresql"


def rebuild_counts() -> None:
    """Count every incident again, after writes that bypassed the trigger. Call it inside a
    transaction (the lock holds until its end)."""
    if kept():
        with connection.cursor() as cursor:
            cursor.execute(REBUILD_SQL)


def counts_by_state(incidents: QuerySet[Incident], *, every_incident: bool) -> dict[str, int]:
    """The number of `incidents` in each state (states with none may be left out or be 0): from
    the kept counts when `incidents` is every incident, else by one GROUP BY. One query."""
    if every_incident and kept():
        rows = StateCount.objects.values_list("state").annotate(total=Sum("n")).order_by()
        return dict(rows.values_list("state", "total"))
    rows = incidents.order_by().values_list("state").annotate(n=Count("*"))
    return dict(rows.values_list("state", "n"))

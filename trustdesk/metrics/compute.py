"""The metrics of docs/design.md section 6, computed in SQL from the incidents' event log.

This is the one implementation: the workers (snapshots), `manage.py metrics`, the dashboard and
its drill-down pages all call it. Everything comes from `incidents_event` (type, at, data,
actor_name) plus the incident's agent, detection time and pact version, so imported history
counts exactly like history recorded in the app.

What each incident contributes is kept in one narrow row of `metrics_incidentfacts`
(IncidentFacts), so that a recompute aggregates about one row per incident instead of grouping
every event. The workers and `manage.py metrics` bring the rows up to date (`store_facts`: one
set-based statement, in a short transaction of its own so that concurrent workers never wait
on each other's long computations) before they compute. A row is used only while its
`event_count` equals the incident's (events are append-only and each bumps it): the metric
statement itself recomputes from the events, in place, every row that is missing or behind,
so no figure is ever computed from a stale row, whoever calls (a worker, the command, a page).

Definitions, pinned where the design leaves a choice:

- An incident belongs to a window [start, end) by `Incident.detected_at` (the `detected`
  event's `at`). Decisions and attestations belong to the window of their incident.
- "First" means the earliest event of that type (events are time-ordered within an incident).
  `time_to_containment` uses the first `contained`, `time_to_classification` the first
  `classified`, `time_to_recovery` and everything "at reopening" the first `reopened`.
- Durations are float seconds, rounded to the microsecond (the resolution of stored times).
  Percentiles are linear interpolation between closest ranks: `percentile_cont` on PostgreSQL;
  on SQLite the sorted durations are fetched by SQL and interpolated with the same formula
  (`lo + (hi - lo) * fraction`, in IEEE doubles like PostgreSQL's float8).
- "At or before" is `<=` on the event times: evidence added, or an operating-model change made,
  at the very instant of the reopening counts; one microsecond later does not.
- Evidence completeness counts the required kinds (`pact_version.evidence_required`, each
  counted once; no pact version or an empty list means none required, which counts 1) that
  have an `evidence_added` event with that `data.kind` at or before the first `reopened`.
  Kinds are the evidence kinds of docs/design.md section 4, the only ones a pact may require.
- `override_rate`: `decision_recorded` events whose `data.decision` is `reopen_full` or
  `reopen_partial` and whose `data.override` is JSON `true`, over those reopening decisions.
- `explainable_decision_rate`: `decision_recorded` events with at least one `attested` event of
  the same incident whose `data.decision_seq` is that decision's seq, whose `data.can_explain`
  is JSON `true`, and whose `actor_name` differs from the decision's, over all decisions.
- `recurrence_rate`: a classified incident's assumption class is the `data.assumption` of its
  LATEST `classified` or `reclassified` event (the current classification; a correction counts).
  Time to classification still uses the first `classified`.
- Populations: an incident with a `closed_not_incident` event (a duplicate, a false positive, not
  a breach) counts in no metric, nor in `unclassified_count`.
  It recurs when another incident of the same agent, detected earlier, with the same class,
  had its first `reopened` event within the 90 days before this detection:
  detected - 90 days <= reopened < detected (both ends pinned by tests).
- Rates with an empty denominator are null, never 0; `value` is a float, `numerator` and
  `denominator` are ints.
- `unclassified_count` (incidents with no `classified` event), `open_count`
  (`Incident.objects.open()`), `stale_pacts` (`PactVersion.objects.stale()`) and
  `restricted_agents` (`Agent.objects.restricted()`) are counts now, whatever the window.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, QuerySet, Subquery

from trustdesk.incidents.models import Event, Incident
from trustdesk.metrics.models import IncidentFacts
from trustdesk.pacts.models import Agent, EvidenceKind, PactVersion

EVIDENCE_KINDS: tuple[str, ...] = tuple(kind.value for kind in EvidenceKind)
REOPENING_DECISIONS: tuple[str, ...] = ("reopen_full", "reopen_partial")
RECURRENCE_LOOKBACK = timedelta(days=90)
# An incident with this event was not one (duplicate, false positive, not a breach): it is left
# out of every metric's population.
NOT_AN_INCIDENT = "closed_not_incident"
# The only event types any metric reads (an incident's detection time is on the incident).
USED_EVENT_TYPES = (
    "contained",
    "evidence_added",
    "classified",
    "reclassified",
    "operating_model_changed",
    "decision_recorded",
    "attested",
    "reopened",
)
PERCENTILES = (("p50", 0.5), ("p90", 0.9))
DURATION_METRICS = ("time_to_containment", "time_to_classification", "time_to_recovery")
RATE_METRICS = (
    "reopen_without_change_rate",
    "override_rate",
    "explainable_decision_rate",
    "recurrence_rate",
)
COUNT_METRICS = ("unclassified_count", "open_count", "stale_pacts", "restricted_agents")

# Stand-ins for an unbounded window end: far outside any real detection time.
_MIN_TIME = datetime(1, 1, 2, tzinfo=UTC)
_MAX_TIME = datetime(9999, 12, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """A period of detection times, [start, end); None is unbounded on that side."""

    key: str
    start: datetime | None = None
    end: datetime | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"from": _iso(self.start), "to": _iso(self.end)}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- SQL dialect


class _Dialect:
    """The few fragments that differ between PostgreSQL and SQLite; the rest is shared SQL."""

    def __init__(self) -> None:
        self.pg = connection.vendor == "postgresql"
        if not self.pg and connection.vendor != "sqlite":
            raise NotImplementedError(f"metrics need PostgreSQL or SQLite, not {connection.vendor}")

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A cursor for the metrics queries. PostgreSQL's JIT compiles these wide aggregate
        queries for longer (seconds on a busy 2-core machine) than they take to run, so it is
        turned off for their transaction."""
        if not self.pg:
            with connection.cursor() as cursor:
                yield cursor
            return
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            # Enough memory to group the events by incident in a hash table, in one pass,
            # instead of sorting them (the default 4 MB covers a few thousand incidents).
            cursor.execute("SET LOCAL work_mem = '128MB'")
            yield cursor

    def param(self, value: datetime) -> Any:
        # SQLite stores naive UTC text; comparing against an aware value's text would be wrong.
        return connection.ops.adapt_datetimefield_value(value)

    def text(self, col: str, key: str) -> str:
        return f"({col} ->> '{key}')" if self.pg else f"json_extract({col}, '$.{key}')"

    def is_true(self, col: str, key: str) -> str:
        if self.pg:
            return f"(({col} -> '{key}') = 'true'::jsonb)"
        return f"(json_type({col}, '$.{key}') = 'true')"

    def array_has(self, col: str, literal: str) -> str:
        # `literal` is one of the fixed evidence kinds, never user input.
        if self.pg:
            return f"({col} @> '[\"{literal}\"]'::jsonb)"
        return f"EXISTS (SELECT 1 FROM json_each({col}) j WHERE j.value = '{literal}')"

    def seconds(self, later: str, earlier: str) -> str:
        """later - earlier in float seconds, exact to the microsecond on both backends."""
        if self.pg:
            return f"ROUND(EXTRACT(EPOCH FROM ({later} - {earlier})), 6)::float8"
        # Django stores 'YYYY-MM-DD HH:MM:SS[.ffffff]': whole seconds by strftime on the first
        # 19 characters (SQLite rounds fractions to milliseconds), then the fractions apart.
        return (
            f"ROUND((CAST(strftime('%%s', substr({later}, 1, 19)) AS INTEGER)"
            f" - CAST(strftime('%%s', substr({earlier}, 1, 19)) AS INTEGER))"
            f" + (CAST('0' || substr({later}, 20) AS REAL)"
            f" - CAST('0' || substr({earlier}, 20) AS REAL)), 6)"
        )

    def seq_key(self, expr: str) -> str:
        """A zero-padded text of a seq, so that MAX(key || value) picks the latest event's value."""
        if self.pg:
            return f"lpad(CAST({expr} AS text), 10, '0')"
        return f"printf('%%010d', {expr})"

    def int_or_null(self, col: str, key: str) -> str:
        """A JSON integer as a number (comparable with a seq), anything else as NULL."""
        if self.pg:
            return (
                f"CASE WHEN jsonb_typeof({col} -> '{key}') = 'number' "
                f"AND ({col} ->> '{key}') ~ '^[0-9]{{1,18}}$' "
                f"THEN CAST({col} ->> '{key}' AS bigint) END"
            )
        return (
            f"CASE WHEN json_type({col}, '$.{key}') = 'integer' "
            f"THEN json_extract({col}, '$.{key}') END"
        )

    def within(self, later: str, earlier: str, seconds: int) -> str:
        """later - earlier <= seconds, exactly (both are stored to the microsecond)."""
        if self.pg:
            return f"({earlier} >= {later} - interval '{seconds} seconds')"
        return f"({self.seconds(later, earlier)} <= {seconds})"

    @property
    def fence(self) -> str:
        """Keeps PostgreSQL from inlining a subquery (and re-evaluating its expressions)."""
        return "OFFSET 0" if self.pg else ""

    def as_float(self, expr: str) -> str:
        return f"CAST({expr} AS {'double precision' if self.pg else 'REAL'})"


# ---------------------------------------------------------------- the per-incident facts


_T_INCIDENT = Incident._meta.db_table
_T_EVENT = Event._meta.db_table
_T_VERSION = PactVersion._meta.db_table


_T_FACTS = IncidentFacts._meta.db_table
# The columns of a facts row after its key, in table order (see IncidentFacts).
_FACT_COLUMNS: tuple[str, ...] = (
    "event_count",
    "agent_id",
    "detected_at",
    "pact_version_id",
    "contained_at",
    "classified_at",
    "reopened_at",
    "ttc",
    "ttcl",
    "ttr",
    "assumption",
    "reopened_without_change",
    *(f"ev_{kind}" for kind in EVIDENCE_KINDS),
    "decisions",
    "reopening_decisions",
    "override_decisions",
    "explainable_decisions",
)
_missing = set(_FACT_COLUMNS) - {f.column for f in IncidentFacts._meta.concrete_fields}
assert not _missing, f"IncidentFacts lacks the columns {_missing} (a new evidence kind?)"


def _computed_facts_cte(d: _Dialect) -> str:
    """CTEs ending in `computed`: the facts row of every incident in `stale` (id, event_count),
    from ONE pass over their events, grouped twice: first by (incident, decision seq) so that a
    decision meets its attestations, then by incident."""
    used_types = ", ".join(f"'{t}'" for t in USED_EVENT_TYPES)
    reopening = ", ".join(f"'{v}'" for v in REOPENING_DECISIONS)
    explains = d.is_true("e.data", "can_explain")
    kinds_first = ",\n    ".join(
        f"MIN(at) FILTER (WHERE kind = '{kind}') AS ev_{kind}" for kind in EVIDENCE_KINDS
    )
    fence_note = "OFFSET 0 keeps PostgreSQL from inlining them" if d.pg else "no fence needed"
    kinds_min = ", ".join(f"MIN(ev_{kind}) AS ev_{kind}" for kind in EVIDENCE_KINDS)
    kinds_flags = ",\n    ".join(
        f"CASE WHEN agg.ev_{kind} <= agg.reopened_at THEN 1 ELSE 0 END AS ev_{kind}"
        for kind in EVIDENCE_KINDS
    )
    return f"""
-- Pass 1: the events by (incident, k), where k is a decision's seq for the decision and the
-- attestations of it, and 0 for every other event.
pass1 AS (
  SELECT incident_id, k,
    MIN(at) FILTER (WHERE type = 'contained') AS contained_at,
    MIN(at) FILTER (WHERE type = 'classified') AS classified_at,
    MAX(class_key) AS latest_class,
    MIN(at) FILTER (WHERE type = 'reopened') AS reopened_at,
    MIN(at) FILTER (WHERE type = 'operating_model_changed') AS changed_at,
    {kinds_first},
    COUNT(decider) AS decisions,
    SUM(reopening) AS reopening_decisions,
    SUM(overriding) AS override_decisions,
    MAX(decider) AS decider,
    MIN(attester) AS first_attester,
    MAX(attester) AS last_attester
  FROM (
    -- Each JSON value is read once per event, here ({fence_note}).
    SELECT e.incident_id, e.type, e.at,
      CASE WHEN e.type = 'decision_recorded' THEN e.seq
           WHEN e.type = 'attested' THEN {d.int_or_null("e.data", "decision_seq")}
           ELSE 0 END AS k,
      CASE WHEN e.type IN ('classified', 'reclassified')
           THEN {d.seq_key("e.seq")} || COALESCE({d.text("e.data", "assumption")}, '')
           END AS class_key,
      CASE WHEN e.type = 'evidence_added' THEN {d.text("e.data", "kind")} END AS kind,
      CASE WHEN e.type = 'decision_recorded' THEN e.actor_name END AS decider,
      CASE WHEN e.type = 'decision_recorded'
            AND {d.text("e.data", "decision")} IN ({reopening}) THEN 1 ELSE 0 END AS reopening,
      CASE WHEN e.type = 'decision_recorded'
            AND {d.text("e.data", "decision")} IN ({reopening})
            AND {d.is_true("e.data", "override")} THEN 1 ELSE 0 END AS overriding,
      CASE WHEN e.type = 'attested' AND {explains} THEN e.actor_name END AS attester
    FROM {_T_EVENT} e
    WHERE e.type IN ({used_types}) AND e.incident_id IN (SELECT id FROM stale)
    {d.fence}
  ) ev
  GROUP BY incident_id, k
),
-- Pass 2: by incident. Among a decision's explaining attesters, the smallest or the largest
-- name differs from the decider's exactly when one of them does.
agg AS (
  SELECT incident_id,
    MIN(contained_at) AS contained_at, MIN(classified_at) AS classified_at,
    MAX(latest_class) AS latest_class, MIN(reopened_at) AS reopened_at,
    MIN(changed_at) AS changed_at, {kinds_min},
    SUM(decisions) AS decisions, SUM(reopening_decisions) AS reopening_decisions,
    SUM(override_decisions) AS override_decisions,
    SUM(CASE WHEN decider IS NOT NULL AND first_attester IS NOT NULL
              AND (first_attester <> decider OR last_attester <> decider)
             THEN 1 ELSE 0 END) AS explainable_decisions
  FROM pass1 GROUP BY incident_id
),
computed AS MATERIALIZED (
  SELECT s.id AS incident_id, s.event_count, s.agent_id, s.detected_at, s.pact_version_id,
    agg.contained_at, agg.classified_at, agg.reopened_at,
    {d.seconds("agg.contained_at", "s.detected_at")} AS ttc,
    {d.seconds("agg.classified_at", "s.detected_at")} AS ttcl,
    {d.seconds("agg.reopened_at", "s.detected_at")} AS ttr,
    NULLIF(substr(agg.latest_class, 11), '') AS assumption,
    CASE WHEN agg.reopened_at IS NOT NULL
          AND (agg.changed_at IS NULL OR agg.changed_at > agg.reopened_at)
         THEN 1 ELSE 0 END AS reopened_without_change,
    {kinds_flags},
    COALESCE(agg.decisions, 0) AS decisions,
    COALESCE(agg.reopening_decisions, 0) AS reopening_decisions,
    COALESCE(agg.override_decisions, 0) AS override_decisions,
    COALESCE(agg.explainable_decisions, 0) AS explainable_decisions
  FROM stale s LEFT JOIN agg ON agg.incident_id = s.id
)"""


def _stale_cte(d: _Dialect, agent_id: int | None) -> tuple[str, list[Any]]:
    """`stale`: the incidents of the scope (all, or one agent's) whose facts row is missing or
    has fewer events than the incident has now.

    A row is only ever written from one consistent view of its incident, and only moves forward,
    so its `event_count` is never more than the incident's: when the scope's incidents and rows
    are as many and their event counts add up to the same total, every row is up to date, and
    the row-by-row comparison is skipped (two scans instead of a join: the usual case).
    The agent, detection time and pact version copied into a row are set when the incident is
    opened (or imported) and never change.
    """
    agent_i = " AND i.agent_id = %s" if agent_id is not None else ""
    agent_f = " WHERE f.agent_id = %s" if agent_id is not None else ""
    params = [agent_id] * 3 if agent_id is not None else []
    sql = f"""stale AS MATERIALIZED (
  SELECT i.id, i.event_count, i.agent_id, i.detected_at, i.pact_version_id
  FROM {_T_INCIDENT} i LEFT JOIN {_T_FACTS} f ON f.incident_id = i.id
  WHERE (f.incident_id IS NULL OR f.event_count <> i.event_count){agent_i}
    AND NOT EXISTS (
      SELECT 1 FROM
        (SELECT COUNT(*) AS n, COALESCE(SUM(i.event_count), 0) AS total
         FROM {_T_INCIDENT} i WHERE true{agent_i}) a,
        (SELECT COUNT(*) AS n, COALESCE(SUM(f.event_count), 0) AS total
         FROM {_T_FACTS} f{agent_f}) b
      WHERE a.n = b.n AND a.total = b.total)
)"""
    return sql, params


def _upsert_sql(source: str) -> str:
    """Write the rows of `source` into the facts table. A row only ever moves forward (a
    slower concurrent writer with an older view of the events cannot undo a newer one), and
    rows are written in key order so that concurrent writers lock them in the same order."""
    cols = ", ".join(_FACT_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _FACT_COLUMNS)
    # `WHERE true` keeps SQLite from reading ON CONFLICT as a join's ON.
    return (
        f"INSERT INTO {_T_FACTS} (incident_id, {cols}) "
        f"SELECT incident_id, {cols} FROM {source} WHERE true ORDER BY incident_id "
        f"ON CONFLICT (incident_id) DO UPDATE SET {updates} "
        f"WHERE {_T_FACTS}.event_count <= EXCLUDED.event_count"
    )


# Held while facts rows are written and the recurrence of their agents is rewritten: a writer
# that started before another's commit would otherwise rewrite recurrence from a view that lacks
# the other's rows (both rows then look fresh, the recurrence behind them would not be).
_FACTS_WRITE_LOCK = 0x7D_FAC7


def refresh_facts(*, agent_id: int | None = None) -> int:
    """Bring the stored facts of one agent's incidents (or all) up to date; returns the number
    of rows written. Cheap when nothing changed (one anti-join of the incidents and the facts).

    Then, in the same transaction, the recurrence of every incident of each agent whose rows
    were written is rewritten from the agent's rows (an earlier incident's reclassification or
    closing as not an incident changes a later one's recurrence), so a stored `recurrent` is
    always that of the stored rows of its agent.

    The metric queries never depend on this having run (they recompute stale rows themselves);
    the workers call it so that their computation finds the rows fresh.
    """
    d = _Dialect()
    stale, params = _stale_cte(d, agent_id)
    sql = f"WITH {stale},{_computed_facts_cte(d)}\n{_upsert_sql('computed')} RETURNING agent_id"
    with transaction.atomic(), d.cursor() as cursor:
        if d.pg:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_FACTS_WRITE_LOCK])
        cursor.execute(sql, params)
        written = [row[0] for row in cursor.fetchall()]
        if written:
            _store_recurrence(d, cursor, sorted(set(written)))
    return len(written)


def _recurrence_ctes(d: _Dialect, rows: str) -> str:
    """CTEs ending in `recurrence` (id, recurrent): whether each incident of `rows` recurs, in one
    sort instead of a pairwise search. `rows` names a relation with the facts columns (id,
    agent_id, assumption, detected_at, reopened_at) and `eligible` (1 for a classified incident
    in the metrics' population) holding every incident of the agents it covers.

    Per (agent, class), the detections and the first reopenings of the eligible incidents in
    time order (a detection before a reopening at the same instant): the latest reopening
    strictly before a detection decides, as an older one is further than 90 days away whenever
    the latest is. Only the narrow keys are sorted."""
    lookback_seconds = int(RECURRENCE_LOOKBACK.total_seconds())
    pg_c = ' COLLATE "C"' if d.pg else ""
    return f"""
stream AS (
  SELECT agent_id, assumption, detected_at AS t, 0 AS is_reopen, id, eligible FROM {rows}
  UNION ALL
  SELECT agent_id, assumption, reopened_at AS t, 1 AS is_reopen, NULL AS id, 1 AS eligible
  FROM {rows} WHERE eligible = 1 AND reopened_at IS NOT NULL
),
recurrence AS (
  SELECT id, CASE WHEN eligible = 1 AND last_reopen IS NOT NULL
                   AND {d.within("t", "last_reopen", lookback_seconds)} THEN 1 ELSE 0 END
         AS recurrent
  FROM (
    SELECT id, t, is_reopen, eligible, MAX(CASE WHEN is_reopen = 1 THEN t END) OVER (
        PARTITION BY agent_id, assumption{pg_c} ORDER BY t, is_reopen
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS last_reopen
    FROM stream
  ) ranked
  WHERE is_reopen = 0
)"""


def _store_recurrence(d: _Dialect, cursor, agent_ids: Sequence[int]) -> None:
    """Rewrite `recurrent` of every stored row of these agents from their stored rows."""
    marks = ", ".join("%s" for _ in agent_ids)
    cursor.execute(
        f"""WITH notinc AS (
  SELECT e.incident_id FROM {_T_EVENT} e JOIN {_T_FACTS} f ON f.incident_id = e.incident_id
  WHERE e.type = '{NOT_AN_INCIDENT}' AND f.agent_id IN ({marks})
),
mine AS MATERIALIZED (
  SELECT f.incident_id AS id, f.agent_id, f.assumption, f.detected_at, f.reopened_at,
    f.recurrent AS stored,
    CASE WHEN f.assumption IS NOT NULL AND f.incident_id NOT IN (SELECT incident_id FROM notinc)
         THEN 1 ELSE 0 END AS eligible
  FROM {_T_FACTS} f WHERE f.agent_id IN ({marks})
),{_recurrence_ctes(d, "mine")},
-- Only the rows whose value moves are written (few, usually), found by one join of the two sets.
moved AS MATERIALIZED (
  SELECT r.id, r.recurrent FROM recurrence r JOIN mine m ON m.id = r.id
  WHERE m.stored <> r.recurrent
)
UPDATE {_T_FACTS} SET recurrent = moved.recurrent FROM moved
WHERE {_T_FACTS}.incident_id = moved.id""",
        [*agent_ids, *agent_ids],
    )


def store_recurrence_of_every_agent() -> None:
    """Rewrite the stored recurrence of every facts row (the migration that adds the column)."""
    d = _Dialect()
    with transaction.atomic(), d.cursor() as cursor:
        if d.pg:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_FACTS_WRITE_LOCK])
        cursor.execute(f"SELECT DISTINCT agent_id FROM {_T_FACTS}")
        agent_ids = [row[0] for row in cursor.fetchall()]
        if agent_ids:
            _store_recurrence(d, cursor, agent_ids)


def store_facts(*, agent_id: int | None = None) -> None:
    """Called by the workers (and the command) before they compute: write the stale facts rows
    of the scope. Outside a transaction this commits at once, so the row locks it takes are
    held for milliseconds, not for the length of the computation that follows."""
    refresh_facts(agent_id=agent_id)


def _facts_ctes(
    d: _Dialect, *, lo: datetime | None, hi: datetime | None, agent_id: int | None
) -> tuple[str, list[Any]]:
    """CTEs ending in `facts`: one row per incident detected in [lo, hi) (of one agent if given).

    The per-incident facts come from the facts table (IncidentFacts) where its row is up to
    date, and are computed from the events (`computed`) for the others (`stale`), in the same
    statement: the figures never read a stale row (this statement writes nothing: see
    `store_facts`). Then the evidence the pact version requires is worked out per incident.
    Recurrence is read from the table for the agents whose rows are all fresh (it was stored
    from exactly these rows); for an agent with a stale row it is worked out here from the
    agent's rows, as they are now.
    """
    stale, stale_params = _stale_cte(d, agent_id)
    agent_sql = " AND x.agent_id = %s" if agent_id is not None else ""
    agent_params: list[Any] = [agent_id] if agent_id is not None else []
    fact_cols = ", ".join(f"x.{c}" for c in _FACT_COLUMNS[1:])
    # Only the scope's own not-incidents: one agent's refresh does not read the others'.
    notinc_agent = (
        f" AND incident_id IN (SELECT id FROM {_T_INCIDENT} WHERE agent_id = %s)"
        if agent_id is not None
        else ""
    )

    # Which kinds each pact version requires, worked out once per version (there are few).
    version_flags = ",\n    ".join(
        f"CASE WHEN {d.array_has('v.evidence_required', kind)} THEN 1 ELSE 0 END AS req_{kind}"
        for kind in EVIDENCE_KINDS
    )
    required = " + ".join(f"COALESCE(ver.req_{kind}, 0)" for kind in EVIDENCE_KINDS)
    evidenced = " + ".join(
        f"(COALESCE(ver.req_{kind}, 0) * r.ev_{kind})" for kind in EVIDENCE_KINDS
    )
    if lo is None:
        window_where, window_params = "", []
    else:
        window_where = " WHERE r.detected_at >= %s AND r.detected_at < %s"
        window_params = [d.param(lo), d.param(hi or _MAX_TIME)]

    sql = f"""
ver AS MATERIALIZED (
  SELECT v.id,
    {version_flags}
  FROM {_T_VERSION} v
),
{stale},
{_computed_facts_cte(d)},
-- Incidents closed as not an incident are in no metric's population.
notinc AS MATERIALIZED (
  SELECT incident_id FROM {_T_EVENT} WHERE type = '{NOT_AN_INCIDENT}'{notinc_agent}
),
allf AS NOT MATERIALIZED (
  SELECT x.incident_id AS id, {fact_cols}, x.recurrent FROM {_T_FACTS} x
  WHERE x.incident_id NOT IN (SELECT id FROM stale){agent_sql}
    AND x.incident_id NOT IN (SELECT incident_id FROM notinc)
  UNION ALL
  SELECT x.incident_id AS id, {fact_cols}, 0 AS recurrent FROM computed x
  WHERE x.incident_id NOT IN (SELECT incident_id FROM notinc){agent_sql}
),
stale_agents AS MATERIALIZED (SELECT DISTINCT agent_id FROM stale),
-- The rows of the agents with a stale row (none, usually: EXISTS is then checked once and the
-- rows are not read).
recf AS (
  SELECT id, agent_id, assumption, detected_at, reopened_at,
    CASE WHEN assumption IS NOT NULL THEN 1 ELSE 0 END AS eligible
  FROM allf WHERE EXISTS (SELECT 1 FROM stale_agents)
    AND agent_id IN (SELECT agent_id FROM stale_agents)
),{_recurrence_ctes(d, "recf")},
facts AS (
  SELECT r.id, r.agent_id, r.detected_at, r.contained_at, r.classified_at, r.reopened_at,
    r.ttc, r.ttcl, r.ttr, r.assumption,
    CASE WHEN r.reopened_at IS NULL THEN NULL
         WHEN ({required}) = 0 THEN 1.0
         ELSE {d.as_float(f"({evidenced})")} / ({required}) END AS completeness,
    r.reopened_without_change,
    r.decisions, r.reopening_decisions, r.override_decisions, r.explainable_decisions,
    COALESCE(rec.recurrent, r.recurrent) AS recurrent
  FROM allf r LEFT JOIN ver ON ver.id = r.pact_version_id
  LEFT JOIN recurrence rec ON rec.id = r.id{window_where}
)"""
    params: list[Any] = [
        *stale_params,
        *agent_params,  # notinc
        *agent_params,  # allf, from the table
        *agent_params,  # allf, computed
        *window_params,  # facts
    ]
    return sql, params


# ---------------------------------------------------------------- aggregation

_AGG_COLUMNS = (
    "incidents",
    "contained",
    "classified",
    "reopened",
    "completeness",
    "reopened_without_change",
    "decisions",
    "reopening_decisions",
    "override_decisions",
    "explainable_decisions",
    "recurrent",
)
_DURATION_COLUMNS = (
    ("time_to_containment", "ttc"),
    ("time_to_classification", "ttcl"),
    ("time_to_recovery", "ttr"),
)


def _aggregates(d: _Dialect) -> str:
    cols = [
        "COUNT(*)",
        "COUNT(contained_at)",
        "COUNT(classified_at)",
        "COUNT(reopened_at)",
        "AVG(completeness)",
        "SUM(reopened_without_change)",
        "SUM(decisions)",
        "SUM(reopening_decisions)",
        "SUM(override_decisions)",
        "SUM(explainable_decisions)",
        "SUM(recurrent)",
    ]
    if d.pg:
        # One sort per duration gives both percentiles.
        fractions = ", ".join(str(p) for _, p in PERCENTILES)
        for _, col in _DURATION_COLUMNS:
            cols.append(f"percentile_cont(ARRAY[{fractions}]) WITHIN GROUP (ORDER BY {col})")
    return ", ".join(cols)


def _windows_cte(d: _Dialect, windows: Sequence[Window]) -> tuple[str, list[Any]]:
    rows = ", ".join("(%s, %s, %s)" for _ in windows)
    params: list[Any] = []
    for w in windows:
        params.extend([w.key, d.param(w.start or _MIN_TIME), d.param(w.end or _MAX_TIME)])
    return f"win(wkey, wstart, wend) AS (VALUES {rows})", params


def _percentile(values: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont computes it."""
    if not values:
        return None
    position = p * (len(values) - 1)
    low = math.floor(position)
    high = math.ceil(position)
    first = values[low]
    if high == low:
        return first
    return first + (values[high] - first) * (position - low)


def _round_seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _rate(numerator: int, denominator: int) -> dict[str, Any]:
    return {
        "value": (numerator / denominator) if denominator else None,
        "numerator": numerator,
        "denominator": denominator,
    }


def _metrics(row: dict[str, Any] | None, durations: dict[str, dict[str, float | None]]):
    row = row or dict.fromkeys(_AGG_COLUMNS)
    n = {k: int(row[k] or 0) for k in _AGG_COLUMNS if k != "completeness"}
    out: dict[str, Any] = {
        "time_to_containment": {
            **durations["time_to_containment"],
            "count": n["contained"],
            "uncontained": n["incidents"] - n["contained"],
        },
        "time_to_classification": {**durations["time_to_classification"], "count": n["classified"]},
        "time_to_recovery": {**durations["time_to_recovery"], "count": n["reopened"]},
        "evidence_completeness_at_reopen": {
            "value": float(row["completeness"]) if n["reopened"] else None,
            "count": n["reopened"],
        },
        "reopen_without_change_rate": _rate(n["reopened_without_change"], n["reopened"]),
        "override_rate": _rate(n["override_decisions"], n["reopening_decisions"]),
        "explainable_decision_rate": _rate(n["explainable_decisions"], n["decisions"]),
        "recurrence_rate": _rate(n["recurrent"], n["classified"]),
    }
    return out, n["incidents"]


@dataclass
class _Group:
    row: dict[str, Any] | None = None
    durations: dict[str, dict[str, float | None]] = field(
        default_factory=lambda: {
            name: {label: None for label, _ in PERCENTILES} for name, _ in _DURATION_COLUMNS
        }
    )


def compute_windows(
    windows: Sequence[Window],
    *,
    agent_id: int | None = None,
    per_agent: Iterable[int] = (),
    today: date | None = None,
) -> dict[tuple[int | None, str], dict[str, Any]]:
    """Metrics for every window, for one scope and optionally for each agent too.

    The scope is one agent (`agent_id`) or all agents (None); results are keyed
    `(agent_id or None, window key)`. With `per_agent` (ids of agents, only when `agent_id` is
    None), each of those agents gets its own entry `(id, window key)`, computed in the same
    statements. A fixed number of queries whatever the data size: 2 on PostgreSQL, 3 on SQLite,
    plus 4 for the counts now.
    """
    if not windows:
        return {}
    if len({w.key for w in windows}) != len(windows):
        raise ValueError("window keys must be unique")
    per_agent = list(per_agent) if agent_id is None else []
    d = _Dialect()
    lo = None if any(w.start is None for w in windows) else min(w.start for w in windows)
    hi = None if any(w.end is None for w in windows) else max(w.end for w in windows)
    facts, params = _facts_ctes(d, lo=lo, hi=hi, agent_id=agent_id)
    win, win_params = _windows_cte(d, windows)
    head = (
        f"WITH {facts},\n{win},\nfw AS (SELECT w.wkey, f.* FROM facts f JOIN win w ON "
        "f.detected_at >= w.wstart AND f.detected_at < w.wend)"
    )
    all_params = params + win_params

    groups: dict[tuple[int | None, str], _Group] = defaultdict(_Group)
    aggregates = _aggregates(d)
    selects = [f"SELECT wkey, NULL AS agent_id, {aggregates} FROM fw GROUP BY wkey"]
    if per_agent and d.pg:
        # Both groupings from one read of the rows (the overall rows have a NULL agent_id).
        selects = [
            f"SELECT wkey, agent_id, {aggregates} FROM fw "
            "GROUP BY GROUPING SETS ((wkey), (wkey, agent_id))"
        ]
    elif per_agent:
        selects.append(f"SELECT wkey, agent_id, {aggregates} FROM fw GROUP BY wkey, agent_id")
    scope_id = agent_id
    with d.cursor() as cursor:
        cursor.execute(f"{head}\n" + "\nUNION ALL\n".join(selects), all_params)
        for raw in cursor.fetchall():
            wkey, row_agent = raw[0], raw[1]
            key = (scope_id if row_agent is None else row_agent, wkey)
            group = groups[key]
            group.row = dict(zip(_AGG_COLUMNS, raw[2 : 2 + len(_AGG_COLUMNS)], strict=True))
            if d.pg:
                rest = iter(raw[2 + len(_AGG_COLUMNS) :])
                for name, _ in _DURATION_COLUMNS:
                    values = next(rest) or [None] * len(PERCENTILES)
                    for (label, _p), value in zip(PERCENTILES, values, strict=True):
                        group.durations[name][label] = _round_seconds(value)
        if not d.pg:
            _sqlite_percentiles(cursor, head, all_params, groups, scope_id, bool(per_agent))

    counts = counts_now(agent_id=agent_id, today=today)
    results: dict[tuple[int | None, str], dict[str, Any]] = {}
    scopes: list[int | None] = [agent_id, *per_agent]
    for scope in scopes:
        for w in windows:
            group = groups.get((scope, w.key)) or _Group()
            data, incidents = _metrics(group.row, group.durations)
            data.update(counts.get(scope) or counts_for_missing(scope))
            data["incident_count"] = incidents
            results[(scope, w.key)] = data
    return results


def _sqlite_percentiles(cursor, head, params, groups, scope_id, per_agent: bool) -> None:
    """SQLite has no percentile_cont: fetch only the durations, sorted, and interpolate."""
    union = "\nUNION ALL\n".join(
        f"SELECT wkey, agent_id, {i} AS m, {col} AS v FROM fw WHERE {col} IS NOT NULL"
        for i, (_, col) in enumerate(_DURATION_COLUMNS)
    )
    cursor.execute(f"{head}\n{union}\nORDER BY 3, 4", params)
    values: dict[tuple[int | None, str, int], list[float]] = defaultdict(list)
    for wkey, row_agent, m, v in cursor.fetchall():
        values[(scope_id, wkey, m)].append(float(v))
        if per_agent:
            values[(row_agent, wkey, m)].append(float(v))
    for (scope, wkey, m), series in values.items():
        name = _DURATION_COLUMNS[m][0]
        for label, p in PERCENTILES:
            groups[(scope, wkey)].durations[name][label] = _round_seconds(_percentile(series, p))


def compute_metrics(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    agent: Agent | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """The metrics of one scope (an agent, or all) over detections in [start, end)."""
    window = Window("custom", start, end)
    store_facts(agent_id=agent.pk if agent else None)
    data = compute_windows([window], agent_id=agent.pk if agent else None, today=today)[
        (agent.pk if agent else None, "custom")
    ]
    data["repair_overrides"] = {"count": repair_override_count(start, end, agent)}
    return with_context(data, window=window, agent_key=agent.key if agent else None)


def repair_override_count(start: datetime | None, end: datetime | None, agent: Agent | None) -> int:
    """`repaired` events marked override (a repair before an EU AI Act Art. 73 report was filed,
    taken by an incident manager with a justification) of the incidents detected in [start,
    end), not-incidents excluded: the other override of the lifecycle, counted beside
    `override_rate` (which counts reopening decisions)."""
    qs = Event.objects.filter(type="repaired", data__override=True).exclude(
        incident__state=NOT_AN_INCIDENT
    )
    if start is not None:
        qs = qs.filter(incident__detected_at__gte=start)
    if end is not None:
        qs = qs.filter(incident__detected_at__lt=end)
    if agent is not None:
        qs = qs.filter(incident__agent=agent)
    return qs.count()


def with_context(data: dict[str, Any], *, window: Window, agent_key: str | None) -> dict:
    """Add the keys that say what was computed (they follow the metrics, as section 7 allows)."""
    return {
        **data,
        "window": window.as_json(),
        "agent": agent_key,
        "units": {"durations": "seconds (float)", "rates": "fraction from 0 to 1 (float)"},
    }


# ---------------------------------------------------------------- counts now


def open_incidents(agent_id: int | None = None) -> QuerySet[Incident]:
    qs = Incident.objects.open()
    return qs if agent_id is None else qs.filter(agent_id=agent_id)


def unclassified_incidents(agent_id: int | None = None) -> QuerySet[Incident]:
    """Incidents with no `classified` event in their log (whatever their state), except those
    closed as not an incident."""
    classified = Event.objects.filter(incident=OuterRef("pk"), type="classified")
    if agent_id is None:
        return Incident.objects.filter(~Exists(classified)).exclude(state=NOT_AN_INCIDENT)
    # One agent's incidents: one index probe each, as a scalar subquery (PostgreSQL turns NOT
    # EXISTS into an anti-join that reads the `classified` events of every agent, which would
    # make one agent's refresh grow with all the others' data).
    first = Subquery(classified.order_by().values("incident")[:1])  # in the (type, incident) index
    return (
        Incident.objects.filter(agent_id=agent_id)
        .alias(classified_event=first)
        .filter(classified_event__isnull=True)
        .exclude(state=NOT_AN_INCIDENT)
    )


def stale_pact_versions(agent_id: int | None = None, today: date | None = None):
    qs = PactVersion.objects.stale(today)
    return qs if agent_id is None else qs.filter(pact__agent_id=agent_id)


def restricted_agents(agent_id: int | None = None) -> QuerySet[Agent]:
    qs = Agent.objects.restricted()
    return qs if agent_id is None else qs.filter(pk=agent_id)


def counts_now(
    *, agent_id: int | None = None, today: date | None = None
) -> dict[int | None, dict[str, int]]:
    """The four counts now, for the scope (key `agent_id` or None) and each agent; 4 queries."""

    def by_agent(qs, field_name: str) -> dict[int, int]:
        return dict(qs.order_by().values_list(field_name).annotate(n=Count("pk")))

    open_ = by_agent(open_incidents(agent_id), "agent_id")
    unclassified = by_agent(unclassified_incidents(agent_id), "agent_id")
    stale = by_agent(stale_pact_versions(agent_id, today), "pact__agent_id")
    restricted = set(restricted_agents(agent_id).values_list("pk", flat=True))
    out: dict[int | None, dict[str, int]] = {}
    for aid in set(open_) | set(unclassified) | set(stale) | restricted:
        out[aid] = {
            "unclassified_count": unclassified.get(aid, 0),
            "open_count": open_.get(aid, 0),
            "stale_pacts": stale.get(aid, 0),
            "restricted_agents": 1 if aid in restricted else 0,
        }
    total = {
        "unclassified_count": sum(unclassified.values()),
        "open_count": sum(open_.values()),
        "stale_pacts": sum(stale.values()),
        "restricted_agents": len(restricted),
    }
    if agent_id is None:
        out[None] = total
    else:
        out[agent_id] = total
    return out


def counts_for_missing(_scope: int | None) -> dict[str, int]:
    return dict.fromkeys(COUNT_METRICS, 0)


# ---------------------------------------------------------------- drill-down

# What each tile counts, as a condition on the `facts` row, and the value shown per incident.
DRILLDOWN: dict[str, dict[str, tuple[str, str, str | None]]] = {
    # metric: {part: (label, condition on facts f, value column or None)}
    "incident_count": {"count": ("Incidents detected", "1 = 1", None)},
    "time_to_containment": {
        "count": ("Contained incidents", "f.contained_at IS NOT NULL", "f.ttc"),
        "uncontained": ("Incidents not contained", "f.contained_at IS NULL", None),
    },
    "time_to_classification": {
        "count": ("Classified incidents", "f.classified_at IS NOT NULL", "f.ttcl"),
    },
    "time_to_recovery": {
        "count": ("Incidents whose scope was reopened", "f.reopened_at IS NOT NULL", "f.ttr"),
    },
    "evidence_completeness_at_reopen": {
        "count": ("Reopened incidents", "f.reopened_at IS NOT NULL", "f.completeness"),
    },
    "reopen_without_change_rate": {
        "numerator": (
            "Reopened with no operating-model change at or before reopening",
            "f.reopened_without_change = 1",
            None,
        ),
        "denominator": ("Reopened incidents", "f.reopened_at IS NOT NULL", None),
    },
    "override_rate": {
        "numerator": (
            "Incidents with reopening decisions marked override",
            "f.override_decisions > 0",
            "f.override_decisions",
        ),
        "denominator": (
            "Incidents with reopening decisions",
            "f.reopening_decisions > 0",
            "f.reopening_decisions",
        ),
    },
    "explainable_decision_rate": {
        "numerator": (
            "Incidents with decisions another stakeholder can explain",
            "f.explainable_decisions > 0",
            "f.explainable_decisions",
        ),
        "denominator": ("Incidents with decisions", "f.decisions > 0", "f.decisions"),
    },
    "recurrence_rate": {
        "numerator": ("Recurrences", "f.recurrent = 1", None),
        "denominator": ("Classified incidents", "f.classified_at IS NOT NULL", None),
    },
}


def drilldown_rows(
    metric: str,
    part: str,
    *,
    window: Window,
    agent_id: int | None,
    limit: int,
    offset: int,
) -> tuple[int, list[tuple[int, float | None]]]:
    """The incidents behind a windowed metric's numerator or denominator, newest first.

    Returns (total, [(incident id, value)]) in one query, from the same `facts` SQL as the
    metric itself, so the list always adds up to the figure.
    """
    _label, condition, value = DRILLDOWN[metric][part]
    d = _Dialect()
    facts, params = _facts_ctes(d, lo=window.start, hi=window.end, agent_id=agent_id)
    sql = (
        f"WITH {facts}\nSELECT f.id, {value or 'NULL'}, COUNT(*) OVER () FROM facts f "
        f"WHERE {condition} ORDER BY f.detected_at DESC, f.id DESC LIMIT %s OFFSET %s"
    )
    with d.cursor() as cursor:
        cursor.execute(sql, [*params, limit, offset])
        rows = cursor.fetchall()
    if not rows:
        # Past the last page the window count is absent; a second query tells the total.
        total = 0
        if offset:
            with d.cursor() as cursor:
                cursor.execute(
                    f"WITH {facts}\nSELECT COUNT(*) FROM facts f WHERE {condition}", params
                )
                total = cursor.fetchone()[0]
        return total, []
    total = int(rows[0][2])
    return total, [(r[0], None if r[1] is None else float(r[1])) for r in rows]

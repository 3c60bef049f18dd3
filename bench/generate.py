"""Generate a realistic TrustDesk data set by bulk inserts (PostgreSQL COPY), for the benchmark.

    python -m bench.generate --database td_bench --incidents 100000

Drops and recreates the database, migrates it, then writes agents, pacts, evaluations and
incidents with their event logs (about ten events per incident). The events' `hash`, `prev_hash`
and `canonical` columns are unique PLACEHOLDERS (hex "be..." hashes, a canonical text that says it
is bench data): the metrics never read them, and generating real chains would only measure
SHA-256. `verify_chain` on this database therefore reports every chain broken, by design. The
events are then numbered into the transparency log in bulk (one set-based statement per tree
level, `tlog.index_unindexed_events`), as the migration that introduced the log does.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
FLUSH_EVERY = 50_000  # incidents built in memory before they are copied in

ASSUMPTIONS = [
    "capability",
    "authority",
    "tool_use",
    "input_integrity",
    "context_integrity",
    "data_handling",
    "safety",
    "honesty",
    "reliability",
    "drift",
    "oversight",
    "measurement",
]
KINDS = [
    "transcript",
    "tool_calls",
    "evaluation_result",
    "alert",
    "impact_assessment",
    "config_snapshot",
    "other",
]
STAGES = [
    "detected",
    "contained",
    "evidence_preserved",
    "classified",
    "repaired",
    "in_review",
    "recovered",
    "closed_restricted",
]
STAGE_WEIGHTS = [3, 5, 5, 7, 5, 10, 50, 15]
SEVERITIES = (["sev1"] * 5) + (["sev2"] * 20) + (["sev3"] * 45) + (["sev4"] * 30)
OPERATORS = ["ana", "ben", "chloe", "dev", "eli", "fatima"]
DECIDERS = ["rita", "rosa", "ivan", "ines"]
ZERO = "0" * 64
PLACEHOLDER = '{"bench":"placeholder: not a real hash chain"}'


def database_url(name: str) -> str:
    return f"{BASE_URL}/{name}"


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": database_url(name)}
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def _minutes(rng: random.Random, median: float, sigma: float = 1.0) -> timedelta:
    return timedelta(minutes=rng.lognormvariate(math.log(median), sigma))


class IncidentBuilder:
    """One incident's life as events, time-ordered, never past `now`."""

    def __init__(self, rng: random.Random, now: datetime, favourite: list[str], required):
        self.rng, self.now, self.favourite, self.required = rng, now, favourite, required
        self.events: list[tuple[str, datetime, dict, str]] = []
        self.milestones: dict[str, datetime] = {}
        self.t: datetime | None = None

    def add(self, type_: str, delay: timedelta, data: dict, by: str) -> bool:
        at = self.t + delay
        if at > self.now - timedelta(minutes=1):
            return False
        self.t = at
        self.events.append((type_, at, data, by))
        self.milestones.setdefault(type_, at)
        return True

    def build(self, detected: datetime) -> tuple[str, dict]:
        """Returns the state reached and the classification data."""
        rng = self.rng
        stage = rng.choices(STAGES, STAGE_WEIGHTS)[0]
        goal = STAGES.index(stage)
        self.t = detected
        self.events.append(("detected", detected, {}, "monitor"))
        self.milestones["detected"] = detected
        state = "detected"
        op = rng.choice(OPERATORS)
        info: dict = {}

        def reached(i: int, name: str) -> bool:
            nonlocal state
            if goal >= i:
                state = name
                return True
            return False

        if goal >= 1:
            action = rng.choice(["restrict", "suspend", "rollback", "kill_switch"])
            scope = "suspended" if action in ("suspend", "kill_switch") else "restricted"
            if not self.add(
                "contained", _minutes(rng, 15), {"action": action, "scope_after": scope}, op
            ):
                return state, info
            state = "contained"
            info["scope_after"] = scope
            if rng.random() < 0.1:
                self.add(
                    "contained",
                    _minutes(rng, 30),
                    {"action": "suspend", "scope_after": "suspended"},
                    op,
                )
            kinds = [k for k in self.required if rng.random() < 0.85]
            kinds += [k for k in KINDS if k not in self.required and rng.random() < 0.15]
            for kind in kinds:
                self.add(
                    "evidence_added",
                    _minutes(rng, 20),
                    {"kind": kind, "sha256": "b" * 64, "description": f"bench {kind}"},
                    op,
                )
            if rng.random() < 0.5:
                self.add("note", _minutes(rng, 10), {"text": "bench note", "internal": True}, op)
        if reached(2, "evidence_preserved"):
            gaps = [k for k in self.required if k not in {e[2].get("kind") for e in self.events}]
            if not self.add(
                "evidence_preserved",
                _minutes(rng, 30),
                {"acknowledged_gaps": gaps, "reason": "bench"},
                op,
            ):
                return "contained", info
        if reached(3, "classified"):
            assumption = (
                rng.choice(self.favourite) if rng.random() < 0.7 else rng.choice(ASSUMPTIONS)
            )
            if not self.add(
                "classified",
                _minutes(rng, 120),
                {"assumption": assumption, "statement": "bench", "clauses": []},
                op,
            ):
                return "evidence_preserved", info
            info["assumption"] = assumption
        if reached(4, "repaired") and not self.add(
            "repaired", _minutes(rng, 600), {"summary": "bench", "reference": "PR-1"}, op
        ):
            return "classified", info
        change_after = False
        if reached(5, "in_review"):
            change_after = rng.random() < 0.12
            if rng.random() < 0.88 and not change_after:
                self.add(
                    "operating_model_changed",
                    _minutes(rng, 240),
                    {"kind": "control_added", "summary": "bench"},
                    "rita",
                )
            self.add(
                "reentry_condition_set",
                _minutes(rng, 30),
                {"kind": "signoffs", "params": {}, "statement": "bench"},
                "rita",
            )
            if not self.add("review_requested", _minutes(rng, 60), {}, op):
                return "repaired", info
        if goal >= 6:
            recovered = stage == "recovered"
            decision = (
                rng.choice(["reopen_full", "reopen_partial"])
                if recovered
                else rng.choice(["keep_restricted"] * 4 + ["retire"])
            )
            decider = rng.choice(DECIDERS)
            override = recovered and rng.random() < 0.15
            if not self.add(
                "decision_recorded",
                _minutes(rng, 1440),
                {
                    "decision": decision,
                    "scope_after": "full" if recovered else "restricted",
                    "rationale": "bench",
                    "override": override,
                    "justification": "bench" if override else "",
                },
                decider,
            ):
                return "in_review", info
            seq = len(self.events)
            for _ in range(rng.choice([0, 1, 1, 2])):
                by = (
                    decider
                    if rng.random() < 0.1
                    else rng.choice([d for d in DECIDERS if d != decider])
                )
                self.add(
                    "attested",
                    _minutes(rng, 60),
                    {"decision_seq": seq, "can_explain": rng.random() < 0.85, "comment": "bench"},
                    by,
                )
            if recovered:
                if not self.add("reopened", _minutes(rng, 30), {"scope_after": "full"}, decider):
                    return "in_review", info
                state = "recovered"
                info["scope_after"] = "full"
                if change_after:
                    self.add(
                        "operating_model_changed",
                        _minutes(rng, 60),
                        {"kind": "monitoring_added", "summary": "late"},
                        "rita",
                    )
                if rng.random() < 0.05:
                    self.add(
                        "evidence_added",
                        _minutes(rng, 60),
                        {"kind": "impact_assessment", "sha256": "c" * 64, "description": "late"},
                        op,
                    )
            else:
                if not self.add("closed", _minutes(rng, 30), {"outcome": decision}, decider):
                    return "in_review", info
                state = "closed_restricted"
        return state, info


def _row(model, values: dict) -> tuple:
    """A COPY row for `model`: given values, else the field's default, else NULL if allowed."""
    row = []
    for f in model._meta.concrete_fields:
        if f.column in values:
            v = values[f.column]
        elif f.has_default():
            v = f.get_default()
        elif f.null:
            v = None
        else:
            v = ""
        if isinstance(v, dict | list):
            v = json.dumps(v)
        row.append(v)
    return tuple(row)


def _copy(cursor, model, rows) -> None:
    cols = ", ".join(f'"{f.column}"' for f in model._meta.concrete_fields)
    with cursor.copy(f'COPY "{model._meta.db_table}" ({cols}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def populate(n_incidents: int, *, seed: int = 7, n_agents: int = 20, days: int = 365) -> dict:
    """Fill the current database (Django must be set up). Returns counts and timings."""
    from django.db import connection, transaction

    from tests.factories import make_pact_version
    from trustdesk.incidents.models import Event, Incident
    from trustdesk.pacts.models import Agent, Evaluation

    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.monotonic()
    agents, versions, favourites, weights = [], [], [], []
    clause_template = {
        "statement": "bench clause",
        "assumption": "capability",
        "metric": "quality",
        "objective": {"op": ">=", "target": "0.9"},
        "window": "7d",
        "evaluation": {"method": "automated", "source": "bench"},
    }
    with transaction.atomic():
        for i in range(n_agents):
            agent = Agent.objects.create(
                key=f"bench-agent-{i:02d}", name=f"Bench agent {i:02d}", owner="bench"
            )
            required = rng.sample(KINDS[:5], rng.randint(0, 4))
            version = make_pact_version(
                agent=agent,
                pact_key=f"bench-pact-{i:02d}",
                evidence_required=required,
                clauses=[
                    {**clause_template, "key": "quality", "on_breach": "restrict"},
                    {**clause_template, "key": "limit", "window": "12h", "on_breach": "suspend"},
                ],
                last_reviewed=date.today() - timedelta(days=rng.choice([5, 20, 45])),
            )
            agents.append(agent)
            versions.append((version, required))
            favourites.append(rng.sample(ASSUMPTIONS, 3))
            # Agents come in groups of 20 with the same spread of sizes, so that more agents
            # (a larger run) keep each agent about the size of its counterpart in a smaller one.
            weights.append(1 / (i % 20 + 1) ** 0.8)
            evaluations = []
            for clause in version.clauses.all():
                for h in range(0, 30 * 24, 6):
                    passed = rng.random() < 0.93
                    evaluations.append(
                        Evaluation(
                            clause=clause,
                            value=1 if passed else 0,
                            passed=passed,
                            measured_at=now - timedelta(hours=h),
                            source="bench",
                            external_id=f"{clause.pk}-{h}",
                        )
                    )
            Evaluation.objects.bulk_create(evaluations)

    incident_rows, event_rows, clause_rows = [], [], []
    event_id = 0
    through = Incident.clauses.through
    clause_ids = {v.pk: list(v.clauses.values_list("pk", flat=True)) for v, _ in versions}
    raw = connection.connection  # the psycopg connection under Django's
    copy_seconds = 0.0
    with transaction.atomic(), raw.cursor() as cursor:
        # The rows are consistent by construction: skip the per-row triggers (foreign keys, the
        # log's commit-time numbering); the log is built in bulk below.
        cursor.execute("SET LOCAL session_replication_role = replica")

        def flush() -> float:
            """COPY the rows built so far and forget them: memory stays bounded at a million
            incidents (about 11 million events)."""
            t = time.monotonic()
            _copy(cursor, Incident, incident_rows)
            _copy(cursor, Event, event_rows)
            with cursor.copy(
                f'COPY "{through._meta.db_table}" (incident_id, clause_id) FROM STDIN'
            ) as copy:
                for row in clause_rows:
                    copy.write_row(row)
            incident_rows.clear()
            event_rows.clear()
            clause_rows.clear()
            return time.monotonic() - t

        for number in range(1, n_incidents + 1):
            if number % FLUSH_EVERY == 0:
                copy_seconds += flush()
            index = rng.choices(range(n_agents), weights)[0]
            agent, (version, required) = agents[index], versions[index]
            detected = now - timedelta(seconds=rng.uniform(3600, days * 86400))
            life = IncidentBuilder(rng, now, favourites[index], required)
            state, info = life.build(detected)
            prev = ZERO
            for seq, (type_, at, data, by) in enumerate(life.events, start=1):
                event_id += 1
                # Hex, so the transparency log can hash it as 32 bytes; "be" marks bench data.
                digest = f"be{number:031d}{seq:031d}"
                event_rows.append(
                    _row(
                        Event,
                        {
                            "id": event_id,
                            "incident_id": number,
                            "seq": seq,
                            "type": type_,
                            "at": at,
                            "recorded_at": at,
                            "actor_name": by,
                            "data": data,
                            "prev_hash": prev,
                            "hash": digest,
                            "canonical": PLACEHOLDER,
                        },
                    )
                )
                prev = digest
            m = life.milestones
            incident_rows.append(
                _row(
                    Incident,
                    {
                        "id": number,
                        "number": number,
                        "key": f"INC-{number}",
                        "agent_id": agent.pk,
                        "pact_version_id": version.pk,
                        "title": f"Bench incident {number}",
                        "severity": rng.choice(SEVERITIES),
                        "state": state,
                        "assumption": info.get("assumption", ""),
                        "assumption_statement": "bench" if info.get("assumption") else "",
                        "version": len(life.events),
                        "detected_at": detected,
                        "contained_at": m.get("contained"),
                        "evidence_preserved_at": m.get("evidence_preserved"),
                        "classified_at": m.get("classified"),
                        "repaired_at": m.get("repaired"),
                        "review_requested_at": m.get("review_requested"),
                        "decided_at": m.get("decision_recorded"),
                        "reopened_at": m.get("reopened"),
                        "closed_at": m.get("closed"),
                        "scope_after": info.get("scope_after", ""),
                        "event_count": len(life.events),
                        "last_hash": prev,
                        "created_at": detected,
                    },
                )
            )
            for cid in clause_ids[version.pk][:1]:
                clause_rows.append((number, cid))
        copy_seconds += flush()
        for model in (Incident, Event):
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT MAX(id) FROM {table}))"
            )
    from trustdesk.incidents.state_counts import rebuild_counts

    with transaction.atomic():
        rebuild_counts()  # the rows were copied with the counting trigger off
    inserted = time.monotonic()
    built = inserted - copy_seconds  # building and copying interleave: split by their times
    from trustdesk.incidents.tlog import index_unindexed_events

    index_unindexed_events()
    logged = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {
        "incidents": n_incidents,
        "events": event_id,
        "agents": n_agents,
        "build_seconds": round(built - started, 1),
        "insert_seconds": round(inserted - built, 1),
        "log_seconds": round(logged - inserted, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="td_bench")
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--agents", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"(re)creating {args.database} and migrating it ...", flush=True)
    recreate_database(args.database)
    os.environ["DATABASE_URL"] = database_url(args.database)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trustdesk.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    print(json.dumps(populate(args.incidents, seed=args.seed, n_agents=args.agents)))


if __name__ == "__main__":
    main()

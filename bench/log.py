"""The transparency log benchmark (docs/design.md section 15). Prints every figure against its
budget.

    python -m bench.log                    # about 1,000,000 leaves (87,000 incidents)
    python -m bench.log --incidents 20000  # smaller, faster
    python -m bench.log --reuse            # keep the database of a previous run

Generates `td_bench_log` with bench.generate (bulk COPY, then the log numbered in bulk SQL, one
statement per tree level), then measures, at the generated size:
  - an inclusion proof and a consistency proof: server time through the /log endpoints (Django's
    test client: form, query, JSON), and the proof alone (tlog), over random indices and sizes;
  - a checkpoint: the root at the full size plus the Ed25519 signature;
  - appending an event (lock the incident, `journal.append_event`, commit: the primitive every
    step is built from, without the steps' own work such as metric refreshes) with the
    commit-time numbering trigger enabled against the same with it disabled, in alternating
    batches, so the difference is what the log adds to an append;
  - `manage.py verify_log` over the whole log, for scale.
Budgets: each proof under 20 ms server time; an append under 2 ms more than without the log.
Needs PostgreSQL (BENCH_POSTGRES, default postgres://postgres@127.0.0.1:5432). Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "td_bench_log"
# 1,000,000 leaves at about 11.5 events per generated incident.
DEFAULT_INCIDENTS = 87_000
PROOF_BUDGET_MS = 20.0
APPEND_BUDGET_MS = 2.0


def _setup(database: str) -> None:
    from bench.generate import database_url

    os.environ["DATABASE_URL"] = database_url(database)
    os.environ["DJANGO_SETTINGS_MODULE"] = "trustdesk.settings"
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _ms(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {
        "p50": round(statistics.median(samples) * 1000, 2),
        "p95": round(samples[int(len(samples) * 0.95) - 1] * 1000, 2),
        "max": round(samples[-1] * 1000, 2),
        "n": len(samples),
    }


def _timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def measure_proofs(rounds: int, rng: random.Random) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from trustdesk.incidents import tlog

    size = tlog.tree_size()
    user, _ = get_user_model().objects.get_or_create(
        username="bench-log-reader", defaults={"is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    client.get("/log/checkpoint")  # the checkpoint exists before the proofs are timed

    def get(url: str) -> None:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:200])

    from django.test import override_settings

    inclusion, consistency, inclusion_alone, consistency_alone, bare = [], [], [], [], []
    # bench.urls adds a bare view behind the same middleware and login: what any request costs
    # on this machine at this moment, measured in the same rounds.
    with override_settings(ROOT_URLCONF="bench.urls"):
        for _ in range(rounds):
            index = rng.randrange(size)
            old = rng.randrange(1, size)
            bare.append(_timed(get, "/bench/bare/"))
            inclusion.append(_timed(get, f"/log/proof/inclusion?index={index}&size={size}"))
            consistency.append(_timed(get, f"/log/proof/consistency?from={old}&to={size}"))
            inclusion_alone.append(_timed(tlog.inclusion_proof, index, size))
            consistency_alone.append(_timed(tlog.consistency_proof, old, size))
    return {
        "size": size,
        "bare_view_ms": _ms(bare),
        "inclusion_endpoint_ms": _ms(inclusion),
        "consistency_endpoint_ms": _ms(consistency),
        "inclusion_tlog_ms": _ms(inclusion_alone),
        "consistency_tlog_ms": _ms(consistency_alone),
    }


def measure_checkpoint() -> dict:
    from trustdesk.diligence.checkpoints import checkpoint_text, log_origin, signed_note
    from trustdesk.incidents import tlog

    size = tlog.tree_size()

    def sign() -> None:
        signed_note(checkpoint_text(log_origin(), size, tlog.root_at(size)), log_origin())

    sign()
    return {"checkpoint_ms": _ms([_timed(sign) for _ in range(20)])}


def measure_append(batches: int, per_batch: int) -> dict:
    """Alternating batches of appends without and with the numbering trigger; the events of a
    batch without it are numbered in bulk before the next batch, so the log stays in id order."""
    from django.db import connection

    from trustdesk.incidents import journal, tlog
    from trustdesk.incidents.models import Incident

    incidents = list(Incident.objects.order_by("-number")[:per_batch])
    off, on = [], []

    def trigger(enabled: bool) -> None:
        with connection.cursor() as cursor:
            state = "ENABLE" if enabled else "DISABLE"
            cursor.execute(f"ALTER TABLE incidents_event {state} TRIGGER {tlog.TRIGGER_NAME}")

    try:
        for batch in range(batches):
            for enabled, samples in ((False, off), (True, on)):
                trigger(enabled)
                for n, incident in enumerate(incidents):
                    data = {"text": f"bench append {batch}/{n}", "internal": True}
                    started = time.perf_counter()
                    with journal.locked_incident(incident) as inc:
                        journal.append_event(inc, type="note", by=None, data=data)
                    samples.append(time.perf_counter() - started)
                if not enabled:
                    tlog.index_unindexed_events()
    finally:
        trigger(True)
    return {
        "append_without_log_ms": _ms(off),
        "append_with_log_ms": _ms(on),
        "append_extra_ms_p50": round((statistics.median(on) - statistics.median(off)) * 1000, 3),
        "append_extra_ms_mean": round((statistics.fmean(on) - statistics.fmean(off)) * 1000, 3),
    }


def measure_verify_log() -> dict:
    from trustdesk.diligence.checkpoints import verify_log

    started = time.perf_counter()
    summary, problems = verify_log()
    return {
        "verify_log_seconds": round(time.perf_counter() - started, 1),
        "verify_log_problems": problems,
        "verify_log_summary": summary,
    }


def report(generated: dict | None, figures: dict) -> str:
    inc, con = figures["inclusion_endpoint_ms"], figures["consistency_endpoint_ms"]
    extra = figures["append_extra_ms_mean"]

    def verdict(ok: bool) -> str:
        return "within budget" if ok else "OVER BUDGET"

    lines = ["Transparency log benchmark (docs/design.md section 15)", ""]
    if generated:
        lines.append(
            f"generated {generated['incidents']:,} incidents, {generated['events']:,} events: "
            f"rows built in {generated['build_seconds']} s, copied in "
            f"{generated['insert_seconds']} s, tree built in bulk SQL in "
            f"{generated['log_seconds']} s"
        )
    lines += [
        f"tree size: {figures['size']:,} leaves; load average while measuring: "
        f"{figures['load_average']}",
        "",
        f"inclusion proof, GET /log/proof/inclusion (server time): p50 {inc['p50']} ms, "
        f"p95 {inc['p95']} ms, max {inc['max']} ms over {inc['n']} random leaves "
        f"(budget {PROOF_BUDGET_MS} ms: {verdict(inc['p95'] < PROOF_BUDGET_MS)})",
        f"    the proof alone (tlog.inclusion_proof): p50 "
        f"{figures['inclusion_tlog_ms']['p50']} ms, p95 {figures['inclusion_tlog_ms']['p95']} ms",
        f"consistency proof, GET /log/proof/consistency (server time): p50 {con['p50']} ms, "
        f"p95 {con['p95']} ms, max {con['max']} ms over {con['n']} random sizes "
        f"(budget {PROOF_BUDGET_MS} ms: {verdict(con['p95'] < PROOF_BUDGET_MS)})",
        f"    the proof alone (tlog.consistency_proof): p50 "
        f"{figures['consistency_tlog_ms']['p50']} ms, "
        f"p95 {figures['consistency_tlog_ms']['p95']} ms",
        f"a bare view behind the same middleware and login, same rounds: p50 "
        f"{figures['bare_view_ms']['p50']} ms, p95 {figures['bare_view_ms']['p95']} ms "
        "(what any request costs on this machine at the time)",
        f"checkpoint (root at full size + Ed25519 signature): p50 "
        f"{figures['checkpoint_ms']['p50']} ms",
        "",
        f"append an event (lock, append_event, commit): without the log p50 "
        f"{figures['append_without_log_ms']['p50']} ms, with it p50 "
        f"{figures['append_with_log_ms']['p50']} ms",
        f"    the log adds {extra} ms on average ({figures['append_extra_ms_p50']} ms at the "
        f"median) per append (budget {APPEND_BUDGET_MS} ms: "
        f"{verdict(extra < APPEND_BUDGET_MS)})",
        "",
        f"manage.py verify_log over the whole log: {figures['verify_log_seconds']} s "
        f"({'holds' if not figures['verify_log_problems'] else figures['verify_log_problems']})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=DEFAULT_INCIDENTS)
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--reuse", action="store_true", help="keep an existing database")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    generated = None
    if not args.reuse:
        from bench.generate import recreate_database

        print(f"(re)creating {args.database} and generating {args.incidents:,} incidents ...")
        recreate_database(args.database)
    _setup(args.database)
    if not args.reuse:
        from bench.generate import populate

        generated = populate(args.incidents)
    rng = random.Random(15)
    figures = {"load_average": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    figures |= measure_proofs(args.rounds, rng)
    figures |= measure_checkpoint()
    figures |= measure_append(batches=5, per_batch=40)
    figures |= measure_verify_log()
    print(report(generated, figures))
    if args.json:
        print(json.dumps({"generated": generated, **figures}))


if __name__ == "__main__":
    main()

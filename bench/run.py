"""The TrustDesk benchmark (docs/design.md section 9). Prints every figure.

    python -m bench.run                       # 100,000 incidents (about 1.1 million events)
    python -m bench.run --incidents 20000     # smaller, faster
    python -m bench.run --reuse               # keep the generated databases of a previous run
    python -m bench.run --scale-incidents 1000000   # and the computation at 1 M incidents, growth

Phases, each in its own process so each has its own DATABASE_URL:
  compute  (td_bench, N incidents)     full recompute, one agent's refresh, the floor (one
                                       sequential aggregate scan of the events), a naive
                                       per-object Python computation on a 5,000-incident sample
  web      (td_bench_web, 10,000)      dashboard and incident list server time vs a bare view
  worker   (td_bench)                  a real Celery worker on Redis: event -> agent snapshot
                                       latency over 50 events
Needs PostgreSQL (BENCH_POSTGRES, default postgres://postgres@127.0.0.1:5432) and Redis
(REDIS_URL, default redis://127.0.0.1:6379/0), both on this machine. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def _setup(database: str, *, redis: bool = False) -> None:
    from bench.generate import database_url

    os.environ["DATABASE_URL"] = database_url(database)
    os.environ["DJANGO_SETTINGS_MODULE"] = "trustdesk.settings"
    if redis:
        os.environ["REDIS_URL"] = REDIS
    else:
        os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # a reused database may predate a migration


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


# ---------------------------------------------------------------- phase: compute


def phase_compute(database: str, sample: int) -> dict:
    _setup(database)
    from django.db import connection, transaction
    from django.db.models import Count
    from django.utils import timezone

    from bench.naive import naive_metrics
    from trustdesk.incidents.models import Event, Incident
    from trustdesk.metrics import refresh
    from trustdesk.metrics.compute import compute_metrics, compute_windows, refresh_facts
    from trustdesk.metrics.models import IncidentFacts
    from trustdesk.pacts.models import Agent

    out: dict = {"incidents": Incident.objects.count(), "events": Event.objects.count()}

    def floor():
        with connection.cursor() as c:
            c.execute("SELECT COUNT(*), MIN(at), MAX(at) FROM incidents_event")
            c.fetchall()

    def floor_grouped():
        with connection.cursor() as c:
            c.execute("SELECT incident_id, COUNT(*) FROM incidents_event GROUP BY incident_id")
            c.fetchall()

    def floor_one_process():
        with transaction.atomic(), connection.cursor() as c:
            c.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            c.execute("SELECT COUNT(*), MIN(at), MAX(at) FROM incidents_event")
            c.fetchall()

    out["floor_s"] = _best(floor)
    out["floor_one_process_s"] = _best(floor_one_process)
    out["floor_grouped_s"] = _best(floor_grouped)
    # The per-incident facts table (IncidentFacts): the cost of computing every row from the
    # events (a cold start, e.g. right after the migration), then of finding nothing stale.
    IncidentFacts.objects.all().delete()
    t = time.perf_counter()
    compute_metrics()  # computes every row from the events and writes them back
    out["all_time_cold_s"] = time.perf_counter() - t
    IncidentFacts.objects.all().delete()
    t = time.perf_counter()
    out["facts_rows"] = refresh_facts()
    out["facts_build_s"] = time.perf_counter() - t
    # What autovacuum does soon after a bulk write: the freshness check reads the facts rows'
    # (agent, event_count) index alone only once the visibility map marks their pages.
    with connection.cursor() as c:
        c.execute("VACUUM ANALYZE metrics_incidentfacts")
    out["facts_check_s"] = _best(refresh_facts)
    out["all_time_compute_s"] = _best(lambda: compute_metrics())
    agents = list(Agent.objects.values_list("pk", flat=True))
    windows = refresh.snapshot_windows(timezone.now())
    out["all_snapshots_compute_s"] = _best(lambda: compute_windows(windows, per_agent=agents))
    out["full_recompute_s"] = _best(lambda: refresh.recompute_all(), repeat=2)
    sizes = sorted(
        Incident.objects.order_by().values_list("agent_id").annotate(n=Count("pk")),
        key=lambda r: r[1],
    )
    median_agent, median_n = sizes[len(sizes) // 2]
    largest_agent, largest_n = sizes[-1]
    out["agent_refresh_median_s"] = _best(lambda: refresh.refresh_agent(median_agent))
    out["agent_refresh_median_incidents"] = median_n
    out["agent_refresh_largest_s"] = _best(lambda: refresh.refresh_agent(largest_agent))
    out["agent_refresh_largest_incidents"] = largest_n
    out["overall_refresh_s"] = _best(lambda: refresh.refresh_overall(), repeat=2)

    # The naive per-object computation on the first `sample` incidents by detection time.
    edges = list(
        Incident.objects.order_by("detected_at").values_list("detected_at", flat=True)[: sample + 1]
    )
    start, end = edges[0], edges[-1]
    t = time.perf_counter()
    naive = naive_metrics(start, end)
    out["naive_sample_s"] = time.perf_counter() - t
    sql = compute_metrics(start=start, end=end)
    out["naive_sample_incidents"] = Incident.objects.filter(
        detected_at__gte=start, detected_at__lt=end
    ).count()
    mismatches = [k for k, v in naive.items() if _differs(v, sql[k])]
    out["naive_matches_sql"] = not mismatches
    out["naive_mismatches"] = {k: (naive[k], sql[k]) for k in mismatches}
    out["sql_sample_s"] = _best(lambda: compute_metrics(start=start, end=end))
    out["naive_scaled_s"] = out["naive_sample_s"] * out["incidents"] / out["naive_sample_incidents"]
    return out


def _differs(a, b) -> bool:
    if isinstance(a, dict):
        return any(_differs(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) > 1e-9 * max(1.0, abs(a))
    return a != b


# ---------------------------------------------------------------- phase: web


def phase_web(database: str, rounds: int) -> dict:
    _setup(database)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    from trustdesk.incidents.models import Incident
    from trustdesk.metrics import refresh

    refresh.recompute_all()
    user, _ = get_user_model().objects.get_or_create(username="bench-viewer")
    user.groups.add(Group.objects.get(name="viewer"))
    client = Client()
    client.force_login(user)
    out: dict = {"incidents": Incident.objects.count()}
    pages = {
        "bare": "/bench/bare/",
        "shell": "/bench/shell/",
        "dashboard": "/?window=90d",
        "incident_list": "/incidents/",
    }
    with override_settings(ROOT_URLCONF="bench.urls", ALLOWED_HOSTS=["testserver"]):
        for name, path in pages.items():
            for _ in range(3):  # warm up caches and connections
                response = client.get(path)
            assert response.status_code == 200, (name, response.status_code)
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                client.get(path)
                times.append(time.perf_counter() - t)
            with CaptureQueriesContext(connection) as queries:
                client.get(path)
            out[name] = {
                "median_ms": statistics.median(times) * 1000,
                "queries": len(queries.captured_queries),
            }
    return out


# ---------------------------------------------------------------- phase: worker


def phase_worker(database: str, events: int) -> dict:
    _setup(database, redis=True)
    from django.db.models import Count
    from django.utils import timezone

    from trustdesk.celery import app
    from trustdesk.incidents.journal import open_incident
    from trustdesk.incidents.models import Incident
    from trustdesk.metrics import refresh
    from trustdesk.metrics.models import MetricSnapshot
    from trustdesk.pacts.models import Agent

    sizes = sorted(
        Incident.objects.order_by().values_list("agent_id").annotate(n=Count("pk")),
        key=lambda r: r[1],
    )
    agent = Agent.objects.get(pk=sizes[len(sizes) // 2][0])
    version = agent.pacts.first().versions.get(status="active")
    refresh.recompute_all()
    queue = f"bench-{os.getpid()}"
    log = open(ROOT / "bench" / "worker.log", "w")  # noqa: SIM115
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "trustdesk",
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
            "-Q",
            queue,
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env={**os.environ},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    app.conf.task_always_eager = False
    app.conf.broker_url = REDIS
    app.conf.task_default_queue = queue
    latencies = []
    try:
        deadline = time.monotonic() + 60
        while "ready." not in (ROOT / "bench" / "worker.log").read_text():
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the worker did not start: see bench/worker.log")
            time.sleep(0.2)

        def count() -> int:
            data = (
                MetricSnapshot.objects.filter(scope=agent.key, window="7d")
                .values_list("data", flat=True)
                .first()
            )
            return data["incident_count"] if data else -1

        expected = count()
        for i in range(events):
            t = time.perf_counter()
            open_incident(
                agent=agent,
                by=None,
                title=f"Bench latency {i}",
                severity="sev4",
                detected_at=timezone.now() - timezone.timedelta(seconds=30),
                pact_version=version,
            )
            expected += 1
            while count() < expected:
                if time.perf_counter() - t > 30:
                    raise RuntimeError(f"event {i} not reflected within 30 s")
                time.sleep(0.005)
            latencies.append(time.perf_counter() - t)
            time.sleep(0.25 + (i % 5) * 0.1)  # events arrive at an irregular pace
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    latencies.sort()
    return {
        "agent": agent.key,
        "agent_incidents": sizes[len(sizes) // 2][1],
        "events": len(latencies),
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[max(0, round(0.95 * len(latencies)) - 1)] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


# ---------------------------------------------------------------- orchestration


def _child(phase: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--phase", phase, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"phase {phase} failed")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _generate(database: str, incidents: int, agents: int = 20) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.generate",
            "--database",
            database,
            "--incidents",
            str(incidents),
            "--agents",
            str(agents),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _web_lines(w: dict) -> list[str]:
    lines = [f"Web, {w['incidents']:,} incidents (server time, Django test client, median):"]
    bare, shell = w["bare"]["median_ms"], w["shell"]["median_ms"]
    for name in ("bare", "shell", "dashboard", "incident_list"):
        r = w[name]
        ratios = ""
        if name in ("dashboard", "incident_list"):
            ratios = (
                f"  {r['median_ms'] / bare:.1f}x the bare view, {r['median_ms'] / shell:.1f}x the "
                "empty page shell (target <= 3x)"
            )
        lines.append(f"  {name:<14} {r['median_ms']:7.1f} ms  {r['queries']:2d} queries{ratios}")
    return lines


def report(gen: dict | None, c: dict, w: dict, k: dict, w_full: dict | None = None) -> str:
    ratio = c["all_time_compute_s"] / c["floor_s"]
    same = "yes" if c["naive_matches_sql"] else f"NO {c['naive_mismatches']}"
    lines = [
        f"TrustDesk benchmark (PostgreSQL, this machine: {os.cpu_count()} cores)",
        "",
        f"Data: {c['incidents']:,} incidents, {c['events']:,} events"
        + (f" (generated in {gen['build_seconds'] + gen['insert_seconds']:.0f} s)" if gen else ""),
        "",
        "Metrics computation",
        f"  all-time metrics, all incidents (manage.py metrics):  {c['all_time_compute_s']:.3f} s",
        f"  every snapshot, every scope (SQL only):              "
        f"{c['all_snapshots_compute_s']:.3f} s",
        f"  full recompute (snapshots + trust scores, written):   {c['full_recompute_s']:.3f} s",
        f"  one agent's refresh, median agent ({c['agent_refresh_median_incidents']:,} incidents):"
        f" {c['agent_refresh_median_s']:.3f} s",
        f"  one agent's refresh, largest agent ({c['agent_refresh_largest_incidents']:,} "
        f"incidents): {c['agent_refresh_largest_s']:.3f} s",
        f"  overall scope refresh:                                {c['overall_refresh_s']:.3f} s",
        f"  floor, one sequential aggregate scan of the events:   {c['floor_s']:.3f} s",
        f"  floor, grouped by incident:                           {c['floor_grouped_s']:.3f} s",
        f"  ratio all-time metrics / floor:  {ratio:.2f}x  (target <= 3x)",
        f"  ratio full recompute / floor:    {c['full_recompute_s'] / c['floor_s']:.2f}x  "
        "(target <= 3x)",
        "  (the floor scans with PostgreSQL's parallel workers, 3 processes on the 2 cores; in "
        f"one process, as the metric statements run, it is {c['floor_one_process_s']:.3f} s: "
        f"all-time {c['all_time_compute_s'] / c['floor_one_process_s']:.2f}x, full recompute "
        f"{c['full_recompute_s'] / c['floor_one_process_s']:.2f}x)",
        "  (the figures above read the per-incident facts table, which the workers and the",
        "  command bring up to date first; a row behind its incident's events is recomputed",
        "  from them inside the metric query. The floor is unchanged: one scan of the events)",
        f"  facts table built from the events ({c['facts_rows']:,} rows):    "
        f"{c['facts_build_s']:.3f} s",
        f"  facts table check when nothing changed:             {c['facts_check_s']:.3f} s",
        f"  all-time metrics with the facts table empty:         {c['all_time_cold_s']:.3f} s"
        f"  ({c['all_time_cold_s'] / c['floor_s']:.1f}x the floor; computes and stores every row)",
        "",
        f"Naive per-object Python, {c['naive_sample_incidents']:,}-incident sample: "
        f"{c['naive_sample_s']:.2f} s (SQL on the same sample {c['sql_sample_s']:.3f} s); "
        f"same figures as SQL: {same}",
        f"  scaled to {c['incidents']:,} incidents: {c['naive_scaled_s']:.1f} s; "
        f"SQL is {c['naive_scaled_s'] / c['all_time_compute_s']:.0f}x faster (target >= 20x)",
        "",
    ]
    lines += _web_lines(w)
    if w_full is not None:
        lines += _web_lines(w_full)
    lines.append(
        "  (bare: an HttpResponse behind the same middleware and role check; shell: base.html "
        "rendered with no content)"
    )
    lines += [
        "",
        f"Worker (real Celery worker on Redis, prefork x2): event -> snapshot of agent "
        f"{k['agent']} ({k['agent_incidents']:,} incidents), {k['events']} events:",
        f"  p50 {k['p50_ms']:.0f} ms, p95 {k['p95_ms']:.0f} ms, max {k['max_ms']:.0f} ms "
        "(target p95 < 1000 ms)",
    ]
    return "\n".join(lines)


GROWTH = (
    ("floor, one scan of the events", "floor_s", "linear"),
    ("all-time metrics", "all_time_compute_s", "linear"),
    ("every snapshot, every scope", "all_snapshots_compute_s", "linear"),
    ("full recompute", "full_recompute_s", "linear"),
    ("overall scope refresh", "overall_refresh_s", "linear"),
    ("facts table check, nothing changed", "facts_check_s", "linear"),
    ("one agent's refresh, median agent", "agent_refresh_median_s", "per agent's incidents"),
    ("one agent's refresh, largest agent", "agent_refresh_largest_s", "per agent's incidents"),
)


PAGE_GROWTH = ("bare", "shell", "dashboard", "incident_list")


def growth(
    small: dict,
    large: dict,
    pages: tuple[dict, dict] | None = None,
    workers: tuple[dict, dict] | None = None,
) -> str:
    """How each figure grows from the main run to the scale run: the computation, and when
    measured at both sizes the pages' server time and the worker's event -> snapshot time."""
    data = large["incidents"] / small["incidents"]
    lines = [
        f"Growth from {small['incidents']:,} to {large['incidents']:,} incidents "
        f"({small['events']:,} to {large['events']:,} events, data x{data:.1f}):"
    ]
    for label, key, expect in GROWTH:
        a, b = small[key], large[key]
        lines.append(f"  {label:<38} {a:8.3f} s -> {b:8.3f} s  x{b / a:5.1f}  (expected: {expect})")
    if pages is not None:
        for name in PAGE_GROWTH:
            a, b = pages[0][name]["median_ms"], pages[1][name]["median_ms"]
            queries = f"{pages[0][name]['queries']} -> {pages[1][name]['queries']} queries"
            lines.append(
                f"  page {name:<33} {a:7.1f} ms -> {b:7.1f} ms  x{b / a:5.1f}  "
                f"(expected: flat; {queries})"
            )
    if workers is not None:
        for label in ("p50_ms", "p95_ms"):
            a, b = workers[0][label], workers[1][label]
            lines.append(
                f"  worker event -> snapshot {label[:3]:<14} {a:7.0f} ms -> {b:7.0f} ms  "
                f"x{b / a:5.1f}  (expected: flat; agents of {workers[0]['agent_incidents']:,} "
                f"and {workers[1]['agent_incidents']:,} incidents)"
            )
    for key, n_key in (
        ("agent_refresh_median_s", "agent_refresh_median_incidents"),
        ("agent_refresh_largest_s", "agent_refresh_largest_incidents"),
    ):
        lines.append(
            f"  {key}: the agent has {small[n_key]:,} -> {large[n_key]:,} incidents "
            f"(x{large[n_key] / small[n_key]:.1f})"
        )
    ratio = large["all_time_compute_s"] / large["floor_s"]
    lines.append(f"  ratio all-time metrics / floor at scale: {ratio:.2f}x (target <= 3x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="TrustDesk benchmark")
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--web-incidents", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=5_000)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database", default="td_bench")
    parser.add_argument("--web-database", default="td_bench_web")
    parser.add_argument("--reuse", action="store_true", help="do not regenerate the databases")
    parser.add_argument(
        "--scale-incidents",
        type=int,
        default=0,
        help="also measure the computation at this many incidents (e.g. 1000000, database "
        "--scale-database) and print how each figure grows from the main run",
    )
    parser.add_argument("--scale-database", default="td_bench_scale")
    parser.add_argument("--phase", choices=["compute", "web", "worker"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase == "compute":
        print(json.dumps(phase_compute(args.database, args.sample), default=str))
        return
    if args.phase == "web":
        print(json.dumps(phase_web(args.web_database, args.rounds), default=str))
        return
    if args.phase == "worker":
        print(json.dumps(phase_worker(args.database, args.events), default=str))
        return
    gen = None
    if not args.reuse:
        print(f"generating {args.incidents:,} incidents into {args.database} ...", flush=True)
        gen = _generate(args.database, args.incidents)
        print(
            f"generating {args.web_incidents:,} incidents into {args.web_database} ...", flush=True
        )
        _generate(args.web_database, args.web_incidents)
    print("measuring the computation ...", flush=True)
    c = _child("compute", "--database", args.database, "--sample", str(args.sample))
    print("measuring the pages ...", flush=True)
    w = _child("web", "--web-database", args.web_database, "--rounds", str(args.rounds))
    print("measuring the pages on the large database ...", flush=True)
    w_full = _child("web", "--web-database", args.database, "--rounds", str(args.rounds))
    print("measuring the worker ...", flush=True)
    k = _child("worker", "--database", args.database, "--events", str(args.events))
    scaled = w_scaled = k_scaled = None
    if args.scale_incidents:
        if not args.reuse:
            print(
                f"generating {args.scale_incidents:,} incidents into {args.scale_database} ...",
                flush=True,
            )
            # As many more agents as incidents, each about the size of its counterpart in the
            # main run: one agent's refresh should not grow with the other agents' data.
            agents = max(20, round(20 * args.scale_incidents / args.incidents))
            _generate(args.scale_database, args.scale_incidents, agents)
        print("measuring the computation at scale ...", flush=True)
        scaled = _child("compute", "--database", args.scale_database, "--sample", str(args.sample))
        print("measuring the pages at scale ...", flush=True)
        w_scaled = _child(
            "web", "--web-database", args.scale_database, "--rounds", str(args.rounds)
        )
        print("measuring the worker at scale ...", flush=True)
        k_scaled = _child("worker", "--database", args.scale_database, "--events", str(args.events))
    print()
    print(report(gen, c, w, k, w_full))
    if scaled is not None:
        print()
        print("\n".join(_web_lines(w_scaled)))
        print()
        print(growth(c, scaled, (w_full, w_scaled), (k, k_scaled)))


if __name__ == "__main__":
    main()

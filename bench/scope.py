"""Scope statement server time (its budget: within 3x a bare view):
`GET /api/v1/agents/{key}/scope` answering 200
(signed body) and 304 (If-None-Match), against a bare view behind the same middleware, and the
queries each costs. Prints one line per figure, then one JSON line.

    python -m bench.scope                 # 300 rounds each
    python -m bench.scope --rounds 1000

Its own database `td_bench_scope` (recreated): one agent with an active pact, 200 open incidents
of which 3 hold the agent suspended, so the statement lists them. Requests go through Django's
test client in this process (server time, no network). PostgreSQL at BENCH_POSTGRES. Not part of
the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "td_bench_scope"


def _timed(client, path: str, rounds: int, **headers) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(5):  # warm up: connections, the signing key, the URL resolver
        response = client.get(path, headers=headers)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        client.get(path, headers=headers)
        times.append(time.perf_counter() - t)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, headers=headers)
    return {
        "status": response.status_code,
        "median_ms": statistics.median(times) * 1000,
        "p95_ms": sorted(times)[int(0.95 * (len(times) - 1))] * 1000,
        "queries": len(queries.captured_queries),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from bench.generate import database_url, recreate_database

    recreate_database(DATABASE)
    os.environ["DATABASE_URL"] = database_url(DATABASE)
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "trustdesk.settings"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client
    from django.test.utils import override_settings

    from tests.factories import make_pact_version
    from trustdesk.incidents import journal, lifecycle
    from trustdesk.pacts import actions

    version = make_pact_version()
    agent = version.pact.agent
    for i in range(200):
        incident = journal.open_incident(
            agent=agent, by=None, title=f"Bench {i}", severity="sev3", pact_version=version
        )
        if i < 3:
            lifecycle.contain_incident(
                incident, by=None, expected_version=None, action="suspend", scope_after="suspended"
            )
    _token, secret = actions.create_api_token(
        source="bench-gate", scopes=[f"agent:{agent.key}"], by=None
    )
    auth = {"Authorization": f"Bearer {secret}"}
    statement = f"/api/v1/agents/{agent.key}/scope"
    client = Client()
    signed_in = Client()
    viewer, _ = get_user_model().objects.get_or_create(username="bench-viewer")
    viewer.groups.add(Group.objects.get(name="viewer"))
    signed_in.force_login(viewer)
    with override_settings(ROOT_URLCONF="bench.scope_urls", ALLOWED_HOSTS=["testserver"]):
        bare = _timed(client, "/bench/bare-api/", args.rounds)
        page_bare = _timed(signed_in, "/bench/bare/", args.rounds)
        full = _timed(client, statement, args.rounds, **auth)
        etag = client.get(statement, headers=auth)["ETag"]
        cached = _timed(client, statement, args.rounds, **auth, **{"If-None-Match": etag})
    assert (bare["status"], page_bare["status"]) == (200, 200)
    assert (full["status"], cached["status"]) == (200, 304)
    print(f"Scope statement of {agent.key} ({args.rounds} rounds each, server time, median):")
    rows = (
        ("bare, no query", bare),
        ("bare, signed in", page_bare),
        ("200 signed", full),
        ("304 ETag", cached),
    )
    for name, row in rows:
        print(
            f"  {name:<16} {row['median_ms']:7.3f} ms (p95 {row['p95_ms']:7.3f} ms) "
            f"{row['median_ms'] / page_bare['median_ms']:4.1f}x the signed-in bare view, "
            f"{row['median_ms'] / bare['median_ms']:5.1f}x the no-query one, "
            f"{row['queries']} queries"
        )
    print(
        "  budget: 200 and 304 each within 3x the bare view (the signed-in one, as the page "
        "benchmark's); the 304 in at most one query"
    )
    print(
        json.dumps(
            {
                "bare_no_query": bare,
                "bare_signed_in": page_bare,
                "statement_200": full,
                "statement_304": cached,
            }
        )
    )


if __name__ == "__main__":
    main()

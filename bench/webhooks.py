"""Webhook latency (its budget: p95 under 1 s): from an event to its webhook delivered on a
local receiver, through a real Celery worker on Redis. Prints p50, p95 and max, then one JSON
line.

    python -m bench.webhooks                  # 50 events
    python -m bench.webhooks --events 200

Each event is an incident opened through `journal.open_incident` (its transaction commits,
`incident.opened` is published on commit, the worker runs fan-out, then the delivery); the clock
starts before the call and stops when the receiver (http.server on 127.0.0.1, ephemeral port)
has the signed POST, which it verifies with `standardwebhooks` when that package is installed.
The worker also gets the metrics refreshes each incident schedules, as in production.
Uses its own database `td_bench_webhooks` (recreated) and PostgreSQL at BENCH_POSTGRES, Redis at
REDIS_URL (default redis://127.0.0.1:6379/0). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE = "td_bench_webhooks"


class Receiver:
    """Records when each webhook arrived, by the incident it names; answers 204."""

    def __init__(self, secret: str) -> None:
        self.arrived: dict[str, float] = {}
        self.bad_signatures = 0
        self.cond = threading.Condition()
        try:
            import standardwebhooks

            self.verifier = standardwebhooks.Webhook(secret)
        except ImportError:
            self.verifier = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.perf_counter()
                self.send_response(204)
                self.end_headers()
                if receiver.verifier is not None:
                    try:
                        receiver.verifier.verify(body, dict(self.headers.items()))
                    except Exception:
                        receiver.bad_signatures += 1
                key = json.loads(body)["data"]["incident"]
                with receiver.cond:
                    receiver.arrived.setdefault(key, at)
                    receiver.cond.notify_all()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, key: str, timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        with self.cond:
            while key not in self.arrived:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the webhook of {key} did not arrive within {timeout} s")
                self.cond.wait(deadline - time.monotonic())
            return self.arrived[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args()

    from bench.generate import database_url, recreate_database

    recreate_database(DATABASE)
    os.environ["DATABASE_URL"] = database_url(DATABASE)
    os.environ["REDIS_URL"] = REDIS
    os.environ["DJANGO_SETTINGS_MODULE"] = "trustdesk.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from trustdesk.celery import app
    from trustdesk.incidents.journal import open_incident
    from trustdesk.notify.actions import add_webhook
    from trustdesk.pacts.models import Agent

    agent = Agent.objects.create(key="bench-bot", name="Bench bot")
    sub, secret = add_webhook(url="http://127.0.0.1:1/", events="incident.opened", by=None)
    receiver = Receiver(secret)
    type(sub).objects.filter(pk=sub.pk).update(url=receiver.url)

    queue = f"bench-webhooks-{os.getpid()}"
    log_path = ROOT / "bench" / "webhooks-worker.log"
    log = open(log_path, "w")  # noqa: SIM115
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
    latencies: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log_path.read_text():
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError(f"the worker did not start: see {log_path}")
            time.sleep(0.2)
        for i in range(args.events):
            started = time.perf_counter()
            incident = open_incident(agent=agent, by=None, title=f"Bench {i}", severity="sev3")
            latencies.append(receiver.wait(incident.key) - started)
            time.sleep(0.2 + (i % 5) * 0.1)  # events arrive at an irregular pace
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
        receiver.server.shutdown()
    latencies.sort()
    result = {
        "events": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[max(0, round(0.95 * len(latencies)) - 1)] * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
        "signatures_checked": receiver.verifier is not None,
        "bad_signatures": receiver.bad_signatures,
    }
    print(
        f"event -> webhook delivered (real worker, local receiver), {result['events']} events: "
        f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, max {result['max_ms']} ms "
        f"(budget: p95 under 1000 ms); bad signatures: {result['bad_signatures']}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

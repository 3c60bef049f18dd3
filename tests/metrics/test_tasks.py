"""Snapshots, trust scores and the debounced refresh tasks (eager, and with Redis gone)."""

from __future__ import annotations

import logging
import time

import pytest
from django.utils import timezone

from tests.metrics.helpers import (
    agent_with_pact,
    classified,
    contained,
    new_incident,
    plus,
    record,
    utc,
)
from trustdesk.incidents.journal import schedule_metrics_refresh
from trustdesk.metrics import refresh, tasks
from trustdesk.metrics.models import OVERALL, MetricSnapshot, RefreshRequest, TrustScore
from trustdesk.pacts.models import Agent

pytestmark = pytest.mark.django_db

NOW = utc(2026, 11, 18, 12)  # a Wednesday; the current ISO week is 2026-W47


@pytest.fixture
def two_agents():
    a, va = agent_with_pact("snap-a")
    b, _vb = agent_with_pact("snap-b")
    i = new_incident(va, utc(2026, 11, 16, 9))  # Monday of W47
    record(i, contained(plus(utc(2026, 11, 16, 9), minutes=4)))
    old = new_incident(va, utc(2026, 10, 1))
    record(old, contained(plus(utc(2026, 10, 1), minutes=10)))
    return a, b


def test_windows_are_rolling_all_time_and_twelve_iso_weeks():
    keys = [w.key for w in refresh.snapshot_windows(NOW)]
    assert keys[:4] == ["7d", "30d", "90d", "all"]
    assert keys[4] == "2026-W36" and keys[-1] == "2026-W47" and len(keys) == 16
    week = refresh.week_window("2026-W47")
    assert (week.start, week.end) == (utc(2026, 11, 16), utc(2026, 11, 23))
    assert refresh.week_window("2026-W54") is None
    assert refresh.week_window("junk") is None


def test_recompute_all_upserts_every_scope_and_window(two_agents):
    a, b = two_agents
    written = refresh.recompute_all(now=NOW)
    assert written == 3 * 16
    assert MetricSnapshot.objects.count() == 48
    overall_7d = MetricSnapshot.objects.get(scope=OVERALL, window="7d")
    assert overall_7d.data["time_to_containment"]["count"] == 1
    assert overall_7d.data["time_to_containment"]["p50"] == 240.0
    assert overall_7d.window_start == utc(2026, 11, 11, 12) and overall_7d.window_end == NOW
    assert MetricSnapshot.objects.get(scope="snap-a", window="all").data["incident_count"] == 2
    assert MetricSnapshot.objects.get(scope="snap-a", window="2026-W40").data["incident_count"] == 1
    empty = MetricSnapshot.objects.get(scope="snap-b", window="30d").data
    assert empty["incident_count"] == 0 and empty["override_rate"]["value"] is None
    assert empty["agent"] == "snap-b" and empty["window"]["to"] == "2026-11-18T12:00:00Z"

    later = plus(NOW, minutes=10)
    assert refresh.recompute_all(now=later) == 48
    assert MetricSnapshot.objects.count() == 48  # overwritten, not duplicated
    assert MetricSnapshot.objects.get(scope=OVERALL, window="7d").computed_at == later
    assert TrustScore.objects.filter(agent=a).count() == 1  # one row per agent per day


def test_refresh_agent_writes_its_snapshots_and_trust_score(two_agents):
    a, b = two_agents
    assert refresh.refresh_agent(a.pk, now=NOW) is True
    assert set(MetricSnapshot.objects.values_list("scope", flat=True)) == {"snap-a"}
    score = TrustScore.objects.get(agent=a)
    a.refresh_from_db()
    assert a.trust_score == score.score
    assert refresh.refresh_agent(999_999, now=NOW) is False


def test_an_event_refreshes_its_agents_snapshot_in_process(
    two_agents, django_capture_on_commit_callbacks
):
    a, _ = two_agents
    refresh.recompute_all(now=NOW)
    incident = a.incidents.order_by("detected_at").last()
    with django_capture_on_commit_callbacks(execute=True):
        record(incident, classified("drift", plus(NOW, minutes=-30)))
        schedule_metrics_refresh(incident)
    # computed now (26 Nov or later): the 90-day window holds both incidents
    snap = MetricSnapshot.objects.get(scope="snap-a", window="90d")
    assert snap.data["time_to_classification"]["count"] == 1
    assert snap.computed_at > NOW
    overall = MetricSnapshot.objects.get(scope=OVERALL, window="90d")
    assert overall.data["time_to_classification"]["count"] == 1
    assert not RefreshRequest.objects.filter(pending_since__isnull=False).exists()


class FakeQueue:
    """Stands in for the broker: keeps what was enqueued, to run it later in order."""

    def __init__(self, monkeypatch):
        self.sent = []
        for task in (tasks.refresh_agent_metrics, tasks.refresh_overall_metrics):
            monkeypatch.setattr(task, "apply_async", self._send(task))

    def _send(self, task):
        def send(args, countdown, **options):
            self.sent.append((task, args, countdown))

        return send

    def run_all(self):
        sent, self.sent = self.sent, []
        return [task(*args) for task, args, _ in sent]


def test_a_burst_of_events_leads_to_one_recompute(two_agents, monkeypatch):
    a, _ = two_agents
    queue = FakeQueue(monkeypatch)
    computed = []
    original = refresh.refresh_agent
    monkeypatch.setattr(
        refresh, "refresh_agent", lambda aid, now: computed.append(aid) or original(aid, now=now)
    )
    for _ in range(10):
        tasks.schedule_agent_refresh(a.pk)
    assert len(queue.sent) == 10 and all(c == tasks.AGENT_COUNTDOWN for *_, c in queue.sent)
    outcomes = queue.run_all()
    assert outcomes == ["superseded"] * 9 + ["computed"]
    assert computed == [a.pk]
    assert MetricSnapshot.objects.filter(scope="snap-a").count() == 16
    # the agent refresh asked for one overall refresh, which runs once
    assert queue.run_all() == ["computed"]
    assert RefreshRequest.objects.get(scope=f"agent:{a.pk}").pending_since is None


def test_a_long_burst_still_computes_after_the_maximum_wait(two_agents, monkeypatch):
    a, _ = two_agents
    queue = FakeQueue(monkeypatch)
    tasks.schedule_agent_refresh(a.pk)
    tasks.schedule_agent_refresh(a.pk)
    RefreshRequest.objects.filter(scope=f"agent:{a.pk}").update(
        pending_since=timezone.now() - tasks.MAX_WAIT * 2
    )
    assert queue.run_all() == ["computed", "computed"]


def test_tasks_are_idempotent(two_agents):
    a, _ = two_agents
    assert tasks.refresh_agent_metrics(a.pk) == "computed"
    first = MetricSnapshot.objects.get(scope="snap-a", window="all").data
    assert tasks.refresh_agent_metrics(a.pk) == "computed"
    again = MetricSnapshot.objects.get(scope="snap-a", window="all").data
    assert again.pop("window")["to"] > first.pop("window")["to"]  # the window ends at each run
    assert again == first
    assert MetricSnapshot.objects.filter(scope="snap-a").count() == 16
    assert tasks.recompute_all_metrics() == 48
    assert tasks.recompute_all_metrics() == 48
    assert MetricSnapshot.objects.count() == 48


def test_a_broker_that_is_down_does_not_break_the_request(two_agents, caplog):
    from tests.conftest import reset_broker_connections
    from trustdesk.celery import app

    a, _ = two_agents
    old = (app.conf.task_always_eager, app.conf.broker_url)
    app.conf.task_always_eager = False
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens there
    reset_broker_connections(app)
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="trustdesk.metrics.tasks"):
            tasks.schedule_agent_refresh(a.pk)
        elapsed = time.monotonic() - started
    finally:
        app.conf.task_always_eager, app.conf.broker_url = old
        reset_broker_connections(app)
    assert elapsed < 10
    assert "could not enqueue" in caplog.text
    pending = RefreshRequest.objects.get(scope=f"agent:{a.pk}")
    assert pending.pending_since is not None
    # beat catches up
    tasks.recompute_all_metrics()
    pending.refresh_from_db()
    assert pending.pending_since is None
    assert MetricSnapshot.objects.filter(scope="snap-a").exists()


def test_a_deleted_agent_id_is_a_no_op():
    assert tasks.refresh_agent_metrics(424242, "token") == "no such agent"
    assert not MetricSnapshot.objects.exists()
    assert Agent.objects.count() == 0


def test_the_demo_seed_computes_everything_once(two_agents):
    from io import StringIO

    from trustdesk.metrics import demo

    out = StringIO()
    demo.seed(out)
    assert "computed" in out.getvalue()
    before = list(MetricSnapshot.objects.order_by("pk").values_list("pk", "computed_at"))
    assert len(before) == 48 and TrustScore.objects.count() == 2
    out = StringIO()
    demo.seed(out)
    assert "up to date" in out.getvalue()
    assert list(MetricSnapshot.objects.order_by("pk").values_list("pk", "computed_at")) == before


def test_two_workers_never_compute_the_same_scope_at_once(two_agents, monkeypatch):
    a, _ = two_agents
    queue = FakeQueue(monkeypatch)
    from trustdesk.celery import app

    app.conf.task_always_eager = False  # the autouse fixture of tests/conftest.py restores it
    tasks.schedule_agent_refresh(a.pk)
    scope = f"agent:{a.pk}"
    RefreshRequest.objects.filter(scope=scope).update(running_since=timezone.now())
    ((task, args, _),) = queue.sent
    queue.sent.clear()
    assert task(*args) == "busy"
    # it asked to be retried shortly, with the same token (and its attempt count)
    assert [(t.name, a_, c) for t, a_, c in queue.sent] == [
        (task.name, [*args, 1], tasks.BUSY_RETRY)
    ]
    assert not MetricSnapshot.objects.filter(scope="snap-a").exists()
    # a claim not renewed within its time to live is a dead worker's: taken over
    RefreshRequest.objects.filter(scope=scope).update(
        running_since=timezone.now() - tasks.claim_ttl() * 2
    )
    queue.sent.clear()
    assert task(*args) == "computed"
    row = RefreshRequest.objects.get(scope=scope)
    assert row.running_since is None and row.pending_since is None


def test_the_overall_refresh_after_an_event_leaves_all_time_to_beat(two_agents):
    refresh.refresh_overall(now=NOW, recent_only=True)
    windows = set(MetricSnapshot.objects.filter(scope=OVERALL).values_list("window", flat=True))
    assert "all" not in windows and {"7d", "30d", "90d", "2026-W47"} <= windows
    assert tasks.refresh_overall_metrics() == "computed"
    assert not MetricSnapshot.objects.filter(scope=OVERALL, window="all").exists()
    tasks.recompute_all_metrics()
    assert MetricSnapshot.objects.filter(scope=OVERALL, window="all").exists()

"""Recovery from faults: a killed worker's claim expires quickly, busy tasks back off, and a
refresh requested while the broker was down is caught up from its database row."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import reset_broker_connections, wait_for
from tests.metrics.helpers import agent_with_pact, new_incident
from tests.metrics.test_worker import _every_received_task_finished
from trustdesk.metrics import tasks
from trustdesk.metrics.models import OVERALL, MetricSnapshot, RefreshRequest


@pytest.fixture
def agent(db):
    a, version = agent_with_pact("fault-agent")
    new_incident(version, timezone.now() - timedelta(hours=2))
    MetricSnapshot.objects.all().delete()  # what opening it computed in-process
    RefreshRequest.objects.all().delete()
    return a


class Sent:
    """Stands in for the broker: records what was enqueued."""

    def __init__(self, monkeypatch):
        self.sent: list[tuple[str, list, float]] = []
        for task in (tasks.refresh_agent_metrics, tasks.refresh_overall_metrics):
            monkeypatch.setattr(task, "apply_async", self._send(task))

    def _send(self, task):
        def send(args, countdown, **options):
            self.sent.append((task.name, args, countdown))

        return send


def _not_eager():
    from trustdesk.celery import app

    app.conf.task_always_eager = False  # the autouse fixture restores it


def test_a_claim_expires_after_its_short_ttl_not_the_task_time_limit(agent, settings):
    settings.METRICS_CLAIM_TTL_SECONDS = 30
    scope = tasks.agent_scope(agent.pk)
    now = timezone.now()
    RefreshRequest.objects.create(scope=scope, token="", requested_at=now, running_since=now)
    assert not tasks._claim(scope, now + timedelta(seconds=29))
    assert tasks._claim(scope, now + timedelta(seconds=31))


def test_a_busy_task_backs_off_and_then_leaves_the_request_to_the_catch_up(agent, monkeypatch):
    _not_eager()
    sent = Sent(monkeypatch)
    scope = tasks.agent_scope(agent.pk)
    now = timezone.now()
    RefreshRequest.objects.create(
        scope=scope, token="t", requested_at=now, pending_since=now, running_since=now
    )
    delays = []
    attempt = 0
    while True:
        assert tasks.refresh_agent_metrics(agent.pk, "t", attempt) == "busy"
        if not sent.sent:
            break
        ((name, args, countdown),) = sent.sent
        sent.sent.clear()
        assert name == tasks.refresh_agent_metrics.name and args[:2] == [agent.pk, "t"]
        delays.append(countdown)
        attempt = args[2]
    assert delays == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]
    assert attempt == tasks.BUSY_ATTEMPTS
    # 8 retries over about 33 s, where the old loop re-queued every 0.2 s for 200 s (1000 runs)
    assert sum(delays) < 35
    assert RefreshRequest.objects.get(scope=scope).pending_since is not None


def test_a_refresh_requested_while_the_broker_is_down_is_caught_up(agent):
    from trustdesk.celery import app

    old = (app.conf.task_always_eager, app.conf.broker_url)
    app.conf.task_always_eager = False
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens there
    reset_broker_connections(app)
    try:
        tasks.schedule_agent_refresh(agent.pk)
    finally:
        app.conf.task_always_eager, app.conf.broker_url = old
        reset_broker_connections(app)
    row = RefreshRequest.objects.get(scope=tasks.agent_scope(agent.pk))
    assert row.pending_since is not None  # recorded in the database, not lost
    assert not MetricSnapshot.objects.filter(scope="fault-agent").exists()

    # Too fresh to be called lost: the catch-up leaves it to its own task.
    assert tasks.catch_up_refreshes() == 0
    RefreshRequest.objects.filter(pk=row.pk).update(
        pending_since=timezone.now() - tasks.CATCH_UP_AFTER * 2
    )
    assert tasks.catch_up_refreshes() == 1  # in-process here: computed at once
    row.refresh_from_db()
    assert row.pending_since is None and row.running_since is None
    assert MetricSnapshot.objects.filter(scope="fault-agent").exists()


def test_the_catch_up_leaves_a_scope_with_a_live_claim_alone(agent, monkeypatch):
    sent = Sent(monkeypatch)
    _not_eager()
    old = timezone.now() - tasks.CATCH_UP_AFTER * 2
    scope = tasks.agent_scope(agent.pk)
    RefreshRequest.objects.create(
        scope=scope, token="t", requested_at=old, pending_since=old, running_since=timezone.now()
    )
    assert tasks.catch_up_refreshes() == 0
    RefreshRequest.objects.filter(scope=scope).update(
        running_since=timezone.now() - tasks.claim_ttl() * 2
    )
    assert tasks.catch_up_refreshes() == 1
    assert sent.sent == [(tasks.refresh_agent_metrics.name, [agent.pk, None], 0)]


@pytest.mark.django_db(transaction=True)
def test_a_live_worker_renews_its_claim_while_it_computes(settings, monkeypatch):
    """The keeper thread writes through its own connection, so this needs committed rows."""
    _not_eager()
    settings.METRICS_CLAIM_TTL_SECONDS = 0.3  # renew every 0.1 s
    scope = "agent:999"
    started = timezone.now()
    RefreshRequest.objects.create(
        scope=scope, token="", requested_at=started, running_since=started
    )

    def claimed_since():
        return RefreshRequest.objects.get(scope=scope).running_since

    # Waits, not fixed sleeps: on a loaded machine the keeper thread may first run late.
    with tasks._ClaimKeeper(scope, started):
        first = wait_for(lambda: (since := claimed_since()) > started and since, timeout=10)
        wait_for(lambda: claimed_since() > first, timeout=10)
    # a claim taken over by another worker is not renewed by the old one
    RefreshRequest.objects.filter(scope=scope).update(running_since=None)
    with tasks._ClaimKeeper(scope, started):
        time.sleep(0.25)
    assert RefreshRequest.objects.get(scope=scope).running_since is None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_takes_over_a_dead_workers_claim_through_the_catch_up(
    celery_worker, settings
):
    a, version = agent_with_pact("orphan-agent")
    MetricSnapshot.objects.all().delete()
    scope = tasks.agent_scope(a.pk)
    long_ago = timezone.now() - timedelta(minutes=5)
    # What a worker killed mid-refresh leaves: a pending request and a claim nobody renews.
    RefreshRequest.objects.update_or_create(
        scope=scope,
        defaults={
            "token": "dead",
            "requested_at": long_ago,
            "pending_since": long_ago,
            "running_since": long_ago,
        },
    )
    tasks.catch_up_refreshes.delay()
    wait_for(lambda: MetricSnapshot.objects.filter(scope="orphan-agent").exists(), timeout=30)
    row = wait_for(
        lambda: (r := RefreshRequest.objects.get(scope=scope)).running_since is None and r,
        timeout=15,
    )
    assert row.pending_since is None
    # the overall follow-up it sent finishes too, so that nothing is left behind in Redis
    wait_for(lambda: MetricSnapshot.objects.filter(scope=OVERALL).exists(), timeout=30)
    wait_for(_every_received_task_finished, timeout=15)

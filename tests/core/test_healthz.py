import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import missing_service, redis_reachable, redis_url, reset_broker_connections
from trustdesk.core.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def test_healthz_without_a_broker_reports_eager(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["broker"] == "eager"
    assert body["worker_heartbeat_age_seconds"] is None


def test_healthz_reports_heartbeat_age(client):
    WorkerHeartbeat.objects.create(
        name="beat", last_seen=timezone.now() - timezone.timedelta(seconds=42)
    )
    age = client.get(reverse("healthz")).json()["worker_heartbeat_age_seconds"]
    assert 42 <= age < 50


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """Send tasks to the broker at `url` (not eager) inside the block; then back as it was."""
    from trustdesk.celery import app

    old = app.conf.broker_url
    app.conf.task_always_eager = False  # the autouse fixture restores it
    app.conf.broker_url = url
    reset_broker_connections(app)
    try:
        yield
    finally:
        app.conf.broker_url = old
        reset_broker_connections(app)


def reachable_broker():
    if not redis_reachable():
        missing_service("Redis")
    return broker_at(redis_url())


def test_healthz_with_a_reachable_broker(client):
    with reachable_broker():
        body = client.get(reverse("healthz")).json()
    assert body["broker"] == "ok"


def test_healthz_with_a_broker_that_is_down_is_503_within_a_second(client):
    WorkerHeartbeat.objects.create(name="beat", last_seen=timezone.now())
    with broker_at("redis://127.0.0.1:1/0"):  # a closed port
        started = time.monotonic()
        response = client.get(reverse("healthz"))
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    body = response.json()
    assert body["broker"] == "unreachable"
    assert body["status"] == "degraded"
    assert [p.split(":")[0] for p in body["problems"]] == ["broker"]
    assert elapsed < 1.5


def test_healthz_is_503_when_the_worker_heartbeat_is_older_than_the_setting(client, settings):
    settings.HEARTBEAT_STALE_AFTER = timezone.timedelta(seconds=60)
    WorkerHeartbeat.objects.create(
        name="beat", last_seen=timezone.now() - timezone.timedelta(seconds=157)
    )
    with reachable_broker():
        response = client.get(reverse("healthz"))
    assert response.status_code == 503
    problems = response.json()["problems"]
    assert len(problems) == 1
    # The request itself takes time on a loaded machine: the age is 157 s or a little more.
    age = int(re.match(r"worker: last heartbeat (\d+) s ago \(more than 60 s\)", problems[0])[1])
    assert 157 <= age <= 167


def test_healthz_is_200_with_a_reachable_broker_and_a_fresh_heartbeat(client):
    WorkerHeartbeat.objects.create(
        name="beat", last_seen=timezone.now() - timezone.timedelta(seconds=10)
    )
    with reachable_broker():
        response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json()["problems"] == []


def test_healthz_with_a_broker_but_no_heartbeat_ever_is_503(client):
    with reachable_broker():
        response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["problems"][0].startswith("worker: no heartbeat")


def test_healthz_is_503_when_the_database_does_not_answer(client, monkeypatch):
    from django.db import connection

    def broken_cursor(*args, **kwargs):
        raise RuntimeError("database is down")

    # Undone before the test ends: the column check after it reads the database.
    with monkeypatch.context() as patch:
        patch.setattr(connection, "cursor", broken_cursor)
        response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"

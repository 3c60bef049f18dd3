"""A real Celery worker on Redis refreshes an agent's snapshot after an incident event."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.conftest import wait_for
from tests.metrics.helpers import agent_with_pact, contained, new_incident, plus, record
from trustdesk.incidents.journal import schedule_metrics_refresh
from trustdesk.metrics.models import OVERALL, MetricSnapshot

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _snapshot(scope: str):
    return MetricSnapshot.objects.filter(scope=scope, window="7d").first()


def test_an_event_enqueued_through_redis_updates_the_agents_snapshot(celery_worker):
    _agent, version = agent_with_pact("worker-agent")
    detected = timezone.now() - timezone.timedelta(hours=1)
    incident = new_incident(version, detected)  # on commit: enqueued through Redis
    snap = wait_for(lambda: _snapshot("worker-agent"), timeout=30)
    assert snap.data["incident_count"] == 1
    assert snap.data["time_to_containment"]["count"] == 0

    record(incident, contained(plus(detected, minutes=5)))
    schedule_metrics_refresh(incident)  # as the step would, after its commit

    def contained_seen():
        s = _snapshot("worker-agent")
        return s if s.data["time_to_containment"]["count"] == 1 else None

    snap = wait_for(contained_seen, timeout=30)
    assert snap.data["time_to_containment"]["p50"] == 300.0
    # the overall scope follows (debounced a little longer)
    overall = wait_for(
        lambda: (s := _snapshot(OVERALL)) and s.data["time_to_containment"]["count"] == 1 and s,
        timeout=30,
    )
    assert overall.data["incident_count"] == 1
    # let the superseded follow-ups finish, so that no message is left behind in Redis
    wait_for(_every_received_task_finished, timeout=15)


def _every_received_task_finished() -> bool:
    from tests.conftest import WORKER_LOG

    log = WORKER_LOG.read_text()
    return log.count(" received") == log.count(" succeeded in ")

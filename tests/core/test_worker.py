import pytest

from tests.conftest import wait_for
from trustdesk.core.models import WorkerHeartbeat
from trustdesk.core.tasks import record_heartbeat

pytestmark = pytest.mark.worker


def test_a_real_worker_runs_a_task_that_writes_to_the_database(celery_worker):
    assert not WorkerHeartbeat.objects.filter(name="from-redis").exists()
    record_heartbeat.delay("from-redis")
    row = wait_for(lambda: WorkerHeartbeat.objects.filter(name="from-redis").first(), timeout=30)
    assert row.last_seen is not None
    assert celery_worker.poll() is None  # the worker is still running; the fixture stops it

from celery import shared_task
from django.utils import timezone

from trustdesk.core.models import WorkerHeartbeat


@shared_task(name="trustdesk.core.tasks.record_heartbeat", ignore_result=True)
def record_heartbeat(name: str = "beat") -> None:
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"last_seen": timezone.now()})

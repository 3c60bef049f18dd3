"""Celery tasks of the diligence app. A task takes ids (or nothing) and calls the domain code."""

from __future__ import annotations

from celery import shared_task

from trustdesk.diligence.checkpoints import make_checkpoint


@shared_task(name="trustdesk.diligence.tasks.make_log_checkpoint", ignore_result=True)
def make_log_checkpoint() -> int:
    """Beat task, every minute: sign a checkpoint when the transparency log grew since the last
    one (a rerun with no new event signs nothing). Returns the checkpoint's tree size."""
    return make_checkpoint().size

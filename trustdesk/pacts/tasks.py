"""Celery tasks of the pacts app. A task takes ids (or nothing), and calls pacts.actions."""

from __future__ import annotations

from celery import shared_task

from trustdesk.pacts.actions import mark_stale_versions


@shared_task(name="trustdesk.pacts.tasks.mark_stale_pacts", ignore_result=True)
def mark_stale_pacts() -> dict:
    """Beat task: flag active versions past their review date, unflag reviewed ones.

    Idempotent: a rerun changes nothing. Staleness itself is a date comparison on an indexed
    column (PactVersion.objects.stale()); stale_since records when it was first noticed.
    """
    marked, cleared = mark_stale_versions()
    return {"marked": marked, "cleared": cleared}

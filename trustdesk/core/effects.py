"""Side effects by task name, after commit.

Domain actions never import another app's tasks: they name the Celery task they want run once the
transaction commits. This keeps the layering one way (core <- pacts <- incidents <- reviews <-
metrics, diligence; the outward-facing apps on top) and lets an app that is absent simply not
receive the message.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

#: The task that fans a published domain event out to webhooks and notification channels.
PUBLISH_TASK = "trustdesk.notify.tasks.fan_out"


def _send(name: str, args: tuple, kwargs: dict) -> None:
    from trustdesk.celery import app

    task = app.tasks.get(name)
    if task is None:
        # Celery discovers the apps' tasks modules lazily (a worker does at start, a web process
        # never): import them, then look again, or a breach posted to the API would be dropped.
        app.loader.import_default_modules()
        task = app.tasks.get(name)
    if task is None:
        # The app that would handle it is not installed: nothing to do, and not an error.
        logger.debug("no task registered as %s; side effect skipped", name)
        return
    try:
        task.delay(*args, **kwargs)
    except Exception:  # the broker is down: the beat catch-up recovers, the step stays done
        logger.exception("could not enqueue %s", name)


def run_task_on_commit(name: str, *args: Any, **kwargs: Any) -> None:
    """Enqueue the Celery task registered as `name` once the current transaction commits.

    Outside a transaction it is enqueued at once. Arguments must be JSON-serializable (ids, keys).
    """
    transaction.on_commit(lambda: _send(name, args, kwargs), robust=True)


#: The tasks that follow a change to an agent's incidents, evaluations or disputes: the metrics
#: refresh (debounced in the metrics app) and the re-check of its open re-entry conditions.
AGENT_CHANGED_TASKS = (
    "trustdesk.metrics.tasks.agent_changed",
    "trustdesk.reviews.tasks.recheck_conditions_for_agent",
)


def agent_changed(agent_id: int) -> None:
    """After commit, tell the apps above that an agent's record changed (a step, an evaluation,
    a dispute): its metrics are refreshed and its open re-entry conditions re-checked."""
    for name in AGENT_CHANGED_TASKS:
        run_task_on_commit(name, agent_id)


def publish(event_type: str, data: dict[str, Any], *, severity: str | None = None) -> None:
    """Announce a domain event (docs/design.md section 12's types) to webhooks and people, after
    commit.

    `data` carries keys and page paths, never evidence bytes or internal notes. `severity` (sev1..
    sev4) lets notification rules filter.
    """
    run_task_on_commit(PUBLISH_TASK, event_type, data, severity=severity)

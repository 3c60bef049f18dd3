"""Celery tasks of the reviews app: re-checking re-entry conditions against the data.

A task takes ids and calls `conditions.evaluate_condition`, which overwrites the stored reading, so
running a task twice (or after a worker died mid-way) gives the same result.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import shared_task

from trustdesk.incidents.models import CLOSED_STATES
from trustdesk.reviews.conditions import evaluate_condition
from trustdesk.reviews.models import ReentryCondition

log = logging.getLogger(__name__)


def _open_conditions():
    # Conditions of decided incidents are frozen in their decision's snapshot; no need to recheck.
    return ReentryCondition.objects.exclude(incident__state__in=CLOSED_STATES).select_related(
        "incident__agent", "incident__pact_version"
    )


def _recheck(conditions: Iterable[ReentryCondition]) -> int:
    count = 0
    for condition in conditions:
        evaluate_condition(condition)
        count += 1
    return count


@shared_task(name="trustdesk.reviews.tasks.recheck_conditions_for_incident", ignore_result=True)
def recheck_conditions_for_incident(incident_id: int) -> int:
    """Re-evaluate every re-entry condition of one open incident; returns how many."""
    return _recheck(_open_conditions().filter(incident_id=incident_id))


@shared_task(name="trustdesk.reviews.tasks.recheck_conditions_for_agent", ignore_result=True)
def recheck_conditions_for_agent(agent_id: int) -> int:
    """Re-evaluate the conditions of every open incident of one agent: for the other apps, after
    something a condition reads changes (evaluations or disputes of the agent, a new incident of
    the agent, evidence)."""
    return _recheck(_open_conditions().filter(incident__agent_id=agent_id))


@shared_task(name="trustdesk.reviews.tasks.recheck_open_conditions", ignore_result=True)
def recheck_open_conditions() -> int:
    """Beat: re-evaluate the conditions of every open incident (time passes: a `no_incidents`
    window ends, evaluations and disputes arrive through other apps)."""
    return _recheck(_open_conditions().order_by("incident_id", "pk").iterator(chunk_size=200))

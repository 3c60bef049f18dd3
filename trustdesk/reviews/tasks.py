"""Celery tasks of the reviews app: re-checking re-entry conditions against the data.

A task takes ids and calls `conditions.evaluate_condition`, which overwrites the stored reading, so
running a task twice (or after a worker died mid-way) gives the same result.
"""

from __future__ import annotations

import logging

from celery import shared_task
from kombu.exceptions import OperationalError

from trustdesk.incidents.models import CLOSED_STATES
from trustdesk.reviews.conditions import evaluate_condition
from trustdesk.reviews.models import ReentryCondition

log = logging.getLogger(__name__)


def _open_conditions():
    # Conditions of decided incidents are frozen in their decision's snapshot; no need to recheck.
    return ReentryCondition.objects.exclude(incident__state__in=CLOSED_STATES).select_related(
        "incident__agent", "incident__pact_version"
    )


@shared_task(name="trustdesk.reviews.tasks.recheck_conditions_for_incident", ignore_result=True)
def recheck_conditions_for_incident(incident_id: int) -> int:
    """Re-evaluate every re-entry condition of one open incident; returns how many."""
    count = 0
    for condition in _open_conditions().filter(incident_id=incident_id):
        evaluate_condition(condition)
        count += 1
    return count


@shared_task(name="trustdesk.reviews.tasks.recheck_conditions_for_agent", ignore_result=True)
def recheck_conditions_for_agent(agent_id: int) -> int:
    """Re-evaluate the conditions of every open incident of one agent: for the other apps, after
    something a condition reads changes (evaluations or disputes of the agent, a new incident of
    the agent, evidence)."""
    count = 0
    for condition in _open_conditions().filter(incident__agent_id=agent_id):
        evaluate_condition(condition)
        count += 1
    return count


@shared_task(name="trustdesk.reviews.tasks.recheck_open_conditions", ignore_result=True)
def recheck_open_conditions() -> int:
    """Beat: re-evaluate the conditions of every open incident (time passes: a `no_incidents`
    window ends, evaluations and disputes arrive through other apps)."""
    count = 0
    for condition in _open_conditions().order_by("incident_id", "pk").iterator(chunk_size=200):
        evaluate_condition(condition)
        count += 1
    return count


def enqueue_recheck(incident_id: int) -> None:
    """Send the recheck to a worker; if the broker is down, log it: beat catches up later.

    Called from `transaction.on_commit`, after the step is saved, so a lost message costs at
    most one beat interval of staleness, never the step itself.
    """
    try:
        recheck_conditions_for_incident.delay(incident_id)
    except (OperationalError, OSError):  # broker down: the request must not fail after commit
        log.warning("could not enqueue the condition recheck of incident %s", incident_id)


def enqueue_agent_recheck(agent_id: int) -> None:
    """For the other apps, called on commit: re-check the conditions of the agent's open
    incidents on a worker (a broker outage is logged; the beat task catches up)."""
    try:
        recheck_conditions_for_agent.delay(agent_id)
    except (OperationalError, OSError):
        log.warning("could not enqueue the condition recheck of agent %s", agent_id)

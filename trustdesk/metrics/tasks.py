"""Celery tasks of the metrics app. A task takes ids, fetches, and calls the metrics module."""

from __future__ import annotations


def schedule_agent_refresh(agent_id: int) -> None:
    """Called on commit after an agent's incidents change. The metrics issue debounces a burst of
    events into one recompute of the agent's snapshots here; until then nothing is computed."""

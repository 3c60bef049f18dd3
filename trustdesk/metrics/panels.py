"""The trust part of the agent page (score, its breakdown, history), owned by the metrics app.

The agent page view calls `agent_trust_context` and includes `metrics/_agent_trust.html`.
"""

from __future__ import annotations


def agent_trust_context(agent) -> dict:
    """Context for metrics/_agent_trust.html. Must run a fixed number of queries."""
    return {}

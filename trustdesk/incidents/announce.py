"""What the incident steps announce to webhooks and people (docs/design.md section 12), after
commit.

The steps call these from inside their transaction; `core.effects.publish` sends on commit, so a
refused or rolled-back step announces nothing. `data` holds keys and page paths only: never
evidence, notes or rationale text.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from trustdesk.core.effects import publish


def incident_data(incident, **extra: Any) -> dict[str, Any]:
    """The keys every incident event carries: the incident, its agent and its page."""
    return {
        "incident": incident.key,
        "agent": incident.agent.key,
        "url": reverse("incident_detail", args=[incident.key]),
        **extra,
    }


def announce_opened(incident) -> None:
    publish(
        "incident.opened",
        incident_data(incident, state=incident.state),
        severity=incident.severity,
    )


def remember_state(incident) -> None:
    """Note the state an incident had when its step began (locked_incident calls it)."""
    incident._state_at_lock = incident.state


def announce_state_change(incident) -> None:
    """`incident.state_changed` when the step moved the incident to another state."""
    previous = getattr(incident, "_state_at_lock", None)
    if previous == incident.state:
        return
    incident._state_at_lock = incident.state
    publish(
        "incident.state_changed",
        incident_data(incident, previous_state=previous, state=incident.state),
        severity=incident.severity,
    )


def announce(event_type: str, incident, **extra: Any) -> None:
    """Any other incident event (review requested, decision recorded, attestation needed)."""
    publish(event_type, incident_data(incident, **extra), severity=incident.severity)

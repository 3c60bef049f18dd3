from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def agent_page_context(agent) -> dict[str, Any]:
    """The agent page's list of its open incidents (the pacts app shows it; core.hooks)."""
    from trustdesk.incidents.models import Incident

    return {
        "open_incidents": Incident.objects.open()
        .for_agent(agent)
        .order_by("-detected_at", "-number")[:50]
    }


class IncidentsConfig(AppConfig):
    name = "trustdesk.incidents"
    label = "incidents"
    verbose_name = "Incidents"

    # What the pacts app's pages and actions get from incidents (core.hooks).
    hooks = {
        "pacts.agent_page_context": "trustdesk.incidents.apps.agent_page_context",
        "pacts.resolve_incident_dispute": (
            "trustdesk.incidents.lifecycle.resolve_classification_dispute"
        ),
    }

    def ready(self) -> None:
        # Registers POST /api/v1/incidents/{key}/traces on the pacts app's API before the URLs
        # are read (pacts sit below incidents and do not import them).
        from trustdesk.incidents import api_traces  # noqa: F401

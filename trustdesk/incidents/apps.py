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

    def ready(self) -> None:
        # Models are importable only once apps are ready; the hooks are answered from here.
        from trustdesk.core import hooks

        # Registers POST /api/v1/incidents/{key}/traces on the pacts app's API before the URLs
        # are read (pacts sit below incidents and do not import them).
        from trustdesk.incidents import api_traces, lifecycle  # noqa: F401

        hooks.register(hooks.AGENT_PAGE, agent_page_context)
        hooks.register(hooks.INCIDENT_DISPUTE_RESOLUTION, lifecycle.resolve_classification_dispute)

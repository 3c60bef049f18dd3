"""Extension points: a lower app asks, the apps above it answer, without importing them.

The layering (docs/architecture.md) lets an app import only the apps below it. Where a lower app's
page or action needs something an upper app owns (the reviews panel on the incident page, the
trust panel on the agent page, the reviews rows of an imported history), the upper app declares
it on its AppConfig, `hooks = {POINT: "dotted.path.to.function"}`; core's `ready()` registers
every installed app's declarations (`register_declared`), and the lower app calls every function
registered at the point. An app that is not installed simply registers nothing.

Writes that must happen after commit in another app go by Celery task name instead
(`trustdesk.core.effects`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_registry: dict[str, list[Callable[..., Any]]] = {}

# The points in use, and what their functions take and return.
INCIDENT_PAGE = "incidents.page_context"  # (incident, user, *, gates) -> dict for the page
INCIDENT_IMPORTED = "incidents.imported"  # (incident) -> None, inside the import's transaction
AGENT_PAGE = "pacts.agent_page_context"  # (agent) -> dict for the agent page
INCIDENT_DISPUTE_RESOLUTION = "pacts.resolve_incident_dispute"  # (dispute, *, by, status, ...)


def register(point: str, function: Callable[..., Any]) -> None:
    """Answer `point` with `function` (registering the same function twice keeps one)."""
    functions = _registry.setdefault(point, [])
    if function not in functions:
        functions.append(function)


def register_declared(app_configs) -> None:
    """Register the `hooks` each AppConfig declares ({point: dotted path}), in app order."""
    from django.utils.module_loading import import_string

    for config in app_configs:
        for point, path in getattr(config, "hooks", {}).items():
            register(point, import_string(path))


def answers(point: str, *args: Any, **kwargs: Any) -> list[Any]:
    """Call every function registered at `point`, in registration (app) order."""
    return [function(*args, **kwargs) for function in _registry.get(point, ())]


def context(point: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The dicts every function at `point` returns, merged: context for a lower app's page."""
    merged: dict[str, Any] = {}
    for part in answers(point, *args, **kwargs):
        merged.update(part)
    return merged


def the_one(point: str) -> Callable[..., Any] | None:
    """The single function registered at `point` (a rule one upper app owns), or None."""
    functions = _registry.get(point, ())
    if len(functions) > 1:
        raise RuntimeError(f"{point} has {len(functions)} handlers; it takes one")
    return functions[0] if functions else None

"""Who is personally concerned by an event: the hook for per-user e-mail (and a later "My work").

A finder takes the event's `data` and returns users. Register more with `@finds_people(type, ...)`;
`people_for` asks every finder of a type and keeps users with an e-mail address, once each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model

PeopleFinder = Callable[[dict[str, Any]], Iterable[Any]]
_FINDERS: dict[str, list[PeopleFinder]] = {}

INCIDENT_EVENTS = (
    "incident.opened",
    "incident.state_changed",
    "agent.scope_changed",
    "review.requested",
    "decision.recorded",
    "attestation.needed",
    "obligation.due_soon",
    "obligation.overdue",
)


def finds_people(*event_types: str) -> Callable[[PeopleFinder], PeopleFinder]:
    def register(finder: PeopleFinder) -> PeopleFinder:
        for event_type in event_types:
            _FINDERS.setdefault(event_type, []).append(finder)
        return finder

    return register


def people_for(event_type: str, data: dict[str, Any]) -> list[Any]:
    """The users to e-mail about this event (with an address, active, each once, by id)."""
    seen: dict[int, Any] = {}
    for finder in _FINDERS.get(event_type, []):
        for user in finder(data) or ():
            if user is not None and user.is_active and user.email and user.pk not in seen:
                seen[user.pk] = user
    return [seen[pk] for pk in sorted(seen)]


def incident_lead(incident_key: str) -> Any | None:
    """The person who leads an incident: the latest `assigned` event with role `lead` (DESIGN
    section 13) when there is one, else the person who opened it. None for a breach the system
    opened and nobody leads yet."""
    Incident = apps.get_model("incidents", "Incident")
    Event = apps.get_model("incidents", "Event")
    incident = Incident.objects.filter(key=incident_key).select_related("created_by").first()
    if incident is None:
        return None
    assigned = (
        Event.objects.filter(incident=incident, type="assigned", data__role="lead")
        .order_by("-seq")
        .values_list("data", flat=True)
        .first()
    )
    if assigned and assigned.get("user"):
        return get_user_model().objects.filter(username=assigned["user"]).first()
    return incident.created_by


@finds_people(*INCIDENT_EVENTS)
def _the_incident_lead(data: dict[str, Any]) -> list[Any]:
    key = data.get("incident")
    lead = incident_lead(key) if isinstance(key, str) and key else None
    return [lead] if lead is not None else []


@finds_people("attestation.needed")
def _asked_to_attest(data: dict[str, Any]) -> list[Any]:
    """Attestations are not yet asked of named people; when a publisher names them in
    `data["asked_of"]` (usernames), they are told."""
    names = data.get("asked_of") or []
    if not isinstance(names, list) or not names:
        return []
    return list(get_user_model().objects.filter(username__in=[str(n) for n in names]))


@finds_people("sharelink.viewed")
def _link_creator(data: dict[str, Any]) -> list[Any]:
    ShareLink = apps.get_model("diligence", "ShareLink")
    pk = data.get("share_link")
    if not isinstance(pk, int) or isinstance(pk, bool):
        return []
    link = ShareLink.objects.filter(pk=pk).select_related("created_by").first()
    return [link.created_by] if link is not None else []

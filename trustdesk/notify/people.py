"""Who is personally concerned by an event: the hook for per-user e-mail (and a later "My work").

A finder takes the event's `data` and returns users. Register more with `@finds_people(type, ...)`;
`people_for` asks every finder of a type and keeps users with an e-mail address who did not turn
their e-mail off (core.email_preference), once each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model

from trustdesk.core.email_preference import opted_out

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
    """The users to e-mail about this event (with an address, active, not opted out on the
    settings page, each once, by id)."""
    seen: dict[int, Any] = {}
    for finder in _FINDERS.get(event_type, []):
        for user in finder(data) or ():
            if user is not None and user.is_active and user.email and user.pk not in seen:
                seen[user.pk] = user
    unwilling = opted_out(seen) if seen else set()
    return [seen[pk] for pk in sorted(seen) if pk not in unwilling]


def incident_lead(incident_key: str) -> Any | None:
    """The person who leads an incident: the current holder of its `lead` role (docs/design.md
    section 13), else the person who opened it. None for a breach the system opened that nobody
    leads."""
    Incident = apps.get_model("incidents", "Incident")
    IncidentRole = apps.get_model("incidents", "IncidentRole")
    lead = (
        IncidentRole.objects.current()
        .filter(incident__key=incident_key, role="lead")
        .select_related("user")
        .order_by("-pk")
        .first()
    )
    if lead is not None:
        return lead.user
    incident = Incident.objects.filter(key=incident_key).select_related("created_by").first()
    return incident.created_by if incident is not None else None


@finds_people(*INCIDENT_EVENTS)
def _the_incident_lead(data: dict[str, Any]) -> list[Any]:
    key = data.get("incident")
    lead = incident_lead(key) if isinstance(key, str) and key else None
    return [lead] if lead is not None else []


@finds_people("attestation.needed")
def _asked_to_attest(data: dict[str, Any]) -> list[Any]:
    """The rule of My work: people holding a role on the incident who may attest, other than
    the decider and anyone who already attested."""
    from trustdesk.core.roles import can

    key = data.get("incident")
    if not isinstance(key, str) or not key:
        return []
    IncidentRole = apps.get_model("incidents", "IncidentRole")
    RecoveryDecision = apps.get_model("reviews", "RecoveryDecision")
    decision = RecoveryDecision.objects.filter(incident__key=key).first()
    if decision is None:
        return []
    holders = IncidentRole.objects.current().filter(incident__key=key).values("user")
    people = (
        get_user_model()
        .objects.filter(pk__in=holders)
        .exclude(pk=decision.decided_by_id)
        .exclude(pk__in=decision.attestations.values("by"))
    )
    return [user for user in people if can(user, "attest")]


@finds_people("sharelink.viewed")
def _link_creator(data: dict[str, Any]) -> list[Any]:
    ShareLink = apps.get_model("diligence", "ShareLink")
    pk = data.get("share_link")
    if not isinstance(pk, int) or isinstance(pk, bool):
        return []
    link = ShareLink.objects.filter(pk=pk).select_related("created_by").first()
    return [link.created_by] if link is not None else []

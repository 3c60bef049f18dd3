"""The ownership panel of the incident page (roles, clocks, obligations, action items, the ways
out), and the list page's owners and clocks.

The panel's forms post to steps of the incident page's step table (`views.STEPS`), which call
`ownership` and `obligations`; the report filing page is `filing_views`.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from trustdesk.core.roles import can
from trustdesk.incidents import obligations, ownership
from trustdesk.incidents.clocks import containment_clock
from trustdesk.incidents.forms import ClassifyForm
from trustdesk.incidents.models import ActionItem, Event, EventType, Incident, IncidentRoleName
from trustdesk.incidents.ownership_forms import (
    ActionItemForm,
    ActionStatusForm,
    AssessForm,
    AssignForm,
    CloseNotIncidentForm,
)


def operating_model_changes(events) -> list[tuple[int, str]]:
    """The operating-model changes among `events`, as an action item's choices of the change it
    follows from."""
    return [
        (e.seq, f"#{e.seq} {e.data.get('kind', '')}: {e.data.get('summary', '')}"[:120])
        for e in events
        if e.type == EventType.OPERATING_MODEL_CHANGED
    ]


def annotate_list_rows(incidents) -> None:
    """Set `lead` (a user or None), `clock` (the containment clock) and `next_report` (the
    nearest unfiled obligation, or None) on each incident of a list page (load `agent` and
    `pact_version` with them). Two queries whatever the page size."""
    rows = list(incidents)
    roles = ownership.current_roles(rows)
    owed = obligations.obligations_by_incident(rows)
    for incident in rows:
        leads = roles[incident.pk].get(IncidentRoleName.LEAD, [])
        incident.lead = leads[-1] if leads else None
        incident.clock = containment_clock(incident)
        unfiled = [o for o in owed[incident.pk] if o.filed_at is None]
        incident.next_report = unfiled[0] if unfiled else None


def ownership_panel_context(
    request: HttpRequest, incident: Incident, events: list[Event], bound: dict[str, Any]
) -> dict[str, Any]:
    """What the ownership panel reads: three queries (roles, action items, the people of the
    forms' selects when the user may use them); obligations come from the page's events."""
    user = request.user
    roles = ownership.current_roles([incident])[incident.pk]
    items = list(
        ActionItem.objects.filter(incident=incident).select_related("owner").order_by("number")
    )
    owed = obligations.obligations_for(incident, events=events)
    can_work = can(user, "work_incidents")
    can_assess = can(user, "assess_obligations")
    can_keep_actions = can(user, "keep_actions")
    can_close = can(user, "close_not_incident") and incident.is_open and incident.decided_at is None
    can_reclassify = (
        can(user, "reclassify") and ownership.reclassification_allowed(incident) is None
    )

    def form(slot: str, factory):
        return bound.get(slot) or factory()

    clauses = list(incident.pact_version.clauses.all()) if incident.pact_version else []
    slots = set()
    for slot, allowed in (
        ("assign", can_work),
        ("unassign", can_work),
        ("action", can_keep_actions),
        ("assess", can_assess),
        ("close_not_incident", can_close),
        ("reclassify", can_reclassify),
    ):
        if allowed:
            slots.add(slot)
    for item in items:
        item.status_form = bound.get(f"action-{item.number}") or ActionStatusForm(
            prefix=f"action-{item.number}", initial={"status": item.status}
        )
        if can_keep_actions:
            slots.add(f"action-{item.number}")
    close_reason = next(
        (e.data for e in reversed(events) if e.type == EventType.CLOSED_NOT_INCIDENT), None
    )
    return {
        "own": {
            "roles": [
                (value, label, roles.get(value, [])) for value, label in IncidentRoleName.choices
            ],
            # A refused remove button (someone removed that person meanwhile): its problems.
            "unassign_form": bound.get("unassign"),
            "items": items,
            "obligations": owed,
            "clock": containment_clock(incident),
            "closed_not_incident": close_reason,
            "can_work": can_work,
            "can_assess": can_assess,
            "can_keep_actions": can_keep_actions,
            "can_close": can_close,
            "can_reclassify": can_reclassify,
            "assign_form": form("assign", lambda: AssignForm(prefix="assign"))
            if can_work
            else None,
            "action_form": form(
                "action",
                lambda: ActionItemForm(prefix="action", changes=operating_model_changes(events)),
            )
            if can_keep_actions
            else None,
            "assess_form": form("assess", lambda: AssessForm(prefix="assess"))
            if can_assess
            else None,
            "close_form": form(
                "close_not_incident",
                lambda: CloseNotIncidentForm(incident=incident, prefix="close"),
            )
            if can_close
            else None,
            "reclassify_form": form(
                "reclassify",
                lambda: ClassifyForm(
                    incident=incident,
                    clauses=clauses,
                    prefix="reclassify",
                    initial={
                        "assumption": incident.assumption,
                        "statement": incident.assumption_statement,
                        "confidence": incident.confidence,
                        "harm_category": incident.harm_category,
                        "secondary": incident.secondary_assumptions,
                        "clauses": [c.key for c in incident.clauses.all()],
                    },
                ),
            )
            if can_reclassify
            else None,
        },
        "ownership_slots": slots,
    }

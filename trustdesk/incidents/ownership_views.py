"""The ownership panel of the incident page (roles, clocks, obligations, action items, the ways
out) and its forms' views, plus the report filing page.

Each view parses a form and calls one function of `ownership` or `obligations` through the
incident page's step runner (`views.run_step_form`): POST/redirect/GET without JavaScript, the
page's `main` partial with htmx, the form with its errors in place when refused.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from trustdesk.core.decorators import permission_required
from trustdesk.core.pages import show_problems
from trustdesk.core.roles import can
from trustdesk.incidents import obligations, ownership
from trustdesk.incidents.clocks import containment_clock
from trustdesk.incidents.errors import GateError
from trustdesk.incidents.filing import draft_json, draft_markdown, draft_report
from trustdesk.incidents.forms import ClassifyForm
from trustdesk.incidents.models import ActionItem, Event, EventType, Incident, IncidentRoleName
from trustdesk.incidents.ownership_forms import (
    ActionItemForm,
    ActionStatusForm,
    AssessForm,
    AssignForm,
    CloseNotIncidentForm,
    ReportFiledForm,
)

OWNERSHIP_SLOTS = ("assign", "action", "assess", "close_not_incident", "reclassify")


def _changes(events: list[Event]) -> list[tuple[int, str]]:
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
            "roles": [(label, roles.get(value, [])) for value, label in IncidentRoleName.choices],
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
                "action", lambda: ActionItemForm(prefix="action", changes=_changes(events))
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


def _run(request, key, form, slot, action, done):
    from trustdesk.incidents.views import run_step_form

    return run_step_form(request, key, form, slot, action, done=done)


def _incident(key: str) -> Incident:
    from trustdesk.incidents.views import get_incident

    return get_incident(key)


@require_POST
@permission_required("work_incidents")
def incident_assign(request: HttpRequest, key: str) -> HttpResponse:
    form = AssignForm(request.POST, prefix="assign")

    def assign(incident: Incident, data: dict[str, Any]) -> None:
        ownership.assign_role(incident, by=request.user, role=data["role"], user=data["user"])

    return _run(request, key, form, "assign", assign, "Role assigned.")


@require_POST
@permission_required("keep_actions")
def incident_action_add(request: HttpRequest, key: str) -> HttpResponse:
    incident = _incident(key)
    changes = _changes(list(incident.events.filter(type=EventType.OPERATING_MODEL_CHANGED)))
    form = ActionItemForm(request.POST, prefix="action", changes=changes)

    def add(incident: Incident, data: dict[str, Any]) -> None:
        ownership.add_action_item(
            incident,
            by=request.user,
            title=data["title"],
            owner=data.get("owner"),
            due=data.get("due"),
            ticket=data.get("ticket", ""),
            change_seq=data.get("change_seq"),
            required=bool(data.get("required")),
        )

    return _run(request, key, form, "action", add, "Action item added.")


@require_POST
@permission_required("keep_actions")
def incident_action_update(request: HttpRequest, key: str, number: int) -> HttpResponse:
    incident = _incident(key)
    item = get_object_or_404(ActionItem, incident=incident, number=number)
    form = ActionStatusForm(request.POST, prefix=f"action-{number}")

    def update(incident: Incident, data: dict[str, Any]) -> None:
        ownership.update_action_item(
            item, by=request.user, status=data["status"], reason=data.get("reason", "")
        )

    return _run(request, key, form, f"action-{number}", update, "Action item updated.")


@require_POST
@permission_required("assess_obligations")
def incident_assess(request: HttpRequest, key: str) -> HttpResponse:
    form = AssessForm(request.POST, prefix="assess")

    def assess(incident: Incident, data: dict[str, Any]) -> None:
        obligations.assess_incident(
            incident,
            by=request.user,
            flags=form.flags(),
            aware_at=data["aware_at"],
            note=data.get("note", ""),
        )

    return _run(request, key, form, "assess", assess, "Assessment recorded.")


@require_POST
@permission_required("close_not_incident")
def incident_close_not_incident(request: HttpRequest, key: str) -> HttpResponse:
    incident = _incident(key)
    form = CloseNotIncidentForm(request.POST, incident=incident, prefix="close")

    def close(incident: Incident, data: dict[str, Any]) -> None:
        ownership.close_not_incident(
            incident,
            by=request.user,
            expected_version=data["version"],
            reason=data["reason"],
            duplicate_of=data.get("duplicate_of"),
            explanation=data["explanation"],
        )

    return _run(request, key, form, "close_not_incident", close, "Closed: it was not an incident.")


@require_POST
@permission_required("reclassify")
def incident_reclassify(request: HttpRequest, key: str) -> HttpResponse:
    incident = _incident(key)
    clauses = list(incident.pact_version.clauses.all()) if incident.pact_version else []
    form = ClassifyForm(request.POST, incident=incident, clauses=clauses, prefix="reclassify")

    def reclassify(incident: Incident, data: dict[str, Any]) -> None:
        ownership.reclassify_incident(
            incident,
            by=request.user,
            expected_version=data["version"],
            assumption=data["assumption"],
            statement=data["statement"],
            clauses=data["clause_objects"],
            confidence=data["confidence"],
            harm_category=data.get("harm_category", ""),
            secondary=data.get("secondary", []),
        )

    return _run(request, key, form, "reclassify", reclassify, "Incident reclassified.")


# ---------------------------------------------------------------- the filing page


@require_http_methods(["GET", "POST"])
@permission_required("read")
def obligation_filing(request: HttpRequest, key: str, regime: str, obligation: str) -> HttpResponse:
    """The draft of a report (Markdown and JSON, from the incident) and the form that records
    it as filed. Reading is for every internal role; filing for incident managers and risk."""
    incident = _incident(key)
    events = list(Event.objects.filter(incident=incident).order_by("seq"))
    owed = {(o.regime, o.obligation): o for o in obligations.obligations_for(incident, events)}
    found = owed.get((regime, obligation))
    if found is None:
        raise Http404("This incident owes no such report under its latest assessment.")
    draft = draft_report(incident, found, events)
    markdown = draft_markdown(draft)
    can_file = can(request.user, "file_reports") and found.filed_at is None
    fmt = request.GET.get("format")
    if request.method == "GET" and fmt in ("md", "json"):
        body = markdown if fmt == "md" else draft_json(draft)
        response = HttpResponse(
            body.encode("utf-8"),
            content_type="text/markdown; charset=utf-8"
            if fmt == "md"
            else "application/json; charset=utf-8",
        )
        name = f"{incident.key}-{regime}-{obligation}.{fmt}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    form = None
    status = 200
    if request.method == "POST":
        if not can_file:
            raise PermissionDenied("Only an incident manager or risk may record a filed report.")
        form = ReportFiledForm(request.POST, prefix="file")
        if form.is_valid():
            data = form.cleaned_data
            try:
                obligations.file_report(
                    incident,
                    by=request.user,
                    regime=regime,
                    obligation=obligation,
                    reference=data["reference"],
                    sha256=hashlib.sha256(data["report"].encode("utf-8")).hexdigest(),
                    filed_at=data["filed_at"],
                )
            except GateError as exc:
                show_problems(form, exc)
                status = exc.status_code
            else:
                messages.success(request, f"{found.title}: filing recorded.")
                return redirect("incident_detail", key=incident.key)
        else:
            status = 422
    elif can_file:
        form = ReportFiledForm(prefix="file", initial={"report": markdown})
    return render(
        request,
        "incidents/obligation_filing.html",
        {
            "incident": incident,
            "obligation": found,
            "markdown": markdown,
            "json": draft_json(draft),
            "form": form,
            "can_file": can_file,
        },
        status=status,
    )

"""The incident pages: the list, a new incident, the incident page and its step forms.

Views parse input with a form, call one function of `lifecycle`, and render. Every form works as
a plain POST/redirect/GET; with htmx the same template's `main` partial is swapped in place and
an `HX-Trigger: incidentChanged` header tells the other regions of the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.forms import Form
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from trustdesk.core import hooks, pages
from trustdesk.core.decorators import permission_required
from trustdesk.core.errors import Refused
from trustdesk.core.pages import (
    paginate,
    render_page,
    resubmitted_at,
    run_step,
    show_problems,
    wants_partial,
)
from trustdesk.core.roles import can, roles_for
from trustdesk.core.submissions import submit_once
from trustdesk.core.timezones import request_zone
from trustdesk.incidents import breach, journal, lifecycle, list_rows, live, obligations, ownership
from trustdesk.incidents import evidence as evidence_store
from trustdesk.incidents.chain import first_broken_link
from trustdesk.incidents.errors import ConflictError, GateError
from trustdesk.incidents.forms import (
    ApplyContainmentForm,
    ClassifyForm,
    ContainForm,
    DisputeForm,
    EvidenceForm,
    IncidentFilterForm,
    NewIncidentForm,
    NoteForm,
    PreserveForm,
    RepairForm,
    ResolveDisputeForm,
    VersionedForm,
)
from trustdesk.incidents.gates import current_step, gate_rows, gate_status, present_evidence_kinds
from trustdesk.incidents.models import (
    ActionItem,
    Event,
    EventType,
    Evidence,
    EvidenceContent,
    Incident,
    State,
)
from trustdesk.incidents.ownership_forms import (
    ActionItemForm,
    ActionStatusForm,
    AssessForm,
    AssignForm,
    CloseNotIncidentForm,
    UnassignForm,
)
from trustdesk.incidents.ownership_views import (
    annotate_list_rows,
    operating_model_changes,
    ownership_panel_context,
)
from trustdesk.incidents.state_counts import counts_by_state
from trustdesk.pacts.models import Agent, Dispute, EvidenceKind
from trustdesk.taxonomy import ASSUMPTION_BY_KEY

PAGE_SIZE = 25
# Who may open a classification dispute, and who resolves it (docs/design.md section 10).
DISPUTE_OPENERS = roles_for("open_dispute")  # who may: core.roles.PERMISSIONS
DISPUTE_RESOLVERS = roles_for("resolve_dispute")  # who may: core.roles.PERMISSIONS
# The steps whose form is on this page; the review steps are carried out in the reviews panel.
STEP_FORMS = ("contain", "preserve_evidence", "classify", "repair")


# ---------------------------------------------------------------- list


@require_GET
@vary_on_headers("HX-Request")
@permission_required("read")
def incidents_index(request: HttpRequest) -> HttpResponse:
    form = IncidentFilterForm(request.GET, user=request.user)
    filtered = form.filter(Incident.objects.all())
    incidents = form.order(filtered).select_related("agent", "pact_version")
    # Counts per state under every filter except the state itself, in one query.
    by_state = counts_by_state(
        form.filter(Incident.objects.all(), skip_state=True),
        every_incident=not set(form.values()) - {"state", "sort"},
    )
    chosen_state = form.values().get("state", "")
    # The list's own count is one of those (or their sum): no second COUNT query.
    count = by_state.get(chosen_state, 0) if chosen_state else sum(by_state.values())
    page = paginate(request, incidents, PAGE_SIZE, count=count)
    # Leads, containment overruns and the nearest report deadline of the rows: two queries.
    annotate_list_rows(page.object_list)
    state_counts = [
        {
            "value": value,
            "label": label,
            "count": by_state.get(value, 0),
            "active": value == chosen_state,
        }
        for value, label in State.choices
    ]
    context = {
        "form": form,
        "page": page,
        "incidents": page.object_list,
        "rows": list_rows.rows_html(page.object_list, zone=request_zone(request)),
        "state_counts": state_counts,
        "total_all_states": sum(by_state.values()),
        "filtered": bool(set(form.values()) - {"sort"}),
        "sort": form.sort_key,
        "can_open": can(request.user, "work_incidents"),
    }
    return render_page(request, "incidents/incidents_index.html", context, partial="results")


# ---------------------------------------------------------------- new incident


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
@permission_required("work_incidents")
def incident_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = NewIncidentForm(request.POST)
        if form.is_valid():
            opened: list[Incident] = []

            def open_it() -> str:
                opened.append(_open_and_contain(form.cleaned_data, by=request.user))
                return reverse("incident_detail", kwargs={"key": opened[0].key})

            try:
                url, repeated = submit_once(
                    form.cleaned_data.get("submission"), by=request.user, action=open_it
                )
            except GateError as exc:
                show_problems(form, exc)
            except PermissionError as exc:
                form.add_error(None, str(exc))
            else:
                if repeated:
                    messages.info(request, "This form was already sent: here is what it opened.")
                else:
                    messages.success(request, f"{opened[0].key} opened.")
                return redirect(url)
    else:
        # A GET with ?agent=... narrows the pact choices (the htmx refresh of the pact fields).
        agent = _agent_from(request.GET)
        initial: dict[str, Any] = {"detected_at": timezone.now()}
        if agent is not None:
            initial["agent"] = agent
        form = NewIncidentForm(initial=initial, agent=agent)
        if agent is not None:
            # An agent with a single active pact version: that is the one in force.
            versions = list(form.fields["pact_version"].queryset[:2])
            if len(versions) == 1:
                form.initial["pact_version"] = versions[0].pk
        if wants_partial(request):
            return render(request, "incidents/incident_new.html#pact_fields", {"form": form})
    return render(request, "incidents/incident_new.html", {"form": form})


def _agent_from(data) -> Agent | None:
    key = data.get("agent", "")
    if not key or len(key) > 80:
        return None
    return Agent.objects.filter(key=key, retired_at__isnull=True).first()


def _open_and_contain(data: dict[str, Any], *, by) -> Incident:
    """Open the incident and, when the form recorded one, its containment: both or neither."""
    with transaction.atomic():
        incident = journal.open_incident(
            agent=data["agent"],
            by=by,
            title=data["title"],
            severity=data["severity"],
            detected_at=data["detected_at"],
            pact_version=data.get("pact_version"),
            clauses=list(data.get("clauses") or []),
            summary=data.get("summary", ""),
        )
        if data.get("contain_action"):
            lifecycle.contain_incident(
                incident,
                by=by,
                expected_version=incident.version,
                action=data["contain_action"],
                scope_after=data.get("contain_scope_after", ""),
                reason=data.get("contain_reason", ""),
            )
    return incident


# ---------------------------------------------------------------- the incident page


def get_incident(key: str) -> Incident:
    """The incident with what every part of its page reads, in a fixed number of queries."""
    if len(key) > 30 or not key.isprintable():  # PostgreSQL refuses NUL bytes outright
        raise Http404("No such incident.")
    return get_object_or_404(
        Incident.objects.select_related(
            "agent", "pact_version__pact", "recurrence_of", "created_by"
        ).prefetch_related("clauses"),
        key=key,
    )


def _page_forms(
    incident: Incident,
    *,
    evidence: list[Evidence],
    missing_kinds: list[str],
    clauses: list,
    bound: dict[str, Any],
) -> dict[str, Any]:
    """Unbound forms for the page, with `bound` ones (a refused submission) in their place."""

    def make(name: str, factory: Callable[[], Any]) -> Any:
        return bound[name] if name in bound else factory()

    return {
        "contain": make("contain", lambda: ContainForm(incident=incident, prefix="contain")),
        "evidence": make(
            "evidence",
            lambda: EvidenceForm(incident=incident, evidence=evidence, prefix="evidence"),
        ),
        "preserve_evidence": make(
            "preserve_evidence",
            lambda: PreserveForm(incident=incident, missing_kinds=missing_kinds, prefix="preserve"),
        ),
        "classify": make(
            "classify",
            lambda: ClassifyForm(
                incident=incident,
                clauses=clauses,
                prefix="classify",
                initial={"clauses": [c.key for c in incident.clauses.all()]},
            ),
        ),
        "repair": make("repair", lambda: RepairForm(incident=incident, prefix="repair")),
        "apply": make("apply", lambda: ApplyContainmentForm(incident=incident, prefix="apply")),
        "note": make("note", lambda: NoteForm(prefix="note")),
        "dispute": make("dispute", lambda: DisputeForm(prefix="dispute")),
    }


def _evidence_status(incident: Incident, events: list[Event]) -> list[dict[str, Any]]:
    """The pact's required kinds, each with whether evidence of that kind stands on record
    (judged as the gate judges it, from the already-fetched events)."""
    present = present_evidence_kinds(e for e in events if e.type == EventType.EVIDENCE_ADDED)
    required = list(incident.pact_version.evidence_required) if incident.pact_version else []
    labels = dict(EvidenceKind.choices)
    return [{"kind": k, "label": labels.get(k, k), "present": k in present} for k in required]


def _rail(gates: list, step: str) -> list[dict[str, Any]]:
    """Each gate as done, current or blocked (behind the current step), in lifecycle order."""
    order = [g.step for g in gates]
    at = order.index(step) if step in order else len(order)  # "done": every step is behind
    rail = []
    for i, gate in enumerate(gates):
        status = "done" if i < at else "current" if i == at else "blocked"
        rail.append({"gate": gate, "status": status, "number": i + 1})
    return rail


def incident_page_context(
    request: HttpRequest,
    incident: Incident,
    *,
    bound: dict[str, Any] | None = None,
    conflict: ConflictError | None = None,
) -> dict[str, Any]:
    """Everything incident_detail.html reads, in a fixed number of queries.

    `bound` holds refused forms (by slot) to show with their errors and the user's input.
    """
    bound = bound or {}
    events = list(
        Event.objects.filter(incident=incident)
        .only(
            "seq",
            "type",
            "at",
            "recorded_at",
            "actor_name",
            "data",
            "prev_hash",
            "hash",
            "canonical",
        )
        .order_by("seq")
    )
    evidence = list(
        Evidence.objects.filter(incident=incident)
        .select_related("captured_by", "superseded_by", "supersedes", "trace_view")
        .order_by("captured_at", "pk")
    )
    disputes = list(
        Dispute.objects.filter(incident=incident)
        .select_related("opened_by", "resolved_by")
        .order_by("-opened_at", "-pk")
    )
    clauses = _pact_clauses(incident)
    required = _evidence_status(incident, events)
    missing_kinds = [r["kind"] for r in required if not r["present"]]
    # One gate computation for the page and the reviews panel, from the events loaded above.
    gates = gate_status(incident, rows=gate_rows(events))
    step = current_step(incident)
    user = request.user
    works = can(user, "work_incidents") and incident.is_open
    forms = _page_forms(
        incident,
        evidence=evidence,
        missing_kinds=missing_kinds,
        clauses=clauses,
        bound=bound,
    )
    proposal = breach.proposed_containment(incident) if works and step == "contain" else None
    broken = first_broken_link(incident.key, events)
    rail = _rail(gates, step)
    for dispute in disputes:
        if dispute.is_open:
            dispute.resolve_form = bound.get(f"resolve-{dispute.pk}") or ResolveDisputeForm(
                prefix=f"resolve-{dispute.pk}"
            )
    context = {
        "incident": incident,
        "agent": incident.agent,
        "assumption": ASSUMPTION_BY_KEY.get(incident.assumption),
        "events": events,
        "chain_broken": broken,
        "evidence": evidence,
        "evidence_required": required,
        "missing_kinds": missing_kinds,
        "notes": [e for e in reversed(events) if e.type == EventType.NOTE],
        "disputes": disputes,
        "open_disputes": [d for d in disputes if d.is_open],
        "clauses": list(incident.clauses.all()),
        "rail": rail,
        "step": step,
        "step_gate": next((g for g in gates if g.step == step), None),
        "step_form": forms.get(step) if step in STEP_FORMS else None,
        "forms": forms,
        "proposal": proposal,
        "conflict": conflict,
        "can_work": works,
        "can_dispute": can(user, "open_dispute") and incident.classified_at is not None,
        "can_resolve": can(user, "resolve_dispute"),
        "step_number": next((r["number"] for r in rail if r["status"] == "current"), None),
        "step_forms_here": list(STEP_FORMS),
        "show_messages": wants_partial(request),
    }
    context.update(ownership_panel_context(request, incident, events, bound))
    context["visible_slots"] = _visible_slots(context)
    # The apps above (the reviews panel) add their part of the page.
    context.update(hooks.context(hooks.INCIDENT_PAGE, incident, user, gates=gates))
    # The page's live poll (incidents/live.py) asks "changed since this?" with this token.
    context["live_token"] = live.page_token(incident, context.get("review_panel", {}))
    context["live_poll_seconds"] = live.POLL_SECONDS
    return context


def _visible_slots(context: dict[str, Any]) -> set[str]:
    """The forms incident_detail.html shows in place (mirrors its conditions)."""
    slots: set[str] = set()
    step = context["step"]
    if context["can_work"]:
        slots |= {"evidence", "note"}
        if step in STEP_FORMS:
            slots.add(step)
        if step == "contain" and context["proposal"]:
            slots.add("apply")
    if context["can_dispute"] and not context["open_disputes"]:
        slots.add("dispute")
    if context["can_resolve"]:
        slots |= {f"resolve-{d.pk}" for d in context["open_disputes"]}
    slots |= context.get("ownership_slots", set())
    return slots


@require_GET
@vary_on_headers("HX-Request")
@permission_required("read")
def incident_detail(request: HttpRequest, key: str) -> HttpResponse:
    incident = get_incident(key)
    context = incident_page_context(request, incident)
    return render_page(request, "incidents/incident_detail.html", context, partial="main")


# ---------------------------------------------------------------- the steps


@dataclass(frozen=True)
class Step(pages.Step):
    """One form of the incident page (a row of its step table, posted below incidents/<key>/):
    its form, and the action it runs: `action(incident, by=user, **action_kwargs(form))`
    (core.pages.action_kwargs: the form's fields are the action's keyword arguments).

    A number in the route (`pk`, `number`) names the `target` the step acts on instead of the
    incident and fills the `slot` (the form's place on the page, e.g. "resolve-{pk}") and the
    form's `prefix` (the slot unless told). `form_kwargs(incident)` is what the form needs
    besides its input; a versioned form is given the incident."""

    slot: str
    form: type[Form]
    action: Callable[..., Any]
    done: str
    prefix: str = ""
    form_kwargs: Callable[[Incident], dict[str, Any]] | None = None
    target: Callable[[Incident, int], Any] | None = None

    def respond(self, request: HttpRequest, key: str, **ids: int) -> HttpResponse:
        return run_incident_step(request, key, self, ids)

    def bind(self, incident: Incident, ids: dict[str, int], data: Any, files: Any = None) -> Form:
        """The step's form for `incident`, bound to `data`."""
        kwargs = self.form_kwargs(incident) if self.form_kwargs else {}
        if issubclass(self.form, VersionedForm):
            kwargs["incident"] = incident
        return self.form(data, files, prefix=(self.prefix or self.slot).format(**ids), **kwargs)


def run_incident_step(
    request: HttpRequest, key: str, step: Step, ids: dict[str, int]
) -> HttpResponse:
    """Run one step from its posted form (core.pages.run_step): PRG on success, the page with the
    form's errors if not (422; 409 when someone changed the incident meanwhile: the form keeps
    the user's input, moves to the current version, and the page says what changed)."""
    incident = get_incident(key)
    subject = step.target(incident, *ids.values()) if step.target else incident
    slot = step.slot.format(**ids)
    form = step.bind(incident, ids, request.POST, request.FILES)

    def on_success() -> HttpResponse:
        if wants_partial(request):
            fresh = get_incident(key)
            response = render_page(
                request,
                "incidents/incident_detail.html",
                incident_page_context(request, fresh),
                partial="main",
            )
            response["HX-Trigger"] = "incidentChanged"
            return response
        return redirect("incident_detail", key=key)

    def on_refused(form: Any, refusal: Refused | None, status: int) -> HttpResponse:
        fresh = get_incident(key)
        conflict = refusal if isinstance(refusal, ConflictError) else None
        if conflict is not None:
            form = step.bind(fresh, ids, resubmitted_at(form, fresh.version))
            form.is_valid()  # show field errors the user still has to fix, if any
        context = incident_page_context(request, fresh, bound={slot: form}, conflict=conflict)
        if slot not in context["visible_slots"]:
            # The form's place is gone (the step moved on, the dispute closed): show it alone.
            context["unsaved"] = {"form": form, "action": request.path}
        return render_page(
            request, "incidents/incident_detail.html", context, partial="main", status=status
        )

    return run_step(
        request,
        form,
        partial(step.action, subject, by=request.user),
        done=step.done,
        on_success=on_success,
        on_refused=on_refused,
    )


def _apply_proposal(incident: Incident, *, by, expected_version: int) -> None:
    """The one-click containment a pact breach proposed: the proposal is re-read, not posted."""
    proposal = breach.proposed_containment(incident)
    if not proposal:
        raise GateError("There is no proposed containment for this incident.")
    lifecycle.contain_incident(incident, by=by, expected_version=expected_version, **proposal)


def _pact_clauses(incident: Incident) -> list:
    return list(incident.pact_version.clauses.all()) if incident.pact_version else []


def _classify_form_kwargs(incident: Incident) -> dict[str, Any]:
    return {"clauses": _pact_clauses(incident)}


def _evidence_form_kwargs(incident: Incident) -> dict[str, Any]:
    evidence = Evidence.objects.filter(incident=incident).select_related("superseded_by")
    return {"evidence": list(evidence)}


def _preserve_form_kwargs(incident: Incident) -> dict[str, Any]:
    events = list(Event.objects.filter(incident=incident, type=EventType.EVIDENCE_ADDED))
    return {
        "missing_kinds": [r["kind"] for r in _evidence_status(incident, events) if not r["present"]]
    }


def _action_form_kwargs(incident: Incident) -> dict[str, Any]:
    changes = incident.events.filter(type=EventType.OPERATING_MODEL_CHANGED)
    return {"changes": operating_model_changes(changes)}


STEPS = (
    Step(
        "incident_contain",
        "contain/",
        "work_incidents",
        "contain",
        ContainForm,
        lifecycle.contain_incident,
        "Containment recorded.",
    ),
    Step(
        "incident_apply_containment",
        "apply-containment/",
        "work_incidents",
        "apply",
        ApplyContainmentForm,
        _apply_proposal,
        "Proposed containment applied.",
    ),
    Step(
        "incident_add_evidence",
        "evidence/",
        "work_incidents",
        "evidence",
        EvidenceForm,
        lifecycle.add_evidence,
        "Evidence added.",
        form_kwargs=_evidence_form_kwargs,
    ),
    Step(
        "incident_preserve",
        "preserve/",
        "work_incidents",
        "preserve_evidence",
        PreserveForm,
        lifecycle.mark_evidence_preserved,
        "Evidence marked preserved.",
        prefix="preserve",
        form_kwargs=_preserve_form_kwargs,
    ),
    Step(
        "incident_classify",
        "classify/",
        "work_incidents",
        "classify",
        ClassifyForm,
        lifecycle.classify_incident,
        "Incident classified.",
        form_kwargs=_classify_form_kwargs,
    ),
    Step(
        "incident_repair",
        "repair/",
        "work_incidents",
        "repair",
        RepairForm,
        lifecycle.record_repair,
        "Repair recorded.",
    ),
    Step(
        "incident_add_note",
        "notes/",
        "work_incidents",
        "note",
        NoteForm,
        lifecycle.add_note,
        "Note added.",
    ),
    Step(
        "incident_open_dispute",
        "disputes/",
        "open_dispute",
        "dispute",
        DisputeForm,
        lifecycle.open_classification_dispute,
        "Dispute opened.",
    ),
    Step(
        "incident_resolve_dispute",
        "disputes/<int:pk>/resolve/",
        "resolve_dispute",
        "resolve-{pk}",
        ResolveDisputeForm,
        lifecycle.resolve_classification_dispute,
        "Dispute resolved.",
        target=lambda incident, pk: get_object_or_404(Dispute, pk=pk, incident=incident),
    ),
    # The ownership panel's forms (the panel is ownership_views.py).
    Step(
        "incident_assign",
        "assign/",
        "work_incidents",
        "assign",
        AssignForm,
        ownership.assign_role,
        "Role assigned.",
    ),
    Step(
        "incident_unassign",
        "unassign/",
        "work_incidents",
        "unassign",
        UnassignForm,
        ownership.unassign_role,
        "Removed from the role.",
    ),
    Step(
        "incident_action_add",
        "actions/",
        "keep_actions",
        "action",
        ActionItemForm,
        ownership.add_action_item,
        "Action item added.",
        form_kwargs=_action_form_kwargs,
    ),
    Step(
        "incident_action_update",
        "actions/<int:number>/",
        "keep_actions",
        "action-{number}",
        ActionStatusForm,
        ownership.update_action_item,
        "Action item updated.",
        target=lambda incident, number: get_object_or_404(
            ActionItem, incident=incident, number=number
        ),
    ),
    Step(
        "incident_assess",
        "assess/",
        "assess_obligations",
        "assess",
        AssessForm,
        obligations.assess_incident,
        "Assessment recorded.",
    ),
    Step(
        "incident_close_not_incident",
        "close-not-incident/",
        "close_not_incident",
        "close_not_incident",
        CloseNotIncidentForm,
        ownership.close_not_incident,
        "Closed: it was not an incident.",
        prefix="close",
    ),
    Step(
        "incident_reclassify",
        "reclassify/",
        "reclassify",
        "reclassify",
        ClassifyForm,
        ownership.reclassify_incident,
        "Incident reclassified.",
        form_kwargs=_classify_form_kwargs,
    ),
)


# ---------------------------------------------------------------- evidence download


@require_GET
@permission_required("read")
def evidence_download(request: HttpRequest, key: str, pk: int) -> HttpResponse:
    """The stored bytes, always as an attachment of an opaque type: never rendered by a browser."""
    incident = get_incident(key)
    evidence = get_object_or_404(Evidence, pk=pk, incident=incident)
    if evidence.content_type == EvidenceContent.FILE:
        try:
            path = evidence_store.absolute_path(evidence.storage_path)
        except ValueError:
            raise Http404("The evidence file is not in the evidence store.") from None
        if not evidence.storage_path or not path.is_file():
            raise Http404("The evidence file is missing from storage.")
        response = FileResponse(
            path.open("rb"),
            as_attachment=True,
            # Already stripped of folders, quotes and control characters when stored.
            filename=evidence.original_name or f"evidence-{evidence.pk}",
            content_type="application/octet-stream",
        )
    elif evidence.content_type == EvidenceContent.TEXT:
        response = HttpResponse(
            evidence.text.encode("utf-8"), content_type="application/octet-stream"
        )
        response["Content-Disposition"] = f'attachment; filename="evidence-{evidence.pk}.txt"'
    else:
        raise Http404("This evidence is a link; there is no file to download.")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response

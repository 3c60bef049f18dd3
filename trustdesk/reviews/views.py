"""Reviews pages: the reviews index, the incident page's review panel (its POSTs), and review
meetings with their live shared screen.

Thin views: a form parses the input, `reviews.actions` does the change, a template renders.
Every POST works as a plain form post (POST/redirect/GET); htmx requests get a fragment of the
same template instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms as django_forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from trustdesk.core import pages
from trustdesk.core.decorators import permission_required
from trustdesk.core.pages import (
    paginate,
    render_page,
    resubmitted_at,
    run_step,
    show_problems,
    wants_partial,
)
from trustdesk.core.roles import can
from trustdesk.incidents.errors import ConflictError, GateError
from trustdesk.incidents.models import Incident
from trustdesk.reviews import actions, queries
from trustdesk.reviews.forms import (
    AgendaItemForm,
    AttestationForm,
    ChangesForm,
    DecisionForm,
    MeetingFilterForm,
    MeetingForm,
    NoteForm,
    OperatingModelChangeForm,
    ReentryConditionForm,
    RequestReviewForm,
    ReviewFilterForm,
    SignOffForm,
    initial_meeting_time,
)
from trustdesk.reviews.models import RecoveryDecision, ReviewMeeting
from trustdesk.reviews.panels import incident_panel_context
from trustdesk.reviews.tasks import recheck_conditions_for_incident
from trustdesk.taxonomy import ASSUMPTION_BY_KEY

PAGE_SIZE = 25
POLL_SECONDS = 2


# ---------------------------------------------------------------- the index


@require_GET
@vary_on_headers("HX-Request")
@permission_required("read")
def reviews_index(request: HttpRequest) -> HttpResponse:
    form = ReviewFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    page = paginate(request, queries.review_queue(filters), PAGE_SIZE)
    upcoming, past = queries.upcoming_and_past()
    context = {
        "form": form,
        "page": page,
        "decisions": queries.recent_decisions(),
        "upcoming": upcoming,
        "past": past,
        "can_create_meeting": can(request.user, "run_meetings"),
    }
    return render_page(request, "reviews/reviews_index.html", context, partial="queue")


# ---------------------------------------------------------------- the incident panel


def _incident(key: str, **within: Any) -> Incident:
    """The incident of the review panel (or of a meeting's agenda, `within` it)."""
    return get_object_or_404(
        Incident.objects.select_related("agent", "pact_version__pact"), key=key, **within
    )


def _panel_response(
    request: HttpRequest,
    incident: Incident,
    *,
    bound: dict[str, django_forms.Form] | None = None,
    conflict: str = "",
    status: int = 200,
) -> HttpResponse:
    context = incident_panel_context(incident, request.user, bound=bound, conflict=conflict)
    if wants_partial(request):
        # htmx swaps only 2xx answers: a refused form comes back as 200 with its errors.
        response = render(request, "reviews/_incident_panel.html", context)
        if status == 200 and not bound:
            response["HX-Trigger"] = "incidentChanged"
        return response
    context["incident"] = incident
    return render(request, "reviews/incident_review.html", context, status=status)


def _back_to_panel(request: HttpRequest, incident: Incident, done: str) -> HttpResponse:
    """After a panel step: the incident page at its panel, or the fresh panel for htmx."""
    if not wants_partial(request):
        messages.success(request, done)
        return redirect(reverse("incident_detail", args=[incident.key]) + "#review-panel")
    return _panel_response(request, _incident(incident.key))


@dataclass(frozen=True)
class PanelStep(pages.Step):
    """One form of the incident page's review panel (a row of its step table, posted below
    incidents/<key>/review/): its form (`form(request, incident, data)`), the action it runs
    (`action(incident, by=user, **action_kwargs(form))`, core.pages.action_kwargs) and the
    message after it (may name `{key}`). A decision that overrides is confirmed on a page of its
    own first."""

    slot: str
    form: Callable[[HttpRequest, Incident, Any], django_forms.Form]
    action: Callable[..., object]
    done: str
    confirms_override: bool = False

    def respond(self, request: HttpRequest, key: str) -> HttpResponse:
        return run_panel_step(request, key, self)


def run_panel_step(request: HttpRequest, key: str, step: PanelStep) -> HttpResponse:
    """Run one panel step (core.pages.run_step): valid form -> action -> redirect (or the panel
    for htmx); a refusal shows the form again with every problem and the user's input (422), a
    conflict with the input moved to the current version (409)."""
    incident = _incident(key)
    form = step.form(request, incident, request.POST)
    if (
        step.confirms_override
        and form.is_valid()
        and (
            page := _confirm_override(
                request,
                incident,
                form,
                action=reverse(step.name, args=[incident.key]),
                target_id="review-panel",
            )
        )
    ):
        return page

    def on_refused(form, refusal, status: int) -> HttpResponse:
        fresh = _incident(incident.key)
        if isinstance(refusal, ConflictError):
            again = step.form(request, fresh, resubmitted_at(form, fresh.version))
            again.is_valid()
            return _panel_response(
                request, fresh, bound={step.slot: again}, conflict=str(refusal), status=status
            )
        return _panel_response(request, fresh, bound={step.slot: form}, status=status)

    return run_step(
        request,
        form,
        functools.partial(step.action, incident, by=request.user),
        done=None,
        on_success=lambda: _back_to_panel(request, incident, step.done.format(key=incident.key)),
        on_refused=on_refused,
    )


@require_GET
@vary_on_headers("HX-Request")
@permission_required("read")
def incident_review(request: HttpRequest, key: str) -> HttpResponse:
    """The review panel alone: a page of its own, or the fragment for htmx."""
    return _panel_response(request, _incident(key))


def _newer_versions(incident: Incident):
    return incident.pact_version.pact.versions.all() if incident.pact_version_id else None


def _clause_keys(incident: Incident) -> list[str]:
    if not incident.pact_version_id:
        return []
    return list(incident.pact_version.clauses.values_list("key", flat=True))


def _confirm_override(
    request: HttpRequest, incident: Incident, form: DecisionForm, *, action: str, target_id: str
) -> HttpResponse | None:
    """An override, which can never be edited, is recorded only after a page has shown exactly
    what it skips (gates and conditions unmet): the first POST answers with that page, carrying
    the form's fields; its button sends them again with confirm=1 and the list it showed."""
    d = form.cleaned_data
    if not d.get("override") or d.get("confirm") or not d.get("justification", "").strip():
        return None  # no override asked, already confirmed, or refused anyway (no justification)
    skips = actions.override_preview(incident, decision=d["decision"])
    if not skips:
        return None  # not an override after all: the action decides plainly
    carried = [
        (name, value)
        for name, values in request.POST.lists()
        if name not in ("csrfmiddlewaretoken", form.add_prefix("confirm"), form.add_prefix("skip"))
        for value in values
    ]
    context = {
        "incident": incident,
        "decision_label": dict(form.fields["decision"].choices)[d["decision"]],
        "rationale": d["rationale"],
        "justification": d.get("justification", ""),
        "skips": skips,
        "carried": carried,
        "skip_name": form.add_prefix("skip"),
        "confirm_name": form.add_prefix("confirm"),
        "action": action,
        "target_id": target_id,
        "back_url": reverse("incident_detail", args=[incident.key]) + "#review-panel",
    }
    return render_page(request, "reviews/override_confirm.html", context, partial="confirm")


def _attest(incident: Incident, *, by, **answer: Any) -> None:
    """Attest the decision on `incident` (the forms name the incident, not its decision)."""
    decision = RecoveryDecision.objects.filter(incident=incident).first()
    if decision is None:
        raise actions.ReviewError(f"{incident.key} has no decision to attest yet.")
    actions.attest(decision, by=by, **answer)


PANEL_STEPS = (
    PanelStep(
        "incident_review_change",
        "changes/",
        "work_reviews",
        "change",
        lambda request, incident, data: OperatingModelChangeForm(
            data, newer_versions=_newer_versions(incident)
        ),
        actions.add_operating_model_change,
        "Operating-model change recorded.",
    ),
    PanelStep(
        "incident_review_condition",
        "conditions/",
        "work_reviews",
        "condition",
        lambda request, incident, data: ReentryConditionForm(
            data, clause_keys=_clause_keys(incident)
        ),
        actions.set_reentry_condition,
        "Re-entry condition set; it is checked now and after every change.",
    ),
    PanelStep(
        "incident_review_signoff",
        "signoffs/",
        "work_reviews",
        "signoff",
        lambda request, incident, data: SignOffForm(data, user=request.user),
        actions.sign_off_incident,
        "Sign-off recorded.",
    ),
    PanelStep(
        "incident_review_request",
        "request/",
        "work_reviews",
        "request",
        lambda request, incident, data: RequestReviewForm(data),
        actions.request_review,
        "{key} is in review.",
    ),
    PanelStep(
        "incident_review_decide",
        "decision/",
        "decide",
        "decision",
        lambda request, incident, data: DecisionForm(
            data, can_override=can(request.user, "override")
        ),
        actions.record_recovery_decision,
        "Decision recorded.",
        confirms_override=True,
    ),
    PanelStep(
        "incident_review_attest",
        "attestations/",
        "attest",
        "attest",
        lambda request, incident, data: AttestationForm(data),
        _attest,
        "Attestation recorded.",
    ),
)


@require_POST
@permission_required("work_reviews")
def incident_review_recheck(request: HttpRequest, key: str) -> HttpResponse:
    """Check the conditions now, in the request: the same task a worker runs."""
    incident = _incident(key)
    recheck_conditions_for_incident(incident.pk)
    return _back_to_panel(request, incident, "Re-entry conditions checked.")


# ---------------------------------------------------------------- meetings: list and create


@require_GET
@vary_on_headers("HX-Request")
@permission_required("read")
def meeting_list(request: HttpRequest) -> HttpResponse:
    form = MeetingFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    page = paginate(request, queries.meetings(filters), PAGE_SIZE)
    context = {
        "form": form,
        "page": page,
        "now": timezone.now(),
        "can_create_meeting": can(request.user, "run_meetings"),
    }
    return render_page(request, "reviews/meeting_list.html", context, partial="results")


@require_http_methods(["GET", "POST"])
@permission_required("run_meetings")
def meeting_create(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = MeetingForm(request.POST)
        if form.is_valid():
            d = form.cleaned_data
            try:
                meeting = actions.create_meeting(
                    by=request.user,
                    title=d["title"],
                    scheduled_at=d["scheduled_at"],
                    facilitator=d["facilitator"],
                    agenda=list(d["agenda"]),
                )
            except GateError as exc:
                show_problems(form, exc)
            else:
                messages.success(request, f"Meeting “{meeting.title}” scheduled.")
                return redirect("review_meeting", meeting.pk)
        status = 422
    else:
        form = MeetingForm(
            initial={"scheduled_at": initial_meeting_time(), "facilitator": request.user.pk}
        )
        status = 200
    return render(request, "reviews/meeting_form.html", {"form": form}, status=status)


# ---------------------------------------------------------------- the meeting screen


def _meeting(pk: int) -> ReviewMeeting:
    return get_object_or_404(
        ReviewMeeting.objects.select_related("facilitator", "created_by"), pk=pk
    )


def _decorate_agenda(
    request: HttpRequest,
    meeting: ReviewMeeting,
    agenda: list[dict],
    bound: dict[str, django_forms.Form] | None = None,
) -> list[dict]:
    """Add what depends on the viewer: the forms they may use and the markers the page's CSS
    reads to show the right form when someone else's decision arrives by polling."""
    bound = bound or {}
    user = request.user
    decides = meeting.is_open and can(user, "decide")
    attests = can(user, "attest")
    can_override = can(user, "override")
    for entry in agenda:
        incident, decision = entry["incident"], entry["decision"]
        prefix = f"i{incident.pk}"
        entry["decided_by_you"] = decision is not None and decision.decided_by_id == user.pk
        entry["attested_by_you"] = any(a.by_id == user.pk for a in entry["attestations"])
        entry["decision_form"] = bound.get(f"decide-{incident.pk}") or (
            DecisionForm(
                prefix=prefix,
                initial={"version": incident.version},
                can_override=can_override,
            )
            if decides and decision is None and incident.is_open
            else None
        )
        entry["attest_form"] = bound.get(f"attest-{incident.pk}") or (
            AttestationForm(prefix=prefix)
            if attests and not entry["decided_by_you"] and not entry["attested_by_you"]
            else None
        )
        entry["can_override"] = can_override
        entry["record"] = _record(entry) if decision else None
        entry["assumption"] = ASSUMPTION_BY_KEY.get(incident.assumption)
    return agenda


def _record(entry: dict) -> dict:
    from trustdesk.reviews.conditions import observed_summary
    from trustdesk.reviews.panels import percent

    decision = entry["decision"]
    snapshot = [
        {**row, "summary": observed_summary(row["kind"], row["observed"])}
        for row in decision.conditions_snapshot
    ]
    return {
        "decision": decision,
        "conditions": snapshot,
        "gates": decision.gate_snapshot,
        "unmet_gates": [g for g in decision.gate_snapshot if not g["met"]],
        "unmet_conditions": sum(1 for c in snapshot if c["status"] != "met"),
        "completeness": percent(decision.evidence_completeness),
        "explained": sum(1 for a in entry["attestations"] if a.can_explain),
    }


def _meeting_context(
    request: HttpRequest,
    meeting: ReviewMeeting,
    *,
    bound: dict[str, django_forms.Form] | None = None,
    since_item: int | None = None,
) -> dict[str, Any]:
    bound = bound or {}
    agenda = _decorate_agenda(
        request, meeting, queries.meeting_agenda(meeting, since_item=since_item), bound
    )
    user = request.user
    # The shared screen in presentation mode is for reading: no form at all (people act on
    # their own screens), so nothing half-typed is shown to the room either.
    present = request.GET.get("present") == "1"
    if present:
        for entry in agenda:
            entry["decision_form"] = entry["attest_form"] = None
    runs = meeting.is_open and can(user, "run_meetings") and not present
    # The header's status reads this instead of asking the database again.
    meeting.n_decisions = sum(
        1 for e in agenda if e["decision"] is not None and e["decision"].meeting_id == meeting.pk
    )
    takes_notes = meeting.is_open and can(user, "take_meeting_notes") and not present
    return {
        "meeting": meeting,
        "agenda": agenda,
        "outcomes": [e for e in agenda if e["decision"] is not None],
        "notes": queries.meeting_notes(meeting),
        "token": queries.meeting_fingerprint(meeting.pk),
        "poll_seconds": POLL_SECONDS,
        "present": present,
        "note_form": bound.get("note") or (NoteForm() if takes_notes else None),
        "agenda_form": bound.get("agenda") or (AgendaItemForm(meeting=meeting) if runs else None),
        "can_close": runs,
        "now": timezone.now(),
    }


@require_GET
@vary_on_headers("HX-Request")
@permission_required("read")
def meeting_detail(request: HttpRequest, pk: int) -> HttpResponse:
    meeting = _meeting(pk)
    return render(request, "reviews/meeting_detail.html", _meeting_context(request, meeting))


@require_GET
@never_cache
@permission_required("read")
def meeting_changes(request: HttpRequest, pk: int) -> HttpResponse:
    """The live screen's change check, polled every 2 s by everyone watching the meeting.

    Why polling rather than server-sent events: a poll is an ordinary short GET, so it passes
    every proxy and load balancer unchanged, holds no gunicorn sync worker open for the length of
    a meeting (an SSE stream would pin one worker per viewer), needs no script of ours beyond
    htmx's `every 2s` trigger (CSP-clean, no EventSource code), and recovers by itself after a
    restart. It is kept cheap: one aggregate query builds a fingerprint of everything the screen
    shows; when it equals the `since` token the answer is 204 No Content with no body, which htmx
    ignores. Otherwise the answer holds out-of-band swaps of the read-only regions only (the
    status of each agenda incident, the notes, the outcomes, the poller with the new token) and
    appends agenda items that are new; the form regions are never replaced, so a half-typed form
    survives.
    """
    form = ChangesForm(request.GET)
    since = form.cleaned_data["since"] if form.is_valid() else ""
    token = queries.meeting_fingerprint(pk)
    if not token:
        return HttpResponse(status=404)
    if since == token:
        return HttpResponse(status=204)
    meeting = _meeting(pk)
    seen_item = queries.agenda_items_seen(since)
    context = _meeting_context(request, meeting)
    context["new_items"] = (
        [e for e in context["agenda"] if e["item"].pk > seen_item] if seen_item is not None else []
    )
    context["new_ids"] = {e["item"].pk for e in context["new_items"]}
    return render(request, "reviews/meeting_detail.html#changes", context)


def _meeting_step_response(
    request: HttpRequest,
    meeting: ReviewMeeting,
    partial: str,
    *,
    bound: dict[str, django_forms.Form] | None = None,
    focus: int | None = None,
    status: int = 200,
    success: str = "",
) -> HttpResponse:
    """After a step on the meeting screen: the refreshed form region plus out-of-band status
    for htmx; a redirect (or the whole page with errors) otherwise."""
    meeting = _meeting(meeting.pk)
    if not wants_partial(request):
        if status == 200:
            if success:
                messages.success(request, success)
            return redirect("review_meeting", meeting.pk)
        context = _meeting_context(request, meeting, bound=bound)
        return render(request, "reviews/meeting_detail.html", context, status=status)
    context = _meeting_context(request, meeting, bound=bound)
    context["entry"] = next((e for e in context["agenda"] if e["incident"].pk == focus), None)
    return render(request, f"reviews/meeting_detail.html#{partial}", context)


def _meeting_step(
    request: HttpRequest,
    meeting: ReviewMeeting,
    form: django_forms.Form,
    action: Callable[..., object],
    *,
    partial: str,
    slot: str,
    success: str,
    focus: int | None = None,
    rebind: Callable[[django_forms.Form], django_forms.Form] | None = None,
) -> HttpResponse:
    """Run one step of the meeting screen (core.pages.run_step) and answer as
    `_meeting_step_response` does; after a conflict `rebind` gives the form at the current
    version, which says what happened."""

    def on_refused(form, refusal, status: int) -> HttpResponse:
        if isinstance(refusal, ConflictError) and rebind is not None:
            form = rebind(form)
            form.is_valid()
            form.add_error(None, str(refusal))
        return _meeting_step_response(
            request,
            meeting,
            partial,
            bound={slot: form},
            focus=focus,
            status=status if status != 200 else 422,
        )

    return run_step(
        request,
        form,
        action,
        done=None,
        on_success=lambda: _meeting_step_response(
            request, meeting, partial, focus=focus, success=success
        ),
        on_refused=on_refused,
    )


@require_POST
@permission_required("decide")
def meeting_decide(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    meeting = _meeting(pk)
    incident = _incident(key, review_meetings=meeting)
    prefix = f"i{incident.pk}"
    may_override = can(request.user, "override")
    form = DecisionForm(request.POST, prefix=prefix, can_override=may_override)
    if form.is_valid() and (
        page := _confirm_override(
            request,
            incident,
            form,
            action=reverse("review_meeting_decide", args=[meeting.pk, incident.key]),
            target_id=f"decide-{incident.pk}",
        )
    ):
        return page

    def rebind(form: django_forms.Form) -> django_forms.Form:
        version = Incident.objects.get(pk=incident.pk).version
        return DecisionForm(resubmitted_at(form, version), prefix=prefix, can_override=may_override)

    return _meeting_step(
        request,
        meeting,
        form,
        functools.partial(
            actions.record_recovery_decision, incident, by=request.user, meeting=meeting
        ),
        partial="decide_response",
        slot=f"decide-{incident.pk}",
        success=f"Decision on {incident.key} recorded.",
        focus=incident.pk,
        rebind=rebind,
    )


@require_POST
@permission_required("attest")
def meeting_attest(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    meeting = _meeting(pk)
    incident = _incident(key, review_meetings=meeting)
    return _meeting_step(
        request,
        meeting,
        AttestationForm(request.POST, prefix=f"i{incident.pk}"),
        functools.partial(_attest, incident, by=request.user),
        partial="attest_response",
        slot=f"attest-{incident.pk}",
        success=f"Attestation on {incident.key} recorded.",
        focus=incident.pk,
    )


@require_POST
@permission_required("take_meeting_notes")
def meeting_note(request: HttpRequest, pk: int) -> HttpResponse:
    meeting = _meeting(pk)
    return _meeting_step(
        request,
        meeting,
        NoteForm(request.POST),
        functools.partial(actions.add_meeting_note, meeting, by=request.user),
        partial="note_response",
        slot="note",
        success="Note added.",
    )


@require_POST
@permission_required("run_meetings")
def meeting_agenda_add(request: HttpRequest, pk: int) -> HttpResponse:
    """A plain form (no htmx): the page again, or the page with the form's errors."""
    meeting = _meeting(pk)
    form = AgendaItemForm(request.POST, meeting=meeting)

    def on_success() -> HttpResponse:
        messages.success(request, f"{form.cleaned_data['incident'].key} added to the agenda.")
        return redirect("review_meeting", meeting.pk)

    def on_refused(form, refusal, status: int) -> HttpResponse:
        context = _meeting_context(request, meeting, bound={"agenda": form})
        return render(request, "reviews/meeting_detail.html", context, status=422)

    return run_step(
        request,
        form,
        functools.partial(actions.add_agenda_item, meeting, by=request.user),
        done=None,
        on_success=on_success,
        on_refused=on_refused,
    )


@require_POST
@permission_required("run_meetings")
def meeting_close(request: HttpRequest, pk: int) -> HttpResponse:
    meeting = _meeting(pk)
    try:
        actions.close_meeting(meeting, by=request.user)
    except GateError as exc:
        messages.error(request, " ".join(exc.problems))
    else:
        messages.success(request, f"Meeting “{meeting.title}” closed; its notes are final.")
    return redirect("review_meeting", meeting.pk)

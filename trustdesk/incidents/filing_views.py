"""The report filing page of an obligation: the draft (Markdown and JSON, from the incident) and
the form that records the report as filed."""

from __future__ import annotations

import hashlib

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from trustdesk.core.decorators import permission_required
from trustdesk.core.pages import show_problems
from trustdesk.core.roles import can
from trustdesk.incidents import obligations
from trustdesk.incidents.errors import GateError
from trustdesk.incidents.filing import draft_json, draft_markdown, draft_report
from trustdesk.incidents.models import Event
from trustdesk.incidents.ownership_forms import ReportFiledForm
from trustdesk.incidents.views import get_incident


@require_http_methods(["GET", "POST"])
@permission_required("read")
def obligation_filing(request: HttpRequest, key: str, regime: str, obligation: str) -> HttpResponse:
    """The draft of a report (Markdown and JSON, from the incident) and the form that records
    it as filed. Reading is for every internal role; filing for incident managers and risk."""
    incident = get_incident(key)
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

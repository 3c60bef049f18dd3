"""The incident page is live: another person's step, note or evidence appears without a reload.

The page polls `incident_changes` every few seconds, as the meeting screen does (see
`reviews.views.meeting_changes` for why polling rather than a stream). The check is one query:
a token of what the page shows (the incident's version, which every event raises; the agent's
scope, which another incident may change; the last re-check of a re-entry condition). When the
token is the one the page was rendered with, the answer is 204 No Content, which htmx ignores.
Otherwise it holds out-of-band swaps of the read-only regions only (header, scope, lifecycle rail,
timeline, evidence list, notes list) and a notice when the current step moved on. Regions with a
form are never swapped by it, so half-typed text survives; the notice offers to refresh them.
"""

from __future__ import annotations

import hashlib

from django.apps import apps
from django.db.models import Max, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from trustdesk.core.decorators import permission_required
from trustdesk.incidents.models import Incident

POLL_SECONDS = 3


def live_token(version: int, scope: str, scope_changed_at, last_check) -> str:
    """The token of one state of the page; the same inputs give the same token."""
    raw = f"{version}|{scope}|{scope_changed_at.isoformat() if scope_changed_at else ''}|"
    raw += last_check.isoformat() if last_check else ""
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def current_token(key: str) -> str:
    """The token of the incident as stored now, in one query; '' for no such incident."""
    # The reviews app sits above incidents: its model is reached through the app registry.
    conditions = apps.get_model("reviews", "ReentryCondition")
    last_check = (
        conditions.objects.filter(incident=OuterRef("pk"))
        .values("incident")
        .annotate(last=Max("checked_at"))
        .values("last")
    )
    row = (
        Incident.objects.filter(key=key)
        .annotate(last_check=Subquery(last_check))
        .values_list("version", "agent__scope", "agent__scope_changed_at", "last_check")
        .first()
    )
    return live_token(*row) if row else ""


def page_token(incident: Incident, review_panel: dict) -> str:
    """The token of the page being rendered, from what its context already loaded."""
    checks = [c.checked_at for c in review_panel.get("conditions", ()) if c.checked_at]
    return live_token(
        incident.version,
        incident.agent.scope,
        incident.agent.scope_changed_at,
        max(checks) if checks else None,
    )


@require_GET
@never_cache
@permission_required("read")
def incident_changes(request: HttpRequest, key: str) -> HttpResponse:
    from trustdesk.incidents.views import get_incident, incident_page_context

    since = request.GET.get("since", "")[:64]
    if len(key) > 30 or not key.isprintable():
        return HttpResponse(status=404)
    token = current_token(key)
    if not token:
        return HttpResponse(status=404)
    if since == token:
        return HttpResponse(status=204)
    context = incident_page_context(request, get_incident(key))
    # The step whose form the page shows: the poller keeps asking with it, so the notice stays
    # until the person chooses to show the current step.
    shown_step = request.GET.get("step", "")[:40]
    context["shown_step"] = shown_step
    context["step_moved"] = bool(shown_step) and shown_step != context["step"]
    return render(request, "incidents/incident_detail.html#live_changes", context)

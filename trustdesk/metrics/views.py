"""The dashboard (the landing page), its drill-down pages, CSV exports and a recompute button.

Pages read stored snapshots only, so they render (with each figure's age) when the broker or
the workers are down; a drill-down runs the metric's own SQL over its snapshot's window.
"""

from __future__ import annotations

import csv
from datetime import datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from trustdesk.core.decorators import permission_required
from trustdesk.core.pages import page_number, paginate, wants_partial
from trustdesk.core.roles import (
    can,
    roles_for,
)
from trustdesk.incidents.models import Incident
from trustdesk.metrics import compute, page_cache
from trustdesk.metrics import dashboard as board
from trustdesk.metrics.forms import DashboardFilterForm, DrilldownForm, RefreshForm, parts_of
from trustdesk.metrics.models import MetricSnapshot
from trustdesk.metrics.refresh import WINDOW_CHOICES, rolling_window, trend_weeks, week_window
from trustdesk.metrics.tasks import request_full_recompute
from trustdesk.pacts.models import Agent

PAGE_SIZE = 50
EXPORT_LIMIT = 10_000
RECOMPUTE_ROLES = roles_for("recompute_metrics")  # who may: core.roles.PERMISSIONS
TITLES = {
    "incident_count": "Incidents detected",
    "time_to_containment": "Time to containment",
    "time_to_classification": "Time to classification",
    "time_to_recovery": "Time to recovery",
    "evidence_completeness_at_reopen": "Evidence completeness at reopen",
    "reopen_without_change_rate": "Reopened without an operating-model change",
    "override_rate": "Override rate",
    "explainable_decision_rate": "Explainable decision rate",
    "recurrence_rate": "Recurrence rate",
    "open_count": "Open incidents",
    "unclassified_count": "Unclassified incidents",
    "stale_pacts": "Stale pacts",
    "restricted_agents": "Restricted agents",
}
WINDOW_LABELS = dict(WINDOW_CHOICES)
NOUNS = {"incidents": "incident", "pacts": "pact version", "agents": "agent"}  # by drill-down kind


def _dashboard_context(request: HttpRequest) -> dict:
    """Everything the dashboard shows; a fixed number of queries whatever the data size."""
    now = timezone.now()
    agents = board.agent_rows()
    form = DashboardFilterForm(
        request.GET or None, agents=[(a.key, f"{a.name} ({a.key})") for a in agents]
    )
    window, agent = form.params()
    weeks = [w.key for w in trend_weeks(now)]
    snapshots = {
        s.window: s
        for s in MetricSnapshot.objects.filter(
            scope=board.scope_key(agent), window__in=[window, *weeks]
        )
    }
    snapshot = snapshots.get(window)
    eager = board.workers_eager()
    beat_age = None if eager else board.heartbeat_age(now)
    trust_rows = board.trust_table(agents)
    if agent:
        trust_rows = [r for r in board.trust_table(agents, limit=None) if r["agent"].key == agent]
    return {
        "form": form,
        "window": window,
        "window_label": WINDOW_LABELS[window],
        "agent_key": agent,
        "query": urlencode({"window": window, **({"agent": agent} if agent else {})}),
        "snapshot": snapshot,
        "fresh": board.freshness(snapshot, now=now, eager=eager, beat_age=beat_age),
        "eager": eager,
        "beat_age": beat_age,
        "snapshots": snapshots,
        "weeks": weeks,
        "now": now,
        "trust_rows": trust_rows,
        "can_recompute": can(request.user, "recompute_metrics"),
    }


@require_GET
@vary_on_headers("HX-Request")
@permission_required("read")
def dashboard(request: HttpRequest) -> HttpResponse:
    context = _dashboard_context(request)
    context["reports_due"] = _reports_due(context["agent_key"])
    # Tiles and trend charts: rendered once per snapshot version (metrics/page_cache.py).
    window, agent, now = context["window"], context["agent_key"], context["now"]
    context["tiles_html"] = page_cache.tiles_html(
        context["snapshot"], window=window, agent=agent, stale=context["fresh"].stale, now=now
    )
    context["trends_html"] = page_cache.trends_html(
        context["snapshots"], weeks=context["weeks"], agent=agent, now=now
    )
    template = "metrics/dashboard.html#body" if wants_partial(request) else "metrics/dashboard.html"
    return render(request, template, context)


def _reports_due(agent_key: str | None, limit: int = 8) -> list:
    """The unfiled regulatory reports nearest their deadline (two queries)."""
    from trustdesk.incidents.models import Incident
    from trustdesk.incidents.obligations import all_obligations

    scope = Incident.objects.all()
    if agent_key:
        scope = scope.filter(agent__key=agent_key)
    return [o for o in all_obligations(scope) if o.filed_at is None][:limit]


@require_GET
@permission_required("read")
def metrics_export(request: HttpRequest) -> HttpResponse:
    """The dashboard's figures as CSV, for the same window and agent."""
    context = _dashboard_context(request)
    snapshot = context["snapshot"]
    name = f"trustdesk-metrics-{context['agent_key'] or 'all'}-{context['window']}.csv"
    response = _csv_response(name)
    writer = csv.writer(response)
    columns = ["metric", "value", "p50", "p90", "count", "uncontained", "numerator", "denominator"]
    writer.writerow(
        [*columns, "scope", "window", "window_from", "window_to", "computed_at", "stale"]
    )
    if snapshot is None:
        return response
    window = snapshot.data.get("window", {})
    tiles = board.build_tiles(snapshot.data, window=context["window"], agent=context["agent_key"])
    for tile in tiles:
        for row in tile.csv:
            writer.writerow(
                [
                    *[_cell(row.get(c)) for c in columns],
                    snapshot.scope,
                    snapshot.window,
                    window.get("from") or "",
                    window.get("to") or "",
                    snapshot.computed_at.isoformat(),
                    "yes" if context["fresh"].stale else "no",
                ]
            )
    return response


def _csv_response(filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will never run as a formula."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _window_of(key: str, scope: str, now: datetime):
    """The window a drill-down covers: the one its snapshot was computed over, when there is
    one, so that the list adds up to the figure on the dashboard."""
    snapshot = MetricSnapshot.objects.filter(scope=scope, window=key).first()
    if snapshot is not None and snapshot.window_end is not None:
        return compute.Window(key, snapshot.window_start, snapshot.window_end), snapshot
    return (week_window(key) or rolling_window(key, now)), snapshot


@require_GET
@permission_required("read")
def metrics_drilldown(request: HttpRequest, metric: str) -> HttpResponse:
    """The rows behind one figure: incidents for the windowed metrics and open/unclassified
    counts, pact versions for stale pacts, agents for restricted agents."""
    if not parts_of(metric):
        raise Http404("No such metric.")
    form = DrilldownForm(request.GET, metric=metric)
    context: dict = {"metric": metric, "title": TITLES[metric], "form": form}
    if not form.is_valid():
        return render(request, "metrics/drilldown.html", context, status=400)
    now = timezone.now()
    agent = form.cleaned_data["agent"]
    agent_key = agent.key if agent else ""
    part = form.cleaned_data["part"]
    window_key = form.cleaned_data["window"]
    csv_export = form.cleaned_data["format"] == "csv"
    context.update(
        {
            "part": part,
            "part_label": parts_of(metric)[part],
            "parts": [
                (p, label, board.drill_url(metric, window=window_key, agent=agent_key, part=p))
                for p, label in parts_of(metric).items()
            ],
            "agent": agent,
            "window_key": window_key,
            "window_label": WINDOW_LABELS.get(window_key, f"ISO week {window_key}"),
            "dashboard_url": f"{board.url('dashboard')}?"
            + urlencode({"window": window_key, **({"agent": agent_key} if agent_key else {})}),
            "kind": "incidents",
            "windowed": metric in compute.DRILLDOWN,
        }
    )
    agent_id = agent.pk if agent else None
    # An export is one page of every row (up to EXPORT_LIMIT), whatever page was shown.
    per_page, number = (EXPORT_LIMIT, 1) if csv_export else (PAGE_SIZE, page_number(request))
    if metric in compute.DRILLDOWN:
        window, snapshot = _window_of(window_key, board.scope_key(agent_key), now)
        first = ((number - 1) * per_page, per_page)
        rows = _FactRows(metric, part, window=window, agent_id=agent_id, first=first)
        context.update(
            {
                "window": window,
                "snapshot": snapshot,
                "value_kind": _value_kind(metric, part),
            }
        )
    else:
        rows, context["kind"] = _count_queryset(metric, agent_id)
    page = (
        Paginator(rows, per_page).get_page(number)
        if csv_export
        else paginate(request, rows, per_page)
    )
    context["noun"] = NOUNS[context["kind"]]
    pairs = page.object_list if context["windowed"] else [(obj, None) for obj in page.object_list]
    context.update(
        {
            "page": page,
            "items": [(obj, value, _href(obj)) for obj, value in pairs],
            "total": page.paginator.count,
            "csv_url": _csv_url(request),
        }
    )
    if csv_export:
        return _drilldown_csv(context)
    return render(request, "metrics/drilldown.html", context)


class _FactRows:
    """The incidents behind a windowed figure, as (incident, value) newest first, for a
    paginator. compute.drilldown_rows answers a page of rows and the total in one query: the
    page the request asks for (`first`: offset, limit) is fetched when the paginator counts and
    served again when it slices, so a page costs the queries it cost before the paginator."""

    def __init__(
        self,
        metric: str,
        part: str,
        *,
        window: compute.Window,
        agent_id: int | None,
        first: tuple[int, int],
    ):
        self.query = {"metric": metric, "part": part, "window": window, "agent_id": agent_id}
        self.first = first
        self.fetched: dict[int, tuple[int, int, list]] = {}  # offset: (limit, total, rows)

    def _fetch(self, offset: int, limit: int) -> tuple[int, list]:
        kept = self.fetched.get(offset)
        if kept is None or kept[0] < limit:
            total, rows = compute.drilldown_rows(**self.query, limit=limit, offset=offset)
            kept = self.fetched[offset] = (limit, total, rows)
        return kept[1], kept[2][:limit]

    def count(self) -> int:
        return self._fetch(*self.first)[0]

    def __getitem__(self, part: slice) -> list[tuple[Incident, float | None]]:
        offset = part.start or 0
        _, rows = self._fetch(offset, part.stop - offset)
        by_id = Incident.objects.select_related("agent").in_bulk([pk for pk, _ in rows])
        return [(by_id[pk], value) for pk, value in rows if pk in by_id]


def _href(obj) -> str | None:
    """The page of a listed row (an incident, a pact version or an agent), if it exists."""
    if isinstance(obj, Incident):
        return board.url("incident_detail", obj.key)
    if isinstance(obj, Agent):
        return board.url("agent_detail", obj.key) or board.url("agents")
    return board.url("pact_version", obj.pact.key, obj.number) or board.url("pacts")


def _value_kind(metric: str, part: str) -> str | None:
    spec = compute.DRILLDOWN.get(metric, {}).get(part)
    if not spec or spec[2] is None:
        return None
    if metric in compute.DURATION_METRICS:
        return "duration"
    if metric == "evidence_completeness_at_reopen":
        return "percent"
    return "count"


def _count_queryset(metric: str, agent_id: int | None):
    if metric == "open_count":
        qs = compute.open_incidents(agent_id).select_related("agent")
        return qs.order_by("-detected_at", "-number"), "incidents"
    if metric == "unclassified_count":
        qs = compute.unclassified_incidents(agent_id).select_related("agent")
        return qs.order_by("-detected_at", "-number"), "incidents"
    if metric == "stale_pacts":
        qs = compute.stale_pact_versions(agent_id).select_related("pact", "pact__agent")
        return qs.order_by("review_due", "pk"), "pacts"
    return compute.restricted_agents(agent_id).order_by("key"), "agents"


def _csv_url(request: HttpRequest) -> str:
    """This drill-down as CSV: every row, whatever page is shown."""
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    query["format"] = "csv"
    return f"{request.path}?{query.urlencode()}"


def _drilldown_csv(context: dict) -> HttpResponse:
    writer_response = _csv_response(f"trustdesk-{context['metric']}-{context['part']}.csv")
    writer = csv.writer(writer_response)
    kind = context["kind"]
    if kind == "incidents":
        writer.writerow(["incident", "title", "agent", "severity", "state", "detected_at", "value"])
        for incident, value, _ in context["items"]:
            writer.writerow(
                [
                    _cell(incident.key),
                    _cell(incident.title),
                    _cell(incident.agent.key),
                    incident.severity,
                    incident.state,
                    incident.detected_at.isoformat(),
                    _cell(value),
                ]
            )
    elif kind == "pacts":
        writer.writerow(["pact", "version", "agent", "review_due"])
        for version, *_ in context["items"]:
            writer.writerow(
                [
                    _cell(version.pact.key),
                    version.number,
                    _cell(version.pact.agent.key),
                    version.review_due,
                ]
            )
    else:
        writer.writerow(["agent", "name", "scope", "scope_changed_at"])
        for agent, *_ in context["items"]:
            changed = agent.scope_changed_at.isoformat() if agent.scope_changed_at else ""
            writer.writerow([_cell(agent.key), _cell(agent.name), agent.scope, changed])
    return writer_response


@require_POST
@permission_required("recompute_metrics")
def metrics_refresh(request: HttpRequest) -> HttpResponse:
    """Recompute every snapshot now: in-process without workers, else through the queue."""
    outcome = request_full_recompute()
    if outcome == "computed":
        messages.success(request, "Metrics recomputed.")
    elif outcome == "queued":
        messages.success(request, "Recompute requested: the figures update within a minute.")
    else:
        messages.warning(
            request,
            "The workers cannot be reached right now: the figures shown are the last computed "
            "ones, and the periodic recompute catches up when the broker is back.",
        )
    form = RefreshForm(request.POST)
    form.is_valid()
    query = {k: v for k, v in form.cleaned_data.items() if v}
    target = board.url("dashboard") or "/"
    return redirect(f"{target}?{urlencode(query)}" if query else target)

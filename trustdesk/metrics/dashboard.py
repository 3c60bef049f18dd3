"""What the dashboard shows, built from stored snapshots only (so it renders with the broker
down): tiles with their drill-down links, weekly trend charts, and how fresh each figure is."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.urls import NoReverseMatch, reverse

from trustdesk.core.models import WorkerHeartbeat
from trustdesk.metrics.charts import Chart, chart, duration_unit
from trustdesk.metrics.models import OVERALL, MetricSnapshot, TrustScore
from trustdesk.metrics.refresh import trend_weeks
from trustdesk.metrics.templatetags.metrics_tags import duration, percent
from trustdesk.metrics.trust import recommendation_for
from trustdesk.pacts.models import Agent

# A figure is stale when it is older than its refresh cadence allows: beat recomputes every 10
# minutes, so 15 minutes means the workers are behind. Without workers (eager mode) figures are
# refreshed in-process on every change and only the rolling windows drift, so a day is allowed.
STALE_AFTER = getattr(settings, "METRICS_STALE_AFTER", timedelta(minutes=15))
STALE_AFTER_EAGER = getattr(settings, "METRICS_STALE_AFTER_EAGER", timedelta(days=1))


def url(name: str, *args: Any) -> str | None:
    """A URL of another app, or None while that page does not exist."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


@lru_cache(maxsize=64)
def _drill_path(metric: str) -> str:
    return reverse("metrics_drilldown", args=[metric])


def drill_url(metric: str, *, window: str, agent: str, part: str | None = None) -> str:
    query = {"window": window}
    if agent:
        query["agent"] = agent
    if part:
        query["part"] = part
    return f"{_drill_path(metric)}?{urlencode(query)}"


@dataclass
class Freshness:
    computed_at: datetime | None
    stale: bool
    reason: str


def workers_eager() -> bool:
    from trustdesk.celery import app

    return bool(app.conf.task_always_eager)


def heartbeat_age(now: datetime) -> timedelta | None:
    last = WorkerHeartbeat.objects.order_by("-last_seen").values_list("last_seen", flat=True)
    seen = last.first()
    return None if seen is None else now - seen


def freshness(
    snapshot: MetricSnapshot | None, *, now: datetime, eager: bool, beat_age: timedelta | None
) -> Freshness:
    if snapshot is None:
        return Freshness(None, True, "not computed yet")
    age = now - snapshot.computed_at
    if eager:
        stale = age > STALE_AFTER_EAGER
        return Freshness(snapshot.computed_at, stale, "older than a day" if stale else "")
    if age > STALE_AFTER:
        return Freshness(snapshot.computed_at, True, "the workers are behind")
    if beat_age is None or beat_age > settings.HEARTBEAT_STALE_AFTER:
        return Freshness(snapshot.computed_at, True, "no recent worker heartbeat")
    return Freshness(snapshot.computed_at, False, "")


@dataclass
class Link:
    label: str
    href: str


@dataclass
class Tile:
    key: str
    label: str
    value: str
    detail: str
    help: str
    links: list[Link] = field(default_factory=list)
    csv: list[dict[str, Any]] = field(default_factory=list)


def _rate_tile(data, key, label, help_text, window, agent, noun) -> Tile:
    m = data[key]

    def link(part: str) -> str:
        return drill_url(key, window=window, agent=agent, part=part)

    return Tile(
        key=key,
        label=label,
        value=percent(m["value"]),
        detail=f"{m['numerator']} of {m['denominator']} {noun}",
        help=help_text,
        links=[
            Link(f"{m['numerator']} counted", link("numerator")),
            Link(f"{m['denominator']} in all", link("denominator")),
        ],
        csv=[{"metric": key, **m}],
    )


def _duration_tile(data, key, label, help_text, window, agent, uncontained=False) -> Tile:
    m = data[key]

    def link(part: str) -> str:
        return drill_url(key, window=window, agent=agent, part=part)

    links = [Link(f"{m['count']} measured", link("count"))]
    detail = f"p90 {duration(m['p90'])} · over {m['count']}"
    if uncontained:
        detail += f" · {m['uncontained']} not contained"
        links.append(Link(f"{m['uncontained']} not contained", link("uncontained")))
    return Tile(
        key=key,
        label=label,
        value=f"p50 {duration(m['p50'])}",
        detail=detail,
        help=help_text,
        links=links,
        csv=[{"metric": key, **m}],
    )


def _count_tile(data, key, label, help_text, window, agent) -> Tile:
    n = data[key]
    return Tile(
        key=key,
        label=label,
        value=str(n),
        detail="now",
        help=help_text,
        links=[Link("list them", drill_url(key, window=window, agent=agent))],
        csv=[{"metric": key, "value": n}],
    )


def build_tiles(data: dict[str, Any], *, window: str, agent: str) -> list[Tile]:
    ev = data["evidence_completeness_at_reopen"]
    w, a = window, agent
    completeness = Tile(
        key="evidence_completeness_at_reopen",
        label="Evidence completeness at reopen",
        value=percent(ev["value"]),
        detail=f"mean over {ev['count']} reopened",
        help="Required evidence kinds present at or before the reopening.",
        links=[
            Link(
                f"{ev['count']} reopened",
                drill_url("evidence_completeness_at_reopen", window=w, agent=a, part="count"),
            )
        ],
        csv=[{"metric": "evidence_completeness_at_reopen", **ev}],
    )
    return [
        _duration_tile(
            data,
            "time_to_containment",
            "Time to containment",
            "From detection to the first containment.",
            w,
            a,
            uncontained=True,
        ),
        _duration_tile(
            data,
            "time_to_classification",
            "Time to classification",
            "From detection to the first classification.",
            w,
            a,
        ),
        _duration_tile(
            data,
            "time_to_recovery",
            "Time to recovery",
            "From detection to the agent's scope being reopened.",
            w,
            a,
        ),
        completeness,
        _rate_tile(
            data,
            "reopen_without_change_rate",
            "Reopened without change",
            "Reopened with no operating-model change at or before the reopening.",
            w,
            a,
            "reopened",
        ),
        _rate_tile(
            data,
            "override_rate",
            "Override rate",
            "Reopening decisions taken as an explicit override.",
            w,
            a,
            "reopening decisions",
        ),
        _rate_tile(
            data,
            "explainable_decision_rate",
            "Explainable decisions",
            "Decisions another stakeholder attested they can explain.",
            w,
            a,
            "decisions",
        ),
        _rate_tile(
            data,
            "recurrence_rate",
            "Recurrence rate",
            "Same agent, same broken assumption, reopened in the 90 days before.",
            w,
            a,
            "classified",
        ),
        _count_tile(data, "open_count", "Open incidents", "Incidents not yet closed.", w, a),
        _count_tile(
            data,
            "unclassified_count",
            "Unclassified incidents",
            "Incidents with no classification yet.",
            w,
            a,
        ),
        _count_tile(
            data, "stale_pacts", "Stale pacts", "Active pact versions past their review date.", w, a
        ),
        _count_tile(
            data,
            "restricted_agents",
            "Restricted agents",
            "Agents whose scope is restricted or suspended.",
            w,
            a,
        ),
    ]


def trend_charts(snapshots: dict[str, MetricSnapshot], *, now: datetime, agent: str) -> list[Chart]:
    weeks = trend_weeks(now)
    labels = [w.key for w in weeks]
    data = [snapshots[w.key].data if w.key in snapshots else None for w in weeks]

    def pick(path: tuple[str, ...]) -> list[float | None]:
        out = []
        for d in data:
            value: Any = d
            for part in path:
                value = None if value is None else value.get(part)
            out.append(value)
        return out

    def hrefs(metric: str, part: str | None = None) -> list[str]:
        return [drill_url(metric, window=k, agent=agent, part=part) for k in labels]

    def short(key: str) -> str:
        return key.split("-")[1]

    def duration_chart(ident: str, metric: str, what: str) -> Chart:
        """One duration on its own scale, in the unit its largest week reads best in: drawn
        together, recovery (days) flattened containment (minutes) to the axis."""
        seconds = pick((metric, "p50"))
        per, unit = duration_unit(max((v for v in seconds if v is not None), default=0))
        return chart(
            ident=ident,
            title=f"Time to {what}, weekly p50 ({unit})",
            description=f"Median time from detection to {what} in {unit}, per ISO week of "
            f"detection, {scope}.",
            labels=labels,
            series=[(f"{what} p50", [None if v is None else v / per for v in seconds])],
            fmt=lambda v: f"{v:.0f} {unit}" if v >= 10 or v == 0 else f"{v:.1f} {unit}",
            hrefs=hrefs(metric, "count"),
            short_label=short,
        )

    scope = f"agent {agent}" if agent else "all agents"
    return [
        chart(
            ident="incidents",
            title="Incidents detected per week",
            description=f"Number of incidents detected in each ISO week, {scope}.",
            labels=labels,
            bars=pick(("incident_count",)),
            fmt=lambda v: f"{v:.0f}",
            hrefs=hrefs("incident_count", "count"),
            short_label=short,
        ),
        duration_chart("containment", "time_to_containment", "containment"),
        duration_chart("recovery", "time_to_recovery", "recovery"),
        chart(
            ident="rates",
            title="Recovery quality per week",
            description=f"Rates per ISO week of detection, {scope}.",
            labels=labels,
            series=[
                ("reopened without change", pick(("reopen_without_change_rate", "value"))),
                ("override", pick(("override_rate", "value"))),
                ("explainable", pick(("explainable_decision_rate", "value"))),
                ("recurrence", pick(("recurrence_rate", "value"))),
            ],
            fmt=lambda v: f"{v * 100:.0f}%",
            y_max=1.0,
            hrefs=hrefs("reopen_without_change_rate", "denominator"),
            short_label=short,
        ),
    ]


def agent_rows() -> list[Agent]:
    """Every agent with its latest trust breakdown (for the recommendation); one query."""
    latest = TrustScore.objects.filter(agent=OuterRef("pk")).order_by("-day")
    return list(
        Agent.objects.order_by("key").annotate(
            # Only the recommendation, not the whole breakdown: less JSON to read per page.
            latest_recommendation=Subquery(latest.values("breakdown__recommendation")[:1]),
        )
    )


def trust_table(agents: list[Agent], limit: int | None = 15) -> list[dict[str, Any]]:
    """The agents with the lowest trust first (unscored last), with any scope recommendation."""
    rows = []
    for agent in agents:
        rec = agent.latest_recommendation
        if isinstance(rec, str):  # a JSON key read by a subquery may come back as text
            rec = json.loads(rec)
        rows.append(
            {
                "agent": agent,
                "href": url("agent_detail", agent.key),
                "score": agent.trust_score,
                "recommendation": recommendation_for(agent, {"recommendation": rec}),
            }
        )
    rows.sort(key=lambda r: (r["score"] is None, r["score"] or 0, r["agent"].key))
    return rows[:limit]


def scope_key(agent: str) -> str:
    return agent or OVERALL

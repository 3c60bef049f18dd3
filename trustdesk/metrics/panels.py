"""The trust part of the agent page (score, its breakdown, history), owned by the metrics app.

The agent page view calls `agent_trust_context` and includes `metrics/_agent_trust.html`.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from trustdesk.metrics import trust
from trustdesk.metrics.charts import chart
from trustdesk.metrics.dashboard import url
from trustdesk.metrics.models import TrustScore

HISTORY_DAYS = 90


def agent_trust_context(agent) -> dict:
    """Context for metrics/_agent_trust.html, under one key. One query, whatever the history."""
    today = timezone.now().date()
    since = today - timedelta(days=HISTORY_DAYS - 1)
    history = list(
        TrustScore.objects.filter(agent=agent, day__gte=since)
        .order_by("day")
        .values("day", "score", "breakdown", "computed_at")
    )
    latest = history[-1] if history else None
    recommendation = None
    if latest:
        rec = trust.recommendation_for(agent, latest["breakdown"])
        if rec:
            href = url("incident_detail", rec["incident_key"]) if rec.get("incident_key") else None
            recommendation = {**rec, "href": href or url("agent_detail", agent.key)}
    by_day = {row["day"]: float(row["score"]) for row in history}
    days = [since + timedelta(days=i) for i in range(HISTORY_DAYS)]
    history_chart = chart(
        ident=f"trust-{agent.pk}",
        title=f"Trust score of {agent.name}, last {HISTORY_DAYS} days",
        description="The last trust score computed each day, from 0 to 100.",
        labels=[d.isoformat() for d in days],
        series=[("trust score", [by_day.get(d) for d in days])],
        fmt=lambda v: f"{v:.0f}",
        y_max=100,
        short_label=lambda s: s[5:],
        width=340,
        height=180,
    )
    return {
        "trust_panel": {
            "agent": agent,
            "score": latest["score"] if latest else None,
            "computed_at": latest["computed_at"] if latest else None,
            "components": latest["breakdown"].get("components", []) if latest else [],
            "recommendation": recommendation,
            "chart": history_chart,
            "history_points": len(history),
            "weights": {
                "pass_rate": trust.PASS_RATE_WEIGHT,
                "severity": trust.SEVERITY_POINTS,
                "open_cap": trust.OPEN_INCIDENTS_CAP,
                "recovery": trust.RECOVERY_POINTS,
                "stale": trust.STALE_PACT_POINTS,
                "stale_cap": trust.STALE_PACTS_CAP,
                "restrict_below": trust.RESTRICT_BELOW,
                "suspend_below": trust.SUSPEND_BELOW,
            },
        }
    }

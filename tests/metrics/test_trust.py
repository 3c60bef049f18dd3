"""The trust score's formula, its breakdown, its history and the scope it recommends."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from tests.metrics.helpers import (
    agent_with_pact,
    classified,
    new_incident,
    record,
    reopened,
)
from trustdesk.metrics import refresh
from trustdesk.metrics.models import TrustScore
from trustdesk.metrics.panels import agent_trust_context
from trustdesk.pacts.models import Agent, Evaluation

pytestmark = pytest.mark.django_db

CLAUSE = {
    "statement": "s",
    "assumption": "capability",
    "metric": "m",
    "objective": {"op": ">=", "target": "0.9"},
    "evaluation": {"method": "automated", "source": "s"},
}


def clause(key, window="7d", on_breach="restrict"):
    return {**CLAUSE, "key": key, "window": window, "on_breach": on_breach}


_ids = iter(range(1, 1_000_000))


def evaluate(version, key, passed, when, *, voided=False):
    c = version.clauses.get(key=key)
    return Evaluation.objects.create(
        clause=c,
        value=Decimal("1") if passed else Decimal("0"),
        passed=passed,
        measured_at=when,
        source="test",
        external_id=f"{key}-{next(_ids)}",
        voided_at=timezone.now() if voided else None,
    )


def score_of(agent) -> TrustScore:
    refresh.refresh_agent(agent.pk)
    return TrustScore.objects.get(agent=agent)


def components(score: TrustScore) -> dict[str, float]:
    return {c["key"]: c["points"] for c in score.breakdown["components"]}


def test_a_quiet_agent_scores_100_with_no_evidence_either_way():
    agent, _ = agent_with_pact("quiet", clauses=[clause("a")])
    score = score_of(agent)
    assert score.score == Decimal("100.0")
    assert "no evidence either way" in score.breakdown["components"][0]["detail"]
    assert score.breakdown["recommendation"] is None
    agent.refresh_from_db()
    assert agent.trust_score == Decimal("100.00")


def test_pass_rates_count_only_each_clauses_window_and_not_voided_evaluations():
    agent, v = agent_with_pact("evals", clauses=[clause("weekly", "7d"), clause("daily", "12h")])
    now = timezone.now()
    # weekly: 3 of 4 pass within 7 days; one old failure outside it; a voided failure
    for minutes, passed in enumerate((True, True, True, False)):
        evaluate(v, "weekly", passed, now - timedelta(days=1, minutes=minutes))
    evaluate(v, "weekly", True, now - timedelta(days=2))
    evaluate(v, "weekly", False, now - timedelta(days=8))
    evaluate(v, "weekly", False, now - timedelta(days=1), voided=True)
    # daily: 1 of 2 within 12 h, the latest passes; a failure 13 h ago is outside the window
    evaluate(v, "daily", False, now - timedelta(hours=2))
    evaluate(v, "daily", True, now - timedelta(hours=1))
    evaluate(v, "daily", False, now - timedelta(hours=13))
    score = score_of(agent)
    # pass rate = mean(4/5, 1/2) = 0.65 -> -50 * 0.35 = -17.5
    assert components(score)["evaluations"] == -17.5
    assert score.score == Decimal("82.5")
    clauses = {
        c["key"]: (c["passed"], c["total"]) for c in score.breakdown["components"][0]["clauses"]
    }
    assert clauses == {"weekly": (4, 5), "daily": (1, 2)}


def test_open_incidents_cost_points_by_severity_up_to_a_cap():
    agent, v = agent_with_pact("sev", clauses=[clause("a", on_breach="flag")])
    new_incident(v, timezone.now() - timedelta(hours=3), severity="sev3")
    new_incident(v, timezone.now() - timedelta(hours=2), severity="sev4")
    score = score_of(agent)
    assert components(score)["open_incidents"] == -11.0  # 8 + 3
    assert score.score == Decimal("89.0")
    for _ in range(3):
        new_incident(v, timezone.now() - timedelta(hours=1), severity="sev1")
    assert components(score_of(agent))["open_incidents"] == -40.0


def test_recovery_quality_and_stale_pacts_lower_the_score():
    agent, v = agent_with_pact(
        "recovery",
        clauses=[clause("a", on_breach="flag")],
        last_reviewed=date.today() - timedelta(days=60),
    )
    now = timezone.now()
    first = new_incident(v, now - timedelta(days=20), severity="sev4")
    record(
        first,
        classified("drift", now - timedelta(days=20, hours=-1)),
        reopened(now - timedelta(days=19)),
    )
    second = new_incident(v, now - timedelta(days=10), severity="sev4")
    record(
        second,
        classified("drift", now - timedelta(days=10, hours=-1)),
        reopened(now - timedelta(days=9)),
    )
    score = score_of(agent)
    parts = components(score)
    # both reopened without a change (-10), the second recurs (1 of 2 classified: -5)
    assert parts["recovery"] == -15.0
    assert parts["stale_pacts"] == -5.0
    assert parts["open_incidents"] == 0.0
    assert score.score == Decimal("80.0")


def test_a_breach_recommends_the_clauses_consequence_and_links_its_incident():
    agent, v = agent_with_pact("breach", clauses=[clause("limit", on_breach="suspend")])
    evaluate(v, "limit", False, timezone.now() - timedelta(hours=1))
    incident = new_incident(v, timezone.now() - timedelta(minutes=30), severity="sev4")
    score = score_of(agent)
    rec = score.breakdown["recommendation"]
    assert rec["scope"] == "suspended"
    assert rec["incident_key"] == incident.key
    context = agent_trust_context(Agent.objects.get(pk=agent.pk))["trust_panel"]
    assert context["recommendation"]["href"] == f"/incidents/{incident.key}/"
    # once suspended, nothing stricter is left to recommend
    Agent.objects.filter(pk=agent.pk).update(scope="suspended")
    assert (
        agent_trust_context(Agent.objects.get(pk=agent.pk))["trust_panel"]["recommendation"] is None
    )


def test_a_later_pass_clears_the_breach():
    agent, v = agent_with_pact("cleared", clauses=[clause("limit", on_breach="suspend")])
    evaluate(v, "limit", False, timezone.now() - timedelta(hours=2))
    evaluate(v, "limit", True, timezone.now() - timedelta(hours=1))
    assert score_of(agent).breakdown["recommendation"] is None


def test_a_low_score_recommends_no_more_than_the_pacts_allow():
    agent, v = agent_with_pact("low", clauses=[clause("a", on_breach="restrict")])
    for _ in range(3):
        new_incident(v, timezone.now() - timedelta(hours=1), severity="sev1")
    for i in range(4):
        evaluate(v, "a", False, timezone.now() - timedelta(days=3, minutes=i))
    evaluate(v, "a", True, timezone.now() - timedelta(minutes=5))
    score = score_of(agent)
    assert score.score == Decimal("20.0")  # 100 - 50 * 0.8 - 40
    rec = score.breakdown["recommendation"]
    assert rec["scope"] == "restricted"  # below 30 would suspend, but the pact only restricts
    assert "below 30" in rec["reason"]

    flag_only, fv = agent_with_pact("flag-only", clauses=[clause("a", on_breach="flag")])
    for _ in range(3):
        new_incident(fv, timezone.now() - timedelta(hours=1), severity="sev1")
    assert score_of(flag_only).breakdown["recommendation"] is None


def test_history_keeps_one_score_per_day_and_the_panel_runs_one_query(
    django_assert_num_queries,
):
    agent, _ = agent_with_pact("history", clauses=[clause("a")])
    now = timezone.now()
    for days in (3, 2, 1, 0):
        refresh.refresh_agent(agent.pk, now=now - timedelta(days=days))
    refresh.refresh_agent(agent.pk, now=now)
    assert TrustScore.objects.filter(agent=agent).count() == 4
    with django_assert_num_queries(1):
        context = agent_trust_context(agent)
    panel = context["trust_panel"]
    assert panel["history_points"] == 4
    html = render_to_string("metrics/_agent_trust.html", context)
    assert "Why this score" in html and "<svg" in html and 'style="' not in html
    assert "100" in html


def test_the_panel_of_an_agent_never_scored_says_so():
    agent, _ = agent_with_pact("never", clauses=[clause("a")])
    html = render_to_string("metrics/_agent_trust.html", agent_trust_context(agent))
    assert "Not scored yet" in html


def test_the_dashboard_lists_scores_with_their_recommendation(client_for):
    agent, v = agent_with_pact("dash-breach", clauses=[clause("limit", on_breach="suspend")])
    evaluate(v, "limit", False, timezone.now() - timedelta(hours=1))
    quiet, _ = agent_with_pact("dash-quiet", clauses=[clause("a")])
    refresh.recompute_all()
    html = client_for("viewer").get("/").content.decode()
    assert "recommend suspended" in html
    assert "Clause dash-breach-pact#limit was breached" in html
    rows = html[html.index('id="trust-title"') :]
    assert rows.index("dash-breach") < rows.index("dash-quiet")  # lowest trust first

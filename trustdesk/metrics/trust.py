"""The trust score of an agent, 0 to 100, and the scope it recommends.

The formula (shown on the agent page as "why this score"):

    score = 100
            - 50 x (1 - P)   P = evaluation pass rate: for each clause of the agent's active pacts,
                             the share of its counted evaluations (not voided by an upheld
                             dispute) that passed within the clause's own window (e.g. the last
                             7 days for a 7d clause); P is the mean over the clauses that have
                             evaluations in their window. No evaluation at all: P = 1, and the
                             breakdown says there is no evidence either way.
            - S              open incidents by severity: 25 per sev1, 15 per sev2, 8 per sev3,
                             3 per sev4, at most 40 in all.
            - R              recovery quality over the last 90 days (the agent's 90d metrics):
                             10 x override rate + 10 x reopen-without-change rate
                             + 10 x recurrence rate (a rate with no data counts 0), at most 30.
            - T              5 per stale pact (active, past its review date), at most 10.
    clamped to [0, 100] and rounded to 0.1.

Scope recommendation (shown, never applied: applying it is a containment step on an incident):
- a breach: a clause whose consequence is `restrict` or `suspend` and whose latest counted
  evaluation within its window failed recommends that consequence;
- the score: below 30 recommends `suspend`, below 60 `restrict`, but never more than the
  strongest consequence written in the agent's active pacts (a pact that only flags never
  leads to a scope recommendation).
The strictest of the two is recommended when it is stricter than the agent's current scope.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, Max, Q

from trustdesk.incidents.models import CLOSED_STATES, Incident
from trustdesk.pacts.models import SCOPE_RANK, Clause, Evaluation, VersionStatus

PASS_RATE_WEIGHT = 50
SEVERITY_POINTS = {"sev1": 25, "sev2": 15, "sev3": 8, "sev4": 3}
OPEN_INCIDENTS_CAP = 40
RECOVERY_POINTS = {
    "override_rate": 10,
    "reopen_without_change_rate": 10,
    "recurrence_rate": 10,
}
STALE_PACT_POINTS = 5
STALE_PACTS_CAP = 10
SUSPEND_BELOW = 30
RESTRICT_BELOW = 60

CONSEQUENCE_SCOPE = {"restrict": "restricted", "suspend": "suspended"}
CONSEQUENCE_RANK = {"flag": 0, "restrict": 1, "suspend": 2}


@dataclass
class ClauseFacts:
    id: int
    key: str
    pact: str
    window: str
    on_breach: str
    total: int = 0
    passed: int = 0
    breached_at: datetime | None = None  # the latest evaluation in the window failed


@dataclass
class TrustResult:
    score: Decimal
    breakdown: dict[str, Any] = field(default_factory=dict)


def _round(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def compute_trust(
    agent_ids: list[int], *, metrics_90d: dict[int, dict[str, Any]], now: datetime
) -> dict[int, TrustResult]:
    """Trust scores of the given agents from their 90-day metrics; 3 or 4 queries in all."""
    if not agent_ids:
        return {}
    clauses = _clause_facts(agent_ids, now)
    open_by_severity: dict[int, dict[str, int]] = defaultdict(dict)
    rows = (
        Incident.objects.exclude(state__in=CLOSED_STATES)
        .filter(agent_id__in=agent_ids)
        .order_by()
        .values_list("agent_id", "severity")
        .annotate(n=Count("pk"))
    )
    for agent_id, severity, n in rows:
        open_by_severity[agent_id][severity] = n

    results = {}
    breached: dict[int, int] = {}  # clause id -> agent id, for the incident links
    for agent_id in agent_ids:
        result = _score(
            clauses.get(agent_id, []), open_by_severity[agent_id], metrics_90d.get(agent_id, {})
        )
        rec = result.breakdown["recommendation"]
        if rec and rec.get("clause_id"):
            breached[rec["clause_id"]] = agent_id
        results[agent_id] = result
    _link_incidents(results, breached)
    return results


def _clause_facts(agent_ids: list[int], now: datetime) -> dict[int, list[ClauseFacts]]:
    facts: dict[int, list[ClauseFacts]] = defaultdict(list)
    by_id: dict[int, ClauseFacts] = {}
    rows = Clause.objects.filter(
        version__status=VersionStatus.ACTIVE, version__pact__agent_id__in=agent_ids
    ).values_list(
        "pk",
        "key",
        "version__pact__key",
        "version__pact__agent_id",
        "window",
        "window_seconds",
        "on_breach",
    )
    windows: set[int] = set()
    for pk, key, pact, agent_id, window, seconds, on_breach in rows:
        item = ClauseFacts(pk, key, pact, window, on_breach)
        facts[agent_id].append(item)
        by_id[pk] = item
        windows.add(seconds)
    if not by_id:
        return facts
    # Each clause counts only evaluations within its own window; one condition per window size.
    in_window = Q()
    for seconds in windows:
        in_window |= Q(
            clause__window_seconds=seconds, measured_at__gte=now - timedelta(seconds=seconds)
        )
    stats = (
        Evaluation.objects.counted()
        .filter(in_window, clause_id__in=list(by_id), measured_at__lte=now)
        .order_by()
        .values_list("clause_id")
        .annotate(
            n_total=Count("pk"),
            n_passed=Count("pk", filter=Q(passed=True)),
            last_pass=Max("measured_at", filter=Q(passed=True)),
            last_fail=Max("measured_at", filter=Q(passed=False)),
        )
    )
    for clause_id, total, passed, last_pass, last_fail in stats:
        item = by_id[clause_id]
        item.total, item.passed = total, passed
        if last_fail is not None and (last_pass is None or last_fail >= last_pass):
            item.breached_at = last_fail
    return facts


def _score(
    clauses: list[ClauseFacts], open_by_severity: dict[str, int], metrics: dict[str, Any]
) -> TrustResult:
    components = []
    measured = [c for c in clauses if c.total]
    if measured:
        pass_rate = sum(c.passed / c.total for c in measured) / len(measured)
        detail = (
            f"{pass_rate:.0%} mean pass rate over {len(measured)} clause(s) with evaluations "
            "in their window"
        )
    else:
        pass_rate = 1.0
        detail = "no counted evaluation within any clause window: no evidence either way"
    components.append(
        {
            "key": "evaluations",
            "label": "Evaluation pass rate",
            "detail": detail,
            "points": -PASS_RATE_WEIGHT * (1 - pass_rate),
            "clauses": [
                {
                    "key": c.key,
                    "pact": c.pact,
                    "window": c.window,
                    "passed": c.passed,
                    "total": c.total,
                }
                for c in clauses
            ],
        }
    )

    severity_points = sum(SEVERITY_POINTS.get(sev, 0) * n for sev, n in open_by_severity.items())
    open_detail = ", ".join(
        f"{open_by_severity[s]} {s}" for s in SEVERITY_POINTS if open_by_severity.get(s)
    )
    components.append(
        {
            "key": "open_incidents",
            "label": "Open incidents by severity",
            "detail": open_detail or "no open incident",
            "points": -min(severity_points, OPEN_INCIDENTS_CAP),
        }
    )

    recovery_points = 0.0
    parts = []
    for name, weight in RECOVERY_POINTS.items():
        rate = (metrics.get(name) or {}).get("value")
        if rate is not None:
            recovery_points += weight * rate
            parts.append(f"{name.replace('_', ' ')} {rate:.0%}")
    components.append(
        {
            "key": "recovery",
            "label": "Recovery quality (90 days)",
            "detail": "; ".join(parts) or "no recovery in the last 90 days",
            "points": -recovery_points,
        }
    )

    stale = int(metrics.get("stale_pacts") or 0)
    components.append(
        {
            "key": "stale_pacts",
            "label": "Stale pacts",
            "detail": f"{stale} pact(s) past their review date" if stale else "all pacts reviewed",
            "points": -min(STALE_PACT_POINTS * stale, STALE_PACTS_CAP),
        }
    )

    raw = 100 + sum(c["points"] for c in components)
    score = _round(min(100.0, max(0.0, raw)))
    for c in components:
        c["points"] = float(_round(c["points"]))
    return TrustResult(
        score=score,
        breakdown={
            "components": components,
            "recommendation": _recommend(score, clauses),
        },
    )


def _recommend(score: Decimal, clauses: list[ClauseFacts]) -> dict[str, Any] | None:
    strongest = max((CONSEQUENCE_RANK[c.on_breach] for c in clauses), default=0)
    candidates = []
    for c in clauses:
        if c.breached_at is not None and c.on_breach in CONSEQUENCE_SCOPE:
            candidates.append(
                {
                    "scope": CONSEQUENCE_SCOPE[c.on_breach],
                    "reason": (
                        f"Clause {c.pact}#{c.key} was breached "
                        f"({c.breached_at:%Y-%m-%d %H:%M} UTC); its consequence is {c.on_breach}."
                    ),
                    "clause_id": c.id,
                }
            )
    by_score = None
    if score < SUSPEND_BELOW:
        by_score = "suspend"
    elif score < RESTRICT_BELOW:
        by_score = "restrict"
    if by_score and strongest:
        capped = min(CONSEQUENCE_RANK[by_score], strongest)
        consequence = {1: "restrict", 2: "suspend"}[capped]
        threshold = SUSPEND_BELOW if by_score == "suspend" else RESTRICT_BELOW
        candidates.append(
            {
                "scope": CONSEQUENCE_SCOPE[consequence],
                "reason": (
                    f"The trust score {score} is below {threshold}; "
                    f"the pacts allow up to {consequence}."
                ),
                "clause_id": None,
            }
        )
    if not candidates:
        return None
    return max(candidates, key=lambda c: SCOPE_RANK[c["scope"]])


def _link_incidents(results: dict[int, TrustResult], breached: dict[int, int]) -> None:
    """Point each breach recommendation at the open incident of its clause, when there is one."""
    if not breached:
        return
    rows = (
        Incident.clauses.through.objects.filter(clause_id__in=list(breached))
        .exclude(incident__state__in=CLOSED_STATES)
        .order_by("clause_id", "-incident__detected_at")
        .values_list("clause_id", "incident__key")
    )
    seen = set()
    for clause_id, key in rows:
        if clause_id in seen:
            continue
        seen.add(clause_id)
        rec = results[breached[clause_id]].breakdown["recommendation"]
        rec["incident_key"] = key


def recommendation_for(agent, breakdown: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored recommendation if it is still stricter than the agent's scope now."""
    rec = (breakdown or {}).get("recommendation")
    if not rec:
        return None
    if SCOPE_RANK.get(rec.get("scope"), 0) <= SCOPE_RANK.get(agent.scope, 0):
        return None
    return rec

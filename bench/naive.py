"""The same metrics computed the naive way: per object, in Python (the benchmark's comparison).

One query per incident for its events, then Python loops. Used only by the benchmark, which
also checks that it gives the same figures as the SQL module on the same incidents.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from trustdesk.incidents.models import Incident
from trustdesk.metrics.compute import RECURRENCE_LOOKBACK, REOPENING_DECISIONS


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    pos = p * (len(values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return round(values[lo] + (values[hi] - values[lo]) * (pos - lo), 6)


def _facts(incident: Incident) -> dict:
    events = list(incident.events.order_by("seq"))  # one query per incident: the naive part
    first: dict[str, datetime] = {}
    for e in events:
        first.setdefault(e.type, e.at)
    classified = [e for e in events if e.type == "classified"]
    reopened = first.get("reopened")
    facts = {
        "agent": incident.agent_id,
        "detected": incident.detected_at,
        "contained": first.get("contained"),
        "classified": first.get("classified"),
        "reopened": reopened,
        "assumption": classified[-1].data.get("assumption") if classified else None,
        "decisions": 0,
        "reopening": 0,
        "overrides": 0,
        "explainable": 0,
    }
    if reopened:
        required = list(
            dict.fromkeys(
                (incident.pact_version.evidence_required or []) if incident.pact_version else []
            )
        )
        have = {
            e.data.get("kind") for e in events if e.type == "evidence_added" and e.at <= reopened
        }
        facts["completeness"] = (
            1.0 if not required else sum(1 for k in required if k in have) / len(required)
        )
        facts["without_change"] = not any(
            e.type == "operating_model_changed" and e.at <= reopened for e in events
        )
    for d in events:
        if d.type != "decision_recorded":
            continue
        facts["decisions"] += 1
        if d.data.get("decision") in REOPENING_DECISIONS:
            facts["reopening"] += 1
            facts["overrides"] += d.data.get("override") is True
        facts["explainable"] += any(
            a.type == "attested"
            and a.data.get("decision_seq") == d.seq
            and a.data.get("can_explain") is True
            and a.actor_name != d.actor_name
            for a in events
        )
    return facts


def naive_metrics(start: datetime, end: datetime) -> dict:
    """The windowed metrics of every incident detected in [start, end), object by object."""
    lookback = Incident.objects.filter(
        detected_at__gte=start - timedelta(days=3650), detected_at__lt=end
    ).select_related("pact_version")
    in_window, history = [], []
    for incident in lookback.iterator(chunk_size=500):
        facts = _facts(incident)
        facts["id"] = incident.pk
        history.append(facts)
        if start <= incident.detected_at < end:
            in_window.append(facts)
    reopened_by_agent: dict[int, list[dict]] = {}
    for f in history:
        if f["reopened"] and f["assumption"]:
            reopened_by_agent.setdefault(f["agent"], []).append(f)

    def recurs(f: dict) -> bool:
        return any(
            y["id"] != f["id"]
            and y["assumption"] == f["assumption"]
            and y["detected"] < f["detected"]
            and f["detected"] - RECURRENCE_LOOKBACK <= y["reopened"] < f["detected"]
            for y in reopened_by_agent.get(f["agent"], [])
        )

    def secs(later, earlier):
        return round((later - earlier).total_seconds(), 6)

    ttc = [secs(f["contained"], f["detected"]) for f in in_window if f["contained"]]
    ttcl = [secs(f["classified"], f["detected"]) for f in in_window if f["classified"]]
    ttr = [secs(f["reopened"], f["detected"]) for f in in_window if f["reopened"]]
    reopened = [f for f in in_window if f["reopened"]]
    classified = [f for f in in_window if f["classified"]]

    def rate(n, d):
        return {"value": n / d if d else None, "numerator": n, "denominator": d}

    return {
        "time_to_containment": {
            "p50": _pct(ttc, 0.5),
            "p90": _pct(ttc, 0.9),
            "count": len(ttc),
            "uncontained": len(in_window) - len(ttc),
        },
        "time_to_classification": {
            "p50": _pct(ttcl, 0.5),
            "p90": _pct(ttcl, 0.9),
            "count": len(ttcl),
        },
        "time_to_recovery": {"p50": _pct(ttr, 0.5), "p90": _pct(ttr, 0.9), "count": len(ttr)},
        "evidence_completeness_at_reopen": {
            "value": sum(f["completeness"] for f in reopened) / len(reopened) if reopened else None,
            "count": len(reopened),
        },
        "reopen_without_change_rate": rate(
            sum(f["without_change"] for f in reopened), len(reopened)
        ),
        "override_rate": rate(
            sum(f["overrides"] for f in in_window), sum(f["reopening"] for f in in_window)
        ),
        "explainable_decision_rate": rate(
            sum(f["explainable"] for f in in_window), sum(f["decisions"] for f in in_window)
        ),
        "recurrence_rate": rate(sum(recurs(f) for f in classified), len(classified)),
    }

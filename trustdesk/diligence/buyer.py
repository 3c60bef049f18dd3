"""What the buyer view shows, built in a fixed number of queries.

Nothing here reads an event's `by` or a note: the buyer pages carry no user names at all and no
internal notes. Incident facts come from the incident row; the decision and the attestations come
from the `decision_recorded` and `attested` events (the recorded facts, never edited).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Prefetch

from trustdesk.core.roles import ROLE_LABELS
from trustdesk.incidents.clocks import format_span
from trustdesk.incidents.models import Event, Incident, State
from trustdesk.pacts.models import Clause, Comparison, EvidenceKind, PactVersion
from trustdesk.taxonomy import ASSUMPTION_BY_KEY

DECISION_LABELS = {
    "reopen_full": "Reopened fully",
    "reopen_partial": "Reopened partially",
    "keep_restricted": "Kept restricted",
    "retire": "Retired",
}
METHOD_WORDS = {
    "automated": "an automated check",
    "sampled_human_review": "sampled human review",
    "jury": "a jury",
    "human": "human review",
}
CONSEQUENCE_WORDS = {
    "flag": "the breach is flagged for review",
    "restrict": "the agent is restricted",
    "suspend": "the agent is suspended",
}


def humanize_duration(delta: timedelta | None) -> str:
    """A duration as the incident pages write it ('4 h 10 min'); a negative one in signed seconds,
    since `format_span` drops the sign."""
    if delta is None:
        return ""
    if delta < timedelta(0):
        return f"{int(delta.total_seconds())} s"
    return format_span(delta)


def window_words(window: str) -> str:
    number, unit = window[:-1], window[-1:]
    name = {"d": "day", "h": "hour"}.get(unit)
    if not name or not number.isdigit():
        return window
    return f"{number} {name}{'' if number == '1' else 's'}"


def clause_in_words(clause: Clause) -> str:
    """One sentence a buyer can read: what is measured, the objective, how, and the consequence."""
    target = format(clause.target.normalize(), "f")
    op = Comparison(clause.op).label
    source = f" ({clause.source})" if clause.source else ""
    metric = clause.metric.replace("_", " ")
    return (
        f"Measured as {metric}: {op} {target} over {window_words(clause.window)}, "
        f"by {METHOD_WORDS.get(clause.method, clause.method)}{source}. "
        f"On a breach, {CONSEQUENCE_WORDS.get(clause.on_breach, clause.on_breach)}."
    )


@dataclass
class IncidentRow:
    key: str
    title: str
    severity: str
    severity_label: str
    state: str
    state_label: str
    assumption_label: str
    detected_at: datetime
    contained_at: datetime | None
    ended_at: datetime | None
    time_to_containment: str
    decision: str = ""
    decision_label: str = ""
    rationale: str = ""
    justification: str = ""
    override: bool = False
    attestations: int = 0
    #: Notes and sign-offs marked shareable (internal false), oldest first: (at, text).
    shared_notes: list[tuple[datetime, str]] = field(default_factory=list)
    not_incident: str = ""


def active_versions(agents: list) -> list[PactVersion]:
    clauses = Prefetch("clauses", queryset=Clause.objects.order_by("position"))
    versions = list(
        PactVersion.objects.active()
        .filter(pact__agent__in=agents)
        .select_related("pact__agent")
        .prefetch_related(clauses)
        .order_by("pact__agent__key", "pact__key")
    )
    for version in versions:
        version.evidence_labels = [
            EvidenceKind(kind).label.lower() if kind in EvidenceKind.values else kind
            for kind in version.evidence_required
        ]
        for clause in version.clauses.all():
            clause.in_words = clause_in_words(clause)
    return versions


def _shared_text(type_: str, data: dict) -> str:
    if type_ == "signed_off":
        role = ROLE_LABELS.get(str(data.get("role", "")), str(data.get("role", "")))
        comment = str(data.get("comment") or "")
        return f"Signed off as {role}" + (f": {comment}" if comment else ".")
    return str(data.get("text") or "")


def incident_rows(incidents: list[Incident]) -> list[IncidentRow]:
    """One row per incident; decisions and attestations in one query for the whole page."""
    decisions: dict[int, dict] = {}
    attested: dict[tuple[int, int], int] = {}
    shared: dict[int, list[tuple[datetime, str]]] = {}
    not_incidents: dict[int, dict] = {}  # closed as not an incident: what it was instead
    for incident_id, seq, type_, data, at in (
        Event.objects.filter(
            incident__in=incidents,
            type__in=["decision_recorded", "attested", "note", "signed_off", "closed_not_incident"],
        )
        .order_by("incident_id", "seq")
        .values_list("incident_id", "seq", "type", "data", "at")
    ):
        if type_ in ("note", "signed_off"):
            # Only what was explicitly marked shareable, exactly as the buyer's bundle shares it.
            if data.get("internal") is False:
                shared.setdefault(incident_id, []).append((at, _shared_text(type_, data)))
        elif type_ == "decision_recorded":
            decisions[incident_id] = {**data, "seq": seq}
        elif type_ == "closed_not_incident":
            not_incidents[incident_id] = {**data, "at": at}
        else:
            key = (incident_id, data.get("decision_seq"))
            attested[key] = attested.get(key, 0) + 1
    rows = []
    for incident in incidents:
        assumption = ASSUMPTION_BY_KEY.get(incident.assumption)
        ended = incident.reopened_at or incident.closed_at
        contained = incident.contained_at
        row = IncidentRow(
            key=incident.key,
            title=incident.title,
            severity=incident.severity,
            severity_label=incident.get_severity_display(),
            state=incident.state,
            state_label=State(incident.state).label if incident.state in State.values else "",
            assumption_label=assumption.label if assumption else "",
            detected_at=incident.detected_at,
            contained_at=contained,
            ended_at=ended,
            time_to_containment=humanize_duration(
                contained - incident.detected_at if contained else None
            ),
        )
        row.shared_notes = shared.get(incident.pk, [])
        closing = not_incidents.get(incident.pk)
        if closing:
            reason = str(closing.get("reason") or "").replace("_", " ")
            dup = closing.get("duplicate_of")
            row.not_incident = f"Not an incident: {reason}" + (f" of {dup}" if dup else "") + "."
            row.ended_at = closing["at"]
        decision = decisions.get(incident.pk)
        if decision:
            row.decision = decision.get("decision", "")
            row.decision_label = DECISION_LABELS.get(row.decision, row.decision)
            row.rationale = decision.get("rationale", "")
            row.override = bool(decision.get("override"))
            row.justification = decision.get("justification", "") if row.override else ""
            row.attestations = attested.get((incident.pk, decision["seq"]), 0)
        rows.append(row)
    return rows


def pact_document_text(version: PactVersion, fmt: str) -> str:
    """The canonical document as JSON (exactly the hashed text) or YAML."""
    if fmt == "json":
        return version.canonical + "\n"
    from trustdesk.pacts.document import document_yaml

    return document_yaml(json.loads(version.canonical))


# The metrics the dashboard shows, in the order it shows them: (key, label, kind).
METRIC_ROWS = (
    ("time_to_containment", "Time to containment", "duration"),
    ("time_to_classification", "Time to classification", "duration"),
    ("time_to_recovery", "Time to recovery", "duration"),
    ("evidence_completeness_at_reopen", "Evidence completeness at reopening", "fraction"),
    ("reopen_without_change_rate", "Reopened without an operating-model change", "rate"),
    ("override_rate", "Reopenings that were overrides", "rate"),
    ("explainable_decision_rate", "Decisions others could explain", "rate"),
    ("recurrence_rate", "Recurrences", "rate"),
    ("open_count", "Open incidents", "count"),
    ("unclassified_count", "Unclassified incidents", "count"),
    ("stale_pacts", "Stale pacts", "count"),
)


def _seconds(value) -> str:
    if value is None:
        return "—"
    return humanize_duration(timedelta(seconds=float(value)))


def _percent(value) -> str:
    return "—" if value is None else f"{float(value) * 100:.0f}%"


def _cell(metric: dict | int | None, kind: str) -> str:
    if kind == "count":
        return str(metric or 0)
    if not isinstance(metric, dict):
        return "—"
    if kind == "duration":
        if not metric.get("count"):
            return "—"
        text = f"p50 {_seconds(metric.get('p50'))} · p90 {_seconds(metric.get('p90'))}"
        if metric.get("uncontained"):
            text += f" ({metric['uncontained']} not contained yet)"
        return text
    value = _percent(metric.get("value"))
    if kind == "rate" and metric.get("denominator"):
        return f"{value} ({metric.get('numerator')} of {metric.get('denominator')})"
    if kind == "fraction" and metric.get("count"):
        return f"{value} (over {metric['count']})"
    return value


def agent_metrics(agents: list) -> dict | None:
    """The dashboard's metrics (all time) for each shared agent, computed by the metrics app's
    one implementation; None when that app provides none."""
    try:
        from trustdesk.metrics.compute import Window, compute_windows
    except ImportError:
        return None
    if not agents:
        return None
    window = Window("all")
    # Per agent only: the overall figures of the instance would include agents not shared.
    results = compute_windows([window], per_agent=[a.pk for a in agents])
    return {
        "agents": agents,
        "rows": [
            {
                "label": label,
                "cells": [_cell(results[(a.pk, "all")].get(key), kind) for a in agents],
            }
            for key, label, kind in METRIC_ROWS
        ],
    }

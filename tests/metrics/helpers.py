"""Build incident histories for metric tests: events appended through the lifecycle primitives
(`append_event` inside `locked_incident`) with explicit times, and the incident's columns derived
from them, as the importer replays a history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.factories import AgentFactory, make_incident, make_pact_version
from trustdesk.incidents.exchange import derive_fields
from trustdesk.incidents.journal import (
    append_event,
    locked_incident,
    sync_caller_copy,
)
from trustdesk.incidents.models import Event, Incident
from trustdesk.metrics.compute import refresh_facts


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


MARCH = (_utc(2026, 3, 1), _utc(2026, 4, 1))  # the window of the `march` fixture
ALL_FOUR = ["transcript", "tool_calls", "evaluation_result", "impact_assessment"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def plus(
    when: datetime,
    *,
    days: float = 0,
    hours: float = 0,
    minutes: float = 0,
    seconds: float = 0,
    microseconds: int = 0,
) -> datetime:
    return when + timedelta(
        days=days, hours=hours, minutes=minutes, seconds=seconds, microseconds=microseconds
    )


def agent_with_pact(key: str, *, evidence_required: list[str] | None = None, **pact_kwargs):
    agent = AgentFactory(key=key)
    version = make_pact_version(
        agent=agent,
        evidence_required=ALL_FOUR if evidence_required is None else evidence_required,
        **pact_kwargs,
    )
    return agent, version


def new_incident(version, detected: datetime, *, severity: str = "sev2", title: str = "Test"):
    return make_incident(version=version, detected_at=detected, severity=severity, title=title)


def record(incident: Incident, *events: tuple[str, datetime, dict[str, Any], str]) -> list[Event]:
    """Append (type, at, data, by) events in order and derive the incident's columns from its
    whole history with the importer's rule; returns the Event rows (with their seq)."""
    out = []
    with locked_incident(incident) as locked:
        for type_, at, data, by in events:
            out.append(append_event(locked, type=type_, by=None, by_name=by, data=data, at=at))
        locked.save(update_fields=derive_fields(locked, list(locked.events.order_by("seq"))))
    sync_caller_copy(incident, locked)
    return out


def earlier_then_later(agent_key: str, later_assumption: str):
    """Two incidents of one agent with their facts rows stored: `earlier` (authority, detected
    on 1 January, reopened on 10 January) and `later` (detected on 1 February, classified as
    `later_assumption`: it recurs when that is authority)."""
    agent, version = agent_with_pact(agent_key)
    earlier = new_incident(version, utc(2026, 1, 1))
    record(earlier, classified("authority", utc(2026, 1, 1, 1)), reopened(utc(2026, 1, 10)))
    later = new_incident(version, utc(2026, 2, 1))
    record(later, classified(later_assumption, utc(2026, 2, 1, 1)))
    refresh_facts()
    return agent, earlier, later


# One function per event type, with the data keys of docs/design.md section 7.


def contained(at, by="ana", scope_after="suspended"):
    return ("contained", at, {"action": "suspend", "scope_after": scope_after}, by)


def evidence(kind, at, by="ana"):
    return (
        "evidence_added",
        at,
        {"kind": kind, "sha256": "0" * 64, "description": f"{kind} for the test"},
        by,
    )


def classified(assumption, at, by="ana"):
    return (
        "classified",
        at,
        {"assumption": assumption, "statement": "What broke.", "clauses": ["refund-limit"]},
        by,
    )


def model_changed(at, by="rita"):
    return ("operating_model_changed", at, {"kind": "control_added", "summary": "A control."}, by)


def decision(at, decision="reopen_full", *, override=False, by="rita", scope_after="full"):
    return (
        "decision_recorded",
        at,
        {
            "decision": decision,
            "scope_after": scope_after,
            "rationale": "Because.",
            "override": override,
            "justification": "Needed." if override else "",
        },
        by,
    )


def attested(at, decision_seq, *, can_explain=True, by="rosa"):
    return (
        "attested",
        at,
        {"decision_seq": decision_seq, "can_explain": can_explain, "comment": "Read it."},
        by,
    )


def reopened(at, by="rita", scope_after="full"):
    return ("reopened", at, {"scope_after": scope_after}, by)

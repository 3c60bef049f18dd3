"""The incident state machine in one table: which event type moves an incident to which state,
and which milestone column its first occurrence sets (docs/design.md section 4).

`advance(incident, event)` applies one event to the incident's columns in memory. The lifecycle
steps and the reviews actions call it right after appending their event, and the importer folds
it over a replayed history, so a live incident and an imported one get their columns from the
same rule. (The offline bundle verifier, `diligence/verify.py`, runs without Django and keeps a
copy of this table; a test holds the two equal.)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from trustdesk.incidents.models import Event, EventType, Incident, State


class Transition(NamedTuple):
    state: str | None  # the state after the event; None leaves the state alone
    milestone: str | None  # the column its first occurrence sets; None sets none


TRANSITIONS: dict[str, Transition] = {
    EventType.DETECTED: Transition(State.DETECTED, None),  # detected_at is set on creation
    EventType.CONTAINED: Transition(State.CONTAINED, "contained_at"),
    EventType.EVIDENCE_PRESERVED: Transition(State.EVIDENCE_PRESERVED, "evidence_preserved_at"),
    EventType.CLASSIFIED: Transition(State.CLASSIFIED, "classified_at"),
    EventType.REPAIRED: Transition(State.REPAIRED, "repaired_at"),
    EventType.REVIEW_REQUESTED: Transition(State.IN_REVIEW, "review_requested_at"),
    EventType.DECISION_RECORDED: Transition(None, "decided_at"),
    EventType.REOPENED: Transition(State.RECOVERED, "reopened_at"),
    EventType.CLOSED: Transition(State.CLOSED_RESTRICTED, "closed_at"),
    # No milestone: closed_at stays the time of a `closed` event (a decision's outcome).
    EventType.CLOSED_NOT_INCIDENT: Transition(State.CLOSED_NOT_INCIDENT, None),
    # reclassified changes the class (below), not the state or a milestone; the other ownership
    # and obligation events (assigned, unassigned, action_*, assessed, report_filed) change no
    # column.
}
# Event type -> state, for the types that change it (the last one gives the incident's state).
STATE_AFTER = {t: tr.state for t, tr in TRANSITIONS.items() if tr.state is not None}
# Event type -> milestone column, set by the first event of that type.
MILESTONES = {t: tr.milestone for t, tr in TRANSITIONS.items() if tr.milestone is not None}
# Events whose data carries the incident's scope after them.
SCOPE_EVENTS = (EventType.CONTAINED, EventType.DECISION_RECORDED, EventType.REOPENED)


def advance(incident: Incident, event: Event | dict[str, Any]) -> list[str]:
    """Apply one event to `incident`'s denormalized columns (in memory) and return the names of
    the columns it set: the state, a milestone the first time, the scope after it and the
    classification. The caller saves them (or compares them, as the tests do)."""
    if isinstance(event, dict):
        type_, at, data = event["type"], event["at"], event.get("data") or {}
    else:
        type_, at, data = event.type, event.at, event.data or {}
    fields: list[str] = []
    transition = TRANSITIONS.get(type_)
    if transition is not None:
        if transition.state is not None:
            incident.state = str(transition.state)
            fields.append("state")
        if transition.milestone is not None and getattr(incident, transition.milestone) is None:
            setattr(incident, transition.milestone, at)
            fields.append(transition.milestone)
    if type_ in SCOPE_EVENTS:
        incident.scope_after = data["scope_after"]
        fields.append("scope_after")
    if type_ in (EventType.CLASSIFIED, EventType.RECLASSIFIED):
        incident.assumption = data["assumption"]
        incident.assumption_statement = data["statement"]
        incident.confidence = data.get("confidence", "")
        incident.harm_category = data.get("harm_category", "")
        incident.secondary_assumptions = list(data.get("secondary", []))
        fields += [
            "assumption",
            "assumption_statement",
            "confidence",
            "harm_category",
            "secondary_assumptions",
        ]
    return fields


def fold(incident: Incident, events: Iterable[Event | dict[str, Any]]) -> list[str]:
    """`advance` over a whole history (in seq order), from a fresh incident's columns: what the
    events alone say. Returns every column set."""
    incident.state = State.DETECTED
    for column in MILESTONES.values():
        setattr(incident, column, None)
    fields: set[str] = {"state", *MILESTONES.values()}
    first_at: datetime | None = None
    for event in events:
        if first_at is None:
            first_at = event["at"] if isinstance(event, dict) else event.at
        fields.update(advance(incident, event))
    if first_at is not None:
        incident.detected_at = first_at
        fields.add("detected_at")
    return sorted(fields)

"""The gate read model of an incident: its next step, the six gates as they stand, and the
evidence the pact requires (docs/design.md section 4). Reads only; the steps are in `lifecycle`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from trustdesk.incidents.models import ContainmentAction, Event, EventType, Incident, State

# ---------------------------------------------------------------- gates, for the page and reviews

STEP_LABELS = {
    "contain": "Contain",
    "preserve_evidence": "Preserve evidence",
    "classify": "Classify",
    "repair": "Record repair",
    "request_review": "Request review",
    "decide": "Decide",
}
# The state an incident is in when each step is its next one.
STEP_FOR_STATE = {
    State.DETECTED: "contain",
    State.CONTAINED: "preserve_evidence",
    State.EVIDENCE_PRESERVED: "classify",
    State.CLASSIFIED: "repair",
    State.REPAIRED: "request_review",
    State.IN_REVIEW: "decide",
}


def current_step(incident: Incident) -> str:
    """The next step of the lifecycle (a key of STEP_LABELS), or "done" once decided (a held
    reopening waits in review with its decision taken: nothing is left to do on it)."""
    if incident.decided_at is not None:
        return "done"
    return STEP_FOR_STATE.get(incident.state, "done")


def present_evidence_kinds(events: Iterable[Event] | Iterable[dict]) -> set[str]:
    """Kinds of the evidence that stands: every evidence_added not superseded by a later one."""
    added: dict[str, str] = {}
    superseded: set[str] = set()
    for ev in events:
        data = ev["data"] if isinstance(ev, dict) else ev.data
        added[data.get("sha256", "")] = data.get("kind", "")
        if data.get("supersedes"):
            superseded.add(data["supersedes"])
    return {kind for sha, kind in added.items() if sha not in superseded}


def evidence_events(incident: Incident) -> list[dict]:
    return list(
        Event.objects.filter(incident=incident, type=EventType.EVIDENCE_ADDED)
        .order_by("seq")
        .values("data")
    )


def evidence_completeness(required: list[str], present: set[str]) -> Decimal:
    """The share of the required evidence kinds that are present (1 when none is required),
    to four places: what an incident keeps once its evidence is preserved."""
    if not required:
        return Decimal(1)
    have = sum(1 for kind in required if kind in present)
    return (Decimal(have) / Decimal(len(required))).quantize(Decimal("0.0001"))


@dataclass(frozen=True)
class Gate:
    step: str
    label: str
    met: bool
    needs: str
    detail: str


GATE_NEEDS = {
    "contain": (
        "Reduce the agent's scope (restrict, suspend, roll back, kill switch or human in the "
        "loop) and record the scope after it, or record 'no scope change' with a reason."
    ),
    "preserve_evidence": (
        "Every evidence kind the pact requires is attached, or each missing kind is "
        "acknowledged as a gap with a reason."
    ),
    "classify": (
        "Name the broken assumption class, state plainly what broke, and link the pact "
        "clause(s) concerned."
    ),
    "repair": "Summarize the technical fix and give a reference (a ticket, commit or change).",
    "request_review": (
        "At least one change to the operating model (not only the code) and at least one "
        "re-entry condition that the machine can check."
    ),
    "decide": (
        "A decision (reopen fully, reopen partially, keep restricted or retire) with its "
        "rationale; reopening with any gate unmet is an override."
    ),
}
GATE_EVENT_TYPES = (
    EventType.CONTAINED,
    EventType.EVIDENCE_ADDED,
    EventType.EVIDENCE_PRESERVED,
    EventType.CLASSIFIED,
    EventType.REPAIRED,
    EventType.OPERATING_MODEL_CHANGED,
    EventType.REENTRY_CONDITION_SET,
    EventType.DECISION_RECORDED,
)


def gate_rows(events: Iterable[Event]) -> list[dict]:
    """The `rows` gate_status reads, from events a page already loaded (in seq order)."""
    return [
        {"type": e.type, "data": e.data, "at": e.at} for e in events if e.type in GATE_EVENT_TYPES
    ]


def gate_status_many(incidents: list[Incident]) -> dict[int, list[Gate]]:
    """gate_status for several incidents in one event query (pages that list incidents with
    their gates, e.g. a review meeting's agenda). Load `pact_version__pact` with them."""
    rows_by_incident: dict[int, list[dict]] = {i.pk: [] for i in incidents}
    if incidents:
        for row in (
            Event.objects.filter(incident_id__in=list(rows_by_incident), type__in=GATE_EVENT_TYPES)
            .order_by("incident_id", "seq")
            .values("incident_id", "type", "data", "at")
        ):
            rows_by_incident[row["incident_id"]].append(row)
    return {i.pk: gate_status(i, rows=rows_by_incident[i.pk]) for i in incidents}


def gate_status(incident: Incident, *, rows: list[dict] | None = None) -> list[Gate]:
    """The six gates of docs/design.md section 4 (Lifecycle), in order, as they stand now.

    `met` means the gate's requirement holds on record: for contain, preserve_evidence, classify
    and repair that the step was taken (its inputs are the requirement); for request_review that
    an operating-model change and a re-entry condition exist; for decide that a decision was
    recorded. Two queries whatever the history size (one when the pact version is loaded, none
    when `rows`, the incident's gate events in seq order, come from gate_status_many).
    """
    version = incident.pact_version  # one query unless select_related
    required = list(version.evidence_required) if version else []
    label = version.label if version else "the pact"
    if rows is None:
        rows = list(
            Event.objects.filter(incident_id=incident.pk, type__in=GATE_EVENT_TYPES)
            .order_by("seq")
            .values("type", "data", "at")
        )
    by_type: dict[str, list[dict]] = {}
    for row in rows:
        by_type.setdefault(row["type"], []).append(row)

    def last(kind: str) -> dict | None:
        found = by_type.get(kind)
        return found[-1] if found else None

    gates: list[Gate] = []
    # contain
    contained = last(EventType.CONTAINED)
    if contained:
        d = contained["data"]
        if d.get("action") == ContainmentAction.NO_SCOPE_CHANGE:
            detail = f"No scope change: {d.get('reason', '')}"
        else:
            action = d.get("action", "")
            name = ContainmentAction(action).label if action in ContainmentAction.values else action
            detail = f"{name}; scope after: {d.get('scope_after')}."
    else:
        detail = "No containment recorded yet."
    gates.append(
        Gate("contain", STEP_LABELS["contain"], bool(contained), GATE_NEEDS["contain"], detail)
    )
    # preserve evidence
    present = present_evidence_kinds(by_type.get(EventType.EVIDENCE_ADDED, []))
    missing = [k for k in required if k not in present]
    preserved = last(EventType.EVIDENCE_PRESERVED)
    have = len(required) - len(missing)
    if preserved:
        gaps = preserved["data"].get("acknowledged_gaps") or []
        detail = (
            f"Preserved with {have}/{len(required)} required kinds"
            if required
            else "Preserved (no kinds required)"
        )
        detail += (
            f"; acknowledged gaps: {', '.join(gaps)} ({preserved['data'].get('reason', '')})."
            if gaps
            else "."
        )
    elif missing:
        detail = f"Missing for {label}: {', '.join(missing)}."
    else:
        detail = (
            f"All {len(required)} kinds required by {label} are present; mark evidence preserved."
            if required
            else "No evidence kinds are required; mark evidence preserved."
        )
    gates.append(
        Gate(
            "preserve_evidence",
            STEP_LABELS["preserve_evidence"],
            bool(preserved),
            GATE_NEEDS["preserve_evidence"],
            detail,
        )
    )
    # classify
    classified = last(EventType.CLASSIFIED)
    if classified:
        d = classified["data"]
        keys = ", ".join(d.get("clauses") or []) or "none"
        detail = f"{d.get('assumption')}: {d.get('statement')} (clauses: {keys})."
    else:
        detail = "Not classified yet."
    gates.append(
        Gate("classify", STEP_LABELS["classify"], bool(classified), GATE_NEEDS["classify"], detail)
    )
    # repair
    repaired = last(EventType.REPAIRED)
    detail = (
        f"{repaired['data'].get('summary')} ({repaired['data'].get('reference')})."
        if repaired
        else "No repair recorded yet."
    )
    gates.append(
        Gate("repair", STEP_LABELS["repair"], bool(repaired), GATE_NEEDS["repair"], detail)
    )
    # request review
    changes = len(by_type.get(EventType.OPERATING_MODEL_CHANGED, []))
    conditions = len(by_type.get(EventType.REENTRY_CONDITION_SET, []))
    lacking = []
    if not changes:
        lacking.append("no operating-model change yet")
    if not conditions:
        lacking.append("no re-entry condition yet")
    detail = (
        f"{changes} operating-model change(s), {conditions} re-entry condition(s)."
        if not lacking
        else "; ".join(lacking).capitalize() + "."
    )
    gates.append(
        Gate(
            "request_review",
            STEP_LABELS["request_review"],
            not lacking,
            GATE_NEEDS["request_review"],
            detail,
        )
    )
    # decide
    decision = last(EventType.DECISION_RECORDED)
    detail = (
        f"Decision: {decision['data'].get('decision')}, "
        f"scope after: {decision['data'].get('scope_after')}."
        if decision
        else "No decision yet."
    )
    gates.append(
        Gate("decide", STEP_LABELS["decide"], bool(decision), GATE_NEEDS["decide"], detail)
    )
    return gates

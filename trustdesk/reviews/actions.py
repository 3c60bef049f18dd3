"""Every state change of the reviews app, one function each (docs/design.md section 4, Reviews).

Each incident step follows the lifecycle's pattern: `journal.incident_step(expected_version)`
-> check the rule -> `append_step` -> write the rows -> on commit, refresh the metrics and re-check
the incident's re-entry conditions. A refused step raises ReviewError (a GateError) naming every
problem; views turn it into a message on the form.

Decisions, attestations, sign-offs, operating-model changes and meeting notes are written once and
never changed: there is no function here that updates or deletes them, the admin is read-only,
and the models themselves refuse an update or a delete (models.WriteOnceModel).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from trustdesk.core.bounds import planned_time_problem
from trustdesk.core.canonical import to_canonical_value
from trustdesk.core.effects import run_task_on_commit
from trustdesk.core.roles import (
    authorize,
    can,
    refusal,
    roles_for,
    user_roles,
)
from trustdesk.incidents import announce, journal
from trustdesk.incidents.gates import gate_status
from trustdesk.incidents.models import (
    CLOSED_STATES,
    HOLDING_SCOPES,
    Event,
    EventType,
    Incident,
    State,
)
from trustdesk.incidents.transitions import advance
from trustdesk.pacts.models import SCOPE_RANK, PactVersion, Scope
from trustdesk.reviews import conditions
from trustdesk.reviews.errors import ReviewError
from trustdesk.reviews.models import (
    REOPENING,
    AgendaItem,
    Attestation,
    ConditionStatus,
    Decision,
    MeetingNote,
    MeetingStatus,
    OperatingModelChange,
    OperatingModelChangeKind,
    RecoveryDecision,
    ReentryCondition,
    ReviewMeeting,
    SignOff,
    WriteOnceModel,
)

# Who may do what (docs/design.md section 10); the forms and panels list them.
WORKS_REVIEWS = roles_for("work_reviews")  # who may: core.roles.PERMISSIONS
ATTESTS = roles_for("attest")  # who may: core.roles.PERMISSIONS

MAX_TEXT = 5000
# A meeting's agenda is bounded, which keeps the live meeting screen's queries bounded too.
MAX_AGENDA = 20
SCOPE_FOR_DECISION = {
    Decision.REOPEN_FULL: Scope.FULL,
    Decision.REOPEN_PARTIAL: Scope.RESTRICTED,
    Decision.RETIRE: Scope.SUSPENDED,
}


def _text(value: str | None, name: str, problems: list[str], *, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        problems.append(f"{name} is required.")
    elif len(value) > MAX_TEXT:
        problems.append(f"{name} is too long ({len(value)} characters; at most {MAX_TEXT}).")
    return value


def _require_role(by: AbstractBaseUser | None, action: str, doing: str) -> None:
    """`by` may do `action` (core.roles.PERMISSIONS). Every record of this app names the person
    who made it, so the system (`by=None`) cannot act here: it is refused for that reason."""
    if by is None:
        raise ReviewError(f"{refusal(action, doing)} (The record names the person who acts.)")
    authorize(by, action, doing, ReviewError)


def _held_by_other_incident(incident: Incident, agent, scope: str) -> Incident | None:
    """The strictest other open incident that holds the agent stricter than `scope`, if any."""
    holders = [
        other
        for other in Incident.objects.holding(agent).exclude(pk=incident.pk)
        if SCOPE_RANK[other.scope_after] > SCOPE_RANK[scope]
    ]
    return max(holders, key=lambda other: SCOPE_RANK[other.scope_after], default=None)


def _require_open(incident: Incident, doing: str, problems: list[str]) -> None:
    if incident.state in CLOSED_STATES:
        problems.append(
            f"{incident.key} is {incident.get_state_display().lower()}; "
            f"{doing} is only possible while it is open."
        )


def _row_of(event: Event, model: type[WriteOnceModel], **fields: Any) -> Any:
    """Write the row that `event` describes, live or imported: its person, time and event are
    the event's (operating-model changes, sign-offs and attestations)."""
    return model.objects.create(by=event.actor, at=event.at, event=event, **fields)


def schedule_condition_recheck(incident_id: int) -> None:
    """After commit, re-check the incident's re-entry conditions on a worker."""
    run_task_on_commit("trustdesk.reviews.tasks.recheck_conditions_for_incident", incident_id)


@contextmanager
def _review_step(incident: Incident, expected_version: int | None) -> Iterator[Incident]:
    """`journal.incident_step` for a step that changes what the incident's re-entry conditions
    read: they are re-checked once the step is done."""
    with journal.incident_step(incident, expected_version=expected_version) as inc:
        yield inc
    schedule_condition_recheck(inc.pk)


# ---------------------------------------------------------------- operating-model changes


def add_operating_model_change(
    incident: Incident,
    *,
    by: AbstractBaseUser,
    expected_version: int | None,
    kind: str,
    summary: str,
    pact_version: PactVersion | None = None,
    at: datetime | None = None,
) -> OperatingModelChange:
    """Record a change around the agent. `pact_amended` needs a newer version of the incident's
    pact; the other kinds take none."""
    _require_role(by, "work_reviews", "record an operating-model change")
    problems: list[str] = []
    summary = _text(summary, "A summary of the change", problems)
    if kind not in OperatingModelChangeKind.values:
        problems.append(
            f"Choose the kind of change: one of {', '.join(OperatingModelChangeKind.values)}."
        )
    with _review_step(incident, expected_version) as inc:
        _require_open(inc, "recording an operating-model change", problems)
        if kind == OperatingModelChangeKind.PACT_AMENDED:
            current = inc.pact_version
            if pact_version is None:
                problems.append("A pact amendment must name the new pact version.")
            elif current is None:
                problems.append(f"{inc.key} has no pact, so no pact version can amend it.")
            elif pact_version.pact_id != current.pact_id or pact_version.number <= current.number:
                problems.append(
                    f"The amended pact version must be a newer version of {current.pact.key} "
                    f"than {current.label} (got {pact_version.label})."
                )
        elif pact_version is not None:
            problems.append("Only a pact amendment links a pact version.")
        data: dict[str, Any] = {"kind": kind, "summary": summary}
        if pact_version is not None:
            data["pact_version"] = pact_version.label
        event = journal.append_step(
            inc,
            problems,
            type=EventType.OPERATING_MODEL_CHANGED,
            by=by,
            data=data,
            at=at,
            error=ReviewError,
        )
        return _row_of(
            event,
            OperatingModelChange,
            incident=inc,
            kind=kind,
            summary=summary,
            pact_version=pact_version,
        )


# ---------------------------------------------------------------- re-entry conditions


def set_reentry_condition(
    incident: Incident,
    *,
    by: AbstractBaseUser,
    expected_version: int | None,
    kind: str,
    params: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> ReentryCondition:
    """Add a machine-checkable re-entry condition; its statement is written from its params."""
    _require_role(by, "work_reviews", "set a re-entry condition")
    with _review_step(incident, expected_version) as inc:
        problems: list[str] = []
        _require_open(inc, "setting a re-entry condition", problems)
        try:
            clean = conditions.clean_params(kind, params, inc)
        except conditions.ConditionParamsError as exc:
            problems.extend(exc.problems)
            clean = {}
        now = journal.step_time(inc, at, problems)
        ReviewError.raise_if(problems)
        duplicate = ReentryCondition.objects.filter(incident=inc, kind=kind, params=clean).first()
        if duplicate is not None:
            raise ReviewError(f"This condition is already set: “{duplicate.statement}”")
        statement = conditions.statement_for(kind, clean)
        data = {"kind": kind, "params": clean, "statement": statement}
        event = journal.append_event(
            inc, type=EventType.REENTRY_CONDITION_SET, by=by, data=data, at=now
        )
        return ReentryCondition.objects.create(
            incident=inc,
            kind=kind,
            params=event.data["params"],
            statement=statement,
            set_by=by,
            set_at=now,
            event=event,
        )


def sign_off_incident(
    incident: Incident,
    *,
    by: AbstractBaseUser,
    expected_version: int | None,
    role: str,
    comment: str = "",
    shareable: bool = False,
    at: datetime | None = None,
) -> SignOff:
    """Sign off the recovery plan in one of the roles one holds (counted by `signoffs`
    conditions). Recorded in the chain as a `signed_off` event (docs/design.md section 11) whose
    comment is internal, withheld from buyers, unless the signer marks it `shareable`."""
    _require_role(by, "sign_off", "sign off a recovery plan")
    problems: list[str] = []
    comment = _text(comment, "The comment", problems, required=False)
    if role not in conditions.SIGNOFF_ROLES or role not in user_roles(by):
        problems.append("Sign off in a role you hold (risk, incident manager or operator).")
    with _review_step(incident, expected_version) as inc:
        _require_open(inc, "signing off", problems)
        earlier = SignOff.objects.filter(incident=inc, by=by).first()
        if earlier is not None:
            problems.append(
                f"You already signed off {inc.key} as {earlier.role} on "
                f"{earlier.at:%Y-%m-%d %H:%M} UTC; a sign-off is given once."
            )
        data = {"role": role, "comment": comment, "internal": not shareable}
        event = journal.append_step(
            inc, problems, type=EventType.SIGNED_OFF, by=by, data=data, at=at, error=ReviewError
        )
        return _row_of(event, SignOff, incident=inc, role=role, comment=comment)


# ---------------------------------------------------------------- request review


def request_review(
    incident: Incident,
    *,
    by: AbstractBaseUser,
    expected_version: int | None,
    at: datetime | None = None,
) -> Incident:
    """repaired -> in_review, once there is an operating-model change and a re-entry condition."""
    _require_role(by, "work_reviews", "request a review")
    with _review_step(incident, expected_version) as inc:
        problems: list[str] = []
        if inc.state != State.REPAIRED:
            problems.append(
                f"{inc.key} is {inc.get_state_display().lower()}; a review can be requested "
                "once it is repaired."
            )
        if not OperatingModelChange.objects.filter(incident=inc).exists():
            problems.append(
                "Record at least one operating-model change (what changed around the agent)."
            )
        if not ReentryCondition.objects.filter(incident=inc).exists():
            problems.append("Set at least one re-entry condition the machine can check.")
        event = journal.append_step(
            inc, problems, type=EventType.REVIEW_REQUESTED, by=by, data={}, at=at, error=ReviewError
        )
        journal.save_fields(inc, advance(inc, event))
        announce.announce("review.requested", inc)
    return inc


# ---------------------------------------------------------------- the decision


def current_gates(incident: Incident) -> list[dict[str, Any]]:
    """The lifecycle's gates before `decide`, as plain dicts (what a snapshot stores)."""
    return [
        to_canonical_value(asdict(gate)) for gate in gate_status(incident) if gate.step != "decide"
    ]


def _condition_snapshot(condition: ReentryCondition) -> dict[str, Any]:
    return to_canonical_value(
        {
            "kind": condition.kind,
            "params": condition.params,
            "statement": condition.statement,
            "status": condition.status,
            "observed": condition.observed,
            "checked_at": condition.checked_at,
        }
    )


def override_reasons(gates: list[dict], condition_rows: list[dict]) -> list[str]:
    """What makes a reopening an override now: each unmet gate and each unmet condition."""
    reasons = [f"gate “{g['label']}” is unmet: {g['detail']}" for g in gates if not g["met"]]
    reasons += [
        f"re-entry condition unmet: {c['statement']}"
        for c in condition_rows
        if c["status"] != ConditionStatus.MET
    ]
    return reasons


#: Where a decision may be taken: what broke is known (contain, preserve, classify done). From
#: `classified` or `repaired` it skips the review, so it is an override; from `in_review` only a
#: reopening with an unmet gate or condition is. Alike for the four decisions.
DECIDABLE_STATES = (State.CLASSIFIED, State.REPAIRED, State.IN_REVIEW)


def _assess_decision(inc: Incident, decision: str) -> tuple[list[dict], list[dict], list[str]]:
    """The gates, the freshly evaluated condition readings, and what taking `decision` now would
    skip (each reason in plain words; empty when it is no override)."""
    gates = current_gates(inc)
    rows = list(ReentryCondition.objects.filter(incident=inc))
    for row in rows:
        row.incident = inc
        conditions.evaluate_condition(row)
    snapshot = [_condition_snapshot(row) for row in rows]
    if inc.state != State.IN_REVIEW:
        reasons = override_reasons(gates, snapshot)
        if not any(not g["met"] for g in gates):
            reasons.insert(0, f"the review was never requested (the incident is {inc.state})")
    elif decision in REOPENING:
        reasons = override_reasons(gates, snapshot)
    else:
        reasons = []
    return gates, snapshot, reasons


def override_preview(incident: Incident, *, decision: str) -> list[str]:
    """What taking `decision` on `incident` now would skip: the list a confirmation page shows
    before an override is recorded (empty: no override). Refreshes the condition readings."""
    inc = Incident.objects.select_related("agent", "pact_version").get(pk=incident.pk)
    return _assess_decision(inc, decision)[2]


def record_recovery_decision(
    incident: Incident,
    *,
    by: AbstractBaseUser,
    expected_version: int | None,
    decision: str,
    rationale: str,
    justification: str = "",
    override_requested: bool = False,
    meeting: ReviewMeeting | None = None,
    at: datetime | None = None,
    confirmed_skips: Sequence[str] | None = None,
) -> RecoveryDecision:
    """Decide on trust: reopen (fully or partially), keep restricted, or retire.

    `confirmed_skips`, from a page that showed the user what an override skips (see
    `override_preview`), must equal what it skips now, so nothing is recorded that was not seen.

    Reopening while any gate or re-entry condition is unmet is an override: only an incident
    manager may make it, explicitly (`override_requested`) and with a justification; the gates
    and condition readings of that moment are stored with the decision. Every decision, whichever
    of the four, needs the incident classified (DECIDABLE_STATES); before `in_review` it skips the
    review, so it is taken only as an override. The conditions are evaluated afresh inside the
    lock, so the snapshot is what held when the decision was taken.
    """
    _require_role(by, "decide", "record a recovery decision")
    problems: list[str] = []
    rationale = _text(rationale, "A rationale", problems)
    justification = _text(justification, "The justification", problems, required=False)
    if decision not in Decision.values:
        problems.append(f"Choose a decision: one of {', '.join(Decision.values)}.")
    with journal.incident_step(incident, expected_version=expected_version) as inc:
        agent = inc.agent
        existing = RecoveryDecision.objects.filter(incident=inc).first()
        if existing is not None:
            raise ReviewError(
                f"{inc.key} was already decided ({existing.get_decision_display().lower()}, "
                f"{existing.decided_at:%Y-%m-%d %H:%M} UTC); decisions are never changed."
            )
        _require_open(inc, "a recovery decision", problems)
        if meeting is not None:
            meeting = ReviewMeeting.objects.select_for_update().get(pk=meeting.pk)
            if not meeting.is_open:
                problems.append(f"The meeting “{meeting.title}” is closed.")
            elif not AgendaItem.objects.filter(meeting=meeting, incident=inc).exists():
                problems.append(f"{inc.key} is not on the agenda of “{meeting.title}”.")
        if inc.state not in DECIDABLE_STATES and inc.is_open:
            # The same for all four decisions: trust is decided about a known failure.
            problems.append(
                f"{inc.key} is {inc.get_state_display().lower()}; a recovery decision needs it "
                "classified first (contain, preserve the evidence, classify what broke)."
            )
            ReviewError.raise_if(problems)
        gates, snapshot, reasons = _assess_decision(inc, decision)
        reopening = decision in REOPENING
        is_override = bool(reasons)
        because = "; ".join(r.rstrip(".") for r in reasons) + "."
        early = inc.state != State.IN_REVIEW
        what = (
            f"{inc.key} is {inc.get_state_display().lower()}; request a review before deciding. "
            "Deciding now"
            if early
            else "Reopening now"
        )
        if is_override:
            if not can(by, "override"):
                problems.append(
                    f"{what} would be an override, which only an incident manager may make, "
                    f"because: {because}"
                )
            else:
                if not override_requested:
                    problems.append(
                        f"{what} is an override because: {because} "
                        "Tick “override” and write a justification to take it anyway."
                    )
                if not justification:
                    problems.append(
                        "An override needs a written justification: why decide before every "
                        "gate and condition holds."
                    )
                if confirmed_skips is not None and list(confirmed_skips) != reasons:
                    problems.append(
                        "What this override skips changed since it was confirmed; confirm "
                        f"again. It now skips: {because}"
                    )
        now = journal.step_time(inc, at, problems)
        ReviewError.raise_if(problems)

        if decision == Decision.KEEP_RESTRICTED:
            # What this incident holds (never wider than the agent is now, never full): another
            # incident's hold is not this decision's doing (it shows as agent_held_by).
            own = inc.scope_after if inc.scope_after in HOLDING_SCOPES else Scope.RESTRICTED
            scope_after = min(own, agent.scope, key=SCOPE_RANK.__getitem__)
            if scope_after == Scope.FULL:
                scope_after = Scope.RESTRICTED
        else:
            scope_after = SCOPE_FOR_DECISION[decision]
        # Another open incident holding the agent stricter keeps it there: a decision never lifts
        # another incident's containment.
        held_by = _held_by_other_incident(inc, agent, scope_after)
        agent_scope = held_by.scope_after if held_by is not None else scope_after
        event = journal.append_event(
            inc,
            type=EventType.DECISION_RECORDED,
            by=by,
            data={
                "decision": decision,
                "scope_after": scope_after,
                "rationale": rationale,
                "override": is_override,
                "justification": justification,
            },
            at=now,
        )
        completeness = inc.evidence_completeness
        record = RecoveryDecision.objects.create(
            incident=inc,
            decision=decision,
            scope_after=scope_after,
            rationale=rationale,
            decided_by=by,
            decided_at=now,
            override=is_override,
            justification=justification,
            gate_snapshot=gates,
            conditions_snapshot=snapshot,
            evidence_completeness=completeness,
            agent_scope_after=agent_scope,
            agent_held_by=held_by,
            meeting=meeting,
            event=event,
        )
        label = Decision(decision).label.lower()
        fields = advance(inc, event)
        # Reopened means the agent's scope restored (docs/design.md section 6): not while another
        # incident holds it where it is. Such a held reopening leaves the incident decided but in
        # review; the `reopened` event follows when the hold lifts (journal.set_agent_scope).
        restored = held_by is None or SCOPE_RANK[agent_scope] < SCOPE_RANK[agent.scope]
        if reopening and restored:
            outcome = journal.append_event(
                inc, type=EventType.REOPENED, by=by, data={"scope_after": agent_scope}, at=now
            )
            fields += advance(inc, outcome)
        elif not reopening:
            outcome = journal.append_event(
                inc, type=EventType.CLOSED, by=by, data={"outcome": decision}, at=now
            )
            fields += advance(inc, outcome)
        journal.set_agent_scope(
            agent,
            scope=agent_scope,
            reason=f"Recovery decision on {inc.key}: {label}"
            + (" (override)." if is_override else "."),
            incident=inc,
            at=now,
        )
        if decision == Decision.RETIRE:
            type(agent).objects.filter(pk=agent.pk).update(retired_at=now)
            agent.retired_at = now
        journal.save_fields(inc, fields)
        facts = {"decision": decision, "scope_after": scope_after, "override": is_override}
        announce.announce("decision.recorded", inc, **facts)
        # Every decision asks other stakeholders to attest that the page alone explains it.
        announce.announce("attestation.needed", inc, decision=decision)
    return record


# ---------------------------------------------------------------- attestations


def attest(
    decision: RecoveryDecision,
    *,
    by: AbstractBaseUser,
    can_explain: bool,
    comment: str,
    at: datetime | None = None,
) -> Attestation:
    """Someone other than the decider says whether the page alone explains the decision.
    One per person per decision; never changed."""
    _require_role(by, "attest", "attest a decision")
    problems: list[str] = []
    comment = _text(comment, "A comment", problems)
    if not isinstance(can_explain, bool):
        problems.append("Say whether you can explain the decision from the page alone.")
    with journal.incident_step(decision.incident_id, expected_version=None) as inc:
        record = RecoveryDecision.objects.select_related("event").get(pk=decision.pk)
        if record.decided_by_id == by.pk:
            problems.append(
                "The decider cannot attest their own decision; someone else must say whether "
                "it can be explained from the page."
            )
        earlier = Attestation.objects.filter(decision=record, by=by).first()
        if earlier is not None:
            problems.append(
                f"You already attested this decision on {earlier.at:%Y-%m-%d %H:%M} UTC; "
                "an attestation is given once and never changed."
            )
        data = {"decision_seq": record.event.seq, "can_explain": can_explain, "comment": comment}
        event = journal.append_step(
            inc, problems, type=EventType.ATTESTED, by=by, data=data, at=at, error=ReviewError
        )
        return _row_of(
            event, Attestation, decision=record, can_explain=can_explain, comment=comment
        )


# ---------------------------------------------------------------- meetings


def _agenda_problems(incidents: Iterable[Incident], problems: list[str]) -> list[Incident]:
    chosen = list(dict.fromkeys(incidents))
    for inc in chosen:
        if inc.state != State.IN_REVIEW:
            problems.append(
                f"{inc.key} is {inc.get_state_display().lower()}; only incidents in review go "
                "on a meeting's agenda."
            )
    return chosen


def create_meeting(
    *,
    by: AbstractBaseUser,
    title: str,
    scheduled_at: datetime,
    facilitator: AbstractBaseUser,
    agenda: Iterable[Incident] = (),
) -> ReviewMeeting:
    """Schedule a review meeting with its agenda of incidents in review."""
    _require_role(by, "run_meetings", "create a review meeting")
    problems: list[str] = []
    title = _text(title, "A title", problems)
    if len(title) > 200:
        problems.append("The title is too long (at most 200 characters).")
    if scheduled_at is None:
        problems.append("A meeting needs a time.")
    elif problem := planned_time_problem(scheduled_at):
        problems.append(f"The meeting time {problem}.")
    if facilitator is None or not can(facilitator, "work_reviews"):
        problems.append("The facilitator must be an operator, incident manager or risk user.")
    with transaction.atomic():
        wanted = [i.pk for i in agenda]
        locked = {i.pk: i for i in Incident.objects.select_for_update().filter(pk__in=wanted)}
        # The agenda keeps the order it was given in.
        chosen = _agenda_problems([locked[pk] for pk in wanted if pk in locked], problems)
        if len(chosen) > MAX_AGENDA:
            problems.append(f"A meeting takes at most {MAX_AGENDA} incidents.")
        ReviewError.raise_if(problems)
        meeting = ReviewMeeting.objects.create(
            title=title,
            scheduled_at=scheduled_at,
            facilitator=facilitator,
            created_by=by,
        )
        for position, inc in enumerate(chosen, start=1):
            AgendaItem.objects.create(meeting=meeting, incident=inc, position=position, added_by=by)
    return meeting


def add_agenda_item(meeting: ReviewMeeting, *, by: AbstractBaseUser, incident: Incident):
    """Put one more incident in review on an open meeting's agenda."""
    _require_role(by, "run_meetings", "change a meeting's agenda")
    with transaction.atomic():
        # Incident before meeting, the order record_recovery_decision takes them in.
        inc = Incident.objects.select_for_update().get(pk=incident.pk)
        meeting = ReviewMeeting.objects.select_for_update().get(pk=meeting.pk)
        problems: list[str] = []
        if not meeting.is_open:
            problems.append(f"The meeting “{meeting.title}” is closed.")
        if AgendaItem.objects.filter(meeting=meeting, incident=inc).exists():
            problems.append(f"{inc.key} is already on the agenda.")
        _agenda_problems([inc], problems)
        if AgendaItem.objects.filter(meeting=meeting).count() >= MAX_AGENDA:
            problems.append(f"The agenda is full: a meeting takes at most {MAX_AGENDA} incidents.")
        ReviewError.raise_if(problems)
        last = AgendaItem.objects.filter(meeting=meeting).aggregate(n=Max("position"))["n"]
        return AgendaItem.objects.create(
            meeting=meeting, incident=inc, position=(last or 0) + 1, added_by=by
        )


def add_meeting_note(
    meeting: ReviewMeeting, *, by: AbstractBaseUser, text: str, at: datetime | None = None
) -> MeetingNote:
    """Append an entry to an open meeting's notes; entries are never edited. `at` (not in the
    future) lets demo data date the notes of a past meeting."""
    _require_role(by, "take_meeting_notes", "add to a meeting's notes")
    problems: list[str] = []
    text = _text(text, "The note", problems)
    with transaction.atomic():
        meeting = ReviewMeeting.objects.select_for_update().get(pk=meeting.pk)
        if not meeting.is_open:
            problems.append(f"The meeting “{meeting.title}” is closed; its notes are final.")
        now = timezone.now()
        if at is not None and at > now + timedelta(seconds=5):
            problems.append("A note cannot be dated in the future.")
        ReviewError.raise_if(problems)
        return MeetingNote.objects.create(meeting=meeting, author=by, text=text, at=at or now)


def close_meeting(meeting: ReviewMeeting, *, by: AbstractBaseUser) -> ReviewMeeting:
    """End a meeting: its notes and agenda become final."""
    _require_role(by, "run_meetings", "close a meeting")
    with transaction.atomic():
        meeting = ReviewMeeting.objects.select_for_update().get(pk=meeting.pk)
        if not meeting.is_open:
            raise ReviewError(f"The meeting “{meeting.title}” is already closed.")
        now = timezone.now()
        ReviewMeeting.objects.filter(pk=meeting.pk).update(
            status=MeetingStatus.CLOSED, closed_at=now
        )
        meeting.status, meeting.closed_at = MeetingStatus.CLOSED, now
    return meeting


# ---------------------------------------------------------------- imported history


IMPORTED_TYPES = (
    EventType.OPERATING_MODEL_CHANGED,
    EventType.REENTRY_CONDITION_SET,
    EventType.DECISION_RECORDED,
    EventType.ATTESTED,
    EventType.SIGNED_OFF,
)


def _imported_version(incident: Incident, label: str | None) -> PactVersion | None:
    key, _, number = (label or "").rpartition("@")
    if not key or not number.isdigit():
        return None
    return PactVersion.objects.filter(pact__key=key, number=int(number)).first()


def record_imported_history(incident: Incident) -> dict[str, int]:
    """Write the reviews rows that an imported incident's events describe; for the importer,
    inside its transaction, after the events are replayed.

    The events are the record; the rows make them readable on the page. Idempotent: an event
    that already has its row is left alone. An event whose row cannot be built faithfully (no
    actor, an unknown pact version, a decision an attestation points at that is not there) is
    counted under "skipped" and nothing is invented for it. Imported decisions carry no gate or
    condition snapshot: the exchange format does not hold one.
    """
    counts = {
        "changes": 0,
        "conditions": 0,
        "decisions": 0,
        "attestations": 0,
        "signoffs": 0,
        "skipped": 0,
    }
    events = list(
        Event.objects.filter(incident=incident, type__in=IMPORTED_TYPES)
        .select_related("actor")
        .order_by("seq")
    )
    linked = set(
        OperatingModelChange.objects.filter(incident=incident).values_list("event_id", flat=True)
    )
    linked |= set(
        ReentryCondition.objects.filter(incident=incident).values_list("event_id", flat=True)
    )
    linked |= set(
        Attestation.objects.filter(decision__incident=incident).values_list("event_id", flat=True)
    )
    linked |= set(SignOff.objects.filter(incident=incident).values_list("event_id", flat=True))
    decision = RecoveryDecision.objects.filter(incident=incident).select_related("event").first()
    if decision is not None:
        linked.add(decision.event_id)
    for ev in events:
        if ev.pk in linked:
            continue
        d = ev.data or {}
        if ev.actor is None:
            counts["skipped"] += 1
            continue
        if ev.type == EventType.OPERATING_MODEL_CHANGED:
            version = _imported_version(incident, d.get("pact_version"))
            kind = d.get("kind")
            if kind not in OperatingModelChangeKind.values or (
                (kind == OperatingModelChangeKind.PACT_AMENDED) != (version is not None)
            ):
                counts["skipped"] += 1
                continue
            _row_of(
                ev,
                OperatingModelChange,
                incident=incident,
                kind=kind,
                summary=d.get("summary", ""),
                pact_version=version,
            )
            counts["changes"] += 1
        elif ev.type == EventType.REENTRY_CONDITION_SET:
            if d.get("kind") not in conditions.KINDS:
                counts["skipped"] += 1
                continue
            ReentryCondition.objects.create(
                incident=incident,
                kind=d["kind"],
                params=d.get("params") or {},
                statement=d.get("statement")
                or conditions.statement_for(d["kind"], d.get("params") or {}),
                set_by=ev.actor,
                set_at=ev.at,
                event=ev,
            )
            counts["conditions"] += 1
        elif ev.type == EventType.DECISION_RECORDED:
            override = bool(d.get("override"))
            justification = (d.get("justification") or "").strip()
            if (
                decision is not None
                or d.get("decision") not in Decision.values
                or d.get("scope_after") not in Scope.values
                or (override and not justification)
            ):
                counts["skipped"] += 1
                continue
            decision = RecoveryDecision.objects.create(
                incident=incident,
                decision=d["decision"],
                scope_after=d["scope_after"],
                rationale=d.get("rationale", ""),
                decided_by=ev.actor,
                decided_at=ev.at,
                override=override,
                justification=justification,
                evidence_completeness=incident.evidence_completeness,
                event=ev,
            )
            counts["decisions"] += 1
        elif ev.type == EventType.ATTESTED:
            if (
                decision is None
                or d.get("decision_seq") != decision.event.seq
                or not isinstance(d.get("can_explain"), bool)
                or Attestation.objects.filter(decision=decision, by=ev.actor).exists()
            ):
                counts["skipped"] += 1
                continue
            comment = d.get("comment", "")
            _row_of(
                ev, Attestation, decision=decision, can_explain=d["can_explain"], comment=comment
            )
            counts["attestations"] += 1
        elif ev.type == EventType.SIGNED_OFF:
            # What `signoffs` conditions count; a person signs off once, as live.
            if (
                d.get("role") not in conditions.SIGNOFF_ROLES
                or SignOff.objects.filter(incident=incident, by=ev.actor).exists()
            ):
                counts["skipped"] += 1
                continue
            SignOff.objects.create(
                incident=incident,
                by=ev.actor,
                role=d["role"],
                comment=d.get("comment", ""),
                at=ev.at,
                event=ev,
            )
            counts["signoffs"] += 1
    if counts["conditions"] and incident.is_open:
        schedule_condition_recheck(incident.pk)
    return counts

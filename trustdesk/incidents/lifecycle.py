"""Every state change of an incident lives here, one function each (docs/design.md section 2).

The primitives at the top (`locked_incident`, `append_event`) are what every step, here and in
`reviews.actions`, is built from: lock the incident row, check the version the user saw, check the
gate, append to the chain, update the denormalized fields, schedule side effects on commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from trustdesk.core.bounds import EARLIEST_TIME, past_time_problem
from trustdesk.core.canonical import to_canonical_value
from trustdesk.core.effects import agent_changed, publish
from trustdesk.core.errors import Refused
from trustdesk.core.roles import authorize, can
from trustdesk.incidents import announce, tlog
from trustdesk.incidents import evidence as store
from trustdesk.incidents.chain import canonical_event, event_hash
from trustdesk.incidents.errors import ConflictError, GateError
from trustdesk.incidents.models import (
    BreachLink,
    ContainmentAction,
    Event,
    EventType,
    Evidence,
    EvidenceContent,
    Incident,
    State,
)
from trustdesk.incidents.transitions import advance
from trustdesk.pacts.models import (
    SCOPE_RANK,
    Agent,
    Consequence,
    Dispute,
    DisputeStatus,
    Evaluation,
    EvidenceKind,
    Pact,
    Scope,
)
from trustdesk.taxonomy import ASSUMPTION_BY_KEY, CONFIDENCE_CHOICES, HARM_CHOICES


@contextmanager
def locked_incident(
    incident: Incident | int, *, expected_version: int | None = None
) -> Iterator[Incident]:
    """Open a transaction, lock the incident row and yield a fresh copy of it.

    On PostgreSQL the row lock serializes appends to one incident; on SQLite the database takes
    its write lock at BEGIN (transaction_mode IMMEDIATE), which serializes them too. When
    `expected_version` is given and the incident moved on, ConflictError names what changed.
    """
    pk = incident.pk if isinstance(incident, Incident) else incident
    with transaction.atomic():
        current = Incident.objects.select_for_update().select_related("agent").get(pk=pk)
        if expected_version is not None and current.version != expected_version:
            # version counts events, so what changed is every event after the one the user saw.
            changes = list(
                Event.objects.filter(incident=current, seq__gt=expected_version)
                .order_by("seq")
                .values_list("type", flat=True)
            )
            raise ConflictError(current, expected_version, changes)
        announce.remember_state(current)
        yield current


def append_event(
    incident: Incident,
    *,
    type: str,
    by: AbstractBaseUser | None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
    by_name: str | None = None,
) -> Event:
    """Append one event to a locked incident's chain and bump its version (= its event count).

    The caller must hold the lock (inside `locked_incident`). `at` defaults to now and may not be
    in the future. `by_name` overrides the username (the importer replays history by name).
    """
    now = timezone.now()
    at = at or now
    if at > now + timezone.timedelta(seconds=5):
        raise GateError("An event cannot happen in the future.")
    if at < EARLIEST_TIME:
        raise GateError(f"An event cannot happen before {EARLIEST_TIME:%Y-%m-%d} (UTC).")
    seq = incident.event_count + 1
    prev_hash = incident.last_hash
    name = by_name if by_name is not None else (by.get_username() if by is not None else "")
    # Stored exactly as hashed (decimals and times as strings), so a rebuild gives the same text.
    data = to_canonical_value(data or {})
    canonical = canonical_event(
        incident_key=incident.key, seq=seq, type=type, at=at, by=name or None, data=data
    )
    event = Event.objects.create(
        incident=incident,
        seq=seq,
        type=type,
        at=at,
        recorded_at=now,
        actor=by,
        actor_name=name,
        data=data,
        prev_hash=prev_hash,
        hash=event_hash(prev_hash, canonical),
        canonical=canonical,
    )
    # Its place in the transparency log (section 15): numbered at commit on PostgreSQL.
    tlog.on_event_appended(event)
    incident.event_count = seq
    incident.last_hash = event.hash
    incident.version += 1
    Incident.objects.filter(pk=incident.pk).update(
        event_count=seq, last_hash=event.hash, version=incident.version
    )
    return event


def next_incident_number() -> int:
    return (Incident.objects.aggregate(n=Max("number"))["n"] or 0) + 1


def open_incident(
    *,
    agent,
    by: AbstractBaseUser | None,
    title: str,
    severity: str,
    detected_at: datetime | None = None,
    pact_version=None,
    clauses=(),
    summary: str = "",
) -> Incident:
    """Open an incident (state `detected`) with its first event.

    The caller guarantees the clauses belong to `pact_version`. The detection may be backdated,
    never in the future.
    """
    authorize(by, "work_incidents", "open an incident", GateError)
    now = timezone.now()
    detected_at = detected_at or now
    if detected_at > now + timezone.timedelta(seconds=5):
        raise GateError("The detection time cannot be in the future.")
    if problem := past_time_problem(detected_at, now=now):  # the lower bound (year 1, ...)
        raise GateError(f"The detection time {problem}.")
    with transaction.atomic():
        # Serialize numbering: concurrent opens would otherwise pick the same number.
        type(agent).objects.select_for_update().filter(pk=agent.pk).first()
        number = next_incident_number()
        incident = Incident.objects.create(
            number=number,
            key=f"INC-{number}",
            agent=agent,
            pact_version=pact_version,
            title=title,
            summary=summary,
            severity=severity,
            detected_at=detected_at,
            created_by=by,
        )
        if clauses:
            incident.clauses.set(clauses)
        append_event(incident, type="detected", by=by, at=detected_at)
        schedule_metrics_refresh(incident)
        announce.announce_opened(incident)
    return incident


def schedule_metrics_refresh(incident: Incident) -> None:
    """After commit, the agent's metrics are refreshed (debounced there) and its re-entry
    conditions, which read its incidents, evidence and disputes, re-checked now rather than at
    the next beat. By task name: incidents never import metrics or reviews."""
    agent_changed(incident.agent_id)


def set_agent_scope(
    agent, *, scope: str, reason: str, incident: Incident | None, at: datetime
) -> bool:
    """The one place an agent's scope changes (containment, recovery decisions, closing the last
    incident that held it). Returns whether it changed.

    The caller holds the incident lock, so the agent row is locked here too. Only an actual change
    counts: asking for the scope the agent already has changes nothing (not its reason, not its
    time, not the scope statement's revision) and returns False. A change bumps `revision` by
    exactly one, announces `agent.scope_changed` after commit, and, when the scope widens, records
    the held reopenings of the agent's other incidents (decided to reopen while another incident
    held the agent) as reopened now.
    """
    current = Agent.objects.select_for_update().only("scope", "revision").get(pk=agent.pk)
    if current.scope == scope:
        agent.scope, agent.revision = current.scope, current.revision
        return False
    Agent.objects.filter(pk=agent.pk).update(
        scope=scope,
        scope_changed_at=at,
        scope_reason=reason,
        scope_incident=incident,
        revision=F("revision") + 1,
    )
    widened = SCOPE_RANK[scope] < SCOPE_RANK[current.scope]
    agent.scope, agent.scope_changed_at, agent.scope_reason = scope, at, reason
    agent.scope_incident = incident
    agent.revision = current.revision + 1
    publish(
        "agent.scope_changed",
        {
            "agent": agent.key,
            "scope": scope,
            "revision": agent.revision,
            "reason": reason,
            "incident": incident.key if incident is not None else None,
        },
    )
    if widened:
        _record_held_reopenings(agent, scope=scope, at=at, exclude=incident)
    return True


def _record_held_reopenings(agent, *, scope: str, at: datetime, exclude: Incident | None) -> None:
    """The agent's scope widened: every reopening that was waiting on it happened now."""
    held = Incident.objects.reopening_held().filter(agent=agent)
    if exclude is not None:
        held = held.exclude(pk=exclude.pk)
    for pk in held.values_list("pk", flat=True):
        with locked_incident(pk) as inc:
            last = inc.events.order_by("-seq").values_list("at", flat=True).first()
            when = max(at, last) if last else at
            event = append_event(
                inc, type=EventType.REOPENED, by=None, data={"scope_after": scope}, at=when
            )
            _save(inc, advance(inc, event))
            schedule_metrics_refresh(inc)


# ---------------------------------------------------------------- shared rules of the steps

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
# Actions whose scope is implied by their name.
ACTION_SCOPE = {
    ContainmentAction.RESTRICT: Scope.RESTRICTED,
    ContainmentAction.SUSPEND: Scope.SUSPENDED,
}
RECURRENCE_WINDOW = timedelta(days=90)
DISPUTE_RESOLUTIONS = ("upheld", "rejected")


def current_step(incident: Incident) -> str:
    """The next step of the lifecycle (a key of STEP_LABELS), or "done" once decided (a held
    reopening waits in review with its decision taken: nothing is left to do on it)."""
    if incident.decided_at is not None:
        return "done"
    return STEP_FOR_STATE.get(incident.state, "done")


def _state_label(state: str) -> str:
    return State(state).label.lower() if state in State.values else state


def _wrong_state(incident: Incident, verb: str, required: Iterable[str]) -> str | None:
    """One sentence when the incident is not in a state the step accepts, else None."""
    required = list(required)
    if incident.state in required:
        return None
    needed = " or ".join(_state_label(s) for s in required)
    step = current_step(incident)
    nxt = f" Its next step is: {STEP_LABELS[step].lower()}." if step != "done" else ""
    return f"{incident.key} is {_state_label(incident.state)}; {verb} needs it to be {needed}.{nxt}"


def step_time(incident: Incident, at: datetime | None, problems: list[str]) -> datetime:
    """The time of a step: now, or a given time that is neither in the future nor before the
    incident's latest event (a log's times never go backwards). Every step of every app uses it;
    a refusal is appended to `problems`."""
    now = timezone.now()
    if at is None:
        return now
    if at > now + timedelta(seconds=5):
        problems.append("The time of a step cannot be in the future.")
        return at
    last = (
        Event.objects.filter(incident=incident)
        .order_by("-seq")
        .values_list("at", flat=True)
        .first()
    )
    if last is not None and at < last:
        problems.append(
            f"A step of {incident.key} cannot be dated before its latest event "
            f"({last:%Y-%m-%d %H:%M} UTC)."
        )
    return at


def _refuse(problems: list[str]) -> None:
    if problems:
        raise GateError(problems)


def _save(incident: Incident, fields: list[str]) -> None:
    # append_event already wrote the chain head and version with an UPDATE; write only ours.
    if fields:
        incident.save(update_fields=sorted(set(fields)))
    if "state" in fields:
        # Every state transition of the lifecycle is saved here: the one place that announces it.
        announce.announce_state_change(incident)


# ---------------------------------------------------------------- the steps


def contain_incident(
    incident: Incident,
    *,
    by: AbstractBaseUser | None,
    expected_version: int | None,
    action: str,
    scope_after: str = "",
    reason: str = "",
    at: datetime | None = None,
) -> Event:
    """Contain first: reduce the agent's scope (or record why not). detected -> contained.

    `action` is one of ContainmentAction; with "no_scope_change" a reason is required and the
    agent's scope stays as it is. A containment never widens the agent's scope.
    """
    authorize(by, "work_incidents", "contain an incident", GateError)
    reason = (reason or "").strip()
    with locked_incident(incident, expected_version=expected_version) as inc:
        problems: list[str] = []
        if msg := _wrong_state(inc, "containment", [State.DETECTED]):
            problems.append(msg)
        agent = inc.agent
        if action not in ContainmentAction.values:
            problems.append(
                f"Choose a containment action: one of {', '.join(ContainmentAction.values)}."
            )
        elif action == ContainmentAction.NO_SCOPE_CHANGE:
            if not reason:
                problems.append(
                    "'No scope change' needs a reason that says why the agent may keep its scope."
                )
            scope_after = agent.scope
        else:
            if scope_after not in Scope.values:
                problems.append(
                    "Choose the agent's scope after containment: full, restricted or suspended."
                )
            elif action in ACTION_SCOPE and scope_after != ACTION_SCOPE[action]:
                problems.append(
                    f"The action '{action}' leaves the agent {ACTION_SCOPE[action]}, "
                    f"not {scope_after}."
                )
            elif SCOPE_RANK[scope_after] < SCOPE_RANK[agent.scope]:
                problems.append(
                    f"{agent.key} is already {agent.scope}; containment cannot widen its scope to "
                    f"{scope_after} (record 'no scope change' with a reason instead)."
                )
        at = step_time(inc, at, problems)
        _refuse(problems)
        data: dict[str, Any] = {"action": action, "scope_after": scope_after}
        if reason:
            data["reason"] = reason
        event = append_event(inc, type=EventType.CONTAINED, by=by, data=data, at=at)
        if action != ContainmentAction.NO_SCOPE_CHANGE and scope_after != agent.scope:
            label = ContainmentAction(action).label.lower()
            set_agent_scope(
                agent,
                scope=scope_after,
                reason=f"{label.capitalize()} to contain {inc.key}"
                + (f": {reason}" if reason else "."),
                incident=inc,
                at=at,
            )
        _save(inc, advance(inc, event))
        schedule_metrics_refresh(inc)
    _sync(incident, inc)
    return event


def add_evidence(
    incident: Incident,
    *,
    by: AbstractBaseUser | None,
    expected_version: int | None,
    kind: str,
    description: str,
    upload=None,
    text: str = "",
    url: str = "",
    supersedes: Evidence | None = None,
    at: datetime | None = None,
) -> Evidence:
    """Attach one evidence item (a file, a text or a URL), stored immutably with its SHA-256.

    Allowed in every state; after the decision the item is marked late. A correction is a new
    item with `supersedes` set; nothing is overwritten. The file is streamed to content-addressed
    storage before the lock is taken, so a slow upload never holds the incident.
    """
    authorize(by, "work_incidents", "add evidence", GateError)
    from trustdesk.incidents import traces

    description = (description or "").strip()
    text = text or ""
    url = (url or "").strip()
    problems: list[str] = []
    if kind not in EvidenceKind.values:
        problems.append(f"Choose an evidence kind: one of {', '.join(EvidenceKind.values)}.")
    if not description:
        problems.append("Describe the evidence in a sentence (what it is and where it came from).")
    given = [
        name
        for name, value in (("a file", upload is not None), ("a text", text), ("a URL", url))
        if value
    ]
    if len(given) != 1:
        problems.append(
            "Give exactly one of a file, a text or a URL as the evidence content"
            + (f" (got {' and '.join(given)})." if given else " (nothing was given).")
        )
    blob = None
    if len(given) == 1:
        try:
            if upload is not None:
                blob = store.store_upload(upload)
            elif text:
                blob = store.digest_text(text)
            else:
                blob = store.digest_url(url)
        except Refused as exc:  # the store refused the content (core.blobs.BlobError)
            problems.extend(exc.problems)
    trace_tree = (  # an agent trace must parse as OTLP JSON; its span tree is kept with it
        traces.read_for_evidence(blob=blob, text=text, url=url, problems=problems)
        if kind == EvidenceKind.TRACE
        else None
    )
    try:
        with locked_incident(incident, expected_version=expected_version) as inc:
            # Evidence stays possible after the decision; it is marked late and the decision's
            # snapshot (stored with the decision) does not change.
            late = inc.decided_at is not None or not inc.is_open
            if supersedes is not None:
                old = Evidence.objects.filter(pk=supersedes.pk).first()
                if old is None or old.incident_id != inc.pk:
                    problems.append(
                        "A correction can only supersede evidence of the same incident."
                    )
                elif Evidence.objects.filter(supersedes=old).exists():
                    problems.append(
                        f"The evidence '{old.description}' ({old.sha256[:12]}) is already "
                        "superseded; correct its latest version instead."
                    )
            if blob is not None:
                dup = Evidence.objects.filter(incident=inc, sha256=blob.sha256).first()
                logged = (
                    None
                    if dup is not None
                    else Event.objects.filter(
                        incident=inc, type=EventType.EVIDENCE_ADDED, data__sha256=blob.sha256
                    ).first()
                )
                if dup is not None:
                    problems.append(
                        f"This content is already attached to {inc.key} as {dup.kind} evidence "
                        f"'{dup.description}' (SHA-256 {dup.sha256[:12]}…, "
                        f"added {dup.captured_at:%Y-%m-%d %H:%M} UTC)."
                    )
                elif logged is not None:  # imported history: the event without a stored file
                    problems.append(
                        f"This content is already recorded on {inc.key} as "
                        f"{logged.data.get('kind')} evidence '{logged.data.get('description')}' "
                        f"(event {logged.seq}, SHA-256 {blob.sha256[:12]}…)."
                    )
            at = step_time(inc, at, problems)
            _refuse(problems)
            data: dict[str, Any] = {
                "kind": kind,
                "sha256": blob.sha256,
                "description": description,
            }
            if supersedes is not None:
                data["supersedes"] = supersedes.sha256
            if late:
                data["late"] = True
            event = append_event(inc, type=EventType.EVIDENCE_ADDED, by=by, data=data, at=at)
            item = Evidence.objects.create(
                incident=inc,
                kind=kind,
                description=description,
                content_type=(
                    EvidenceContent.FILE
                    if upload is not None
                    else EvidenceContent.TEXT
                    if text
                    else EvidenceContent.URL
                ),
                storage_path=blob.storage_path,
                original_name=store.safe_name(getattr(upload, "name", "") or "")
                if upload is not None
                else "",
                media_type=(getattr(upload, "content_type", "") or "")[:100]
                if upload is not None
                else "",
                text=text if upload is None else "",
                url=url if upload is None and not text else "",
                sha256=blob.sha256,
                size=blob.size,
                captured_at=at,
                captured_by=by,
                supersedes=supersedes,
                event=event,
            )
            if trace_tree is not None:
                traces.save_trace_view(item, trace_tree)
            schedule_metrics_refresh(inc)
    except GateError:
        if blob is not None and blob.created:
            store.discard(blob)
        raise
    _sync(incident, inc)
    return item


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


def _evidence_events(incident: Incident) -> list[dict]:
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


def mark_evidence_preserved(
    incident: Incident,
    *,
    by: AbstractBaseUser | None,
    expected_version: int | None,
    acknowledged_gaps: Iterable[str] = (),
    reason: str = "",
    at: datetime | None = None,
) -> Event:
    """Preserve evidence second. contained -> evidence_preserved.

    Every kind the pact version requires must be present, or be acknowledged as a gap with a
    reason; the completeness (present / required) stays on record.
    """
    authorize(by, "work_incidents", "mark evidence preserved", GateError)
    gaps = list(dict.fromkeys(acknowledged_gaps or ()))
    reason = (reason or "").strip()
    with locked_incident(incident, expected_version=expected_version) as inc:
        problems: list[str] = []
        if msg := _wrong_state(inc, "marking evidence preserved", [State.CONTAINED]):
            problems.append(msg)
        version = inc.pact_version
        required = list(version.evidence_required) if version else []
        label = version.label if version else "the pact"
        present = present_evidence_kinds(_evidence_events(inc))
        for gap in gaps:
            if gap not in EvidenceKind.values:
                problems.append(f"'{gap}' is not an evidence kind.")
            elif gap not in required:
                problems.append(f"'{gap}' is not required by {label}, so it is not a gap.")
            elif gap in present:
                problems.append(f"Evidence of kind '{gap}' is present, so it is not a gap.")
        for kind in required:
            if kind not in present and kind not in gaps:
                problems.append(f"Evidence of kind '{kind}' is required by {label} and missing.")
        if gaps and not reason:
            problems.append("Acknowledged gaps need a reason saying why the evidence is missing.")
        at = step_time(inc, at, problems)
        _refuse(problems)
        event = append_event(
            inc,
            type=EventType.EVIDENCE_PRESERVED,
            by=by,
            data={"acknowledged_gaps": gaps, "reason": reason},
            at=at,
        )
        inc.evidence_completeness = evidence_completeness(required, present)
        _save(inc, ["evidence_completeness", *advance(inc, event)])
        schedule_metrics_refresh(inc)
    _sync(incident, inc)
    return event


def find_recurrence_of(incident: Incident, assumption: str) -> Incident | None:
    """The latest earlier incident of the same agent and assumption class whose scope was
    reopened in the 90 days before this detection: [detected_at - 90 days, detected_at)."""
    pk = (
        Event.objects.filter(
            type=EventType.REOPENED,
            incident__agent_id=incident.agent_id,
            incident__assumption=assumption,
            at__gte=incident.detected_at - RECURRENCE_WINDOW,
            at__lt=incident.detected_at,
        )
        .exclude(incident_id=incident.pk)
        .order_by("-at", "-incident_id")
        .values_list("incident_id", flat=True)
        .first()
    )
    return Incident.objects.get(pk=pk) if pk else None


def classify_incident(
    incident: Incident,
    *,
    by: AbstractBaseUser | None,
    expected_version: int | None,
    assumption: str,
    statement: str,
    clauses: Iterable[Any],
    confidence: str,
    harm_category: str = "",
    secondary: Iterable[str] = (),
    at: datetime | None = None,
) -> Event:
    """Classify third: which trust assumption broke. evidence_preserved -> classified.

    `clauses` are Clause objects of the incident's pact version. Links a recurrence when
    the agent's scope was reopened after an incident of the same class within the 90 days before
    this detection.
    """
    authorize(by, "work_incidents", "classify an incident", GateError)
    statement = (statement or "").strip()
    clauses = list(clauses or ())
    secondary = list(dict.fromkeys(secondary or ()))
    harm_category = harm_category or ""
    with locked_incident(incident, expected_version=expected_version) as inc:
        problems: list[str] = []
        if msg := _wrong_state(inc, "classification", [State.EVIDENCE_PRESERVED]):
            problems.append(msg)
        problems += classification_problems(
            inc, assumption, statement, clauses, confidence, harm_category, secondary
        )
        at = step_time(inc, at, problems)
        _refuse(problems)
        event = append_event(
            inc,
            type=EventType.CLASSIFIED,
            by=by,
            data=classification_data(
                assumption, statement, clauses, confidence, harm_category, secondary
            ),
            at=at,
        )
        apply_classification(inc, event, clauses)
        schedule_metrics_refresh(inc)
    _sync(incident, inc)
    return event


def classification_problems(
    inc: Incident,
    assumption: str,
    statement: str,
    clauses: list,
    confidence: str,
    harm_category: str,
    secondary: list[str],
) -> list[str]:
    """What is wrong with a classification of `inc` (classify and reclassify check the same)."""
    problems: list[str] = []
    if assumption not in ASSUMPTION_BY_KEY:
        problems.append("Choose the broken assumption class from the taxonomy.")
    if not statement:
        problems.append(
            "State plainly what broke, in a sentence someone outside the team can follow."
        )
    if inc.pact_version_id is not None:
        if not clauses:
            problems.append(
                f"Link the clause(s) of {inc.pact_version.label} that this incident breaks."
            )
        for clause in clauses:
            if getattr(clause, "version_id", None) != inc.pact_version_id:
                problems.append(
                    f"Clause '{getattr(clause, 'key', clause)}' is not part of "
                    f"{inc.pact_version.label}."
                )
    elif clauses:
        problems.append(f"{inc.key} has no pact version, so it cannot name clauses.")
    if confidence not in dict(CONFIDENCE_CHOICES):
        problems.append("Choose a confidence: known, likely or potential.")
    if harm_category and harm_category not in dict(HARM_CHOICES):
        problems.append("The harm category must be one of: " + ", ".join(dict(HARM_CHOICES)) + ".")
    for extra in secondary:
        if extra not in ASSUMPTION_BY_KEY:
            problems.append(f"'{extra}' is not an assumption class.")
        elif extra == assumption:
            problems.append(f"'{extra}' is the primary class; secondary classes are others.")
    return problems


def classification_data(
    assumption: str,
    statement: str,
    clauses: list,
    confidence: str,
    harm_category: str,
    secondary: list[str],
) -> dict[str, Any]:
    """The data of a `classified` (or `reclassified`) event."""
    data: dict[str, Any] = {
        "assumption": assumption,
        "statement": statement,
        "clauses": [c.key for c in clauses],
        "confidence": confidence,
    }
    if harm_category:
        data["harm_category"] = harm_category
    if secondary:
        data["secondary"] = secondary
    return data


def apply_classification(inc: Incident, event: Event, clauses: list) -> None:
    """Fold a `classified` or `reclassified` event into a locked incident (through `advance`,
    like every event) and link its clauses; the latest class is the incident's class, and
    recurrence is judged by it."""
    if clauses:
        inc.clauses.add(*clauses)
    fields = advance(inc, event)
    inc.recurrence_of = find_recurrence_of(inc, inc.assumption)
    _save(inc, ["recurrence_of", *fields])


def record_repair(
    incident: Incident,
    *,
    by: AbstractBaseUser | None,
    expected_version: int | None,
    summary: str,
    reference: str,
    at: datetime | None = None,
    override: bool = False,
    justification: str = "",
) -> Event:
    """Repair: the technical fix, with a reference someone can follow. classified -> repaired.

    While a report that forbids altering the system first (EU AI Act Article 73(6)) is unfiled,
    repair is refused unless an incident manager overrides with a justification; the event then
    carries `override: true` and the justification (counted as `repair_overrides` in metrics).
    """
    authorize(by, "work_incidents", "record a repair", GateError)
    from trustdesk.incidents.obligations import repair_blockers

    summary = (summary or "").strip()
    reference = (reference or "").strip()
    justification = (justification or "").strip()
    with locked_incident(incident, expected_version=expected_version) as inc:
        problems: list[str] = []
        if msg := _wrong_state(inc, "recording the repair", [State.CLASSIFIED]):
            problems.append(msg)
        if not summary:
            problems.append("Summarize the fix: what was changed so that this cannot happen again.")
        if not reference:
            problems.append("Give a reference for the fix (a ticket, commit or change request).")
        blockers = repair_blockers(inc)
        if blockers and not override:
            problems.extend(
                f"The {b.title} is not filed yet (due {b.deadline:%Y-%m-%d %H:%M} UTC): the "
                "system may not be altered before the authority is informed (Article 73(6)). "
                "File the report first, or an incident manager may override with a justification."
                for b in blockers
            )
        elif blockers:
            if not can(by, "override"):
                problems.append("Only an incident manager may repair before the report is filed.")
            if not justification:
                problems.append(
                    "An override needs a written justification: why alter the system before "
                    "the authority is informed."
                )
        at = step_time(inc, at, problems)
        _refuse(problems)
        data: dict[str, Any] = {"summary": summary, "reference": reference}
        if blockers:
            data.update(override=True, justification=justification)
        event = append_event(inc, type=EventType.REPAIRED, by=by, data=data, at=at)
        _save(inc, advance(inc, event))
        schedule_metrics_refresh(inc)
    _sync(incident, inc)
    return event


def add_note(
    incident: Incident,
    *,
    by: AbstractBaseUser | None,
    text: str,
    internal: bool = True,
    at: datetime | None = None,
) -> Event:
    """A note on the timeline, in any state. Internal notes never reach the buyer view."""
    authorize(by, "work_incidents", "add a note", GateError)
    text = (text or "").strip()
    with locked_incident(incident) as inc:
        problems: list[str] = []
        if not text:
            problems.append("A note needs some text.")
        at = step_time(inc, at, problems)
        _refuse(problems)
        event = append_event(
            inc, type=EventType.NOTE, by=by, data={"text": text, "internal": bool(internal)}, at=at
        )
        schedule_metrics_refresh(inc)
    _sync(incident, inc)
    return event


def open_classification_dispute(incident: Incident, *, by: AbstractBaseUser, reason: str):
    """Challenge an incident's classification. Needs a classified incident and no open dispute
    of its classification."""
    authorize(by, "open_dispute", "dispute a classification", GateError)
    reason = (reason or "").strip()
    with locked_incident(incident) as inc:
        problems: list[str] = []
        if inc.classified_at is None:
            problems.append(
                f"{inc.key} is not classified yet, so its classification cannot be disputed."
            )
        if not reason:
            problems.append("Say why the classification is wrong.")
        if by is None:
            problems.append("A dispute needs the person who opens it.")
        existing = Dispute.objects.filter(incident=inc, status=DisputeStatus.OPEN).first()
        if existing is not None:
            problems.append(
                f"The classification of {inc.key} is already disputed (dispute #{existing.pk}, "
                f"opened {existing.opened_at:%Y-%m-%d}); resolve it first."
            )
        _refuse(problems)
        now = timezone.now()
        dispute = Dispute.objects.create(incident=inc, reason=reason, opened_by=by, opened_at=now)
        append_event(
            inc,
            type=EventType.DISPUTE_OPENED,
            by=by,
            data={"dispute": dispute.pk, "reason": reason},
            at=now,
        )
        schedule_metrics_refresh(inc)
    _sync(incident, inc)
    return dispute


def resolve_classification_dispute(dispute, *, by: AbstractBaseUser, status: str, resolution: str):
    """Uphold or reject a classification dispute, with a resolution others can read.
    (Who may resolve, risk, is enforced by the views.)"""
    authorize(by, "resolve_dispute", "resolve a dispute", GateError)
    resolution = (resolution or "").strip()
    if dispute.incident_id is None:
        raise GateError("This dispute is about an evaluation, not an incident's classification.")
    with locked_incident(dispute.incident_id) as inc:
        current = Dispute.objects.select_for_update().get(pk=dispute.pk)
        problems: list[str] = []
        if current.status != DisputeStatus.OPEN:
            problems.append(
                f"Dispute #{current.pk} was already {current.status}"
                + (f" by {current.resolved_by.get_username()}" if current.resolved_by else "")
                + "."
            )
        if status not in DISPUTE_RESOLUTIONS:
            problems.append("Resolve a dispute as upheld or rejected.")
        if not resolution:
            problems.append("Write the resolution: why the dispute is upheld or rejected.")
        if by is None:
            problems.append("A resolution needs the person who decides it.")
        _refuse(problems)
        now = timezone.now()
        Dispute.objects.filter(pk=current.pk).update(
            status=status, resolution=resolution, resolved_by=by, resolved_at=now
        )
        append_event(
            inc,
            type=EventType.DISPUTE_RESOLVED,
            by=by,
            data={"dispute": current.pk, "status": status, "resolution": resolution},
            at=now,
        )
        schedule_metrics_refresh(inc)
    dispute.status, dispute.resolution, dispute.resolved_by, dispute.resolved_at = (
        status,
        resolution,
        by,
        now,
    )
    assert isinstance(dispute, Dispute)
    return dispute


def _sync(target: Incident, fresh: Incident) -> None:
    """Copy the locked copy's fields onto the caller's instance, so it is not left stale."""
    if target is fresh or not isinstance(target, Incident):
        return
    for field in Incident._meta.concrete_fields:
        setattr(target, field.attname, getattr(fresh, field.attname))
    target.agent = fresh.agent  # the locked copy holds the agent's new scope


# ---------------------------------------------------------------- gates, for the page and reviews


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


# ---------------------------------------------------------------- breach -> incident


def _breach_severity(on_breach: str) -> str:
    return "sev2" if on_breach == Consequence.SUSPEND else "sev3"


def open_incident_for_breach(evaluation, *, by: AbstractBaseUser | None = None) -> Incident | None:
    """A failing evaluation of a `restrict` or `suspend` clause opens an incident detected at the
    evaluation's time, or attaches a note to the open incident of the same agent and clause.

    Idempotent: an evaluation already handled does nothing and returns its incident. Returns None
    when the evaluation is not a breach that calls for an incident (it passed, it is voided, or
    its clause only flags).
    """
    from trustdesk.incidents.eval_evidence import attach_evaluation_log

    clause = evaluation.clause
    if evaluation.passed or evaluation.voided_at is not None:
        return None
    if clause.on_breach not in (Consequence.RESTRICT, Consequence.SUSPEND):
        return None
    version = clause.version
    agent = version.pact.agent
    with transaction.atomic():
        # Lock order: evaluation, then pact, then (inside the steps) incident, then agent. The
        # evaluation lock makes a duplicate message a no-op; the pact lock serializes breaches of
        # one pact, so two failing evaluations of a clause never open two incidents. NO KEY
        # UPDATE, because inserting rows that point at these (links, incidents) takes KEY SHARE.
        Evaluation.objects.select_for_update(no_key=True).filter(pk=evaluation.pk).first()
        Pact.objects.select_for_update(no_key=True).filter(pk=version.pact_id).first()
        existing = (
            BreachLink.objects.filter(evaluation=evaluation).select_related("incident").first()
        )
        if existing is not None:
            return existing.incident
        measured = evaluation.measured_at
        summary = (
            f"Evaluation from {evaluation.source} measured {clause.metric} = {evaluation.value} "
            f"at {measured.isoformat()}; the objective is {clause.op} {clause.target} "
            f"(window {clause.window})."
        )
        open_one = (
            Incident.objects.open()
            .filter(agent=agent, clauses__key=clause.key, clauses__version__pact_id=version.pact_id)
            .order_by("-detected_at", "-number")
            .first()
        )
        if open_one is None:
            title = f"Breach of {version.pact.key}#{clause.key}: {clause.statement}"
            incident = open_incident(
                agent=agent,
                by=by,
                title=title[:300],
                severity=_breach_severity(clause.on_breach),
                detected_at=min(measured, timezone.now()),
                pact_version=version,
                clauses=[clause],
                summary=summary,
            )
            BreachLink.objects.create(
                evaluation=evaluation, incident=incident, opened_incident=True
            )
            attach_evaluation_log(incident, evaluation, by=by)  # the log file, when one measured it
            _contain_automatically(incident, clause, evaluation)
            return incident
        with locked_incident(open_one) as inc:
            last_at = (
                Event.objects.filter(incident=inc)
                .order_by("-seq")
                .values_list("at", flat=True)
                .first()
            )
            event = append_event(
                inc,
                type=EventType.NOTE,
                by=by,
                data={
                    "text": f"Another failing evaluation of {clause.key}. {summary}",
                    "internal": True,
                },
                at=max(timezone.now(), last_at) if last_at else None,
            )
            BreachLink.objects.create(evaluation=evaluation, incident=inc, event=event)
            schedule_metrics_refresh(inc)
            attach_evaluation_log(inc, evaluation, by=by)
        _contain_automatically(inc, clause, evaluation)
        return inc


def _contain_automatically(incident: Incident, clause, evaluation) -> None:
    """A breach of a `contain: auto` clause contains its (still detected) incident at once, by
    the system (`by: null`), in the breach's transaction, with a reason naming the evaluation
    (docs/design.md section 12). An agent already held stricter keeps that scope: containment
    never widens it."""
    from trustdesk.pacts.models import Containment

    if clause.contain != Containment.AUTO:
        return
    inc = Incident.objects.select_related("agent").get(pk=incident.pk)
    if inc.state != State.DETECTED:
        return
    prescribed = ACTION_SCOPE[clause.on_breach]
    agent_scope = type(inc.agent).objects.values_list("scope", flat=True).get(pk=inc.agent_id)
    scope = max(prescribed, agent_scope, key=SCOPE_RANK.__getitem__)
    action = {Scope.RESTRICTED: ContainmentAction.RESTRICT}.get(scope, ContainmentAction.SUSPEND)
    reason = (
        f"Automatic containment (clause {clause.key} says contain: auto): evaluation "
        f"#{evaluation.pk} from {evaluation.source} ({evaluation.external_id}) measured "
        f"{clause.metric} = {format(evaluation.value.normalize(), 'f')}, objective "
        f"{clause.op} {format(clause.target.normalize(), 'f')}."
    )
    if scope != prescribed:
        reason += f" The clause prescribes {clause.on_breach}; the agent is already {scope}."
    contain_incident(
        inc, by=None, expected_version=None, action=action, scope_after=scope, reason=reason
    )
    incident.refresh_from_db()


def proposed_containment(incident: Incident) -> dict | None:
    """The containment the pact prescribes for a detected incident, ready for contain_incident:
    {"action", "scope_after", "reason"}; the strictest of its clauses' consequences. None when the
    incident is past detection or no clause prescribes restrict or suspend."""
    if incident.state != State.DETECTED:
        return None
    clauses = [
        c
        for c in incident.clauses.all()
        if c.on_breach in (Consequence.RESTRICT, Consequence.SUSPEND)
    ]
    if not clauses:
        return None
    strictest = max(clauses, key=lambda c: c.on_breach == Consequence.SUSPEND)
    action = strictest.on_breach
    return {
        "action": action,
        "scope_after": ACTION_SCOPE[action],
        "reason": f"Clause {strictest.key} prescribes '{action}' on breach.",
    }

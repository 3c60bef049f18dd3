"""Every step of an incident's lifecycle, one function each (docs/design.md section 2).

Each step follows one pattern, built from the journal primitives (`journal`): lock the incident
row and check the version the user saw, check the gate and collect every problem, append to the
chain, update the columns through the transition table, schedule side effects on commit. The gate
read model is in `gates`, breach handling in `breach`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from trustdesk.core.errors import Refused
from trustdesk.core.roles import authorize, can
from trustdesk.incidents import evidence as store
from trustdesk.incidents.errors import GateError
from trustdesk.incidents.gates import (
    STEP_LABELS,
    current_step,
    evidence_completeness,
    evidence_events,
    present_evidence_kinds,
)
from trustdesk.incidents.journal import (
    append_event,
    append_step,
    incident_step,
    save_fields,
    set_agent_scope,
    step_time,
)
from trustdesk.incidents.models import (
    ContainmentAction,
    Event,
    EventType,
    Evidence,
    EvidenceContent,
    Incident,
    State,
)
from trustdesk.incidents.transitions import advance
from trustdesk.pacts.models import SCOPE_RANK, Dispute, DisputeStatus, EvidenceKind, Scope
from trustdesk.taxonomy import ASSUMPTION_BY_KEY, CONFIDENCE_CHOICES, HARM_CHOICES

# ---------------------------------------------------------------- shared rules of the steps

# Actions whose scope is implied by their name.
ACTION_SCOPE = {
    ContainmentAction.RESTRICT: Scope.RESTRICTED,
    ContainmentAction.SUSPEND: Scope.SUSPENDED,
}
RECURRENCE_WINDOW = timedelta(days=90)
DISPUTE_RESOLUTIONS = ("upheld", "rejected")


def _state_label(state: str) -> str:
    return State(state).label.lower() if state in State.values else state


def _wrong_state(incident: Incident, verb: str, required: Iterable[str]) -> list[str]:
    """The problems of a step so far: one sentence when the incident is not in a state the step
    accepts, else none."""
    required = list(required)
    if incident.state in required:
        return []
    needed = " or ".join(_state_label(s) for s in required)
    step = current_step(incident)
    nxt = f" Its next step is: {STEP_LABELS[step].lower()}." if step != "done" else ""
    return [
        f"{incident.key} is {_state_label(incident.state)}; {verb} needs it to be {needed}.{nxt}"
    ]


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
    with incident_step(incident, expected_version=expected_version) as inc:
        problems = _wrong_state(inc, "containment", [State.DETECTED])
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
        data: dict[str, Any] = {"action": action, "scope_after": scope_after}
        if reason:
            data["reason"] = reason
        event = append_step(inc, problems, type=EventType.CONTAINED, by=by, data=data, at=at)
        if action != ContainmentAction.NO_SCOPE_CHANGE and scope_after != agent.scope:
            label = ContainmentAction(action).label.lower()
            set_agent_scope(
                agent,
                scope=scope_after,
                reason=f"{label.capitalize()} to contain {inc.key}"
                + (f": {reason}" if reason else "."),
                incident=inc,
                at=event.at,
            )
        save_fields(inc, advance(inc, event))
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
        with incident_step(incident, expected_version=expected_version) as inc:
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
            GateError.raise_if(problems)
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
    except GateError:
        if blob is not None and blob.created:
            store.discard(blob)
        raise
    return item


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
    with incident_step(incident, expected_version=expected_version) as inc:
        problems = _wrong_state(inc, "marking evidence preserved", [State.CONTAINED])
        version = inc.pact_version
        required = list(version.evidence_required) if version else []
        label = version.label if version else "the pact"
        present = present_evidence_kinds(evidence_events(inc))
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
        data = {"acknowledged_gaps": gaps, "reason": reason}
        event = append_step(
            inc, problems, type=EventType.EVIDENCE_PRESERVED, by=by, data=data, at=at
        )
        inc.evidence_completeness = evidence_completeness(required, present)
        save_fields(inc, ["evidence_completeness", *advance(inc, event)])
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
    proposed = Classification(assumption, statement, clauses, confidence, harm_category, secondary)
    with incident_step(incident, expected_version=expected_version) as inc:
        problems = _wrong_state(inc, "classification", [State.EVIDENCE_PRESERVED])
        return proposed.append(inc, problems, type=EventType.CLASSIFIED, by=by, at=at)


@dataclass
class Classification:
    """What a `classified` or `reclassified` event says (classify and reclassify check, record
    and fold it the same way)."""

    assumption: str
    statement: str
    clauses: Iterable[Any]
    confidence: str
    harm_category: str = ""
    secondary: Iterable[str] = ()

    def __post_init__(self) -> None:
        # As a form or the API gives it, tidied: blank text stripped, secondary classes once each.
        self.statement = (self.statement or "").strip()
        self.clauses = list(self.clauses or ())
        self.harm_category = self.harm_category or ""
        self.secondary = list(dict.fromkeys(self.secondary or ()))

    def problems(self, inc: Incident) -> list[str]:
        """What is wrong with this classification of `inc`."""
        problems: list[str] = []
        if self.assumption not in ASSUMPTION_BY_KEY:
            problems.append("Choose the broken assumption class from the taxonomy.")
        if not self.statement:
            problems.append(
                "State plainly what broke, in a sentence someone outside the team can follow."
            )
        if inc.pact_version_id is not None:
            if not self.clauses:
                problems.append(
                    f"Link the clause(s) of {inc.pact_version.label} that this incident breaks."
                )
            for clause in self.clauses:
                if getattr(clause, "version_id", None) != inc.pact_version_id:
                    problems.append(
                        f"Clause '{getattr(clause, 'key', clause)}' is not part of "
                        f"{inc.pact_version.label}."
                    )
        elif self.clauses:
            problems.append(f"{inc.key} has no pact version, so it cannot name clauses.")
        if self.confidence not in dict(CONFIDENCE_CHOICES):
            problems.append("Choose a confidence: known, likely or potential.")
        if self.harm_category and self.harm_category not in dict(HARM_CHOICES):
            problems.append(
                "The harm category must be one of: " + ", ".join(dict(HARM_CHOICES)) + "."
            )
        for extra in self.secondary:
            if extra not in ASSUMPTION_BY_KEY:
                problems.append(f"'{extra}' is not an assumption class.")
            elif extra == self.assumption:
                problems.append(f"'{extra}' is the primary class; secondary classes are others.")
        return problems

    def data(self) -> dict[str, Any]:
        """The data of its event."""
        data: dict[str, Any] = {
            "assumption": self.assumption,
            "statement": self.statement,
            "clauses": [c.key for c in self.clauses],
            "confidence": self.confidence,
        }
        if self.harm_category:
            data["harm_category"] = self.harm_category
        if self.secondary:
            data["secondary"] = self.secondary
        return data

    def append(
        self,
        inc: Incident,
        problems: list[str],
        *,
        type: str,
        by: AbstractBaseUser | None,
        at: datetime | None,
    ) -> Event:
        """Refuse it with `problems` and its own, or append its event to the locked `inc`, fold
        the event into the columns (through `advance`, like every event) and link its clauses.
        The latest class is the incident's class, and recurrence is judged by it."""
        problems += self.problems(inc)
        at = step_time(inc, at, problems)
        GateError.raise_if(problems)  # its data names the clauses, so only once they are known
        event = append_event(inc, type=type, by=by, data=self.data(), at=at)
        if self.clauses:
            inc.clauses.add(*self.clauses)
        fields = advance(inc, event)
        inc.recurrence_of = find_recurrence_of(inc, inc.assumption)
        save_fields(inc, ["recurrence_of", *fields])
        return event


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
    with incident_step(incident, expected_version=expected_version) as inc:
        problems = _wrong_state(inc, "recording the repair", [State.CLASSIFIED])
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
        data: dict[str, Any] = {"summary": summary, "reference": reference}
        if blockers:
            data.update(override=True, justification=justification)
        event = append_step(inc, problems, type=EventType.REPAIRED, by=by, data=data, at=at)
        save_fields(inc, advance(inc, event))
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
    with incident_step(incident, expected_version=None) as inc:
        problems = [] if text else ["A note needs some text."]
        data = {"text": text, "internal": bool(internal)}
        return append_step(inc, problems, type=EventType.NOTE, by=by, data=data, at=at)


def open_classification_dispute(incident: Incident, *, by: AbstractBaseUser, reason: str):
    """Challenge an incident's classification. Needs a classified incident and no open dispute
    of its classification."""
    authorize(by, "open_dispute", "dispute a classification", GateError)
    reason = (reason or "").strip()
    with incident_step(incident, expected_version=None) as inc:
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
        GateError.raise_if(problems)
        now = timezone.now()
        dispute = Dispute.objects.create(incident=inc, reason=reason, opened_by=by, opened_at=now)
        append_event(
            inc,
            type=EventType.DISPUTE_OPENED,
            by=by,
            data={"dispute": dispute.pk, "reason": reason},
            at=now,
        )
    return dispute


def resolve_classification_dispute(dispute, *, by: AbstractBaseUser, status: str, resolution: str):
    """Uphold or reject a classification dispute, with a resolution others can read.
    (Who may resolve, risk, is enforced by the views.)"""
    authorize(by, "resolve_dispute", "resolve a dispute", GateError)
    resolution = (resolution or "").strip()
    if dispute.incident_id is None:
        raise GateError("This dispute is about an evaluation, not an incident's classification.")
    with incident_step(dispute.incident_id, expected_version=None) as inc:
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
        GateError.raise_if(problems)
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
    dispute.status, dispute.resolution, dispute.resolved_by, dispute.resolved_at = (
        status,
        resolution,
        by,
        now,
    )
    assert isinstance(dispute, Dispute)
    return dispute

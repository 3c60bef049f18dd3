"""The journal primitives of an incident: what every step, in every app, is built from.

Lock the incident row and check the version the user saw (`locked_incident`; `incident_step`
also refreshes the metrics and the caller's copy when the step is done), date the step
(`step_time`), append to the hash chain (`append_event`; `append_step` first refuses the step
with every problem gathered), write the columns the transition table derived and announce a
state change (`save_fields`), schedule side effects on commit (`schedule_metrics_refresh`).
Also the one writer of an agent's scope (`set_agent_scope`) and opening an incident
(`open_incident`). The steps themselves are in `lifecycle`, the gate read model in `gates`, breach
handling in `breach` (docs/design.md section 2).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from trustdesk.core.bounds import EARLIEST_TIME, past_time_problem
from trustdesk.core.canonical import to_canonical_value
from trustdesk.core.effects import agent_changed, publish
from trustdesk.core.errors import Refused
from trustdesk.core.roles import authorize
from trustdesk.incidents import announce, tlog
from trustdesk.incidents.chain import canonical_event, event_hash
from trustdesk.incidents.errors import ConflictError, GateError
from trustdesk.incidents.models import Event, EventType, Incident
from trustdesk.incidents.transitions import advance
from trustdesk.pacts.models import SCOPE_RANK, Agent


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
            save_fields(inc, advance(inc, event))
            schedule_metrics_refresh(inc)


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


def append_step(
    incident: Incident,
    problems: list[str],
    *,
    type: str,
    by: AbstractBaseUser | None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
    error: type[Refused] = GateError,
) -> Event:
    """The end of a step's checks: date the step (`step_time`), refuse it with every problem
    gathered (as `error`, the app's Refused subclass), or append its event at that time.

    The caller holds the lock (inside `locked_incident`); the event's `at` is the step's time.
    """
    at = step_time(incident, at, problems)
    error.raise_if(problems)
    return append_event(incident, type=type, by=by, data=data, at=at)


@contextmanager
def incident_step(incident: Incident | int, *, expected_version: int | None) -> Iterator[Incident]:
    """`locked_incident` for a step of any app: when the block ends without a refusal, the
    agent's metrics refresh is scheduled and the caller's copy is brought up to date."""
    with locked_incident(incident, expected_version=expected_version) as inc:
        yield inc
        schedule_metrics_refresh(inc)
    sync_caller_copy(incident, inc)


def save_fields(incident: Incident, fields: list[str]) -> None:
    # append_event already wrote the chain head and version with an UPDATE; write only ours.
    if fields:
        incident.save(update_fields=sorted(set(fields)))
    if "state" in fields:
        # Every state transition of the lifecycle is saved here: the one place that announces it.
        announce.announce_state_change(incident)


def sync_caller_copy(target: Incident, fresh: Incident) -> None:
    """Copy the locked copy's fields onto the caller's instance, so it is not left stale."""
    if target is fresh or not isinstance(target, Incident):
        return
    for field in Incident._meta.concrete_fields:
        setattr(target, field.attname, getattr(fresh, field.attname))
    target.agent = fresh.agent  # the locked copy holds the agent's new scope

"""Every state change of an incident lives here, one function each (DESIGN.md section 2).

The primitives at the top (`locked_incident`, `append_event`) are what every step, here and in
`reviews.actions`, is built from: lock the incident row, check the version the user saw, check the
gate, append to the chain, update the denormalized fields, schedule side effects on commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from trustdesk.core.canonical import to_canonical_value
from trustdesk.incidents.chain import canonical_event, event_hash
from trustdesk.incidents.models import Event, Incident


class GateError(Exception):
    """A refused step. `problems` lists every unmet gate or bad input, in plain words."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class ConflictError(GateError):
    """Someone else changed the incident since the form was shown (optimistic lock)."""

    def __init__(self, incident: Incident, seen_version: int, changes: list[str]):
        self.incident = incident
        self.seen_version = seen_version
        self.changes = changes
        summary = ", ".join(changes) if changes else "another step"
        super().__init__(
            f"{incident.key} changed while you were working on it ({summary}). "
            "Review the current state; nothing you submitted was saved."
        )


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
    now = timezone.now()
    detected_at = detected_at or now
    if detected_at > now + timezone.timedelta(seconds=5):
        raise GateError("The detection time cannot be in the future.")
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
    return incident


def schedule_metrics_refresh(incident: Incident) -> None:
    """After commit, ask the workers to refresh the agent's metrics (debounced there)."""
    from trustdesk.metrics.tasks import schedule_agent_refresh

    agent_id = incident.agent_id
    transaction.on_commit(lambda: schedule_agent_refresh(agent_id))


def set_agent_scope(agent, *, scope: str, reason: str, incident: Incident | None, at: datetime):
    """The one place an agent's scope changes (containment, recovery decisions).

    The caller holds the incident lock, so the agent row is locked here too.
    """
    from trustdesk.pacts.models import Agent

    Agent.objects.select_for_update().filter(pk=agent.pk).update(
        scope=scope, scope_changed_at=at, scope_reason=reason, scope_incident=incident
    )
    agent.scope, agent.scope_changed_at, agent.scope_reason = scope, at, reason
    agent.scope_incident = incident

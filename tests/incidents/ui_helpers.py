"""Helpers for the incident page tests: bulk read data, role lists, and form posts.

`bulk_incidents` writes rows directly with bulk_create: the list and page tests only read, and
a thousand incidents of thirty events each must be created in seconds. The chains it writes are
real (hashes computed as the lifecycle computes them), so the page's chain badge can verify them,
and each incident's columns are the fold of its events (`transitions.fold`), as the importer
derives them, so the suite's column check holds them like any other incident.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import cycle

from django.db.models import Max
from django.utils import timezone

from tests.builders import fresh
from tests.factories import AgentFactory
from trustdesk.core.canonical import ZERO_HASH, to_canonical_value
from trustdesk.core.roles import INCIDENT_MANAGER, OPERATOR, RISK, VIEWER
from trustdesk.incidents.chain import canonical_event, event_hash
from trustdesk.incidents.models import STATE_ORDER, Event, Incident
from trustdesk.incidents.transitions import fold

ALL_ROLES = (OPERATOR, INCIDENT_MANAGER, RISK, VIEWER)
WORKERS = (OPERATOR, INCIDENT_MANAGER)
NOT_WORKERS = (RISK, VIEWER)
ASSUMPTIONS = ("authority", "tool_use", "capability", "data_handling")


def steps_to(state: str, assumption: str) -> list[tuple[str, dict]]:
    """The events after `detected` that bring an incident to `state`, with the data the steps
    write: what `bulk_incidents` chains, so that its columns can be folded from them."""
    if state == "closed_not_incident":
        reason = {"reason": "false_positive", "duplicate_of": None, "explanation": "A test."}
        return [("closed_not_incident", reason)]
    classified = {"assumption": assumption, "statement": "What broke.", "clauses": []}
    steps = [
        ("contained", {"action": "suspend", "scope_after": "suspended"}),
        ("evidence_preserved", {"acknowledged_gaps": [], "reason": ""}),
        ("classified", classified),
        ("repaired", {"summary": "Approval check enforced.", "reference": ""}),
        ("review_requested", {}),
    ]
    if state not in ("recovered", "closed_restricted"):
        return steps[: STATE_ORDER.index(state)]
    decision = "reopen_partial" if state == "recovered" else "keep_restricted"
    decided = {"decision": decision, "scope_after": "restricted", "rationale": "Because."}
    outcome = ("reopened", {"scope_after": "restricted"})
    if state == "closed_restricted":
        outcome = ("closed", {"outcome": decision})
    return [*steps, ("decision_recorded", {**decided, "override": False}), outcome]


def bulk_incidents(
    count: int,
    *,
    events_each: int = 30,
    agents=None,
    states=None,
    severities=("sev1", "sev2", "sev3", "sev4"),
    title: str = "Bulk incident",
    tamper_seq: int | None = None,
) -> list[Incident]:
    """`count` incidents, each with a valid chain of at least `events_each` events: detected,
    the steps to its state (`steps_to`), then notes.

    States, severities and agents cycle; classified-or-later incidents get an assumption class.
    `tamper_seq` writes that event's data differently from what was hashed (a broken link).
    """
    agents = agents or [AgentFactory() for _ in range(4)]
    states = states or STATE_ORDER
    start = (Incident.objects.aggregate(n=Max("number"))["n"] or 0) + 1
    now = timezone.now().replace(microsecond=0)
    incidents, chains = [], []
    for i, agent, state, severity in zip(
        range(count), cycle(agents), cycle(states), cycle(severities), strict=False
    ):
        number = start + i
        key = f"INC-{number}"
        detected = now - timedelta(days=1, minutes=i)
        steps = [("detected", {}), *steps_to(state, ASSUMPTIONS[i % len(ASSUMPTIONS)])]
        steps += [
            ("note", {"text": f"Note {seq} on {key}", "internal": seq % 2 == 0})
            for seq in range(len(steps) + 1, events_each + 1)
        ]
        prev, chain = ZERO_HASH, []
        for seq, (etype, raw) in enumerate(steps, start=1):
            data = to_canonical_value(raw)
            at = detected + timedelta(seconds=seq)
            canonical = canonical_event(
                incident_key=key, seq=seq, type=etype, at=at, by="bulk", data=data
            )
            digest = event_hash(prev, canonical)
            if seq == tamper_seq:
                data = {**data, "text": "edited after the fact"}
            chain.append(
                {
                    "seq": seq,
                    "type": etype,
                    "at": at,
                    "actor_name": "bulk",
                    "data": data,
                    "prev_hash": prev,
                    "hash": digest,
                    "canonical": canonical,
                }
            )
            prev = digest
        incident = Incident(
            number=number,
            key=key,
            agent=agent,
            title=f"{title} {number}",
            severity=severity,
            version=len(chain),
            event_count=len(chain),
            last_hash=prev,
        )
        fold(incident, chain)
        incidents.append(incident)
        chains.append(chain)
    created = Incident.objects.bulk_create(incidents, batch_size=500)
    Event.objects.bulk_create(
        (
            Event(incident=inc, **row)
            for inc, chain in zip(created, chains, strict=True)
            for row in chain
        ),
        batch_size=2000,
    )
    return created


def snapshot(incident: Incident) -> tuple:
    """What a refused request must leave untouched: the incident row, its log, its evidence."""
    inc = fresh(incident)
    return (
        inc.state,
        inc.version,
        inc.last_hash,
        inc.agent.scope,
        Event.objects.filter(incident=inc).count(),
        inc.evidence.count(),
        inc.disputes.count(),
    )


STEP_PATHS = {
    "contain": ("contain/", "contain"),
    "apply": ("apply-containment/", "apply"),
    "evidence": ("evidence/", "evidence"),
    "preserve": ("preserve/", "preserve"),
    "classify": ("classify/", "classify"),
    "repair": ("repair/", "repair"),
    "note": ("notes/", "note"),
    "dispute": ("disputes/", "dispute"),
}


def step_url(incident: Incident | str, step: str) -> str:
    key = incident if isinstance(incident, str) else incident.key
    return f"/incidents/{key}/{STEP_PATHS[step][0]}"


def post_step(
    client, incident: Incident, step: str, data: dict, *, htmx: bool = False, version=None
):
    """POST a step form as the page would: prefixed fields plus the version the page showed."""
    prefix = STEP_PATHS[step][1]
    payload = {f"{prefix}-{name}": value for name, value in data.items()}
    if step not in ("note", "dispute"):
        payload.setdefault(
            f"{prefix}-version", fresh(incident).version if version is None else version
        )
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(step_url(incident, step), payload, headers=headers)

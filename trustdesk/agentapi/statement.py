"""The scope statement of an agent (docs/design.md section 12): what its runtime may do, signed by
the instance.

`revision` is the agent's scope revision (incidents.journal.set_agent_scope bumps it at each
actual change), so `ETag: "r<revision>"` changes exactly when the statement's meaning does;
`issued_at` makes each body differ, which is fine: a client compares ETags, not bodies.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import CharField, StringAgg, Subquery, Value
from django.utils import timezone

from trustdesk.core.canonical import format_time
from trustdesk.incidents.models import Incident
from trustdesk.pacts.models import Agent, PactVersion


def etag(revision: int) -> str:
    return f'"r{revision}"'


def etag_matches(header: str, revision: int) -> bool:
    """Whether an If-None-Match header names this revision (weak or strong, or `*`)."""
    wanted = etag(revision)
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def _with_statement_parts(agent: Agent) -> Agent:
    """The agent with what its statement adds, in one query: the keys of the incidents holding
    it (comma-joined, by number) and the active pact version in force. With several active
    pacts the statement names the first by key (an agent usually has one; the read API has all)."""
    ordered = (
        connection.features.supports_aggregate_order_by_clause
    )  # not SQLite: a query of its own
    holding = (
        Incident.objects.holding(agent)
        .order_by()
        .values("agent")
        .annotate(keys=StringAgg("key", Value(","), order_by="number"))
        .values("keys")
    )
    active = PactVersion.objects.active().filter(pact__agent=agent).order_by("pact__key")
    return (
        Agent.objects.filter(pk=agent.pk)
        .annotate(
            holding_keys=Subquery(holding[:1])
            if ordered
            else Value(None, output_field=CharField()),
            pact_key=Subquery(active.values("pact__key")[:1]),
            pact_number=Subquery(active.values("number")[:1]),
            pact_sha256=Subquery(active.values("sha256")[:1]),
        )
        .get()
    )


def statement(agent: Agent, *, now: datetime | None = None) -> dict[str, Any]:
    """The statement as a dict, keys in the order of docs/design.md section 12."""
    agent = _with_statement_parts(agent)
    if agent.holding_keys is None and not connection.features.supports_aggregate_order_by_clause:
        keys = list(Incident.objects.holding(agent).values_list("key", flat=True))
    else:
        keys = agent.holding_keys.split(",") if agent.holding_keys else []
    return {
        "agent": agent.key,
        "scope": agent.scope,
        "revision": agent.revision,
        "since": format_time(agent.scope_changed_at or agent.created_at),
        "reason": agent.scope_reason,
        "holding_incidents": keys,
        "pact": (
            {"key": agent.pact_key, "version": agent.pact_number, "sha256": agent.pact_sha256}
            if agent.pact_key is not None
            else None
        ),
        "issued_at": format_time((now or timezone.now()).replace(microsecond=0)),
    }


def statement_bytes(agent: Agent, *, now: datetime | None = None) -> bytes:
    """The exact bytes served and signed: compact JSON, UTF-8."""
    body = statement(agent, now=now)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

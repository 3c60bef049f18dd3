"""The scope statement of an agent (docs/design.md section 12): what its runtime may do, signed by
the instance.

`revision` is the agent's scope revision (incidents.lifecycle.set_agent_scope bumps it at each
actual change), so `ETag: "r<revision>"` changes exactly when the statement's meaning does;
`issued_at` makes each body differ, which is fine: a client compares ETags, not bodies.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

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


def governing_pact(agent: Agent) -> PactVersion | None:
    """The active pact version in force for the agent: the first active one by pact key (an agent
    usually has one pact; with several, the statement names the first and a client that needs
    the others reads them from the read API)."""
    return (
        PactVersion.objects.active()
        .filter(pact__agent=agent)
        .select_related("pact")
        .order_by("pact__key")
        .first()
    )


def statement(agent: Agent, *, now: datetime | None = None) -> dict[str, Any]:
    """The statement as a dict, keys in the order of docs/design.md section 12."""
    holding = list(Incident.objects.holding(agent).values_list("key", flat=True))
    version = governing_pact(agent)
    return {
        "agent": agent.key,
        "scope": agent.scope,
        "revision": agent.revision,
        "since": format_time(agent.scope_changed_at or agent.created_at),
        "reason": agent.scope_reason,
        "holding_incidents": holding,
        "pact": (
            {"key": version.pact.key, "version": version.number, "sha256": version.sha256}
            if version is not None
            else None
        ),
        "issued_at": format_time((now or timezone.now()).replace(microsecond=0)),
    }


def statement_bytes(agent: Agent, *, now: datetime | None = None) -> bytes:
    """The exact bytes served and signed: compact JSON, UTF-8."""
    body = statement(agent, now=now)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

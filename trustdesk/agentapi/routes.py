"""The scope statement and the read API, on the one TrustDesk NinjaAPI (docs/design.md section 12).

Every route declares each answer it gives (200, 304, 400, 401, 403, 404) so the OpenAPI document
is complete; every error is JSON `{"detail", "errors": [{"path", "message"}]}`, never HTML.
Tokens: `read` reads everything here; `agent:KEY` reads that agent's scope statement only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from django.db.models import Prefetch, Subquery
from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status

from trustdesk.agentapi import signing
from trustdesk.agentapi.statement import etag, etag_matches, statement_bytes
from trustdesk.core.canonical import format_time, sha256_hex
from trustdesk.incidents.models import Event, Incident, Severity, State
from trustdesk.pacts.api import ErrorOut, api, forbidden, unauthorized
from trustdesk.pacts.models import SCOPE_READ, Agent, ApiToken, Pact, PactVersion, VersionStatus

router = Router(tags=["read"])
MAX_PAGE = 200
DEFAULT_PAGE = 50
# A date or an ISO 8601 time, as `manage.py metrics` takes them.
WHEN_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?$"
)
WHEN_WORDS = "use YYYY-MM-DD (midnight UTC) or an ISO 8601 time"


def _when(raw: str) -> datetime | None:
    """The command's parse_when (a date is midnight UTC; no offset means UTC), or None."""
    from django.core.management.base import CommandError

    from trustdesk.metrics.management.commands.metrics import parse_when

    try:
        return parse_when(raw, option="")
    except (CommandError, ValueError, OverflowError):
        return None


def register() -> None:
    """Attach the routes to the API once (AgentApiConfig.ready)."""
    if router not in [r for _prefix, r in api._routers]:
        api.add_router("", router)


def _error(status: int, detail: str, path: str = "", message: str = "") -> Status:
    errors = [{"path": path, "message": message or detail}] if (path or message) else []
    return Status(status, {"detail": detail, "errors": errors})


def _reads(path: str, out: Any, *, errors: dict[int, Any] | None = None, **options):
    """A GET route for tokens with the scope `read`: any other token gets 403 (and no token 401,
    from the API's authentication). Declares those two answers after `out` and `errors`."""

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)  # ninja reads the parameters and the operation id through the wrapper
        def guarded(request: HttpRequest, *args, **kwargs):
            if not request.auth.has_scope(SCOPE_READ):
                return forbidden(SCOPE_READ)
            return view(request, *args, **kwargs)

        response = {200: out, **(errors or {}), 401: ErrorOut, 403: ErrorOut}
        return router.get(path, response=response, **options)(guarded)

    return register


# ---------------------------------------------------------------- the scope statement


class PactRef(Schema):
    key: str
    version: int
    sha256: str


class ScopeStatementOut(Schema):
    agent: str
    scope: str = Field(description="full, restricted or suspended. Act only on full.")
    revision: int = Field(description="Grows by exactly one at each scope change; starts at 1.")
    since: str = Field(description="When the scope last changed (UTC, ISO 8601 with Z).")
    reason: str
    holding_incidents: list[str] = Field(
        description="Keys of the open incidents whose containment holds the agent."
    )
    pact: PactRef | None
    issued_at: str = Field(description="When this statement was made (UTC, ISO 8601 with Z).")


def _bearer(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


@router.get(
    "/agents/{key}/scope",
    auth=None,  # checked in the view, in the same query as the agent's revision (see below)
    response={200: ScopeStatementOut, 304: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="The agent's scope statement, signed (Signature-Ed25519) and cacheable (ETag)",
    description=(
        "For the agent's runtime: act only while `scope` is `full`. Token scope `read` or "
        '`agent:{key}`. `ETag` is `"r<revision>"`; send it back as `If-None-Match` to get '
        "304 with no body until the scope changes. `Signature-Ed25519` is the base64 Ed25519 "
        "signature of the exact body bytes with the instance key published at "
        "/.well-known/trustdesk-keys.json. 401 without a valid token, 403 when the token may not "
        "read this agent, 404 for an unknown agent."
    ),
    openapi_extra={"security": [{"BearerToken": []}]},
)
def agent_scope(request: HttpRequest, key: str):
    secret = _bearer(request)
    digest = sha256_hex(secret.encode("utf-8", "surrogatepass")) if secret else ""
    # One query for the agent and the token's scopes together: a 304 costs exactly that.
    live_token = ApiToken.objects.live().filter(token_hash=digest)
    agent = (
        Agent.objects.filter(key=key)
        .annotate(token_scopes=Subquery(live_token.values("scopes")[:1]))
        .first()
        if secret and len(secret) <= 500
        else None
    )
    if agent is None:  # no such agent, or no usable token: tell which without leaking agents
        token = ApiToken.objects.for_secret(secret) if secret and len(secret) <= 500 else None
        if token is None:
            return unauthorized(request)
        if not token.may_read_agent(key):
            return _forbidden_agent(key)
        return _error(404, f"No agent '{key}'.", "key", f"no agent '{key}'")
    if agent.token_scopes is None:
        return unauthorized(request)
    if not ApiToken(scopes=agent.token_scopes).may_read_agent(key):
        return _forbidden_agent(key)
    match = request.headers.get("If-None-Match")
    if match and etag_matches(match, agent.revision):
        response = HttpResponse(status=304)
        response["ETag"] = etag(agent.revision)
        response["Cache-Control"] = "no-cache"
        return response
    body = statement_bytes(agent)
    response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag(agent.revision)
    response["Cache-Control"] = "no-cache"
    response["Signature-Ed25519"] = signing.signature_header(body)
    return response


def _forbidden_agent(key: str) -> Status:
    return _error(
        403,
        f"This token may not read the scope statement of '{key}'; nothing was done.",
        "(token)",
        f"needs the scope read or agent:{key}",
    )


# ---------------------------------------------------------------- agents


class AgentOut(Schema):
    key: str
    name: str
    owner: str
    description: str
    scope: str
    revision: int
    scope_since: str
    scope_reason: str
    trust_score: str | None = Field(description="0 to 100 as a decimal string, or null.")
    retired_at: str | None


class AgentsOut(Schema):
    agents: list[AgentOut]


def _agent_out(a: Agent) -> dict[str, Any]:
    return {
        "key": a.key,
        "name": a.name,
        "owner": a.owner,
        "description": a.description,
        "scope": a.scope,
        "revision": a.revision,
        "scope_since": format_time(a.scope_changed_at or a.created_at),
        "scope_reason": a.scope_reason,
        "trust_score": None if a.trust_score is None else format(a.trust_score, "f"),
        "retired_at": format_time(a.retired_at) if a.retired_at else None,
    }


@_reads(
    "/agents",
    AgentsOut,
    summary="Every agent with its scope (token scope read)",
)
def list_agents(request: HttpRequest):
    return {"agents": [_agent_out(a) for a in Agent.objects.order_by("key")]}


@_reads(
    "/agents/{key}",
    AgentOut,
    errors={404: ErrorOut},
    summary="One agent (token scope read)",
)
def get_agent(request: HttpRequest, key: str):
    agent = Agent.objects.filter(key=key).first()
    if agent is None:
        return _error(404, f"No agent '{key}'.", "key", f"no agent '{key}'")
    return _agent_out(agent)


# ---------------------------------------------------------------- pacts


class PactVersionOut(Schema):
    number: int
    status: str
    sha256: str
    document_url: str


class PactOut(Schema):
    key: str
    agent: str
    title: str
    active_version: int | None
    versions: list[PactVersionOut]


class PactsOut(Schema):
    pacts: list[PactOut]


@_reads(
    "/pacts",
    PactsOut,
    summary="Every pact with its versions and their SHA-256 (token scope read)",
)
def list_pacts(request: HttpRequest):
    pacts = Pact.objects.select_related("agent").prefetch_related(
        Prefetch("versions", queryset=PactVersion.objects.order_by("number"))
    )
    out = []
    for p in pacts.order_by("key"):
        versions = list(p.versions.all())
        active = next((v.number for v in versions if v.status == VersionStatus.ACTIVE), None)
        out.append(
            {
                "key": p.key,
                "agent": p.agent.key,
                "title": p.title,
                "active_version": active,
                "versions": [
                    {
                        "number": v.number,
                        "status": v.status,
                        "sha256": v.sha256,
                        "document_url": f"/api/v1/pacts/{p.key}?version={v.number}",
                    }
                    for v in versions
                ],
            }
        )
    return {"pacts": out}


class PactQuery(Schema):
    version: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="A version number; default the active one."
    )


@_reads(
    "/pacts/{key}",
    dict[str, Any],
    errors={404: ErrorOut, 400: ErrorOut},
    summary="A pact version's canonical document (token scope read)",
    description=(
        "The body is the version's canonical text, byte for byte: its SHA-256 is the version's "
        "hash. Without `version`, the active version, else the latest."
    ),
)
def get_pact(request: HttpRequest, key: str, query: Query[PactQuery]):
    versions = PactVersion.objects.filter(pact__key=key)
    if query.version is not None:
        version = versions.filter(number=query.version).first()
        if version is None:
            return _error(
                404, f"No version {query.version} of pact '{key}'.", "version", "no such version"
            )
    else:
        version = (
            versions.filter(status=VersionStatus.ACTIVE).first()
            or versions.order_by("-number").first()
        )
        if version is None:
            return _error(404, f"No pact '{key}'.", "key", f"no pact '{key}'")
    return HttpResponse(version.canonical.encode("utf-8"), content_type="application/json")


# ---------------------------------------------------------------- incidents


class EventOut(Schema):
    seq: int
    type: str
    at: str
    by: str | None
    data: dict[str, Any]
    hash: str


class IncidentOut(Schema):
    key: str
    agent: str
    title: str
    severity: str
    state: str
    pact: str | None
    pact_version: int | None
    detected_at: str
    contained_at: str | None
    reopened_at: str | None
    closed_at: str | None
    url: str = Field(description="The incident's page.")
    events: list[EventOut]


class IncidentsOut(Schema):
    incidents: list[IncidentOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class IncidentQuery(Schema):
    agent: str | None = Field(default=None, max_length=80, description="An agent key.")
    state: State | None = None
    severity: Severity | None = None
    since: str | None = Field(
        default=None,
        pattern=WHEN_PATTERN,
        description="Incidents detected at or after: YYYY-MM-DD (midnight UTC) or ISO 8601.",
    )
    cursor: str | None = Field(
        default=None,
        pattern=r"^n[1-9][0-9]{0,11}$",
        description="The `next_cursor` of the previous page.",
    )
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)


def _time(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


def _incident_out(inc: Incident) -> dict[str, Any]:
    version = inc.pact_version
    return {
        "key": inc.key,
        "agent": inc.agent.key,
        "title": inc.title,
        "severity": inc.severity,
        "state": inc.state,
        "pact": version.pact.key if version else None,
        "pact_version": version.number if version else None,
        "detected_at": format_time(inc.detected_at),
        "contained_at": _time(inc.contained_at),
        "reopened_at": _time(inc.reopened_at),
        "closed_at": _time(inc.closed_at),
        "url": f"/incidents/{inc.key}/",
        "events": [
            {
                "seq": e.seq,
                "type": e.type,
                "at": format_time(e.at),
                "by": e.actor_name or None,
                "data": e.data,
                "hash": e.hash,
            }
            for e in inc.events.all()
        ],
    }


def _incidents():
    return Incident.objects.select_related("agent", "pact_version__pact").prefetch_related(
        Prefetch("events", queryset=Event.objects.order_by("seq"))
    )


def _encode_cursor(number: int) -> str:
    """Pages go by descending incident number: the cursor names the last one seen."""
    return f"n{number}"


@_reads(
    "/incidents",
    IncidentsOut,
    errors={400: ErrorOut},
    summary="Incidents with their events, newest first, a page at a time (token scope read)",
    description=(
        "Filters: `agent` (key), `state`, `severity`, `since` (detected at or after). Pages of "
        f"`limit` (1 to {MAX_PAGE}, default {DEFAULT_PAGE}) incidents by descending number; "
        "`next_cursor` fetches the next page. Three queries per page."
    ),
)
def list_incidents(request: HttpRequest, query: Query[IncidentQuery]):
    qs = _incidents()
    if query.agent:
        qs = qs.filter(agent__key=query.agent)
    if query.state:
        qs = qs.filter(state=query.state)
    if query.severity:
        qs = qs.filter(severity=query.severity)
    if query.since:
        since = _when(query.since)
        if since is None:
            return _error(400, "The request is not valid.", "since", WHEN_WORDS)
        qs = qs.filter(detected_at__gte=since)
    if query.cursor:
        qs = qs.filter(number__lt=int(query.cursor[1:]))
    page = list(qs.order_by("-number")[: query.limit + 1])
    more = len(page) > query.limit
    page = page[: query.limit]
    return {
        "incidents": [_incident_out(i) for i in page],
        "next_cursor": _encode_cursor(page[-1].number) if more and page else None,
    }


@_reads(
    "/incidents/{key}",
    IncidentOut,
    errors={404: ErrorOut},
    summary="One incident with its events (token scope read)",
)
def get_incident(request: HttpRequest, key: str):
    incident = _incidents().filter(key=key).first()
    if incident is None:
        return _error(404, f"No incident '{key}'.", "key", f"no incident '{key}'")
    return _incident_out(incident)


# ---------------------------------------------------------------- metrics


class MetricsQuery(Schema):
    from_: str | None = Field(
        default=None,
        alias="from",
        pattern=WHEN_PATTERN,
        description="Inclusive: YYYY-MM-DD (midnight UTC) or an ISO 8601 time.",
    )
    to: str | None = Field(default=None, pattern=WHEN_PATTERN, description="Exclusive; same forms.")
    agent: str | None = Field(default=None, max_length=80, description="An agent key.")


@_reads(
    "/metrics",
    dict[str, Any],
    errors={400: ErrorOut, 404: ErrorOut},
    summary="The section 6 metrics, as `manage.py metrics --json` prints them (token scope read)",
    description=(
        "Same parameters as the command (`from` inclusive, `to` exclusive, `agent`), computed by "
        "the same code as the workers."
    ),
)
def get_metrics(request: HttpRequest, query: Query[MetricsQuery]):
    from trustdesk.metrics.compute import compute_metrics

    bounds = {}
    for name, raw in (("from", query.from_), ("to", query.to)):
        if raw:
            bounds[name] = _when(raw)
            if bounds[name] is None:
                return _error(400, "The request is not valid.", name, WHEN_WORDS)
    start, end = bounds.get("from"), bounds.get("to")
    if start and end and start >= end:
        return _error(400, "The request is not valid.", "from", "must be earlier than to")
    agent = None
    if query.agent:
        agent = Agent.objects.filter(key=query.agent).first()
        if agent is None:
            return _error(404, f"No agent '{query.agent}'.", "agent", "no such agent")
    return compute_metrics(start=start, end=end, agent=agent)

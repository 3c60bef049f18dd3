"""`POST /api/v1/incidents/{key}/traces`: an OTLP JSON trace as the raw request body, attached as
evidence of kind `trace` (docs/design.md section 14). Registered on the one API object (pacts.api)
from the incidents app's ready(); the rules are lifecycle.add_evidence's, like the form and the
command.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Schema, Status

from trustdesk.core.errors import Refused
from trustdesk.incidents import lifecycle, traces
from trustdesk.incidents.evidence import human_size, safe_name
from trustdesk.incidents.models import Incident
from trustdesk.pacts.api import ErrorOut, api
from trustdesk.pacts.api_eval_logs import SCOPE, token_may_write_evaluations
from trustdesk.pacts.models import EvidenceKind


class TraceOut(Schema):
    incident: str
    evidence: int
    sha256: str
    size: int
    span_count: int
    error_count: int
    trace_count: int


class _Body:
    def __init__(self, request: HttpRequest, name: str, size: int):
        self._request, self.name, self.size = request, name, size

    def read(self, n: int = -1) -> bytes:
        return self._request.read(n)


def _problems(problems: list[str], status: int):
    count = len(problems)
    return Status(
        status,
        {
            "detail": f"{count} problem{'s' if count != 1 else ''}; nothing was stored.",
            "errors": [{"path": "", "message": p} for p in problems],
        },
    )


@api.post(
    "/incidents/{key}/traces",
    response={
        201: TraceOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        413: ErrorOut,
    },
    summary="Attach an OTLP JSON trace to an incident as evidence of kind trace",
    description=(
        "The body is the trace file itself (OTLP/JSON, one ExportTraceServiceRequest or JSON "
        "Lines of them). Query parameters: `description` (what it shows) and `name` (the file "
        "name kept for downloads). 400 when it is not an OTLP trace or the incident is closed; "
        "413 above the trace size limit. Needs a token with the evaluations:write scope."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
def post_trace(
    request: HttpRequest, key: str, description: str | None = None, name: str | None = None
):
    if not token_may_write_evaluations(request.auth):
        return _problems([f"This token lacks the {SCOPE} scope."], 403)
    incident = Incident.objects.filter(key=key[:40]).first()
    if incident is None:
        return _problems([f"No incident '{key[:40]}'."], 404)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _problems(["(body): the Content-Length header is not a number"], 400)
    limit = traces.max_bytes()
    if declared > limit:
        return _problems(
            [
                f"(body): the trace is {human_size(declared)}; a trace may be at most "
                f"{human_size(limit)}"
            ],
            413,
        )
    if declared == 0:
        return _problems(["(body): empty; send the OTLP JSON file itself as the body"], 400)
    file_name = safe_name(name or "trace.json")
    source = request.auth.source
    text = (description or "").strip()[:2000] or f"Agent trace {file_name} (OTLP JSON)"
    try:
        item = lifecycle.add_evidence(
            incident,
            by=None,
            expected_version=None,
            kind=EvidenceKind.TRACE,
            description=f"{text} (sent with the API token of source {source})",
            upload=_Body(request, file_name, declared),
        )
    except Refused as exc:
        too_big = any("at most" in p and "MB" in p for p in exc.problems)
        return _problems(exc.problems, 413 if too_big else 400)
    view = item.trace_view
    return Status(
        201,
        {
            "incident": incident.key,
            "evidence": item.pk,
            "sha256": item.sha256,
            "size": item.size,
            "span_count": view.span_count,
            "error_count": view.error_count,
            "trace_count": view.trace_count,
        },
    )

"""`POST /api/v1/eval-logs`: an Inspect AI log or a JUnit XML report as the raw request body
(docs/design.md section 14). Registered on the one API object (pacts.api) when pacts.urls imports
it.

The body is streamed into the evidence store (never held whole in memory, so logs above Django's
5 MB body limit work), then read by pacts.eval_sources, which records the evaluations. The token's
evaluation source decides which clauses the log may feed.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ninja import Schema, Status
from pydantic import Field

from trustdesk.pacts.api import ErrorOut, EvaluationOut, api, evaluation_out
from trustdesk.pacts.errors import PactError
from trustdesk.pacts.eval_sources import ingest_eval_log, safe_log_name
from trustdesk.pacts.models import SCOPE_EVALUATIONS_WRITE, ApiToken

SCOPE = SCOPE_EVALUATIONS_WRITE


def token_may_write_evaluations(token: ApiToken) -> bool:
    """Whether the token carries the `evaluations:write` scope (docs/design.md section 12)."""
    return token.has_scope(SCOPE)


class LogOut(Schema):
    sha256: str
    format: str = Field(description="inspect_eval, inspect_json or junit")
    name: str
    summary: dict = Field(description="What was read: eval id, task, status, scores; or suites.")


class EvalLogResultOut(Schema):
    log: LogOut
    evaluations: list[EvaluationOut]
    new: int = Field(description="Evaluations stored by this request.")
    repeated: int = Field(description="Evaluations this log had already given (duplicate=true).")
    message: str


class _Body:
    """The request body as a file for the evidence store: read in chunks, never all at once."""

    def __init__(self, request: HttpRequest, name: str, size: int | None):
        self._request = request
        self.name = name
        self.size = size

    def read(self, n: int = -1) -> bytes:
        return self._request.read(n)


def _problems(problems: list[str], status: int = 400):
    count = len(problems)
    detail = f"{count} problem{'s' if count != 1 else ''}; nothing was stored."
    return Status(
        status, {"detail": detail, "errors": [{"path": "", "message": p} for p in problems]}
    )


@api.post(
    "/eval-logs",
    response={
        200: EvalLogResultOut,
        201: EvalLogResultOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        413: ErrorOut,
    },
    summary="Record the evaluations of an Inspect AI log or a JUnit XML report (raw file body)",
    description=(
        "The body is the file itself: an Inspect AI log (.eval zip or .json) or a JUnit XML "
        "report, told apart by content. Each clause of an active pact with evaluation method "
        "inspect (task, scorer, metric) or junit (suite) and this token's source gets one "
        "evaluation; a failing one of a restrict or suspend clause opens an incident with the "
        "file as evaluation_result evidence. The same file again stores nothing new (200, "
        "duplicate=true). Query parameters: `pact` limits matching to one pact; `name` is the "
        "file name kept for downloads. 400: not a log, a log whose status is not success, or "
        "one that matches no clause (nothing stored); 403: the token lacks evaluations:write; "
        "413: larger than the evidence limit."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
def post_eval_log(request: HttpRequest, pact: str | None = None, name: str | None = None):
    if not token_may_write_evaluations(request.auth):
        return _problems([f"This token lacks the {SCOPE} scope."], status=403)
    limit = int(settings.EVIDENCE_MAX_BYTES)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _problems(["(body): the Content-Length header is not a number"])
    if declared > limit:
        return _problems(
            [f"(body): {declared} bytes; evaluation logs may be at most {limit} bytes"], status=413
        )
    if declared == 0:
        return _problems(["(body): empty; send the log file itself as the request body"])
    label = safe_log_name(name or "") if name else "the log"
    try:
        result = ingest_eval_log(
            _Body(request, label, declared),
            name=label,
            file_name=label if name else "",
            token=request.auth,
            pact_key=(pact or "").strip() or None,
        )
    except PactError as exc:
        too_big = any("larger than" in p or "at most" in p for p in exc.problems)
        return _problems(exc.problems, status=413 if too_big else 400)
    new, repeated = len(result.new), len(result.repeated)
    message = (
        f"{new} new evaluation{'s' if new != 1 else ''}"
        + (f", {repeated} already recorded" if repeated else "")
        if new
        else "Nothing new: this log was already recorded."
    )
    body = {
        "log": {
            "sha256": result.log.sha256,
            "format": result.log.format,
            "name": result.log.download_name,
            "summary": result.log.summary,
        },
        "evaluations": [evaluation_out(e) for e in result.evaluations],
        "new": new,
        "repeated": repeated,
        "message": message,
    }
    return Status(201 if new else 200, body)

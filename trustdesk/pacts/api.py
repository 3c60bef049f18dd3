"""The evaluations API: `POST /api/v1/evaluations` with a bearer token (docs/design.md section 4).

django-ninja rather than DRF + drf-spectacular: one small typed endpoint does not need DRF's
serializers, viewsets and routers; ninja's pydantic schemas generate the OpenAPI document
(/api/v1/openapi.json) with no extra package, and it sits on plain Django views.

The body is read here, not by ninja, because three shapes are accepted (one object, a list, or
{"evaluations": [...]}) and every problem must come back with its field path in one 400 answer.
Values are parsed as exact decimals. The rules themselves live in pacts.actions.record_evaluations.
The API is authenticated by bearer token only (no cookies), so it is exempt from CSRF.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException
from ninja import NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, ValidationError
from ninja.security import HttpBearer
from pydantic import Field

from trustdesk.core.bounds import text_problems
from trustdesk.core.canonical import strict_json_loads
from trustdesk.pacts.actions import MAX_EVALUATIONS_PER_BATCH, record_evaluations
from trustdesk.pacts.errors import PactError
from trustdesk.pacts.models import SCOPE_EVALUATIONS_WRITE, ApiToken, Evaluation

MAX_BODY_BYTES = 2 * 1024 * 1024


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        return ApiToken.objects.for_secret(token.strip())


api = NinjaAPI(
    title="TrustDesk API",
    version="1",
    description=(
        "Evaluations of pact clauses, agents' scope statements and the read API. Authenticate "
        "with `Authorization: Bearer <token>`; tokens and their scopes (`evaluations:write`, "
        "`read`, `agent:KEY`) are made on the API tokens page or with `manage.py api_token`."
    ),
    urls_namespace="api-v1",
    docs_url=None,  # Swagger UI loads from a CDN, which the CSP (rightly) forbids
    auth=BearerToken(),
)


class EvaluationIn(Schema):
    pact: str = Field(description="The pact key; its active version is evaluated.", max_length=200)
    clause: str = Field(description="The clause key within the active version.", max_length=200)
    value: Decimal = Field(
        description="The measured value (a JSON number; stored with 8 decimal places)."
    )
    measured_at: datetime = Field(description="ISO 8601 time with a time zone; not in the future.")
    external_id: str = Field(
        description="Your id of this measurement; (source, external_id) is the idempotency key.",
        max_length=200,
    )
    source: str | None = Field(
        default=None, description="Optional; must be the source of the token when given."
    )


class ReplayDifference(Schema):
    stored: str
    sent: str


class EvaluationOut(Schema):
    id: int
    pact: str
    version: int
    clause: str
    value: str = Field(description="The stored value as a decimal string.")
    passed: bool
    is_breach: bool = Field(description="Failed a clause whose consequence is restrict or suspend.")
    measured_at: datetime
    source: str
    external_id: str
    duplicate: bool = Field(description="True when this (source, external_id) was stored before.")
    differs: dict[str, ReplayDifference] = Field(
        default_factory=dict,
        description="On a repeat: each field (pact, clause, value, measured_at) whose sent value "
        "differs from the stored one. The stored evaluation stands; empty when the repeat matches.",
    )
    voided: bool


class EvaluationsOut(Schema):
    evaluations: list[EvaluationOut]


class Problem(Schema):
    path: str
    message: str


class ErrorOut(Schema):
    detail: str
    errors: list[Problem] = []


# The body is read by the view (three shapes), so its schema is given to OpenAPI here, inline.
_ITEM_SCHEMA = EvaluationIn.model_json_schema()
_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    _ITEM_SCHEMA,
                    {"type": "array", "items": _ITEM_SCHEMA, "maxItems": MAX_EVALUATIONS_PER_BATCH},
                    {
                        "title": "EvaluationBatchIn",
                        "type": "object",
                        "required": ["evaluations"],
                        "properties": {
                            "evaluations": {
                                "type": "array",
                                "items": _ITEM_SCHEMA,
                                "maxItems": MAX_EVALUATIONS_PER_BATCH,
                            }
                        },
                    },
                ]
            }
        }
    },
}


def _problem(text: str) -> dict:
    path, sep, message = text.partition(": ")
    if sep and " " not in path:
        return {"path": path, "message": message}
    return {"path": "", "message": text}


def _bad_request(problems: list[str], *, status: int = 400):
    count = len(problems)
    detail = f"{count} problem{'s' if count != 1 else ''}; nothing was stored."
    return Status(status, {"detail": detail, "errors": [_problem(p) for p in problems]})


def _read_items(request: HttpRequest) -> tuple[list, str | None, list[str]]:
    """The items of the body, the path prefix for their problems, and body-level problems."""
    data = strict_json_loads(request.body)
    if isinstance(data, list):
        return data, "", []
    if isinstance(data, dict) and "evaluations" in data:
        extra = sorted(set(data) - {"evaluations"})
        problems = [f"{name}: is not a known field" for name in extra]
        if not isinstance(data["evaluations"], list):
            problems.append("evaluations: must be a list")
            return [], "evaluations", problems
        return data["evaluations"], "evaluations", problems
    if isinstance(data, dict):
        return [data], None, []
    return (
        [],
        "",
        ['(body): must be an evaluation object, a list of them or {"evaluations": [...]}'],
    )


def evaluation_out(stored: Evaluation, sent: Evaluation | None = None) -> dict:
    """One evaluation as EvaluationOut, from the stored row (its clause, version and pact loaded).
    `sent`, what record_evaluations returned for it, tells a repeat and how it differed."""
    sent = sent or stored
    version = stored.clause.version
    return {
        "id": stored.pk,
        "pact": version.pact.key,
        "version": version.number,
        "clause": stored.clause.key,
        "value": stored.value_text,
        "passed": stored.passed,
        "is_breach": stored.is_breach,
        "measured_at": stored.measured_at,
        "source": stored.source,
        "external_id": stored.external_id,
        "duplicate": getattr(sent, "duplicate", False),
        "differs": getattr(sent, "differs", {}),
        "voided": stored.voided_at is not None,
    }


def _out(evaluations: list[Evaluation]) -> list[dict]:
    stored = Evaluation.objects.select_related("clause__version__pact").in_bulk(
        [e.pk for e in evaluations]
    )
    return [evaluation_out(stored[e.pk], sent=e) for e in evaluations]


@api.post(
    "/evaluations",
    response={
        200: EvaluationsOut,
        201: EvaluationsOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        413: ErrorOut,
    },
    summary="Record evaluations (one, a list, or {evaluations: [...]}), all or nothing",
    description=(
        "Each evaluation names a pact and a clause of its active version (a clause whose "
        "document names an evaluation source takes only that source's token). Pass or fail follows "
        "the clause's objective; a failure of a restrict or suspend clause is a breach and "
        "opens (or joins) an incident. A repeat of (source, external_id) returns the stored "
        "evaluation with duplicate=true, and `differs` names each field the repeat sent "
        "differently (stored and sent values: the stored one stands). "
        f"At most {MAX_EVALUATIONS_PER_BATCH} per request. "
        "Answers 201 when something new was stored, 200 when everything was a repeat, 400 with "
        "the path of every problem, 401 for a missing, unknown or revoked token, 403 for a token "
        "without the scope evaluations:write, 413 for a body "
        f"over {MAX_BODY_BYTES // (1024 * 1024)} MB."
    ),
    openapi_extra={"requestBody": _REQUEST_BODY},
)
def post_evaluations(request: HttpRequest):
    if not request.auth.has_scope(SCOPE_EVALUATIONS_WRITE):
        return forbidden(SCOPE_EVALUATIONS_WRITE)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _bad_request(["(body): the Content-Length header is not a number"])
    if declared > MAX_BODY_BYTES:
        return _bad_request([f"(body): larger than {MAX_BODY_BYTES} bytes"], status=413)
    try:
        if len(request.body) > MAX_BODY_BYTES:
            return _bad_request([f"(body): larger than {MAX_BODY_BYTES} bytes"], status=413)
        items, prefix, problems = _read_items(request)
    except (RequestDataTooBig, RawPostDataException):
        return _bad_request([f"(body): larger than {MAX_BODY_BYTES} bytes"], status=413)
    except json.JSONDecodeError as exc:
        return _bad_request(
            [f"(body): not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"]
        )
    except (ValueError, RecursionError) as exc:
        return _bad_request([f"(body): not valid JSON ({exc})"])
    if problems:
        return _bad_request(problems)
    # NUL or a lone surrogate ("\u0000", "\ud800") in any string: no database can store it.
    unstorable = text_problems(items, "" if prefix is None else prefix)
    if unstorable:
        if prefix is None:  # a single object: its fields are the paths
            unstorable = [p.removeprefix("[0].") for p in unstorable]
        return _bad_request(unstorable)
    if len(items) > MAX_EVALUATIONS_PER_BATCH:
        where = prefix or "(body)"
        return _bad_request(
            [f"{where}: at most {MAX_EVALUATIONS_PER_BATCH} evaluations per request"], status=413
        )
    try:
        evaluations = record_evaluations(items, token=request.auth, prefix=prefix or "")
    except PactError as exc:
        problems = exc.problems
        if prefix is None:  # a single object: its fields are the paths
            problems = [p.removeprefix("[0].") for p in problems]
        return _bad_request(problems)
    status = 201 if any(not getattr(e, "duplicate", False) for e in evaluations) else 200
    return Status(status, {"evaluations": _out(evaluations)})


def forbidden(scope: str):
    """403 for a valid token that lacks the scope this route needs."""
    return Status(
        403,
        {
            "detail": f"This token does not have the scope {scope}; nothing was done.",
            "errors": [{"path": "(token)", "message": f"needs the scope {scope}"}],
        },
    )


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError):
    """ninja answers 422 by default; this API answers 400 with field paths, like everywhere."""
    errors = []
    for error in exc.errors:
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        errors.append({"path": ".".join(loc), "message": error.get("msg", "invalid")})
    return api.create_response(
        request, {"detail": "The request is not valid.", "errors": errors}, status=400
    )


def unauthorized(request: HttpRequest) -> HttpResponse:
    """401 for a missing, unknown or revoked token (every route of the API answers it alike)."""
    response = api.create_response(
        request,
        {
            "detail": "A valid API token is required: Authorization: Bearer <token>. "
            "This one is missing, unknown or revoked.",
            "errors": [],
        },
        status=401,
    )
    response["WWW-Authenticate"] = 'Bearer realm="trustdesk"'
    return response


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, exc: AuthenticationError):
    return unauthorized(request)

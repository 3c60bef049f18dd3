"""The transparency log endpoints (docs/design.md section 15), for signed-in users and share-link
holders (the link's token as `?token=`, rate limited and logged like the buyer pages).

    GET /log/checkpoint                          the latest signed checkpoint (text/plain)
    GET /log/proof/inclusion?index=I&size=N      JSON list of base64 hashes
    GET /log/proof/consistency?from=M&to=N       JSON list of base64 hashes

A checkpoint is made on demand when the tree grew since the last one (the beat task does the
same every minute), so what is served always covers every committed event.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse

from trustdesk.core.roles import can
from trustdesk.diligence import signing
from trustdesk.diligence.checkpoints import CheckpointError, make_checkpoint
from trustdesk.diligence.log_forms import ConsistencyProofForm, InclusionProofForm, form_errors
from trustdesk.diligence.views import buyer_page, open_link
from trustdesk.incidents import tlog
from trustdesk.incidents.merkle import ProofError


def _refused(request: HttpRequest, what: str) -> HttpResponse | None:
    """None when the request may read the log; otherwise the answer to give (a share link that
    cannot be opened raises LinkRefused, which `buyer_page` answers)."""
    if request.user.is_authenticated and can(request.user, "read"):
        return None
    token = request.GET.get("token", "")
    if token:
        open_link(request, token, what)
        return None
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    raise PermissionDenied("Your role does not allow this.")


def _problem(message: str | list[str], status: int = 400) -> JsonResponse:
    problems = [message] if isinstance(message, str) else message
    return JsonResponse({"error": "; ".join(problems), "problems": problems}, status=status)


def _proof_view(
    what: str, form_class: type[forms.Form], prove: Callable[[dict[str, Any]], list[bytes]]
) -> Callable[[HttpRequest], HttpResponse]:
    """The endpoint of one kind of proof: the proof `prove` makes for the sizes the query names,
    as a JSON list of base64 hashes; 400 naming every problem of the query."""

    @buyer_page
    def proof_view(request: HttpRequest) -> HttpResponse:
        if refused := _refused(request, what):
            return refused
        form = form_class(request.GET)
        if not form.is_valid():
            return _problem(form_errors(form))
        try:
            proof = prove(form.cleaned_data)
        except ProofError as exc:
            return _problem(str(exc))
        return JsonResponse([base64.b64encode(h).decode("ascii") for h in proof], safe=False)

    return proof_view


@buyer_page
def log_checkpoint(request: HttpRequest) -> HttpResponse:
    if refused := _refused(request, "log checkpoint"):
        return refused
    try:
        checkpoint = make_checkpoint()
    except (CheckpointError, signing.SigningKeyError) as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain; charset=utf-8")
    return HttpResponse(checkpoint.note, content_type="text/plain; charset=utf-8")


log_inclusion_proof = _proof_view(
    "log inclusion proof",
    InclusionProofForm,
    lambda query: tlog.inclusion_proof(query["index"], query["size"]),
)
log_consistency_proof = _proof_view(
    "log consistency proof",
    ConsistencyProofForm,
    lambda query: tlog.consistency_proof(query["from"], query["to"]),
)

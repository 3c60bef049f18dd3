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

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse

from trustdesk.core.roles import can
from trustdesk.diligence import signing
from trustdesk.diligence.checkpoints import CheckpointError, make_checkpoint
from trustdesk.diligence.log_forms import ConsistencyProofForm, InclusionProofForm, form_errors
from trustdesk.diligence.views import _open_link, buyer_page
from trustdesk.incidents import tlog
from trustdesk.incidents.merkle import ProofError


def _refused(request: HttpRequest, what: str) -> HttpResponse | None:
    """None when the request may read the log; otherwise the answer to give."""
    if request.user.is_authenticated and can(request.user, "read"):
        return None
    token = request.GET.get("token", "")
    if token:
        link = _open_link(request, token, what)
        return link if isinstance(link, HttpResponse) else None
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    raise PermissionDenied("Your role does not allow this.")


def _problem(message: str | list[str], status: int = 400) -> JsonResponse:
    problems = [message] if isinstance(message, str) else message
    return JsonResponse({"error": "; ".join(problems), "problems": problems}, status=status)


def _hashes(hashes: list[bytes]) -> JsonResponse:
    return JsonResponse([base64.b64encode(h).decode("ascii") for h in hashes], safe=False)


@buyer_page
def log_checkpoint(request: HttpRequest) -> HttpResponse:
    if refused := _refused(request, "log checkpoint"):
        return refused
    try:
        checkpoint = make_checkpoint()
    except (CheckpointError, signing.SigningKeyError) as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain; charset=utf-8")
    return HttpResponse(checkpoint.note, content_type="text/plain; charset=utf-8")


@buyer_page
def log_inclusion_proof(request: HttpRequest) -> HttpResponse:
    if refused := _refused(request, "log inclusion proof"):
        return refused
    form = InclusionProofForm(request.GET)
    if not form.is_valid():
        return _problem(form_errors(form))
    try:
        proof = tlog.inclusion_proof(form.cleaned_data["index"], form.cleaned_data["size"])
    except ProofError as exc:
        return _problem(str(exc))
    return _hashes(proof)


@buyer_page
def log_consistency_proof(request: HttpRequest) -> HttpResponse:
    if refused := _refused(request, "log consistency proof"):
        return refused
    form = ConsistencyProofForm(request.GET)
    if not form.is_valid():
        return _problem(form_errors(form))
    try:
        proof = tlog.consistency_proof(form.cleaned_data["from"], form.cleaned_data["to"])
    except ProofError as exc:
        return _problem(str(exc))
    return _hashes(proof)

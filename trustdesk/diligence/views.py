"""Share links (internal pages), the buyer view (no login) and bundle downloads.

Buyer pages are reached by anyone holding the token, so each request is rate limited (per IP
before the database is touched, then per link), logged, and answered only for GET/HEAD.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.db.models import Count, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)
from django.views.decorators.vary import vary_on_headers

from trustdesk.core.attempts import attempt
from trustdesk.core.decorators import permission_required
from trustdesk.core.pages import paginate, render_page, wants_partial
from trustdesk.core.proxy import client_ip
from trustdesk.core.roles import can
from trustdesk.diligence import buyer, ratelimit, signing
from trustdesk.diligence.actions import (
    DiligenceError,
    create_share_link,
    ip_hash,
    record_view,
    revoke_share_link,
)
from trustdesk.diligence.bundle import (
    INTERNAL_AUDIENCE,
    BundleError,
    BundleScope,
    bundle_file,
    link_scope,
)
from trustdesk.diligence.checkpoints import CheckpointError, make_checkpoint
from trustdesk.diligence.forms import ShareLinkFilterForm, ShareLinkForm
from trustdesk.diligence.log_forms import SinceCheckpointForm, form_errors
from trustdesk.diligence.models import (
    Checkpoint,
    ShareLink,
    ShareLinkStatus,
    ShareLinkView,
    token_hash,
)
from trustdesk.incidents.models import Incident
from trustdesk.pacts.models import PactVersion

LINKS_PER_PAGE = 25
VIEWS_PER_PAGE = 50
INCIDENTS_PER_PAGE = 50
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,100}")


def _with_view_counts(links):
    views = (
        ShareLinkView.objects.filter(link=OuterRef("pk"))
        .order_by()
        .values("link")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return links.annotate(view_count=Coalesce(Subquery(views), Value(0)))


def _checkpoint_or_none() -> Checkpoint | None:
    """The transparency log checkpoint a bundle made now is anchored to (made if the log grew)."""
    try:
        return make_checkpoint()
    except (CheckpointError, signing.SigningKeyError, OSError):
        return None


def _public_key_or_none() -> signing.PublicKey | None:
    try:
        return signing.public_key()
    except (signing.SigningKeyError, OSError):
        return None


# ------------------------------------------------------------------ internal pages


@permission_required("read")
@require_GET
@vary_on_headers("HX-Request")
def diligence_index(request: HttpRequest) -> HttpResponse:
    form = ShareLinkFilterForm(request.GET)
    links = ShareLink.objects.all()
    if form.is_valid():
        links = links.search(form.cleaned_data["q"])
        if form.cleaned_data["status"]:
            links = links.with_status(form.cleaned_data["status"])
    links = _with_view_counts(links).prefetch_related("agents")
    page = paginate(request, links, LINKS_PER_PAGE)
    context = {
        "form": form,
        "page": page,
        "filtered": bool(form.is_valid() and any(form.cleaned_data.values())),
        "can_manage": can(request.user, "share_links"),
        "public_key": _public_key_or_none(),
        "query": request.GET.copy(),
    }
    context["query"].pop("page", None)
    return render_page(request, "diligence/diligence_index.html", context, partial="link_list")


@permission_required("share_links")
@require_http_methods(["GET", "POST"])
def share_link_new(request: HttpRequest) -> HttpResponse:
    form = ShareLinkForm(request.POST or None)
    made = attempt(
        form,
        lambda data: create_share_link(
            by=request.user,
            label=data["label"],
            agents=data["agents"],
            incidents=data["incident_keys"],
            expires_at=form.expires_at(),
            include_evidence=data["include_evidence"],
        ),
    )
    if not made:
        return render(request, "diligence/share_link_new.html", {"form": form})
    # The token is shown in this response and nowhere else: it is not stored, not put in the
    # session, and the response may not be cached. (A reload re-posts the form and makes a second
    # link, which is visible in the list and can be revoked.)
    link, token = made
    url = request.build_absolute_uri(reverse("buyer_view", args=[token]))
    response = render(request, "diligence/share_link_created.html", {"link": link, "url": url})
    response["Cache-Control"] = "no-store"
    return response


def _link_for_page(pk: int) -> ShareLink:
    return get_object_or_404(
        _with_view_counts(
            ShareLink.objects.select_related("created_by", "revoked_by")
        ).prefetch_related("agents", "incidents"),
        pk=pk,
    )


@permission_required("read")
@require_GET
def share_link_detail(request: HttpRequest, pk: int) -> HttpResponse:
    link = _link_for_page(pk)
    return render(
        request,
        "diligence/share_link_detail.html",
        {
            "link": link,
            "views": paginate(request, link.views.order_by("-at", "-pk"), VIEWS_PER_PAGE),
            "can_manage": can(request.user, "share_links"),
        },
    )


@permission_required("share_links")
@require_POST
def share_link_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    link = get_object_or_404(ShareLink, pk=pk)
    try:
        revoke_share_link(link, by=request.user)
        problem = None
    except DiligenceError as exc:
        problem = str(exc)
    if wants_partial(request):
        # The swapped row shows the outcome (revoked either way); no message left for later.
        row = _with_view_counts(ShareLink.objects.prefetch_related("agents")).get(pk=pk)
        return render(
            request,
            "diligence/diligence_index.html#link_row",
            {"link": row, "can_manage": True},
        )
    if problem:
        messages.error(request, problem)
    else:
        messages.success(request, f"'{link.label}' is revoked: its link now answers 410 Gone.")
    return redirect("share_link_detail", pk=pk)


def _zip_response(handle, filename: str) -> FileResponse:
    response = FileResponse(
        handle, as_attachment=True, filename=filename, content_type="application/zip"
    )
    response["Cache-Control"] = "no-store"
    return response


def _bundle_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    return render(request, "diligence/bundle_error.html", {"message": str(exc)}, status=409)


@permission_required("export_internal_bundles")
@require_GET
def incident_bundle(request: HttpRequest, key: str) -> HttpResponse:
    incident = get_object_or_404(Incident.objects.select_related("agent"), key=key)
    scope = BundleScope(
        agents=[incident.agent],
        audience=INTERNAL_AUDIENCE,
        include_evidence=True,
        incident_keys=[key],
    )
    try:
        handle, _summary = bundle_file(scope)
    except (BundleError, signing.SigningKeyError) as exc:
        return _bundle_error(request, exc)
    return _zip_response(handle, f"{incident.key}-evidence-bundle.zip")


# ------------------------------------------------------------------ the buyer view


class LinkRefused(Exception):
    """A share link that cannot be opened now; `response` says why (429, 404 or 410) and is what
    `buyer_page` answers."""

    def __init__(self, response: HttpResponse):
        super().__init__(response.status_code)
        self.response = response


def buyer_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Public, read-only: GET/HEAD only (405 otherwise, CSRF is moot), never cached or indexed,
    and the token never leaks through a Referer header. A LinkRefused is answered with its page."""

    @csrf_exempt
    @require_safe
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
        except LinkRefused as refused:
            response = refused.response
        response["Cache-Control"] = "no-store, private"
        response["Referrer-Policy"] = "no-referrer"
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    wrapped.public = True  # type: ignore[attr-defined]  (the role walk knows it needs no login)
    return wrapped


def _too_many(request: HttpRequest, wait: int) -> HttpResponse:
    response = render(request, "diligence/buyer_too_many.html", {"wait": wait}, status=429)
    response["Retry-After"] = str(wait)
    return response


def open_link(request: HttpRequest, token: str, what: str) -> ShareLink:
    """The active link for `token`, after rate limits and logging `what` was read. Raises
    LinkRefused otherwise; call it from a view decorated with `buyer_page`."""
    ip = client_ip(request)  # the socket address unless a trusted proxy header is configured
    hashed_ip = ip_hash(ip)
    if wait := ratelimit.hit("ip", hashed_ip):
        raise LinkRefused(_too_many(request, wait))
    link = None
    if TOKEN_SHAPE.fullmatch(token):
        link = ShareLink.objects.filter(token_hash=token_hash(token)).first()
    if link is None:
        raise LinkRefused(render(request, "diligence/buyer_not_found.html", status=404))
    if wait := ratelimit.hit("link", str(link.pk)):
        raise LinkRefused(_too_many(request, wait))
    user_agent = request.META.get("HTTP_USER_AGENT", "")
    status = link.status()
    if status != ShareLinkStatus.ACTIVE:
        record_view(link, ip=ip, user_agent=user_agent, what=f"refused: {status}")
        context = {"status": status, "link": link}
        raise LinkRefused(render(request, "diligence/buyer_gone.html", context, status=410))
    record_view(link, ip=ip, user_agent=user_agent, what=what)
    return link


@buyer_page
def buyer_view(request: HttpRequest, token: str) -> HttpResponse:
    link = open_link(request, token, "page")
    scope = link_scope(link)
    versions = buyer.active_versions(scope.agents)
    incidents = scope.incidents().order_by("-detected_at", "-number")
    page = paginate(request, incidents, INCIDENTS_PER_PAGE)
    context = {
        "link": link,
        "token": token,
        "agents": scope.agents,
        "chosen": scope.incident_keys is not None,
        "versions": versions,
        "stale": [v for v in versions if v.is_stale],
        "page": page,
        "rows": buyer.incident_rows(list(page.object_list)),
        "metrics": buyer.agent_metrics(scope.agents),
        "public_key": _public_key_or_none(),
        "now": timezone.now(),
        "checkpoint": _checkpoint_or_none(),
        "since_form": SinceCheckpointForm(),
    }
    return render(request, "diligence/buyer.html", context)


@buyer_page
def buyer_bundle(request: HttpRequest, token: str) -> HttpResponse:
    link = open_link(request, token, "bundle")
    scope = link_scope(link)
    since = SinceCheckpointForm(request.GET)
    if not since.is_valid():
        message = "The earlier tree size is not usable: " + "; ".join(form_errors(since))
        return render(request, "diligence/bundle_error.html", {"message": message}, status=400)
    scope.since_checkpoint = since.cleaned_data["since"]
    try:
        handle, _summary = bundle_file(scope)
    except (BundleError, signing.SigningKeyError) as exc:
        return _bundle_error(request, exc)
    return _zip_response(handle, f"trustdesk-diligence-{timezone.now():%Y-%m-%d}.zip")


@buyer_page
def buyer_pact(request: HttpRequest, token: str, pact: str, number: int, fmt: str) -> HttpResponse:
    link = open_link(request, token, f"pact {pact}@{number}.{fmt}")
    version = (
        PactVersion.objects.active()
        .filter(pact__key=pact, number=number, pact__agent__in=link.agents.all())
        .select_related("pact")
        .first()
    )
    if version is None:
        return render(request, "diligence/buyer_not_found.html", {"what": "pact"}, status=404)
    response = HttpResponse(
        buyer.pact_document_text(version, fmt),
        content_type="application/json" if fmt == "json" else "application/yaml",
    )
    response["Content-Disposition"] = f'attachment; filename="{pact}-v{number}.{fmt}"'
    return response

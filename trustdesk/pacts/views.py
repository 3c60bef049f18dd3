"""The pages of agents, pacts, clauses, disputes and API tokens.

Views parse input with a form, call one function of `pacts.actions`, and render. Every form
works as a plain POST/redirect/GET; with htmx, list filters and pagination swap the page's
`results` partial, and the authoring form swaps its own partial with the problems by path.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from trustdesk.core import blobs as evidence_store
from trustdesk.core import hooks
from trustdesk.core.attempts import attempt, flash_outcome
from trustdesk.core.decorators import permission_required
from trustdesk.core.pages import paginate, render_page, wants_partial
from trustdesk.core.roles import can, roles_for
from trustdesk.pacts import actions
from trustdesk.pacts.document import document_diff, document_yaml
from trustdesk.pacts.document import pact_schema as schema
from trustdesk.pacts.errors import PactError
from trustdesk.pacts.forms import (
    AgentFilterForm,
    AgentProfileForm,
    ApiTokenForm,
    CompareForm,
    DisputeFilterForm,
    DisputeForm,
    DocumentForm,
    PactFilterForm,
    ResolveDisputeForm,
    ReviewForm,
)
from trustdesk.pacts.models import (
    Agent,
    ApiToken,
    Clause,
    Dispute,
    DisputeStatus,
    Evaluation,
    EvaluationLog,
    Pact,
    PactVersion,
    VersionStatus,
)

PAGE_SIZE = 25
RECENT_EVALUATIONS = 5  # per clause on the pact page, each with the log that produced it
AUTHORS = roles_for("author_pacts")  # who may: core.roles.PERMISSIONS
TOKEN_MANAGERS = roles_for("manage_tokens")  # who may: core.roles.PERMISSIONS
DISPUTE_OPENERS = roles_for("open_dispute")  # who may: core.roles.PERMISSIONS


# ---------------------------------------------------------------- agents


@require_GET
@vary_on_headers("HX-Request")
@permission_required("read")
def agents_index(request: HttpRequest) -> HttpResponse:
    form = AgentFilterForm(request.GET)
    agents = form.filter(Agent.objects.for_listing()).order_by("key")
    return _list_page(request, "pacts/agents_index.html", form, agents, "agents")


def _list_page(
    request: HttpRequest, template: str, form, items, name: str, **context
) -> HttpResponse:
    """A filtered list page (the page's `items` as `name`); htmx swaps its `results` region."""
    page = paginate(request, items, PAGE_SIZE)
    context.update(form=form, page=page, filtered=bool(form.values()))
    context[name] = page.object_list
    return render_page(request, template, context, partial="results")


@require_GET
@permission_required("read")
def agent_detail(request: HttpRequest, key: str) -> HttpResponse:
    agent = get_object_or_404(Agent.objects.select_related("scope_incident"), key=key)
    pacts = Pact.objects.for_listing().filter(agent=agent).order_by("key")
    context = {
        "agent": agent,
        "pacts": pacts,
        "profile_form": AgentProfileForm(initial=_profile(agent))
        if can(request.user, "set_agent_profiles")
        else None,
        # Its open incidents and its trust panel come from the apps above (core.hooks).
        **hooks.context(hooks.AGENT_PAGE, agent),
    }
    return render(request, "pacts/agent_detail.html", context)


def _profile(agent: Agent) -> dict:
    return {
        "high_risk_ai": agent.high_risk_ai,
        "personal_data": agent.personal_data,
        "nis2": agent.nis2,
    }


@require_POST
@permission_required("set_agent_profiles")
def agent_profile(request: HttpRequest, key: str) -> HttpResponse:
    """Set the regulatory profile from the agent page (plain POST, redirect back)."""
    agent = get_object_or_404(Agent, key=key)
    form = AgentProfileForm(request.POST)
    if form.is_valid():
        flash_outcome(
            request,
            lambda: actions.set_agent_profile(agent, by=request.user, **form.cleaned_data),
            "Regulatory profile saved.",
        )
    else:
        messages.error(request, "The profile was not saved: choose a NIS2 entity type.")
    return redirect("agent_detail", key=agent.key)


# ---------------------------------------------------------------- pacts


@require_GET
@vary_on_headers("HX-Request")
@permission_required("read")
def pacts_index(request: HttpRequest) -> HttpResponse:
    agents = list(Agent.objects.order_by("key").values_list("key", "name"))
    form = PactFilterForm(request.GET, agents=agents)
    pacts = form.filter(Pact.objects.for_listing()).order_by("key")
    return _list_page(
        request,
        "pacts/pacts_index.html",
        form,
        pacts,
        "pacts",
        can_author=can(request.user, "author_pacts"),
        can_manage_tokens=can(request.user, "manage_tokens"),
    )


def _get_version(key: str, number: int | None = None) -> PactVersion:
    """The pact's version `number`, or its current one (active, else latest); 404 otherwise."""
    pact = get_object_or_404(Pact.objects.select_related("agent"), key=key)
    versions = PactVersion.objects.filter(pact=pact).select_related(
        "created_by", "activated_by", "last_reviewed_by"
    )
    if number is None:
        version = (
            versions.filter(status=VersionStatus.ACTIVE).first()
            or versions.order_by("-number").first()
        )
    else:
        version = versions.filter(number=number).first()
    if version is None:
        raise Http404("No such pact version.")
    version.pact = pact
    return version


@require_GET
@permission_required("read")
def pact_detail(request: HttpRequest, key: str, number: int | None = None) -> HttpResponse:
    version = _get_version(key, number)
    pact = version.pact
    clauses = list(version.clauses.all())
    rates = Evaluation.objects.window_pass_rates(clauses)
    latest = Evaluation.objects.latest_per_clause(clauses, n=RECENT_EVALUATIONS)
    for clause in clauses:
        clause.window_rate = rates.get(clause.pk)
        clause.recent_evaluations = latest.get(clause.pk, [])
    history = list(pact.versions.order_by("-number").select_related("created_by", "activated_by"))
    numbers = [v.number for v in history]
    earlier = [n for n in numbers if n < version.number]
    later = [n for n in numbers if n > version.number]
    # Compare with the version before this one (or, for v1, the one after it).
    pair = (
        (earlier[0], version.number)
        if earlier
        else (version.number, later[-1] if later else version.number)
    )
    compare = CompareForm(initial={"a": pair[0], "b": pair[1]}, numbers=numbers)
    is_risk = can(request.user, "author_pacts")
    context = {
        "pact": pact,
        "version": version,
        "document": version.document,
        "clauses": clauses,
        "history": history,
        "compare": compare,
        "review_form": ReviewForm(),
        "can_author": is_risk,
        "can_activate": is_risk and version.status == VersionStatus.DRAFT,
        "can_review": is_risk and version.status == VersionStatus.ACTIVE,
        "can_edit": is_risk and version.status == VersionStatus.DRAFT,
        "active_number": next((v.number for v in history if v.status == "active"), None),
    }
    return render(request, "pacts/pact_detail.html", context)


@require_GET
@permission_required("read")
def pact_download(request: HttpRequest, key: str, number: int, fmt: str) -> HttpResponse:
    if fmt not in ("json", "yaml"):
        raise Http404("Download as .yaml or .json.")
    version = _get_version(key, number)
    if fmt == "json":
        # The canonical text itself: `sha256sum` of the file minus its newline is the version's.
        body, content_type = version.canonical + "\n", "application/json"
    else:
        body, content_type = document_yaml(version.document), "application/yaml"
    response = HttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{key}-v{number}.{fmt}"'
    response["X-Content-SHA256"] = version.sha256
    return response


@require_GET
@vary_on_headers("HX-Request")
@permission_required("read")
def pact_diff(request: HttpRequest, key: str) -> HttpResponse:
    pact = get_object_or_404(Pact.objects.select_related("agent"), key=key)
    versions = {v.number: v for v in pact.versions.order_by("-number")}
    if not versions:
        raise Http404("This pact has no versions.")
    numbers = list(versions)
    form = CompareForm(request.GET or None, numbers=numbers)
    rows, old, new = [], None, None
    if form.is_bound and form.is_valid():
        old, new = versions[form.cleaned_data["a"]], versions[form.cleaned_data["b"]]
        rows = document_diff(old.document, new.document)
    elif not form.is_bound:
        b = numbers[0]
        a = numbers[1] if len(numbers) > 1 else b
        form = CompareForm(initial={"a": a, "b": b}, numbers=numbers)
        old, new = versions[a], versions[b]
        rows = document_diff(old.document, new.document)
    context = {
        "pact": pact,
        "form": form,
        "rows": rows,
        "old": old,
        "new": new,
        "changes": sum(1 for r in rows if r["kind"] not in ("same", "skip")),
    }
    status = 400 if form.is_bound and not form.is_valid() else 200
    return render_page(request, "pacts/pact_diff.html", context, partial="diff", status=status)


def _authoring_response(request: HttpRequest, context: dict) -> HttpResponse:
    """The form again, with its problems: 400 for a plain POST; 200 for htmx, which only swaps
    successful answers."""
    status = 200 if wants_partial(request) else 400
    return render_page(request, "pacts/pact_form.html", context, partial="authoring", status=status)


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    """A redirect that htmx follows as a full navigation."""
    if wants_partial(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@require_http_methods(["GET", "POST"])
@permission_required("author_pacts")
def pact_new(request: HttpRequest) -> HttpResponse:
    """Paste or upload a document to create a draft (a new pact, or the next version)."""
    if request.method == "POST":
        form = DocumentForm(request.POST, request.FILES)
        if form.is_valid() and form.document is not None:
            try:
                version = actions.create_draft(form.document, by=request.user)
            except PactError as exc:
                form.add_problems(exc.problems)
            else:
                messages.success(
                    request, f"Draft {version.label} saved. Review it, then activate it."
                )
                return _redirect(request, _version_url(version))
        return _authoring_response(request, {"form": form, "editing": None})
    initial = {}
    source = request.GET.get("from", "")
    if source:
        key, _, number = source.partition("@")
        base = PactVersion.objects.filter(
            pact__key=key, number=int(number) if number.isdigit() else -1
        ).first()
        if base is not None:
            document = {**base.document, "metadata": dict(base.document["metadata"])}
            document["metadata"].pop("version", None)
            initial["text"] = document_yaml(document)
    return render(
        request, "pacts/pact_form.html", {"form": DocumentForm(initial=initial), "editing": None}
    )


@require_http_methods(["GET", "POST"])
@permission_required("author_pacts")
def pact_edit(request: HttpRequest, key: str, number: int) -> HttpResponse:
    """Edit a draft. An active (or superseded) version is immutable: the form is refused."""
    version = _get_version(key, number)
    if version.status != VersionStatus.DRAFT:
        messages.error(
            request,
            f"{version.label} is {version.status}: it cannot be changed. "
            "Draft a new version from it instead.",
        )
        return _redirect(request, _version_url(version))
    if request.method == "POST":
        form = DocumentForm(request.POST, request.FILES)
        if form.is_valid() and form.document is not None:
            try:
                actions.update_draft(version, form.document, by=request.user)
            except PactError as exc:
                form.add_problems(exc.problems)
            else:
                messages.success(request, f"Draft {version.label} saved.")
                return _redirect(request, _version_url(version))
        return _authoring_response(request, {"form": form, "editing": version})
    form = DocumentForm(initial={"text": document_yaml(version.document)})
    return render(request, "pacts/pact_form.html", {"form": form, "editing": version})


def _version_url(version: PactVersion) -> str:
    return reverse("pact_version", args=[version.pact.key, version.number])


@require_POST
@permission_required("author_pacts")
def pact_activate(request: HttpRequest, key: str, number: int) -> HttpResponse:
    version = _get_version(key, number)
    flash_outcome(
        request,
        lambda: actions.activate_version(version, by=request.user),
        f"{version.label} is now the active version.",
    )
    return redirect(_version_url(version))


@require_POST
@permission_required("author_pacts")
def pact_review(request: HttpRequest, key: str, number: int) -> HttpResponse:
    version = _get_version(key, number)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the review date as YYYY-MM-DD.")
        return redirect(_version_url(version))
    flash_outcome(
        request,
        lambda: actions.mark_reviewed(version, by=request.user, on=form.cleaned_data["on"]),
        lambda reviewed: (
            f"{version.label} reviewed on {reviewed.last_reviewed:%Y-%m-%d}; "
            f"next review due {reviewed.review_due:%Y-%m-%d}."
        ),
    )
    return redirect(_version_url(version))


# ---------------------------------------------------------------- clauses and evaluations


@require_GET
@vary_on_headers("HX-Request")
@permission_required("read")
def clause_detail(request: HttpRequest, key: str, number: int, clause: str) -> HttpResponse:
    version = _get_version(key, number)
    clause_obj = get_object_or_404(Clause, version=version, key=clause)
    clause_obj.version = version
    now = timezone.now()
    rate = Evaluation.objects.window_pass_rates([clause_obj], now)[clause_obj.pk]
    open_disputes = Dispute.objects.filter(evaluation=OuterRef("pk"), status=DisputeStatus.OPEN)
    evaluations = (
        Evaluation.objects.filter(clause=clause_obj)
        .select_related("log")
        .annotate(disputed=Exists(open_disputes))
        .order_by("-measured_at", "-pk")
    )
    page = paginate(request, evaluations, 50)
    context = {
        "pact": version.pact,
        "version": version,
        "clause": clause_obj,
        "rate": rate,
        "window_start": now - timezone.timedelta(seconds=clause_obj.window_seconds),
        "page": page,
        "evaluations": page.object_list,
        "can_dispute": can(request.user, "open_dispute"),
    }
    return render_page(request, "pacts/clause_detail.html", context, partial="evaluations")


# ---------------------------------------------------------------- disputes


@require_http_methods(["GET", "POST"])
@permission_required("open_dispute")
def dispute_new(request: HttpRequest, evaluation_id: int) -> HttpResponse:
    evaluation = get_object_or_404(
        Evaluation.objects.select_related("clause__version__pact__agent"), pk=evaluation_id
    )
    form = DisputeForm(request.POST or None)
    if dispute := attempt(
        form, lambda data: actions.open_dispute(evaluation, by=request.user, reason=data["reason"])
    ):
        messages.success(request, f"Dispute #{dispute.pk} opened; risk will resolve it.")
        return redirect("dispute_detail", dispute.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "pacts/dispute_new.html",
        {"form": form, "evaluation": evaluation, "clause": evaluation.clause},
        status=status,
    )


@require_GET
@vary_on_headers("HX-Request")
@permission_required("read")
def disputes_index(request: HttpRequest) -> HttpResponse:
    form = DisputeFilterForm(request.GET)
    disputes = Dispute.objects.select_related(
        "evaluation__clause__version__pact", "incident", "opened_by", "resolved_by"
    ).order_by("-opened_at", "-pk")
    if status := form.values().get("status"):
        disputes = disputes.filter(status=status)
    counts = dict(Dispute.objects.order_by().values_list("status").annotate(n=Count("pk")))
    return _list_page(
        request,
        "pacts/disputes_index.html",
        form,
        disputes,
        "disputes",
        open_count=counts.get(DisputeStatus.OPEN, 0),
    )


@require_http_methods(["GET", "POST"])
@permission_required("read")
def dispute_detail(request: HttpRequest, dispute_id: int) -> HttpResponse:
    dispute = get_object_or_404(
        Dispute.objects.select_related(
            "evaluation__clause__version__pact__agent", "incident", "opened_by", "resolved_by"
        ),
        pk=dispute_id,
    )
    can_resolve = can(request.user, "resolve_dispute") and dispute.is_open
    form = ResolveDisputeForm(request.POST or None)
    if request.method == "POST":
        if not can(request.user, "resolve_dispute"):
            raise PermissionDenied("Only risk resolves disputes.")
        resolved = attempt(
            form,
            lambda data: actions.resolve_dispute(
                dispute, by=request.user, status=data["status"], resolution=data["resolution"]
            ),
        )
        if resolved:
            messages.success(request, f"Dispute #{dispute.pk} resolved.")
            return redirect("dispute_detail", dispute.pk)
    context = {"dispute": dispute, "form": form, "can_resolve": can_resolve}
    return render(
        request,
        "pacts/dispute_detail.html",
        context,
        status=400 if request.method == "POST" else 200,
    )


# ---------------------------------------------------------------- API tokens


@require_http_methods(["GET", "POST"])
@permission_required("manage_tokens")
def api_tokens(request: HttpRequest) -> HttpResponse:
    """List tokens and create one. The secret is shown once, in the answer to the POST."""
    form = ApiTokenForm(request.POST or None)
    created = secret = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                created, secret = actions.create_api_token(
                    source=form.cleaned_data["source"],
                    label=form.cleaned_data["label"],
                    scopes=form.token_scopes(),
                    by=request.user,
                )
            except PactError as exc:
                for problem in exc.problems:
                    field, sep, message = problem.partition(": ")
                    if field == "scopes" and "agent" in message:
                        field = "agents"
                    if sep and field in form.fields:
                        form.add_error(field, message)
                    else:
                        form.add_error(None, problem)
        if created is None:
            status = 400
        else:
            form = ApiTokenForm()
            status = 201
    tokens = ApiToken.objects.select_related("created_by", "revoked_by").order_by(
        "revoked_at", "source", "-created_at"
    )
    context = {"form": form, "tokens": tokens, "created": created, "secret": secret}
    response = render(request, "pacts/api_tokens.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page may carry a secret
    return response


@require_POST
@permission_required("manage_tokens")
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id)
    flash_outcome(
        request,
        lambda: actions.revoke_api_token(token, by=request.user),
        f"The token of {token.source} was revoked.",
    )
    return redirect("api_tokens")


# ---------------------------------------------------------------- the schema


@require_GET
@cache_control(public=True, max_age=3600)
def pact_schema(request: HttpRequest) -> HttpResponse:
    """The pact JSON Schema at a stable URL. Public on purpose: it is a published format that
    tools outside TrustDesk validate against, and it holds no data."""
    return JsonResponse(schema(), json_dumps_params={"indent": 2})


# ---------------------------------------------------------------- evaluation logs


@require_GET
@permission_required("read")
def evaluation_log_download(request: HttpRequest, sha256: str) -> HttpResponse:
    """The stored log file that produced evaluations, as an attachment of an opaque type."""
    log = get_object_or_404(EvaluationLog, sha256=sha256.lower()[:64])
    try:
        path = evidence_store.absolute_path(log.storage_path)
    except ValueError:
        raise Http404("The log file is not in the evidence store.") from None
    if not path.is_file():
        raise Http404("The log file is missing from storage.")
    response = FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=log.download_name,
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    response["X-Content-SHA256"] = log.sha256
    return response

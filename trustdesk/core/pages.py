"""One way to answer a page, a region of it, or a refused form (docs/architecture.md, "Reads").

- `render_page` renders the whole page, or only its `{% partialdef %}` region when htmx asks for
  that region (not for a boosted link or a history restore: those want the whole page).
- `paginate` turns a queryset and the `?page=` parameter into a Page (a bad number is page 1).
- `show_problems` puts a refusal's problems on a form, as errors not tied to one field.
- `resubmitted_at` is a refused submission's input against the record's current version.
- `run_step` is the one step runner: call the action with the form's `action_kwargs`; on a
  refusal re-render the form with the user's input and status 422 (a refused step) or 409
  (someone changed the record meanwhile); on success redirect, or answer the region for htmx.
- `Step` is a row of a page's step table (a form the page posts), `step_urls` the table's URLs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import URLPattern, path
from django.views.decorators.http import require_POST

from trustdesk.core.decorators import permission_required
from trustdesk.core.errors import Refused

MAX_PAGE = 1_000_000


def wants_partial(request: HttpRequest) -> bool:
    """An htmx request for a region (a boosted link or a history restore wants the whole page)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    partial: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """The page `template`, or its region `partial` when htmx asks for a region."""
    if partial and wants_partial(request):
        template = f"{template}#{partial}"
    return render(request, template, context, status=status)


def page_number(request: HttpRequest, name: str = "page") -> int:
    """The requested page number; anything that is not a plain positive number is page 1."""
    raw = request.GET.get(name, "")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= MAX_PAGE else 1


def paginate(request: HttpRequest, items: Any, per_page: int, *, count: int | None = None) -> Page:
    """The page of `items` the request asks for (past the end: the last page). `count`, when the
    caller already knows it, saves the COUNT query."""
    paginator = Paginator(items, per_page)
    if count is not None:
        paginator.count = count
    return paginator.get_page(page_number(request))


def show_problems(form: forms.Form, refusal: Refused, *, by_field: bool = False) -> forms.Form:
    """Put every problem of a refusal on the form and return the form. With `by_field`, a
    problem written "field: what is wrong" goes on that field when the form has it; the others
    are errors of the whole form."""
    for problem in refusal.problems:
        field, sep, text = problem.partition(": ")
        if by_field and sep and field in form.fields:
            form.add_error(field, text)
        else:
            form.add_error(None, problem)
    return form


def flash_problems(request: HttpRequest, refusal: Refused) -> None:
    """A refusal of a form-less action (a button), as error messages on the next page."""
    for problem in refusal.problems:
        messages.error(request, problem)


def refusal_status(refusal: Refused) -> int:
    """422 for a refused step, 409 when someone changed the record meanwhile."""
    return getattr(refusal, "status_code", 422)


def resubmitted_at(form: forms.Form, version: int) -> QueryDict:
    """The form's submitted data with the hidden `version` moved to `version`: after a conflict
    the form is shown again with the user's input, ready to send against the current record."""
    data = form.data.copy()
    data[form.add_prefix("version")] = str(version)
    return data


def action_kwargs(form: forms.Form) -> dict[str, Any]:
    """What a valid step form gives its action as keyword arguments: its cleaned fields, the
    hidden `version` as `expected_version`. A form whose fields are not the action's keyword
    arguments (a field named for the page, a value derived from several fields) says what they
    are in its own `action_kwargs()`."""
    if hasattr(form, "action_kwargs"):
        return form.action_kwargs()
    kwargs = dict(form.cleaned_data)
    if "version" in kwargs:
        kwargs["expected_version"] = kwargs.pop("version")
    return kwargs


def run_step(
    request: HttpRequest,
    form: forms.Form,
    action: Callable[..., Any],
    *,
    done: str | None,
    on_success: Callable[[], HttpResponse],
    on_refused: Callable[[forms.Form, Refused | None, int], HttpResponse],
) -> HttpResponse:
    """Run one step from a bound form.

    Valid input -> `action(**action_kwargs(form))` (the caller binds what is not input: the
    record, `by`); on success the message `done` (if any) and `on_success()` (a redirect, or the
    region for htmx). An invalid form or a refusal -> `on_refused(form, refusal, status)`, which
    shows the form again with its input and errors: status 422 for bad input or a refused step,
    409 for a conflict (the caller rebinds the form to the current version; the conflict's
    problems are not put on the form). An htmx request for a region gets 200 instead, because
    htmx swaps only successful answers into the page.
    """
    refusal: Refused | None = None
    if form.is_valid():
        try:
            action(**action_kwargs(form))
        except Refused as exc:
            refusal = exc
            if refusal_status(exc) != 409:
                show_problems(form, exc)
        else:
            if done:
                messages.success(request, done)
            return on_success()
    status = refusal_status(refusal) if refusal is not None else 422
    return on_refused(form, refusal, 200 if wants_partial(request) else status)


@dataclass(frozen=True)
class Step:
    """A row of a page's step table: its URL name, its route below the page's URL, and the
    action (core.roles.PERMISSIONS) whose roles may post. A table's own Step answers the POST
    in `respond(request, **url_kwargs)`."""

    name: str
    route: str
    permission: str

    def respond(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        raise NotImplementedError


def step_urls(prefix: str, steps: Iterable[Step]) -> list[URLPattern]:
    """The URLs of a step table below `prefix`: POST only, for the roles of each step."""
    return [path(prefix + step.route, _step_view(step), name=step.name) for step in steps]


def _step_view(step: Step) -> Callable[..., HttpResponse]:
    @require_POST
    @permission_required(step.permission)
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return step.respond(request, **kwargs)

    view.__name__ = view.__qualname__ = step.name
    return view

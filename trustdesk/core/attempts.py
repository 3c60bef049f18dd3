"""Running an action from a view that answers a refusal in its own way (its own status, or a page
that is not a step of an incident; steps use `core.pages.run_step`).

- `attempt` runs a submitted form's action and keeps a refusal's problems on the form:

      if dispute := attempt(form, lambda data: open_dispute(..., reason=data["reason"])):
          return redirect(dispute)
      return render(request, "page.html", {"form": form}, status=400)

- `flash_outcome` runs a button's action and leaves its outcome as a message for the next page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest

from trustdesk.core.errors import Refused
from trustdesk.core.pages import flash_problems, show_problems


def attempt[T](
    form: forms.Form, action: Callable[[dict[str, Any]], T], *, by_field: bool = False
) -> T | None:
    """`action(form.cleaned_data)` when the form is bound and valid, else None. A refused action
    gives None too, with its problems put on the form (`show_problems`, `by_field` as there).
    The action must return something true when it succeeds."""
    if not form.is_valid():
        return None
    try:
        return action(form.cleaned_data)
    except Refused as refusal:
        show_problems(form, refusal, by_field=by_field)
        return None


def flash_outcome[T](
    request: HttpRequest, action: Callable[[], T], done: str | Callable[[T], str]
) -> None:
    """Run a form-less action (a button). Done: the success message `done` (or `done(result)`);
    refused: every problem as an error message (`flash_problems`)."""
    try:
        result = action()
    except Refused as refusal:
        flash_problems(request, refusal)
    else:
        messages.success(request, done if isinstance(done, str) else done(result))

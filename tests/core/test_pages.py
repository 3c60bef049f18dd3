"""`core.pages.run_step`: a valid step form's fields reach its action as keyword arguments (the
hidden `version` as `expected_version`, or what the form's own `action_kwargs()` says); an invalid
form never reaches it, and a refusal comes back with its status."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.messages.storage.fallback import FallbackStorage
from django.http import HttpResponse
from django.test import RequestFactory

from trustdesk.core.errors import Refused
from trustdesk.core.pages import action_kwargs, run_step


class RenameForm(forms.Form):
    version = forms.IntegerField()
    title = forms.CharField(max_length=20)
    note = forms.CharField(required=False)


class NoteForm(forms.Form):
    text = forms.CharField()
    visibility = forms.ChoiceField(choices=[("internal", "Internal"), ("shareable", "Shareable")])

    def action_kwargs(self) -> dict[str, Any]:
        return {
            "text": self.cleaned_data["text"],
            "internal": self.cleaned_data["visibility"] == "internal",
        }


def _run(form: forms.Form, action) -> HttpResponse:
    request = RequestFactory().post("/")
    request.session = {}
    request._messages = FallbackStorage(request)
    return run_step(
        request,
        form,
        action,
        done="Done.",
        on_success=lambda: HttpResponse("ok"),
        on_refused=lambda form, refusal, status: HttpResponse(status=status),
    )


def test_the_fields_are_the_keyword_arguments_and_version_is_expected_version():
    form = RenameForm({"version": "7", "title": "Renamed"})
    assert form.is_valid()
    assert action_kwargs(form) == {"expected_version": 7, "title": "Renamed", "note": ""}


def test_a_form_that_names_its_arguments_itself_is_asked():
    form = NoteForm({"text": "Seen", "visibility": "shareable"})
    assert form.is_valid()
    assert action_kwargs(form) == {"text": "Seen", "internal": False}


def test_the_runner_calls_the_action_with_the_forms_keyword_arguments():
    calls: list[dict[str, Any]] = []
    response = _run(RenameForm({"version": "3", "title": "New"}), lambda **kw: calls.append(kw))
    assert response.content == b"ok"
    assert calls == [{"expected_version": 3, "title": "New", "note": ""}]


def test_an_invalid_form_never_reaches_the_action_and_a_refusal_is_422():
    calls: list[dict[str, Any]] = []
    assert _run(RenameForm({"version": "x"}), lambda **kw: calls.append(kw)).status_code == 422
    assert calls == []

    def refuse(**_: Any) -> None:
        raise Refused(["the list is closed"])

    form = RenameForm({"version": "1", "title": "New"})
    assert _run(form, refuse).status_code == 422
    assert form.non_field_errors() == ["the list is closed"]

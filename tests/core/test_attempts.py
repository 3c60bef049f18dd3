"""`core.attempts`: a valid form's action runs once and its refusal lands on the form; a button's
outcome is left as a message for the next page."""

from __future__ import annotations

from django import forms
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory

from trustdesk.core.attempts import attempt, flash_outcome
from trustdesk.core.errors import Refused


class NameForm(forms.Form):
    name = forms.CharField(max_length=10)


def _refuse(*_args):
    raise Refused(["name: is taken", "the list is closed"])


def test_a_valid_form_gives_what_its_action_returns():
    assert attempt(NameForm({"name": "ada"}), lambda data: data["name"].upper()) == "ADA"


def test_an_invalid_or_unbound_form_never_runs_the_action():
    ran = []
    assert attempt(NameForm({"name": "x" * 11}), ran.append) is None
    assert attempt(NameForm(), ran.append) is None
    assert ran == []


def test_a_refusal_gives_none_and_puts_every_problem_on_the_form():
    form = NameForm({"name": "ada"})
    assert attempt(form, _refuse) is None
    assert form.non_field_errors() == ["name: is taken", "the list is closed"]

    by_field = NameForm({"name": "ada"})
    assert attempt(by_field, _refuse, by_field=True) is None
    assert by_field.errors["name"] == ["is taken"]
    assert by_field.non_field_errors() == ["the list is closed"]


def _request():
    request = RequestFactory().post("/")
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def test_a_button_leaves_its_success_message_or_every_problem_of_its_refusal():
    done = _request()
    flash_outcome(done, lambda: 3, lambda n: f"{n} sent.")
    flash_outcome(done, lambda: None, "Saved.")
    assert [(m.level_tag, m.message) for m in get_messages(done)] == [
        ("success", "3 sent."),
        ("success", "Saved."),
    ]

    refused = _request()
    flash_outcome(refused, _refuse, "Saved.")
    assert [(m.level_tag, m.message) for m in get_messages(refused)] == [
        ("error", "name: is taken"),
        ("error", "the list is closed"),
    ]

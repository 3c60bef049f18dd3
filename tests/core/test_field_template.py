"""The one field template (templates/_field.html): what every form field of the app shows a
screen reader and a keyboard user."""

from __future__ import annotations

from django import forms
from django.template.loader import render_to_string


class _Example(forms.Form):
    name = forms.CharField(label="Name", help_text="As on the badge.")
    note = forms.CharField(label="Note", required=False)
    kinds = forms.MultipleChoiceField(
        label="Kinds",
        choices=[("a", "A"), ("b", "B")],
        widget=forms.CheckboxSelectMultiple,
        help_text="One or more.",
    )
    agree = forms.BooleanField(label="I agree", required=False)


def _field(form: forms.Form, name: str, **extra) -> str:
    return render_to_string("_field.html", {"f": form[name], **extra})


def test_a_field_is_labelled_and_its_help_text_describes_it():
    html = _field(_Example(), "name")
    assert '<label for="id_name">Name</label>' in html
    assert 'aria-describedby="id_name_helptext"' in html
    assert '<div class="help" id="id_name_helptext">As on the badge.</div>' in html
    assert "aria-invalid" not in html


def test_a_field_with_errors_is_marked_invalid_and_described_by_them():
    form = _Example(data={})
    form.is_valid()
    html = _field(form, "name")
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="id_name_helptext id_name_error"' in html
    assert 'id="id_name_error"' in html and "has-error" in html


def test_an_optional_field_says_so_unless_plain():
    assert '<span class="optional">optional</span>' in _field(_Example(), "note")
    assert "optional" not in _field(_Example(), "note", plain=True)
    assert "optional" not in _field(_Example(), "name")


def test_a_group_of_choices_is_a_fieldset_its_legend_and_description_on_the_group():
    html = _field(_Example(), "kinds")
    assert '<fieldset aria-describedby="id_kinds_helptext">' in html
    assert "<legend>Kinds</legend>" in html
    assert html.count("</fieldset>") == 1


def test_a_checkbox_sits_inside_its_label():
    html = _field(_Example(), "agree")
    assert html.count("<label") == 1
    assert '<label class="checkbox" for="id_agree"><input type="checkbox"' in html


def test_the_form_errors_show_what_belongs_to_no_field_under_a_heading():
    form = _Example(data={"name": "x", "kinds": ["a"]})
    form.is_valid()
    form.add_error(None, "Nothing else may be saved today.")
    html = render_to_string("_form_errors.html", {"form": form, "heading": "Not kept."})
    assert 'role="alert"><strong>Not kept.</strong>' in html
    assert "<li>Nothing else may be saved today.</li>" in html

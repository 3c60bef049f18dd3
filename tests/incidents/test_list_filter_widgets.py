"""The list's filter selects reuse their rendered HTML: it must be exactly Django's, whatever
the value, the error state or the options."""

from __future__ import annotations

import pytest
from django import forms

from tests.factories import AgentFactory
from trustdesk.incidents.forms import IncidentFilterForm, SelectWidget

pytestmark = pytest.mark.django_db


def _plain(data) -> IncidentFilterForm:
    form = IncidentFilterForm(data)
    for field in form.fields.values():
        if isinstance(field.widget, SelectWidget):
            field.widget = forms.Select(attrs=field.widget.attrs)
            field.widget.choices = field.choices
    return form


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"state": "contained", "sort": "key"},
        {"state": "bogus", "severity": "sev1"},
        {"agent": "agent-x", "status": "open"},
        {"agent": "nope", "assumption": "nope"},
    ],
)
def test_filter_selects_render_exactly_like_djangos_select(data):
    AgentFactory(key="agent-x", name="Agent <X>")
    fields = IncidentFilterForm().fields.items()
    names = [n for n, f in fields if isinstance(f.widget, SelectWidget)]
    assert set(names) == {"state", "agent", "severity", "assumption", "status", "mine", "sort"}
    for _ in range(2):  # the second time comes from the memo
        form, plain = IncidentFilterForm(data), _plain(data)
        form.is_valid(), plain.is_valid()
        for name in names:
            assert str(form[name]) == str(plain[name])


def test_a_new_agent_shows_up_in_the_agent_select():
    AgentFactory(key="agent-x")
    assert "agent-y" not in str(IncidentFilterForm({})["agent"])
    AgentFactory(key="agent-y")
    assert 'value="agent-y"' in str(IncidentFilterForm({})["agent"])

"""GET filter forms of the metrics pages: every parameter is validated here, never in a view."""

from __future__ import annotations

from django import forms

from trustdesk.metrics.compute import DRILLDOWN
from trustdesk.metrics.refresh import ROLLING_DAYS, WINDOW_CHOICES, week_window
from trustdesk.pacts.forms import KeyField
from trustdesk.pacts.models import Agent

DEFAULT_WINDOW = "30d"

# The counts now have a single part: the rows they count.
COUNT_PARTS = {
    "open_count": {"count": "Open incidents"},
    "unclassified_count": {"count": "Incidents with no classification"},
    "stale_pacts": {"count": "Active pact versions past their review date"},
    "restricted_agents": {"count": "Agents whose scope is restricted or suspended"},
}


def parts_of(metric: str) -> dict[str, str]:
    if metric in DRILLDOWN:
        return {part: spec[0] for part, spec in DRILLDOWN[metric].items()}
    return COUNT_PARTS.get(metric, {})


class DashboardFilterForm(forms.Form):
    window = forms.ChoiceField(choices=WINDOW_CHOICES, required=False, label="Window")
    agent = forms.ChoiceField(required=False, label="Agent")

    def __init__(self, data, *, agents: list[tuple[str, str]]):
        super().__init__(data)
        self.fields["agent"].choices = [("", "All agents"), *agents]

    def params(self) -> tuple[str, str]:
        """The window and agent key to show: what is valid of the input, else the defaults."""
        if not self.is_bound:
            return DEFAULT_WINDOW, ""
        self.is_valid()
        cleaned = self.cleaned_data  # only the fields that validated
        return cleaned.get("window") or DEFAULT_WINDOW, cleaned.get("agent") or ""


class RefreshForm(forms.Form):
    """Where to come back to after a recompute."""

    window = forms.ChoiceField(choices=WINDOW_CHOICES, required=False)
    agent = forms.SlugField(required=False, max_length=80)


class DrilldownForm(forms.Form):
    window = forms.CharField(required=False, max_length=20)
    agent = KeyField(
        Agent.objects.all(), missing="No agent with key {key!r}.", required=False, max_length=80
    )
    part = forms.ChoiceField(required=False)
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)
    format = forms.ChoiceField(required=False, choices=[("", "page"), ("csv", "CSV")])

    def __init__(self, data, *, metric: str):
        super().__init__(data)
        self.metric = metric
        parts = parts_of(metric)
        self.fields["part"].choices = [("", "default"), *parts.items()]
        self.default_part = next(iter(parts))

    def clean_window(self) -> str:
        window = self.cleaned_data.get("window") or DEFAULT_WINDOW
        if window in ROLLING_DAYS or window == "all" or week_window(window) is not None:
            return window
        raise forms.ValidationError(
            "Unknown window: use 7d, 30d, 90d, all or an ISO week such as 2026-W45."
        )

    def clean_part(self) -> str:
        return self.cleaned_data.get("part") or self.default_part

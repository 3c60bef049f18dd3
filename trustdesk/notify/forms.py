"""Forms of the webhook and notification pages."""

from __future__ import annotations

from django import forms

from trustdesk.notify.events import EVENT_CHOICES, SEVERITIES


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="Endpoint URL",
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://example.org/hooks/trustdesk"}),
        help_text="http or https only. Redirects are not followed.",
    )
    description = forms.CharField(label="Description", max_length=200, required=False)
    events = forms.MultipleChoiceField(
        label="Event types", choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple
    )
    secret = forms.CharField(
        label="Signing secret",
        max_length=120,
        required=False,
        help_text="Leave empty to generate one (whsec_…); it is shown once.",
    )


class ChannelForm(forms.Form):
    name = forms.CharField(label="Name", max_length=120)
    apprise_url = forms.CharField(
        label="Apprise URL",
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "slack://…, msteams://…, mailtos://…"}),
        help_text="Any Apprise URL: Slack, Teams, Matrix, e-mail, a JSON endpoint (json://…).",
    )
    events = forms.MultipleChoiceField(
        label="Event types", choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple
    )
    min_severity = forms.ChoiceField(
        label="Minimum severity",
        required=False,
        choices=[("", "Every severity"), *[(s, f"{s.upper()} or worse") for s in SEVERITIES]],
        help_text="Events without a severity (a stale pact, a viewed link) always pass.",
    )


class DisableForm(forms.Form):
    reason = forms.CharField(label="Why disable it", max_length=500, required=False)

"""Forms of the ownership panel and the filing page: roles, action items, assessments, filed
reports, closing what was not an incident, reclassification. Shape checks only; the functions in
`ownership` and `obligations` check the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from trustdesk.core.roles import ROLES
from trustdesk.incidents.forms import DATETIME_LOCAL, VersionedForm
from trustdesk.incidents.models import ActionStatus, Incident, IncidentRoleName
from trustdesk.incidents.ownership import CLOSE_REASONS
from trustdesk.pacts.forms import KeyField

ASSESSMENT_LABELS = {
    "serious": "Serious incident (EU AI Act Art. 3(49))",
    "death": "A person died",
    "widespread_infringement": "Widespread infringement",
    "critical_infrastructure_irreversible": (
        "Serious and irreversible disruption of critical infrastructure"
    ),
    "personal_data_breach": "Personal data breach (GDPR)",
    "significant": "Significant incident (NIS2 Art. 23(3))",
}


def _when_widget() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL)


class _PeopleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_username()


def people():
    """Users with a role: who can hold an incident role or own an action item."""
    return (
        get_user_model()
        .objects.filter(groups__name__in=ROLES, is_active=True)
        .distinct()
        .order_by("username")
    )


class AssignForm(forms.Form):
    role = forms.ChoiceField(choices=IncidentRoleName.choices)
    user = _PeopleChoiceField(queryset=None, label="Person", empty_label="Choose")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = people()


class UnassignForm(forms.Form):
    """The remove button beside a role holder on the ownership panel: the role and the person
    travel as hidden fields."""

    role = forms.ChoiceField(choices=IncidentRoleName.choices, widget=forms.HiddenInput)
    user = forms.ModelChoiceField(queryset=None, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = get_user_model().objects.all()


class ActionItemForm(forms.Form):
    title = forms.CharField(max_length=300, label="What is to be done")
    owner = _PeopleChoiceField(queryset=None, required=False, empty_label="Nobody yet")
    due = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    ticket = forms.URLField(required=False, max_length=2000, label="Ticket link")
    change_seq = forms.TypedChoiceField(
        label="Delivers the operating-model change",
        required=False,
        coerce=int,
        empty_value=None,
        choices=(),
    )
    required = forms.BooleanField(required=False, label="Required for re-entry")

    def __init__(self, *args: Any, changes: list[tuple[int, str]] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = people()
        self.fields["change_seq"].choices = [("", "None"), *changes]


class ActionStatusForm(forms.Form):
    status = forms.ChoiceField(choices=ActionStatus.choices)
    reason = forms.CharField(
        required=False, max_length=2000, help_text="Needed for “won't do”.", label="Reason"
    )


class AssessForm(forms.Form):
    serious = forms.BooleanField(required=False, label=ASSESSMENT_LABELS["serious"])
    death = forms.BooleanField(required=False, label=ASSESSMENT_LABELS["death"])
    widespread_infringement = forms.BooleanField(
        required=False, label=ASSESSMENT_LABELS["widespread_infringement"]
    )
    critical_infrastructure_irreversible = forms.BooleanField(
        required=False, label=ASSESSMENT_LABELS["critical_infrastructure_irreversible"]
    )
    personal_data_breach = forms.BooleanField(
        required=False, label=ASSESSMENT_LABELS["personal_data_breach"]
    )
    significant = forms.BooleanField(required=False, label=ASSESSMENT_LABELS["significant"])
    aware_at = forms.DateTimeField(
        label="Aware since (UTC)",
        widget=_when_widget(),
        help_text="When the organisation became aware; the reporting clocks start here.",
    )
    note = forms.CharField(required=False, max_length=5000, widget=forms.Textarea({"rows": 2}))

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("initial", {}).setdefault("aware_at", timezone.now())
        super().__init__(*args, **kwargs)

    def action_kwargs(self) -> dict[str, Any]:
        """The ticked boxes go to `obligations.assess_incident` as one `flags` mapping."""
        d = self.cleaned_data
        flags = {name: bool(d.get(name)) for name in ASSESSMENT_LABELS}
        return {"flags": flags, "aware_at": d["aware_at"], "note": d.get("note", "")}


class ReportFiledForm(forms.Form):
    reference = forms.CharField(
        max_length=300, help_text="The authority's reference or your submission number."
    )
    filed_at = forms.DateTimeField(label="Filed at (UTC)", widget=_when_widget())
    report = forms.CharField(
        label="The report as filed",
        max_length=200_000,
        widget=forms.Textarea(attrs={"rows": 14}),
        help_text="Its SHA-256 is recorded on the incident's log.",
    )

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("initial", {}).setdefault("filed_at", timezone.now())
        super().__init__(*args, **kwargs)


class CloseNotIncidentForm(VersionedForm):
    reason = forms.ChoiceField(
        choices=list(CLOSE_REASONS.items()), widget=forms.RadioSelect, label="It was"
    )
    duplicate_of = KeyField(
        Incident.objects.all(),
        missing="There is no incident {key}.",
        upper=True,
        required=False,
        max_length=30,
        label="Duplicate of",
        help_text="An incident key: INC-42.",
    )
    explanation = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))

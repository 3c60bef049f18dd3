"""Every input of the reviews pages goes through one of these forms (GET filters included).

The forms check shape; `reviews.actions` checks the rules. A step form carries the incident
`version` the page showed, so a concurrent change is caught (ConflictError) instead of applied.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from trustdesk.core.bounds import EARLIEST_TIME, planned_time_problem
from trustdesk.core.roles import ROLE_LABELS, user_roles
from trustdesk.incidents.models import Incident, State
from trustdesk.pacts.models import Agent, PactVersion
from trustdesk.reviews.actions import MAX_AGENDA, WORKS_REVIEWS
from trustdesk.reviews.conditions import KINDS, SIGNOFF_ROLES
from trustdesk.reviews.models import Decision, OperatingModelChangeKind
from trustdesk.taxonomy import ASSUMPTION_CHOICES

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


class OwnIdsMixin:
    """The incident page holds several of these forms at once: each renders its fields with ids
    of its own ("change-kind", "condition-kind", "decision-version"), so a label never
    names another form's field. Field names, and so what views read, stay unprefixed; a form
    given a `prefix` (the meeting screen) keeps Django's ids, which the prefix already separates.
    """

    id_prefix = ""

    def __init__(self, *args: Any, **kwargs: Any):
        if self.id_prefix and not kwargs.get("prefix"):
            kwargs.setdefault("auto_id", f"{self.id_prefix}-%s")
        super().__init__(*args, **kwargs)


class VersionedForm(OwnIdsMixin, forms.Form):
    """A step on one incident: carries the version the page showed."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0, max_value=2**31 - 1)


# ---------------------------------------------------------------- incident panel


class OperatingModelChangeForm(VersionedForm):
    id_prefix = "change"

    kind = forms.ChoiceField(
        label="What changed around the agent",
        choices=OperatingModelChangeKind.choices,
    )
    summary = forms.CharField(
        label="Summary",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What is different now, in words someone outside the team can follow.",
    )
    pact_version = forms.ModelChoiceField(
        label="New pact version (for a pact amendment)",
        queryset=PactVersion.objects.none(),
        required=False,
        empty_label="—",
    )

    def __init__(self, *args: Any, newer_versions=None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if newer_versions is not None:
            self.fields["pact_version"].queryset = newer_versions
            self.fields["pact_version"].label_from_instance = lambda v: (
                f"{v.label} ({v.get_status_display().lower()})"
            )


class ReentryConditionForm(VersionedForm):
    """One form for the six kinds: the fields a kind does not use are ignored."""

    id_prefix = "condition"

    kind = forms.ChoiceField(
        label="Kind",
        choices=[(spec.kind, spec.label) for spec in KINDS.values()],
        help_text="Fill in the parameters of the chosen kind below; the statement is written "
        "from them.",
    )
    clause = forms.ChoiceField(label="Clause", required=False, choices=[])
    min_rate = forms.DecimalField(
        label="Minimum pass rate, 0 to 1",
        required=False,
        min_value=0,
        max_value=1,
        max_digits=5,
        decimal_places=4,
    )
    last_n = forms.IntegerField(label="Over the last N evaluations", required=False, min_value=1)
    assumption = forms.ChoiceField(
        label="Assumption class",
        required=False,
        choices=[("", "—"), *ASSUMPTION_CHOICES],
    )
    days = forms.IntegerField(label="For N days", required=False, min_value=1)
    roles = forms.MultipleChoiceField(
        label="Roles that must sign off",
        required=False,
        choices=[(r, ROLE_LABELS[r]) for r in SIGNOFF_ROLES],
        widget=forms.CheckboxSelectMultiple,
    )
    min_roles = forms.IntegerField(label="How many distinct roles", required=False, min_value=1)

    def __init__(self, *args: Any, clause_keys=(), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["clause"].choices = [("", "—"), *((k, k) for k in clause_keys)]

    def action_kwargs(self) -> dict[str, Any]:
        """The kind and its parameters, for `actions.set_reentry_condition` to validate."""
        d = self.cleaned_data
        return {"expected_version": d["version"], "kind": d["kind"], "params": self.params()}

    def params(self) -> dict[str, Any]:
        """The parameters of the chosen kind."""
        d = self.cleaned_data
        kind = d["kind"]
        if kind == "evaluation_pass_rate":
            return {"clause": d.get("clause"), "min": d.get("min_rate"), "last_n": d.get("last_n")}
        if kind == "no_incidents":
            return {"assumption": d.get("assumption"), "days": d.get("days")}
        if kind == "signoffs":
            return {"roles": d.get("roles") or [], "min": d.get("min_roles")}
        return {}


class SignOffForm(VersionedForm):
    id_prefix = "signoff"

    role = forms.ChoiceField(label="Sign off as", choices=[])
    comment = forms.CharField(
        label="Comment", required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )
    shareable = forms.BooleanField(
        label="Share this sign-off and its comment with buyers (share links)",
        required=False,
        help_text="Unticked, it stays internal: buyers see only that an event was withheld.",
    )

    def __init__(self, *args: Any, user=None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        held = user_roles(user) if user is not None else frozenset()
        self.fields["role"].choices = [(r, ROLE_LABELS[r]) for r in SIGNOFF_ROLES if r in held]


class RequestReviewForm(VersionedForm):
    id_prefix = "request"

    pass


class DecisionForm(VersionedForm):
    id_prefix = "decision"

    decision = forms.ChoiceField(
        label="Decision", choices=Decision.choices, widget=forms.RadioSelect
    )
    rationale = forms.CharField(
        label="Rationale",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Why this decision, so that someone who was not in the room can explain it.",
    )
    override = forms.BooleanField(
        label="Override: reopen although a gate or condition is unmet", required=False
    )
    justification = forms.CharField(
        label="Justification of the override",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required for an override; it is stored with the decision and counted.",
    )
    # Set by the confirmation page that showed what the override skips (views._confirm_override).
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, can_override: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not can_override:
            # Only incident managers see (and can send) the override fields.
            del self.fields["override"]
            del self.fields["justification"]

    def action_kwargs(self) -> dict[str, Any]:
        """For `actions.record_recovery_decision`. After the confirmation page (`confirm`), the
        list it showed as skipped comes back as `skip` values; None when no page was shown."""
        d = self.cleaned_data
        return {
            "expected_version": d["version"],
            "decision": d["decision"],
            "rationale": d["rationale"],
            "justification": d.get("justification", ""),
            "override_requested": d.get("override", False),
            "confirmed_skips": self.data.getlist(self.add_prefix("skip")) if d["confirm"] else None,
        }


class AttestationForm(OwnIdsMixin, forms.Form):
    id_prefix = "attest"

    can_explain = forms.TypedChoiceField(
        label="Can you explain this decision from this page alone?",
        choices=[("yes", "Yes, I can explain it"), ("no", "No, something is missing")],
        coerce=lambda v: v == "yes",
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label="Comment", max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )


# ---------------------------------------------------------------- meetings


def _reviewers():
    User = get_user_model()
    return (
        User.objects.filter(is_active=True, groups__name__in=WORKS_REVIEWS)
        .distinct()
        .order_by("username")
    )


class MeetingForm(forms.Form):
    def clean_scheduled_at(self):
        scheduled_at = self.cleaned_data["scheduled_at"]
        if problem := planned_time_problem(scheduled_at):
            raise forms.ValidationError(f"The meeting time {problem}.")
        return scheduled_at

    title = forms.CharField(label="Title", max_length=200)
    scheduled_at = forms.DateTimeField(
        label="When (UTC)",
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    facilitator = forms.ModelChoiceField(label="Facilitator", queryset=None)
    agenda = forms.ModelMultipleChoiceField(
        label="Agenda: incidents in review",
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Typed and shown in the person's zone (activated per request by UserTimeZoneMiddleware);
        # DateTimeField stores the UTC instant.
        scheduled = self.fields["scheduled_at"]
        scheduled.label = f"When ({timezone.get_current_timezone_name()})"
        scheduled.widget.attrs["min"] = timezone.localtime(EARLIEST_TIME).strftime(DATETIME_LOCAL)
        self.fields["facilitator"].queryset = _reviewers()
        self.fields["agenda"].queryset = (
            Incident.objects.filter(state=State.IN_REVIEW)
            .select_related("agent")
            .order_by("review_requested_at", "number")
        )
        self.fields["agenda"].label_from_instance = lambda i: f"{i.key} · {i.agent} · {i.title}"
        self.fields["facilitator"].label_from_instance = lambda u: (
            u.get_full_name() or u.get_username()
        )

    def clean_agenda(self):
        agenda = self.cleaned_data["agenda"]
        if len(agenda) > MAX_AGENDA:
            raise forms.ValidationError(f"A meeting takes at most {MAX_AGENDA} incidents.")
        return agenda


class AgendaItemForm(forms.Form):
    incident = forms.ModelChoiceField(label="Add an incident in review", queryset=None)

    def __init__(self, *args: Any, meeting=None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        qs = Incident.objects.filter(state=State.IN_REVIEW).select_related("agent")
        if meeting is not None:
            qs = qs.exclude(review_meetings=meeting)
        self.fields["incident"].queryset = qs.order_by("number")
        self.fields["incident"].label_from_instance = lambda i: f"{i.key} · {i.title}"


class NoteForm(forms.Form):
    text = forms.CharField(
        label="Add to the notes", max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )


class ChangesForm(forms.Form):
    since = forms.CharField(required=False, max_length=100)


# ---------------------------------------------------------------- list filters


REVIEW_STATES = [
    ("in_review", "In review"),
    ("repaired", "Repaired, review not requested"),
    ("open", "Any open state"),
]
CONDITION_FILTERS = [
    ("", "Any"),
    ("all_met", "Every condition met"),
    ("unmet", "Some condition unmet"),
    ("unchecked", "Some condition not checked yet"),
    ("none", "No condition yet"),
]


class ReviewFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=100)
    state = forms.ChoiceField(label="State", required=False, choices=REVIEW_STATES)
    agent = forms.ModelChoiceField(
        label="Agent",
        required=False,
        queryset=Agent.objects.order_by("key"),
        to_field_name="key",
        empty_label="All agents",
    )
    conditions = forms.ChoiceField(label="Conditions", required=False, choices=CONDITION_FILTERS)
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


MEETING_WHEN = [("", "All"), ("upcoming", "Upcoming"), ("past", "Past")]


class MeetingFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=100)
    when = forms.ChoiceField(label="When", required=False, choices=MEETING_WHEN)
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


def initial_meeting_time():
    now = timezone.now().replace(second=0, microsecond=0)
    return now + timezone.timedelta(hours=1)

"""Every input of the incident pages goes through one of these forms (GET filters included).

The forms check shape and consistency only; the lifecycle checks the gates. A step form carries
the incident `version` the page showed, so a concurrent change is caught (ConflictError).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from trustdesk.core.bounds import EARLIEST_TIME, past_time_problem
from trustdesk.core.submissions import new_token
from trustdesk.incidents.models import (
    STATE_ORDER,
    ContainmentAction,
    Evidence,
    Incident,
    Severity,
    State,
)
from trustdesk.pacts.forms import dispute_outcome_field, search_field
from trustdesk.pacts.models import Agent, Clause, EvidenceKind, PactVersion, Scope
from trustdesk.taxonomy import ASSUMPTION_CHOICES, ASSUMPTIONS, CONFIDENCE_CHOICES, HARM_CHOICES

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


def _blank(label: str, choices) -> list[tuple[str, str]]:
    return [("", label), *choices]


# ---------------------------------------------------------------- the list's GET form

# Whitelisted sort keys; a leading "-" means descending. The key column sorts by number, so
# INC-10 comes after INC-9. Ties break on number so pages never overlap.
SORTS = {
    "detected": ("detected_at", "number"),
    "severity": ("severity", "number"),
    "state": ("state_rank", "number"),
    "key": ("number",),
}
SORT_CHOICES = [
    ("-detected", "Newest detection first"),
    ("detected", "Oldest detection first"),
    ("severity", "Most severe first"),
    ("-severity", "Least severe first"),
    ("state", "Earliest state first"),
    ("-state", "Latest state first"),
    ("-key", "Highest key first"),
    ("key", "Lowest key first"),
]
DEFAULT_SORT = "-detected"


class _OneQueryChoiceIterator(forms.models.ModelChoiceIterator):
    """The options from one plain query. Django's default iterates with `.iterator()`, which on
    PostgreSQL opens a server-side cursor: three round trips (DECLARE, FETCH, CLOSE) for the
    handful of rows of a filter's select."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset.all():
            yield self.choice(obj)


class _OneQueryModelChoiceField(forms.ModelChoiceField):
    iterator = _OneQueryChoiceIterator


class SelectWidget(forms.Select):
    """A Select whose HTML, a pure function of its name, value, attributes and options, is
    rendered once per process and reused: the filter bar renders the same few selects on every
    list request, and Django's template-per-option rendering is most of the bar's cost.
    (Named SelectWidget so that its `widget_type`, in the field's CSS class, stays "select".)"""

    _memo: dict[tuple, str] = {}
    _MEMO_SIZE = 512

    def render(self, name, value, attrs=None, renderer=None):
        # Read the options once (a model field's query runs here, once) and render from them.
        self.choices = [(v, label) for v, label in self.choices]
        key = (
            type(self),
            self.template_name,
            name,
            repr(self.format_value(value)),
            repr(sorted(self.build_attrs(self.attrs, attrs).items())),
            tuple((str(v), str(label)) for v, label in self.choices),
            id(renderer),
        )
        html = self._memo.get(key)
        if html is None:
            html = super().render(name, value, attrs, renderer)
            if len(self._memo) >= self._MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = html
        return html


def _filter_choice(label: str, any_label: str, choices) -> forms.ChoiceField:
    """A select of the list's filter bar; its empty choice, `any_label`, filters nothing."""
    return forms.ChoiceField(
        label=label, required=False, choices=_blank(any_label, choices), widget=SelectWidget
    )


class IncidentFilterForm(forms.Form):
    q = search_field("INC-42 or words of the title", max_length=200)
    state = _filter_choice("State", "Any state", State.choices)
    agent = _OneQueryModelChoiceField(
        label="Agent",
        required=False,
        queryset=Agent.objects.only("key", "name").order_by("key"),
        to_field_name="key",
        empty_label="Any agent",
        widget=SelectWidget,
    )
    severity = _filter_choice("Severity", "Any severity", Severity.choices)
    assumption = _filter_choice("Broken assumption", "Any class", ASSUMPTION_CHOICES)
    status = _filter_choice(
        "Open or closed", "Open and closed", [("open", "Open"), ("closed", "Closed")]
    )
    mine = _filter_choice("Lead", "Anyone leads", [("led", "Led by me")])
    sort = forms.ChoiceField(
        label="Sort", required=False, choices=SORT_CHOICES, widget=SelectWidget
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any):
        self.user = user
        super().__init__(*args, **kwargs)

    def values(self) -> dict[str, Any]:
        """The valid filters; an invalid field is ignored (its error is shown beside it)."""
        self.is_valid()
        return {k: v for k, v in self.cleaned_data.items() if v not in ("", None)}

    def filter(self, incidents: QuerySet[Incident], *, skip_state: bool = False) -> QuerySet:
        values = self.values()
        if q := values.get("q", "").strip():
            match = Q(title__icontains=q) | Q(key__iexact=q)
            # "42" and "inc-42" both find INC-42.
            digits = q.upper().removeprefix("INC-").strip()
            if digits.isdigit() and len(digits) < 10:
                match |= Q(number=int(digits))
            incidents = incidents.filter(match)
        if (state := values.get("state")) and not skip_state:
            incidents = incidents.filter(state=state)
        if agent := values.get("agent"):
            incidents = incidents.for_agent(agent)
        if severity := values.get("severity"):
            incidents = incidents.filter(severity=severity)
        if assumption := values.get("assumption"):
            incidents = incidents.filter(assumption=assumption)
        if values.get("status") == "open":
            incidents = incidents.open()
        elif values.get("status") == "closed":
            incidents = incidents.closed()
        if values.get("mine") == "led" and self.user is not None:
            from trustdesk.incidents.ownership import led_by

            incidents = incidents.filter(led_by(self.user))
        return incidents

    @property
    def sort_key(self) -> str:
        return self.values().get("sort") or DEFAULT_SORT

    def order(self, incidents: QuerySet[Incident]) -> QuerySet[Incident]:
        key = self.sort_key
        descending = key.startswith("-")
        fields = SORTS[key.lstrip("-")]
        if "state_rank" in fields:
            incidents = incidents.annotate(
                state_rank=Case(
                    *(When(state=s, then=Value(i)) for i, s in enumerate(STATE_ORDER)),
                    output_field=IntegerField(),
                )
            )
        return incidents.order_by(*(f"-{f}" if descending else f for f in fields))


# ---------------------------------------------------------------- shared pieces


class VersionedForm(forms.Form):
    """A step form: `version` is the incident version the page showed (optimistic lock)."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0, max_value=2**31 - 1)

    def __init__(self, *args: Any, incident: Incident, **kwargs: Any):
        self.incident = incident
        kwargs.setdefault("initial", {}).setdefault("version", incident.version)
        super().__init__(*args, **kwargs)


def _containment_action(empty_label: str, *, required: bool) -> forms.ChoiceField:
    """The containment action, of the containment step and of a new incident contained at once."""
    return forms.ChoiceField(
        label="Containment action",
        required=required,
        choices=_blank(empty_label, ContainmentAction.choices),
        help_text=(
            "Restrict, suspend, roll back, pull the kill switch or put a human in the loop; "
            "or record that the scope does not change, with a reason."
        ),
    )


def _scope_after() -> forms.ChoiceField:
    return forms.ChoiceField(
        label="Agent scope after containment",
        required=False,
        choices=_blank("Choose the scope", Scope.choices),
    )


# ---------------------------------------------------------------- new incident


def _clause_label(clause: Clause) -> str:
    statement = clause.statement if len(clause.statement) <= 90 else clause.statement[:89] + "…"
    return f"{clause.version.label} · {clause.key}: {statement}"


class ClauseChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Clause) -> str:
        return _clause_label(obj)


class PactVersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: PactVersion) -> str:
        return f"{obj.label} · {obj.pact.title} ({obj.pact.agent.key})"


class NewIncidentForm(forms.Form):
    agent = forms.ModelChoiceField(
        queryset=Agent.objects.filter(retired_at__isnull=True).order_by("key"),
        to_field_name="key",
        empty_label="Choose the agent",
    )
    pact_version = PactVersionChoiceField(
        label="Pact version in force",
        required=False,
        queryset=PactVersion.objects.active().select_related("pact__agent").order_by("pact__key"),
        empty_label="No pact version",
        help_text="The active versions of the agent's pacts.",
    )
    clauses = ClauseChoiceField(
        label="Clause(s) breached",
        required=False,
        queryset=Clause.objects.filter(version__status="active")
        .select_related("version__pact")
        .order_by("version__pact__key", "position"),
        widget=forms.CheckboxSelectMultiple,
    )
    severity = forms.ChoiceField(choices=_blank("Choose a severity", Severity.choices))
    detected_at = forms.DateTimeField(
        label="Detected at (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
        help_text="When it happened. Backdating is fine; the future is not.",
    )
    title = forms.CharField(max_length=300)
    summary = forms.CharField(required=False, max_length=20_000, widget=forms.Textarea)
    contain_action = _containment_action("Not contained yet", required=False)
    contain_scope_after = _scope_after()
    contain_reason = forms.CharField(
        label="Containment reason",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    # One token per rendered form: the same POST sent twice opens one incident (core.submissions).
    submission = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, agent: Agent | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("submission", new_token())
        # Typed, shown and bounded in the person's zone (activated per request by
        # UserTimeZoneMiddleware); DateTimeField stores the UTC instant.
        detected = self.fields["detected_at"]
        detected.label = f"Detected at ({timezone.get_current_timezone_name()})"
        detected.widget.attrs["max"] = timezone.localtime().strftime(DATETIME_LOCAL)
        detected.widget.attrs["min"] = timezone.localtime(EARLIEST_TIME).strftime(DATETIME_LOCAL)
        if agent is not None:
            # Narrow the choices to the chosen agent's active pact versions (htmx refresh).
            self.fields["pact_version"].queryset = self.fields["pact_version"].queryset.filter(
                pact__agent=agent
            )
            self.fields["clauses"].queryset = self.fields["clauses"].queryset.filter(
                version__pact__agent=agent
            )

    def clean_title(self) -> str:
        title = self.cleaned_data["title"].strip()
        if not title:
            raise forms.ValidationError("Give the incident a title.")
        return title

    def clean_detected_at(self):
        detected_at = self.cleaned_data["detected_at"]
        if problem := past_time_problem(detected_at):
            raise forms.ValidationError(f"The detection time {problem}.")
        return detected_at

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        agent, version = data.get("agent"), data.get("pact_version")
        clauses = data.get("clauses") or []
        if agent and version and version.pact.agent_id != agent.pk:
            self.add_error("pact_version", f"This pact version is not one of {agent.key}'s pacts.")
        if clauses and not version:
            self.add_error("pact_version", "Choose the pact version the clauses belong to.")
        elif version and any(c.version_id != version.pk for c in clauses):
            self.add_error("clauses", f"Choose clauses of {version.label} only.")
        action = data.get("contain_action", "")
        scope_after = data.get("contain_scope_after", "")
        reason = data.get("contain_reason", "")
        if not action and (scope_after or reason.strip()):
            self.add_error(
                "contain_action", "Choose a containment action, or leave the containment empty."
            )
        return data


# ---------------------------------------------------------------- the steps


class ContainForm(VersionedForm):
    action = _containment_action("Choose an action", required=True)
    scope_after = _scope_after()
    reason = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )


class ApplyContainmentForm(VersionedForm):
    """The one-click containment a pact breach proposes: only the version travels."""


class EvidenceForm(VersionedForm):
    kind = forms.ChoiceField(choices=_blank("Choose a kind", EvidenceKind.choices))
    description = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))
    upload = forms.FileField(
        label="File",
        required=False,
        help_text="Stored by its SHA-256 and always downloaded, never displayed.",
    )
    text = forms.CharField(
        label="Or paste text",
        required=False,
        max_length=1_000_000,
        widget=forms.Textarea(attrs={"rows": 4, "class": "code-small"}),
    )
    url = forms.URLField(label="Or a link", required=False, max_length=2000, assume_scheme="https")
    supersedes = forms.TypedChoiceField(
        label="Corrects (supersedes)",
        required=False,
        coerce=int,
        empty_value=None,
        help_text="A correction is a new item; the old one stays on record.",
    )

    def __init__(self, *args: Any, evidence: list[Evidence] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Choices from the evidence the page already fetched: no query of its own.
        self.current_evidence = {
            e.pk: e for e in evidence if getattr(e, "superseded_by", None) is None
        }
        self.fields["supersedes"].choices = _blank(
            "Nothing (new item)",
            [
                (e.pk, f"#{e.pk} {e.get_kind_display()}: {e.description[:60]}")
                for e in self.current_evidence.values()
            ],
        )
        self.fields[
            "upload"
        ].help_text += f" At most {filesizeformat(settings.EVIDENCE_MAX_BYTES)}."

    def clean_supersedes(self) -> Evidence | None:
        pk = self.cleaned_data.get("supersedes")
        return None if pk is None else self.current_evidence.get(pk)


class PreserveForm(VersionedForm):
    acknowledged_gaps = forms.MultipleChoiceField(
        label="Acknowledge missing kinds",
        required=False,
        choices=(),
        widget=forms.CheckboxSelectMultiple,
        help_text="Only for kinds that cannot be collected; completeness stays below 100%.",
    )
    reason = forms.CharField(
        label="Why the gaps are acceptable",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, missing_kinds: list[str] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        labels = dict(EvidenceKind.choices)
        self.fields["acknowledged_gaps"].choices = [(k, labels.get(k, k)) for k in missing_kinds]
        if not missing_kinds:
            self.fields["acknowledged_gaps"].widget = forms.MultipleHiddenInput()


# The UI explains each class where it is chosen (docs/design.md section 5).
ASSUMPTION_EXPLAINED = [(a.key, f"{a.label}: {a.assumption}") for a in ASSUMPTIONS]


class ClassifyForm(VersionedForm):
    assumption = forms.ChoiceField(
        label="Broken assumption",
        choices=ASSUMPTION_EXPLAINED,
        widget=forms.RadioSelect,
    )
    statement = forms.CharField(
        label="What broke, in one plain statement",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    clauses = forms.MultipleChoiceField(
        label="Clause(s) concerned", choices=(), widget=forms.CheckboxSelectMultiple
    )
    confidence = forms.ChoiceField(choices=_blank("Choose", CONFIDENCE_CHOICES))
    harm_category = forms.ChoiceField(
        label="Harm category",
        required=False,
        choices=_blank("No harm to people or property", HARM_CHOICES),
    )
    secondary = forms.MultipleChoiceField(
        label="Also involved",
        required=False,
        choices=ASSUMPTION_CHOICES,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, clauses: list[Clause] = (), **kwargs: Any):
        self.clause_objects = {c.key: c for c in clauses}
        super().__init__(*args, **kwargs)
        self.fields["clauses"].choices = [(c.key, _clause_label(c)) for c in clauses]
        self.fields["clauses"].help_text = (
            "" if clauses else "This incident has no pact version, so there is no clause to name."
        )

    def clean_clauses(self) -> list[Clause]:
        return [self.clause_objects[k] for k in self.cleaned_data["clauses"]]


class RepairForm(VersionedForm):
    summary = forms.CharField(
        label="What was fixed", max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )
    reference = forms.CharField(
        label="Reference",
        max_length=500,
        help_text="A change request, commit, ticket or release that someone else can look up.",
    )
    # Shown only while a report that must come first (EU AI Act Art. 73(6)) is unfiled.
    override = forms.BooleanField(
        label="Override: repair before the authority is informed",
        required=False,
        help_text="Only an incident manager may; it is recorded and counted as an override.",
    )
    justification = forms.CharField(
        label="Justification",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        from trustdesk.incidents.obligations import repair_blockers

        # Repair is only the next step when classified; no query otherwise.
        if self.incident.state != State.CLASSIFIED or not repair_blockers(self.incident):
            del self.fields["override"], self.fields["justification"]


class NoteForm(forms.Form):
    # CharField strips the text, so blank text fails "required" and gets these words.
    text = forms.CharField(
        label="Note",
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Write the note."},
    )
    visibility = forms.ChoiceField(
        choices=[
            ("internal", "Internal: never leaves TrustDesk"),
            ("shareable", "Shareable: buyers may see it through a diligence link"),
        ],
        initial="internal",
        widget=forms.RadioSelect,
    )

    def action_kwargs(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {"text": d["text"], "internal": d["visibility"] == "internal"}


class DisputeForm(forms.Form):
    reason = forms.CharField(
        label="Why the classification is wrong",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Say why you dispute the classification."},
    )


class ResolveDisputeForm(forms.Form):
    status = dispute_outcome_field(
        "Outcome",
        upheld="the classification must change",
        rejected="the classification stands",
    )
    resolution = forms.CharField(
        label="Resolution",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Explain the resolution for the people who disputed."},
    )

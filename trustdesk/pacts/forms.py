"""Forms of the pact pages. Every input, GET filters included, goes through one of these."""

from __future__ import annotations

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from trustdesk.pacts.document import MAX_DOCUMENT_BYTES, load_documents
from trustdesk.pacts.errors import DocumentError
from trustdesk.pacts.models import DisputeStatus, Nis2Entity, RiskTier, Scope

MAX_SEARCH = 100


def search_field(placeholder: str, *, max_length: int = MAX_SEARCH) -> forms.CharField:
    """The search box of a list's filters; `placeholder` says what it matches."""
    return forms.CharField(
        label="Search",
        required=False,
        max_length=max_length,
        widget=forms.SearchInput(attrs={"placeholder": placeholder}),
    )


class KeyField(forms.CharField):
    """A key typed in a text box (an agent's key, INC-42) that cleans to the object of
    `queryset` with that key, or to None when left empty. `missing`, formatted with the `key`,
    is the error when no object has it; `upper` reads the key in capitals."""

    def __init__(self, queryset: QuerySet, *, missing: str, upper: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.queryset, self.missing, self.upper = queryset, missing, upper

    def clean(self, value):
        key = super().clean(value)
        if self.upper:
            key = key.upper()
        if not key:
            return None
        found = self.queryset.filter(key=key).first()
        if found is None:
            raise forms.ValidationError(self.missing.format(key=key))
        return found


class FilterForm(forms.Form):
    """The GET filters of a list page."""

    def values(self) -> dict:
        """The valid, non-empty filters (an invalid value is ignored, not a 500)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {k: v for k, v in self.cleaned_data.items() if v}


class PactFilterForm(FilterForm):
    q = search_field("Key, title or agent")
    agent = forms.ChoiceField(label="Agent", required=False)
    risk_tier = forms.ChoiceField(
        label="Risk tier", required=False, choices=[("", "Any tier"), *RiskTier.choices]
    )
    stale = forms.ChoiceField(
        label="Review",
        required=False,
        choices=[("", "Any"), ("yes", "Stale (past review date)"), ("no", "Reviewed in time")],
    )

    def __init__(self, *args, agents: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].choices = [("", "Any agent"), *agents]

    def filter(self, pacts: QuerySet) -> QuerySet:
        values = self.values()
        if q := values.get("q", "").strip():
            pacts = pacts.filter(
                Q(key__icontains=q)
                | Q(title__icontains=q)
                | Q(agent__key__icontains=q)
                | Q(agent__name__icontains=q)
            )
        if agent := values.get("agent"):
            pacts = pacts.filter(agent__key=agent)
        if tier := values.get("risk_tier"):
            pacts = pacts.filter(tier=tier)
        if values.get("stale") == "yes":
            pacts = pacts.filter(is_stale=True)
        elif values.get("stale") == "no":
            pacts = pacts.filter(is_stale=False)
        return pacts


class AgentFilterForm(FilterForm):
    q = search_field("Key, name or owner")
    scope = forms.ChoiceField(
        label="Scope", required=False, choices=[("", "Any scope"), *Scope.choices]
    )
    stale = forms.BooleanField(label="Only agents with a stale pact", required=False)

    def filter(self, agents: QuerySet) -> QuerySet:
        values = self.values()
        if q := values.get("q", "").strip():
            agents = agents.filter(
                Q(key__icontains=q) | Q(name__icontains=q) | Q(owner__icontains=q)
            )
        if scope := values.get("scope"):
            agents = agents.filter(scope=scope)
        if values.get("stale"):
            agents = agents.filter(has_stale_pact=True)
        return agents


class DocumentForm(forms.Form):
    """A pact document, pasted or uploaded. `documents` holds the canonical result; `problems`
    the problems, each split into (path, message) so the page can show them by path."""

    text = forms.CharField(
        label="Pact document (YAML or JSON)",
        required=False,
        strip=False,  # stripping would shift the line numbers in the problems
        widget=forms.Textarea(attrs={"class": "code", "rows": 24, "spellcheck": "false"}),
    )
    file = forms.FileField(
        label="…or upload a file",
        required=False,
        help_text=".yaml, .yml or .json, up to 1 MB. One document per draft.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.problems: list[tuple[str, str]] = []
        self.document: dict | None = None

    def add_problems(self, problems: list[str]) -> None:
        for problem in problems:
            path, sep, message = problem.partition(": ")
            if sep and " " not in path.strip("()"):
                self.problems.append((path, message))
            else:
                self.problems.append(("", problem))
        # The problems are listed above the form, by path: the text points there.
        self.fields["text"].widget.attrs.update(
            {"aria-invalid": "true", "aria-describedby": "document-problems"}
        )
        self.add_error(None, "The document has problems; nothing was saved.")

    def clean(self):
        cleaned = super().clean()
        text, upload = cleaned.get("text") or "", cleaned.get("file")
        if upload is not None and text.strip():
            raise forms.ValidationError("Paste a document or upload a file, not both.")
        if upload is None and not text.strip():
            raise forms.ValidationError("Paste a pact document or upload a file.")
        if upload is not None:
            if upload.size > MAX_DOCUMENT_BYTES:
                raise forms.ValidationError(
                    f"The file is larger than {MAX_DOCUMENT_BYTES // 1024} KB."
                )
            data, name = upload.read(), upload.name
        else:
            data, name = text, None
        try:
            documents = load_documents(data, filename=name)
        except DocumentError as exc:
            self.add_problems(exc.problems)
            return cleaned
        if len(documents) != 1:
            self.add_problems(
                [
                    f"(file): holds {len(documents)} documents; draft one at a time here "
                    "(manage.py import_pacts takes several)"
                ]
            )
            return cleaned
        self.document = documents[0]
        return cleaned


class ReviewForm(forms.Form):
    on = forms.DateField(
        label="Reviewed on",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="The day the pact was reviewed; not in the future.",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {"on": timezone.now().date()})
        super().__init__(*args, **kwargs)


class CompareForm(forms.Form):
    a = forms.TypedChoiceField(label="From version", coerce=int)
    b = forms.TypedChoiceField(label="To version", coerce=int)

    def __init__(self, *args, numbers: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(n, f"v{n}") for n in numbers]
        self.fields["a"].choices = choices
        self.fields["b"].choices = choices


class DisputeForm(forms.Form):
    reason = forms.CharField(
        label="Why is this evaluation wrong?",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Others read this: say what was measured wrongly and how you know.",
    )


def dispute_outcome_field(label: str, *, upheld: str, rejected: str) -> forms.ChoiceField:
    """How a dispute ends, upheld or rejected; `upheld` and `rejected` say what each means for
    what is disputed (an evaluation, an incident's classification)."""
    return forms.ChoiceField(
        label=label,
        choices=[
            (DisputeStatus.UPHELD, f"Upheld: {upheld}"),
            (DisputeStatus.REJECTED, f"Rejected: {rejected}"),
        ],
        widget=forms.RadioSelect,
    )


class ResolveDisputeForm(forms.Form):
    status = dispute_outcome_field(
        "Decision", upheld="the evaluation is void", rejected="the evaluation stands"
    )
    resolution = forms.CharField(
        label="Resolution",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="The reasons, for whoever reads this later.",
    )


class DisputeFilterForm(FilterForm):
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *DisputeStatus.choices]
    )


class ApiTokenForm(forms.Form):
    source = forms.CharField(
        label="Name",
        max_length=200,
        help_text="Like refund-audit. For evaluations it is the source they are recorded under. "
        "One live token each.",
    )
    label = forms.CharField(label="Label", max_length=200, required=False)
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        required=False,
        initial=["evaluations:write"],
        choices=[
            ("evaluations:write", "evaluations:write: post evaluations"),
            ("read", "read: the read API and every agent's scope statement"),
        ],
        widget=forms.CheckboxSelectMultiple,
    )
    agents = forms.CharField(
        label="Scope statements of agents",
        max_length=2000,
        required=False,
        help_text="Agent keys, separated by spaces or commas: the token gets agent:KEY for each, "
        "for that agent's runtime to read its scope statement.",
    )

    def token_scopes(self) -> list[str]:
        """The scopes to give: the ticked ones, then agent:KEY for each agent key."""
        keys = self.cleaned_data.get("agents", "").replace(",", " ").split()
        return [*self.cleaned_data.get("scopes", []), *(f"agent:{k}" for k in keys)]


class AgentProfileForm(forms.Form):
    """The agent's regulatory profile (docs/design.md section 13)."""

    high_risk_ai = forms.BooleanField(required=False, label="High-risk AI system (EU AI Act)")
    personal_data = forms.BooleanField(required=False, label="Processes personal data (GDPR)")
    nis2 = forms.ChoiceField(label="NIS2 entity", choices=Nis2Entity.choices)

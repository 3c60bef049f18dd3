from __future__ import annotations

import re
from datetime import timedelta

from django import forms
from django.utils import timezone

from trustdesk.diligence.models import DEFAULT_LIFETIME, MAX_LIFETIME, ShareLinkStatus
from trustdesk.incidents.models import Incident
from trustdesk.pacts.forms import search_field
from trustdesk.pacts.models import Agent


class ShareLinkForm(forms.Form):
    label = forms.CharField(
        max_length=200,
        help_text="Who the link is for, e.g. “Acme Corp procurement, Q4 review”.",
    )
    agents = forms.ModelMultipleChoiceField(
        queryset=Agent.objects.order_by("key"),
        widget=forms.CheckboxSelectMultiple,
        help_text="The buyer sees these agents' active pacts, incidents and metrics.",
    )
    incident_keys = forms.CharField(
        label="Only these incidents",
        required=False,
        max_length=2000,
        help_text="Incident keys separated by commas or spaces, e.g. INC-3, INC-7. "
        "Leave empty to share every incident of the chosen agents, including later ones.",
    )
    expires_in_days = forms.IntegerField(
        label="Expires in (days)",
        min_value=1,
        max_value=MAX_LIFETIME.days,
        initial=DEFAULT_LIFETIME.days,
        help_text=f"At most {MAX_LIFETIME.days} days.",
    )
    include_evidence = forms.BooleanField(
        label="Include evidence files in the bundle",
        required=False,
        help_text="Without this, the bundle lists each evidence item's SHA-256, not its content.",
    )

    def clean_incident_keys(self) -> list[Incident]:
        raw = self.cleaned_data["incident_keys"]
        keys = [k.upper() for k in re.split(r"[\s,;]+", raw.strip()) if k]
        if not keys:
            return []
        bad = [k for k in keys if not re.fullmatch(r"INC-\d+", k)]
        if bad:
            raise forms.ValidationError(
                f"Not an incident key: {', '.join(bad[:10])} (keys look like INC-42)."
            )
        found = {i.key: i for i in Incident.objects.filter(key__in=keys)}
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing:
            raise forms.ValidationError(f"No such incident: {', '.join(missing[:10])}.")
        return [found[k] for k in dict.fromkeys(keys)]

    def clean(self):
        cleaned = super().clean()
        agents = cleaned.get("agents")
        incidents = cleaned.get("incident_keys") or []
        if agents is not None and incidents:
            agent_ids = {a.pk for a in agents}
            outside = [i.key for i in incidents if i.agent_id not in agent_ids]
            if outside:
                self.add_error(
                    "incident_keys",
                    f"{', '.join(outside)}: not an incident of the chosen agents.",
                )
        return cleaned

    def expires_at(self):
        return timezone.now() + timedelta(days=self.cleaned_data["expires_in_days"])


class ShareLinkFilterForm(forms.Form):
    q = search_field("Label or agent", max_length=200)
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *ShareLinkStatus.choices]
    )
    page = forms.IntegerField(required=False, min_value=1)

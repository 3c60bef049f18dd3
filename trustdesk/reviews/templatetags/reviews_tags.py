"""Small filters for the reviews templates: labels, snapshot times, the data a check saw."""

from __future__ import annotations

import json
from datetime import datetime

from django import template

from trustdesk.core.roles import ROLE_LABELS
from trustdesk.reviews.conditions import KINDS
from trustdesk.reviews.models import Decision, OperatingModelChangeKind

register = template.Library()


@register.filter
def isotime(value):
    """A snapshot's canonical time string ("2026-11-02T10:00:00Z") as a datetime."""
    if not value or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@register.filter
def condition_kind_label(kind: str) -> str:
    spec = KINDS.get(kind)
    return spec.label if spec else kind


@register.filter
def change_kind_label(kind: str) -> str:
    return OperatingModelChangeKind(kind).label if kind in OperatingModelChangeKind.values else kind


@register.filter
def decision_label(value: str) -> str:
    return Decision(value).label if value in Decision.values else value


@register.filter
def role_label(role: str) -> str:
    return ROLE_LABELS.get(role, role)

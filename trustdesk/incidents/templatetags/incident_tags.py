"""Filters for the incident pages: short hashes and one plain sentence per event.

Every filter returns plain text, so the template's autoescaping still applies to user input.
"""

from __future__ import annotations

from typing import Any

from django import template

from trustdesk.core.roles import ROLE_LABELS
from trustdesk.incidents.models import ContainmentAction, EventType
from trustdesk.pacts.models import EvidenceKind, Scope
from trustdesk.taxonomy import ASSUMPTION_BY_KEY, HARM_CHOICES

register = template.Library()

ACTIONS = dict(ContainmentAction.choices)
KINDS = dict(EvidenceKind.choices)
SCOPES = dict(Scope.choices)
EVENT_LABELS = {
    EventType.DETECTED: "Detected",
    EventType.CONTAINED: "Contained",
    EventType.EVIDENCE_ADDED: "Evidence added",
    EventType.EVIDENCE_PRESERVED: "Evidence preserved",
    EventType.CLASSIFIED: "Classified",
    EventType.REPAIRED: "Repaired",
    EventType.OPERATING_MODEL_CHANGED: "Operating model changed",
    EventType.REENTRY_CONDITION_SET: "Re-entry condition set",
    EventType.REVIEW_REQUESTED: "Review requested",
    EventType.DECISION_RECORDED: "Decision recorded",
    EventType.ATTESTED: "Attested",
    EventType.REOPENED: "Scope reopened",
    EventType.CLOSED: "Closed",
    EventType.NOTE: "Note",
    EventType.SIGNED_OFF: "Signed off",
    EventType.DISPUTE_OPENED: "Dispute opened",
    EventType.DISPUTE_RESOLVED: "Dispute resolved",
}


@register.filter
def short_hash(value: Any) -> str:
    """The first 12 hex digits: enough to compare by eye, as git does."""
    return str(value or "")[:12]


@register.filter
def event_label(event_type: str) -> str:
    return EVENT_LABELS.get(event_type, str(event_type).replace("_", " ").capitalize())


@register.filter
def kind_label(kind: str) -> str:
    return KINDS.get(kind, kind)


@register.filter
def assumption_label(key: str) -> str:
    found = ASSUMPTION_BY_KEY.get(key)
    return found.label if found else str(key or "")


def _text(data: dict, key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value).strip()


def _sentence(*parts: str) -> str:
    return " ".join(p if p.endswith((".", "!", "?", ")")) else p + "." for p in parts if p)


@register.filter
def event_summary(event: Any) -> str:
    """One plain sentence for an event of any type, tolerant of imported or odd data."""
    data = event.data if isinstance(event.data, dict) else {}
    t = event.type
    if t == EventType.DETECTED:
        return "Incident detected."
    if t == EventType.CONTAINED:
        action = ACTIONS.get(_text(data, "action"), _text(data, "action"))
        scope = SCOPES.get(_text(data, "scope_after"), _text(data, "scope_after"))
        return _sentence(
            f"{action}; the agent's scope is now {scope.lower()}", _text(data, "reason")
        )
    if t == EventType.EVIDENCE_ADDED:
        kind = KINDS.get(_text(data, "kind"), _text(data, "kind"))
        summary = f"{kind}: {_text(data, 'description')}" if _text(data, "description") else kind
        sha = short_hash(_text(data, "sha256"))
        extra = " Corrects an earlier item." if data.get("supersedes") else ""
        return f"{summary} (sha256 {sha}).{extra}"
    if t == EventType.EVIDENCE_PRESERVED:
        gaps = data.get("acknowledged_gaps") or []
        if isinstance(gaps, list) and gaps:
            listed = ", ".join(KINDS.get(str(g), str(g)) for g in gaps)
            return _sentence(f"Preserved with acknowledged gaps: {listed}", _text(data, "reason"))
        return "Every required kind of evidence is preserved."
    if t == EventType.CLASSIFIED:
        clauses = data.get("clauses") or []
        listed = ", ".join(str(c) for c in clauses) if isinstance(clauses, list) else ""
        return _sentence(
            f"{assumption_label(_text(data, 'assumption'))}: {_text(data, 'statement')}",
            f"Clauses: {listed}" if listed else "",
            f"Confidence: {_text(data, 'confidence')}" if _text(data, "confidence") else "",
            f"Harm: {dict(HARM_CHOICES).get(_text(data, 'harm_category'), '')}"
            if _text(data, "harm_category")
            else "",
        )
    if t == EventType.REPAIRED:
        override = (
            f"Override before the authority was informed: {_text(data, 'justification')}"
            if data.get("override") is True
            else ""
        )
        return _sentence(_text(data, "summary"), f"Reference: {_text(data, 'reference')}", override)
    if t == EventType.OPERATING_MODEL_CHANGED:
        return _sentence(f"{_text(data, 'kind').replace('_', ' ')}: {_text(data, 'summary')}")
    if t == EventType.REENTRY_CONDITION_SET:
        return _sentence(f"{_text(data, 'kind').replace('_', ' ')}: {_text(data, 'statement')}")
    if t == EventType.REVIEW_REQUESTED:
        return "Recovery review requested."
    if t == EventType.DECISION_RECORDED:
        decision = _text(data, "decision").replace("_", " ")
        scope = SCOPES.get(_text(data, "scope_after"), _text(data, "scope_after")).lower()
        override = (
            f"Override: {_text(data, 'justification')}" if data.get("override") is True else ""
        )
        return _sentence(
            f"{decision.capitalize()}, scope {scope}", _text(data, "rationale"), override
        )
    if t == EventType.ATTESTED:
        can = "can" if data.get("can_explain") is True else "cannot"
        return _sentence(
            f"Attests that they {can} explain decision #{_text(data, 'decision_seq')}",
            _text(data, "comment"),
        )
    if t == EventType.REOPENED:
        scope = SCOPES.get(_text(data, "scope_after"), _text(data, "scope_after")).lower()
        return f"The agent's scope is reopened to {scope}."
    if t == EventType.CLOSED:
        return _sentence(f"Closed: {_text(data, 'outcome').replace('_', ' ')}")
    if t == EventType.NOTE:
        return _text(data, "text")
    if t == EventType.SIGNED_OFF:
        who = ROLE_LABELS.get(_text(data, "role"), _text(data, "role"))
        shared = "" if data.get("internal") is not False else " (shared with buyers)"
        return _sentence(f"Signed off the recovery plan as {who}{shared}", _text(data, "comment"))
    if t == EventType.DISPUTE_OPENED:
        return _sentence(f"Classification disputed: {_text(data, 'reason')}")
    if t == EventType.DISPUTE_RESOLVED:
        return _sentence(
            f"Dispute {_text(data, 'status') or 'resolved'}: {_text(data, 'resolution')}"
        )
    return _ownership_summary(t, data)


def _ownership_summary(t: str, data: dict) -> str:
    """The events of ownership, clocks and obligations (trustdesk/incidents/ownership.py and
    obligations.py)."""
    if t == EventType.ASSIGNED:
        return f"{_text(data, 'user')} is now {_text(data, 'role')}."
    if t == EventType.UNASSIGNED:
        return f"{_text(data, 'user')} is no longer {_text(data, 'role')}."
    if t == EventType.ACTION_ADDED:
        owner = f"owner {_text(data, 'owner')}" if _text(data, "owner") else "no owner yet"
        due = f"due {_text(data, 'due')}" if _text(data, "due") else ""
        required = "required for re-entry" if data.get("required") is True else ""
        return _sentence(
            f"Action item {_text(data, 'action')}: {_text(data, 'title')}",
            ", ".join(x for x in (owner, due, required) if x),
        )
    if t == EventType.ACTION_UPDATED:
        changes = ", ".join(
            f"{k.replace('_', ' ')} {data[k] if data[k] is not None else 'none'}"
            for k in sorted(data)
            if k != "action"
        )
        return _sentence(f"Action item {_text(data, 'action')} changed: {changes}")
    if t == EventType.CLOSED_NOT_INCIDENT:
        reason = _text(data, "reason").replace("_", " ")
        dup = f" of {_text(data, 'duplicate_of')}" if _text(data, "duplicate_of") else ""
        return _sentence(f"Closed, not an incident: {reason}{dup}", _text(data, "explanation"))
    if t == EventType.RECLASSIFIED:
        return _sentence(
            f"Reclassified as {assumption_label(_text(data, 'assumption'))}: "
            f"{_text(data, 'statement')}"
        )
    if t == EventType.ASSESSED:
        found = [k.replace("_", " ") for k, v in sorted(data.items()) if v is True]
        return _sentence(
            "Assessed for reporting: " + (", ".join(found) if found else "nothing to report"),
            f"Aware since {_text(data, 'aware_at')}",
            _text(data, "note"),
        )
    if t == EventType.REPORT_FILED:
        return _sentence(
            f"Report filed: {_text(data, 'regime')} {_text(data, 'obligation')}, "
            f"reference {_text(data, 'reference')}",
            f"Filed {_text(data, 'filed_at')} (sha256 {short_hash(_text(data, 'sha256'))})",
        )
    return ""

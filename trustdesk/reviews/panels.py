"""The review part of the incident page: operating-model changes, re-entry conditions, the
request-review and decision forms, attestations and the decision record.

The incidents page view calls `incident_panel_context` and includes
`reviews/_incident_panel.html`; the reviews app owns both, so the two apps meet at one seam.
Everything the template reads is under the one key `review_panel`.
"""

from __future__ import annotations

from typing import Any

from django import forms as django_forms

from trustdesk.core.roles import can, user_roles
from trustdesk.incidents.gates import gate_status
from trustdesk.incidents.models import Incident, State
from trustdesk.pacts.models import Clause, PactVersion
from trustdesk.reviews import actions
from trustdesk.reviews.conditions import KINDS, observed_summary
from trustdesk.reviews.forms import (
    AttestationForm,
    DecisionForm,
    OperatingModelChangeForm,
    ReentryConditionForm,
    RequestReviewForm,
    SignOffForm,
)
from trustdesk.reviews.models import (
    Attestation,
    OperatingModelChange,
    RecoveryDecision,
    ReentryCondition,
    SignOff,
)
from trustdesk.taxonomy import ASSUMPTION_BY_KEY

# The panel's forms, by the name a view binds them under.
PANEL_FORMS = ("change", "condition", "signoff", "request", "decision", "attest")


def percent(value) -> str | None:
    if value is None:
        return None
    return f"{round(float(value) * 100)}%"


def _permissions(incident: Incident, user, decision, signoffs, attestations) -> dict[str, bool]:
    open_ = incident.is_open and decision is None
    works = open_ and can(user, "work_reviews")
    manager = can(user, "override")
    return {
        "work": works,
        "request": works and incident.state == State.REPAIRED,
        "decide": open_
        and can(user, "decide")
        and incident.state in actions.DECIDABLE_STATES
        and (incident.state == State.IN_REVIEW or manager),
        "override": manager,
        "signoff": works
        and bool(user_roles(user) & set(actions.ATTESTS))
        and not any(s.by_id == user.pk for s in signoffs),
        "attest": decision is not None
        and can(user, "attest")
        and decision.decided_by_id != user.pk
        and not any(a.by_id == user.pk for a in attestations),
    }


def incident_panel_context(
    incident: Incident,
    user,
    *,
    bound: dict[str, django_forms.Form] | None = None,
    conflict: str = "",
    gates: list | None = None,
) -> dict[str, Any]:
    """Context for reviews/_incident_panel.html in a fixed number of queries (at most nine).

    `bound` holds refused forms (by PANEL_FORMS name) to show with their errors and input;
    `conflict` is the message of a submission that lost a race; `gates` are the incident's
    gates when the caller already computed them (the incident page does).
    """
    bound = bound or {}
    changes = list(
        OperatingModelChange.objects.filter(incident=incident)
        .select_related("by", "pact_version__pact")
        .order_by("at", "pk")
    )
    conditions = list(
        ReentryCondition.objects.filter(incident=incident)
        .select_related("set_by")
        .order_by("set_at", "pk")
    )
    for condition in conditions:
        condition.summary = observed_summary(condition.kind, condition.observed)
    signoffs = list(
        SignOff.objects.filter(incident=incident).select_related("by").order_by("at", "pk")
    )
    decision = (
        RecoveryDecision.objects.filter(incident=incident)
        .select_related("decided_by", "meeting", "event", "agent_held_by")
        .first()
    )
    attestations = (
        list(Attestation.objects.filter(decision=decision).select_related("by").order_by("at"))
        if decision
        else []
    )
    if gates is None:
        gates = gate_status(incident)
    gates = [g for g in gates if g.step != "decide"]
    gate_rows = [{"label": g.label, "detail": g.detail, "met": g.met} for g in gates]
    condition_rows = [{"statement": c.statement, "status": c.status} for c in conditions]
    can = _permissions(incident, user, decision, signoffs, attestations)
    version = incident.version

    def form(name: str, factory):
        if name in bound:
            return bound[name]
        return factory() if can_for[name] else None

    can_for = {
        "change": can["work"],
        "condition": can["work"],
        "signoff": can["signoff"],
        "request": can["request"],
        "decision": can["decide"],
        "attest": can["attest"],
    }
    initial = {"version": version}
    pact_version = incident.pact_version if incident.pact_version_id else None
    newer = (
        PactVersion.objects.filter(pact_id=pact_version.pact_id, number__gt=pact_version.number)
        .select_related("pact")
        .order_by("number")
        if pact_version
        else PactVersion.objects.none()
    )
    clause_keys = (
        list(Clause.objects.filter(version_id=pact_version.pk).values_list("key", flat=True))
        if pact_version and can["work"]
        else []
    )
    panel_forms = {
        "change": form(
            "change", lambda: OperatingModelChangeForm(initial=initial, newer_versions=newer)
        ),
        "condition": form(
            "condition", lambda: ReentryConditionForm(initial=initial, clause_keys=clause_keys)
        ),
        "signoff": form("signoff", lambda: SignOffForm(initial=initial, user=user)),
        "request": form("request", lambda: RequestReviewForm(initial=initial)),
        "decision": form(
            "decision", lambda: DecisionForm(initial=initial, can_override=can["override"])
        ),
        "attest": form("attest", lambda: AttestationForm()),
    }
    # Before deciding, the decider sees what the decision cannot lift (one query, only then).
    holders = (
        list(Incident.objects.holding(incident.agent_id).exclude(pk=incident.pk))
        if panel_forms["decision"] is not None
        else []
    )
    record = None
    if decision is not None:
        snapshot = []
        for row in decision.conditions_snapshot:
            snapshot.append({**row, "summary": observed_summary(row["kind"], row["observed"])})
        record = {
            "decision": decision,
            "conditions": snapshot,
            "gates": decision.gate_snapshot,
            "unmet_gates": [g for g in decision.gate_snapshot if not g["met"]],
            "completeness": percent(decision.evidence_completeness),
            "unmet_conditions": sum(1 for c in snapshot if c["status"] != "met"),
            "explained": sum(1 for a in attestations if a.can_explain),
        }
    return {
        "review_panel": {
            "incident": incident,
            "assumption": ASSUMPTION_BY_KEY.get(incident.assumption),
            "changes": changes,
            "conditions": conditions,
            "signoffs": signoffs,
            "decision": decision,
            "attestations": attestations,
            "record": record,
            "gates": gates,
            "blocking": actions.override_reasons(gate_rows, condition_rows),
            "completeness": percent(incident.evidence_completeness),
            "can": can,
            "forms": panel_forms,
            "conflict": conflict,
            "condition_kinds": list(KINDS.values()),
            "holders": holders,
        }
    }

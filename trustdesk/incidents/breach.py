"""Breach handling: a failing evaluation of a `restrict` or `suspend` clause opens an incident
(or notes the open one), contains it at once when the clause says `contain: auto`, and proposes
the containment the pact prescribes (docs/design.md section 12).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from trustdesk.incidents.journal import (
    append_event,
    locked_incident,
    open_incident,
    schedule_metrics_refresh,
)
from trustdesk.incidents.lifecycle import ACTION_SCOPE, contain_incident
from trustdesk.incidents.models import (
    BreachLink,
    ContainmentAction,
    Event,
    EventType,
    Incident,
    State,
)
from trustdesk.pacts.models import SCOPE_RANK, Consequence, Evaluation, Pact, Scope

# ---------------------------------------------------------------- breach -> incident


def _breach_severity(on_breach: str) -> str:
    return "sev2" if on_breach == Consequence.SUSPEND else "sev3"


def open_incident_for_breach(evaluation, *, by: AbstractBaseUser | None = None) -> Incident | None:
    """A failing evaluation of a `restrict` or `suspend` clause opens an incident detected at the
    evaluation's time, or attaches a note to the open incident of the same agent and clause.

    Idempotent: an evaluation already handled does nothing and returns its incident. Returns None
    when the evaluation is not a breach that calls for an incident (it passed, it is voided, or
    its clause only flags).
    """
    from trustdesk.incidents.eval_evidence import attach_evaluation_log

    clause = evaluation.clause
    if evaluation.passed or evaluation.voided_at is not None:
        return None
    if clause.on_breach not in (Consequence.RESTRICT, Consequence.SUSPEND):
        return None
    version = clause.version
    agent = version.pact.agent
    with transaction.atomic():
        # Lock order: evaluation, then pact, then (inside the steps) incident, then agent. The
        # evaluation lock makes a duplicate message a no-op; the pact lock serializes breaches of
        # one pact, so two failing evaluations of a clause never open two incidents. NO KEY
        # UPDATE, because inserting rows that point at these (links, incidents) takes KEY SHARE.
        Evaluation.objects.select_for_update(no_key=True).filter(pk=evaluation.pk).first()
        Pact.objects.select_for_update(no_key=True).filter(pk=version.pact_id).first()
        existing = (
            BreachLink.objects.filter(evaluation=evaluation).select_related("incident").first()
        )
        if existing is not None:
            return existing.incident
        measured = evaluation.measured_at
        summary = (
            f"Evaluation from {evaluation.source} measured {clause.metric} = {evaluation.value} "
            f"at {measured.isoformat()}; the objective is {clause.op} {clause.target} "
            f"(window {clause.window})."
        )
        open_one = (
            Incident.objects.open()
            .filter(agent=agent, clauses__key=clause.key, clauses__version__pact_id=version.pact_id)
            .order_by("-detected_at", "-number")
            .first()
        )
        if open_one is None:
            title = f"Breach of {version.pact.key}#{clause.key}: {clause.statement}"
            incident = open_incident(
                agent=agent,
                by=by,
                title=title[:300],
                severity=_breach_severity(clause.on_breach),
                detected_at=min(measured, timezone.now()),
                pact_version=version,
                clauses=[clause],
                summary=summary,
            )
            BreachLink.objects.create(
                evaluation=evaluation, incident=incident, opened_incident=True
            )
            attach_evaluation_log(incident, evaluation, by=by)  # the log file, when one measured it
            _contain_automatically(incident, clause, evaluation)
            return incident
        with locked_incident(open_one) as inc:
            last_at = (
                Event.objects.filter(incident=inc)
                .order_by("-seq")
                .values_list("at", flat=True)
                .first()
            )
            event = append_event(
                inc,
                type=EventType.NOTE,
                by=by,
                data={
                    "text": f"Another failing evaluation of {clause.key}. {summary}",
                    "internal": True,
                },
                at=max(timezone.now(), last_at) if last_at else None,
            )
            BreachLink.objects.create(evaluation=evaluation, incident=inc, event=event)
            schedule_metrics_refresh(inc)
            attach_evaluation_log(inc, evaluation, by=by)
        _contain_automatically(inc, clause, evaluation)
        return inc


def _contain_automatically(incident: Incident, clause, evaluation) -> None:
    """A breach of a `contain: auto` clause contains its (still detected) incident at once, by
    the system (`by: null`), in the breach's transaction, with a reason naming the evaluation
    (docs/design.md section 12). An agent already held stricter keeps that scope: containment
    never widens it."""
    from trustdesk.pacts.models import Containment

    if clause.contain != Containment.AUTO:
        return
    inc = Incident.objects.select_related("agent").get(pk=incident.pk)
    if inc.state != State.DETECTED:
        return
    prescribed = ACTION_SCOPE[clause.on_breach]
    agent_scope = type(inc.agent).objects.values_list("scope", flat=True).get(pk=inc.agent_id)
    scope = max(prescribed, agent_scope, key=SCOPE_RANK.__getitem__)
    action = {Scope.RESTRICTED: ContainmentAction.RESTRICT}.get(scope, ContainmentAction.SUSPEND)
    reason = (
        f"Automatic containment (clause {clause.key} says contain: auto): evaluation "
        f"#{evaluation.pk} from {evaluation.source} ({evaluation.external_id}) measured "
        f"{clause.metric} = {format(evaluation.value.normalize(), 'f')}, objective "
        f"{clause.op} {format(clause.target.normalize(), 'f')}."
    )
    if scope != prescribed:
        reason += f" The clause prescribes {clause.on_breach}; the agent is already {scope}."
    contain_incident(
        inc, by=None, expected_version=None, action=action, scope_after=scope, reason=reason
    )
    incident.refresh_from_db()


def proposed_containment(incident: Incident) -> dict | None:
    """The containment the pact prescribes for a detected incident, ready for contain_incident:
    {"action", "scope_after", "reason"}; the strictest of its clauses' consequences. None when the
    incident is past detection or no clause prescribes restrict or suspend."""
    if incident.state != State.DETECTED:
        return None
    clauses = [
        c
        for c in incident.clauses.all()
        if c.on_breach in (Consequence.RESTRICT, Consequence.SUSPEND)
    ]
    if not clauses:
        return None
    strictest = max(clauses, key=lambda c: c.on_breach == Consequence.SUSPEND)
    action = strictest.on_breach
    return {
        "action": action,
        "scope_after": ACTION_SCOPE[action],
        "reason": f"Clause {strictest.key} prescribes '{action}' on breach.",
    }

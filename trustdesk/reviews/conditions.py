"""Re-entry conditions: the six kinds of docs/design.md section 4, their parameters, the plain-words
statement written from those parameters, and the check a worker runs against the data.

A kind is three functions: `clean(raw, incident) -> params` (raises ConditionParamsError naming
every problem), `statement(params) -> str`, and `evaluate(condition) -> (met, observed)`, where
`observed` is the data the check saw, stored so that anyone can see why a condition is met or not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from trustdesk.core.canonical import format_decimal, to_canonical_value
from trustdesk.core.roles import ROLE_LABELS, roles_for
from trustdesk.incidents.models import Evidence, Incident
from trustdesk.pacts.models import Clause, Dispute, DisputeStatus, Evaluation
from trustdesk.reviews.errors import ReviewError
from trustdesk.reviews.models import (
    ConditionKind,
    ConditionStatus,
    OperatingModelChange,
    ReentryCondition,
    SignOff,
)
from trustdesk.taxonomy import ASSUMPTION_BY_KEY

# Who can sign off a recovery plan, and so which roles a `signoffs` condition may ask for.
SIGNOFF_ROLES = roles_for("sign_off")  # who may: core.roles.PERMISSIONS
MAX_LAST_N = 1000
MAX_DAYS = 3650


class ConditionParamsError(ReviewError):
    """Bad parameters for a re-entry condition; `problems` names each one."""


@dataclass(frozen=True)
class ConditionSpec:
    kind: str
    label: str
    explanation: str
    clean: Callable[[dict[str, Any], Any], dict[str, Any]]
    statement: Callable[[dict[str, Any]], str]
    evaluate: Callable[[ReentryCondition], tuple[bool, dict[str, Any]]]


# ---------------------------------------------------------------- parameter helpers


def _int(raw: dict, name: str, problems: list[str], *, low: int, high: int) -> int | None:
    value = raw.get(name)
    if value is None or value == "":
        problems.append(f"{name}: required")
        return None
    if isinstance(value, bool):
        problems.append(f"{name}: must be a whole number")
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        problems.append(f"{name}: must be a whole number")
        return None
    if not low <= number <= high:
        problems.append(f"{name}: must be between {low} and {high}")
        return None
    return number


def _no_extra(raw: dict, allowed: set[str], problems: list[str]) -> None:
    for name in sorted(set(raw) - allowed):
        problems.append(f"{name}: unknown parameter")


def _finish(problems: list[str], params: dict[str, Any]) -> dict[str, Any]:
    if problems:
        raise ConditionParamsError(problems)
    return params


def _percent(rate: str | Decimal) -> str:
    value = Decimal(rate) * 100
    return f"{format_decimal(value)}%"


# ---------------------------------------------------------------- evaluation_pass_rate


def _clean_pass_rate(raw: dict[str, Any], incident) -> dict[str, Any]:
    problems: list[str] = []
    _no_extra(raw, {"clause", "min", "last_n"}, problems)
    clause = str(raw.get("clause") or "").strip()
    if not clause:
        problems.append("clause: required")
    elif incident.pact_version_id is None:
        problems.append("clause: the incident has no pact version, so no clause can be named")
    else:
        keys = set(incident.pact_version.clauses.values_list("key", flat=True))
        if clause not in keys:
            problems.append(
                f"clause: '{clause}' is not a clause of {incident.pact_version.label} "
                f"(clauses: {', '.join(sorted(keys)) or 'none'})"
            )
    minimum = None
    raw_min = raw.get("min")
    if raw_min is None or raw_min == "":
        problems.append("min: required")
    else:
        try:
            minimum = Decimal(str(raw_min).strip())
        except InvalidOperation:
            problems.append("min: must be a number between 0 and 1")
        else:
            if not minimum.is_finite() or not Decimal(0) <= minimum <= Decimal(1):
                problems.append("min: must be a number between 0 and 1")
                minimum = None
    last_n = _int(raw, "last_n", problems, low=1, high=MAX_LAST_N)
    if problems:
        raise ConditionParamsError(problems)
    return {"clause": clause, "min": format_decimal(minimum), "last_n": last_n}


def _statement_pass_rate(p: dict[str, Any]) -> str:
    n = p["last_n"]
    evaluations = "evaluation" if n == 1 else f"{n} evaluations"
    return (
        f"At least {_percent(p['min'])} of the last {evaluations} of clause "
        f"“{p['clause']}” on the pact's active version pass (voided evaluations do not count)."
    )


def _evaluate_pass_rate(condition: ReentryCondition) -> tuple[bool, dict[str, Any]]:
    p = condition.params
    incident = condition.incident
    needed, minimum = int(p["last_n"]), Decimal(p["min"])
    observed: dict[str, Any] = {"clause": p["clause"], "needed": needed, "min": p["min"]}
    if incident.pact_version_id is None:
        return False, {**observed, "reason": "the incident has no pact"}
    clause = (
        Clause.objects.filter(
            version__pact_id=incident.pact_version.pact_id,
            version__status="active",
            key=p["clause"],
        )
        .select_related("version__pact")
        .first()
    )
    if clause is None:
        return False, {**observed, "reason": "the pact's active version has no such clause"}
    observed["pact_version"] = clause.version.label
    latest = Evaluation.objects.counted().filter(clause=clause).order_by("-measured_at", "-pk")
    totals = latest[:needed].aggregate(
        counted=Count("pk"), passed=Count("pk", filter=Q(passed=True))
    )
    counted, passed = totals["counted"], totals["passed"]
    observed.update(counted=counted, passed=passed)
    if counted == 0:
        observed["rate"] = None
        return False, {**observed, "reason": "no counted evaluation yet"}
    rate = Decimal(passed) / Decimal(counted)
    observed["rate"] = format_decimal(rate.quantize(Decimal("0.0001")))
    if counted < needed:
        observed["reason"] = f"only {counted} of the {needed} evaluations needed so far"
        return False, observed
    return rate >= minimum, observed


# ---------------------------------------------------------------- no_incidents


def _clean_no_incidents(raw: dict[str, Any], incident) -> dict[str, Any]:
    problems: list[str] = []
    _no_extra(raw, {"assumption", "days"}, problems)
    assumption = str(raw.get("assumption") or "").strip()
    if not assumption:
        problems.append("assumption: required")
    elif assumption not in ASSUMPTION_BY_KEY:
        problems.append(
            f"assumption: must be one of {', '.join(ASSUMPTION_BY_KEY)} (got '{assumption}')"
        )
    days = _int(raw, "days", problems, low=1, high=MAX_DAYS)
    return _finish(problems, {"assumption": assumption, "days": days})


def _statement_no_incidents(p: dict[str, Any]) -> str:
    label = ASSUMPTION_BY_KEY[p["assumption"]].label.lower()
    days = "day" if p["days"] == 1 else f"{p['days']} days"
    return f"No other incident of the agent breaking the {label} assumption in the last {days}."


def _evaluate_no_incidents(condition: ReentryCondition) -> tuple[bool, dict[str, Any]]:
    p = condition.params
    incident = condition.incident
    since = timezone.now() - timedelta(days=int(p["days"]))
    others = (
        Incident.objects.for_agent(incident.agent_id)
        .filter(assumption=p["assumption"], detected_at__gte=since)
        .exclude(pk=incident.pk)
        .order_by("-detected_at")
    )
    keys = list(others.values_list("key", flat=True)[:6])
    observed = {
        "assumption": p["assumption"],
        "since": since,
        "count": len(keys) if len(keys) < 6 else others.count(),
        "incidents": keys[:5],
    }
    return not keys, observed


# ---------------------------------------------------------------- signoffs


def _clean_signoffs(raw: dict[str, Any], incident) -> dict[str, Any]:
    problems: list[str] = []
    _no_extra(raw, {"roles", "min"}, problems)
    roles = raw.get("roles")
    if isinstance(roles, str):
        roles = [r.strip() for r in roles.split(",") if r.strip()]
    if not roles or not isinstance(roles, list | tuple):
        problems.append("roles: choose at least one role")
        roles = []
    else:
        bad = [str(r) for r in roles if r not in SIGNOFF_ROLES]
        if bad:
            problems.append(
                f"roles: unknown role(s) {', '.join(bad)}; choose from {', '.join(SIGNOFF_ROLES)}"
            )
        if len(set(roles)) != len(roles):
            problems.append("roles: each role once")
    # Keep a stable order so that the same choice always gives the same statement and hash.
    roles = [r for r in SIGNOFF_ROLES if r in set(roles)]
    minimum = _int(raw, "min", problems, low=1, high=max(len(roles), 1))
    return _finish(problems, {"roles": roles, "min": minimum})


def _statement_signoffs(p: dict[str, Any]) -> str:
    labels = [ROLE_LABELS[r].lower() for r in p["roles"]]
    if len(labels) == 1:
        return f"Signed off by someone with the {labels[0]} role."
    among = ", ".join(labels[:-1]) + f" and {labels[-1]}"
    return f"Signed off by at least {p['min']} distinct roles among {among}."


def _evaluate_signoffs(condition: ReentryCondition) -> tuple[bool, dict[str, Any]]:
    p = condition.params
    rows = list(
        SignOff.objects.filter(incident_id=condition.incident_id, role__in=p["roles"])
        .order_by("at", "pk")
        .values_list("role", "by__username")
    )
    roles_signed = sorted({role for role, _ in rows})
    observed = {
        "roles_signed": roles_signed,
        "signers": [f"{name} ({role})" for role, name in rows],
        "needed": p["min"],
    }
    return len(roles_signed) >= int(p["min"]), observed


# ---------------------------------------------------------------- the three without parameters


def _clean_nothing(raw: dict[str, Any], incident) -> dict[str, Any]:
    problems: list[str] = []
    _no_extra(raw, set(), problems)
    return _finish(problems, {})


def _evaluate_evidence_complete(condition: ReentryCondition) -> tuple[bool, dict[str, Any]]:
    incident = condition.incident
    required = list(incident.pact_version.evidence_required) if incident.pact_version_id else []
    present = set(
        Evidence.objects.filter(incident_id=incident.pk).values_list("kind", flat=True).distinct()
    )
    missing = [kind for kind in required if kind not in present]
    observed = {
        "required": required,
        "present": sorted(present),
        "missing": missing,
        "completeness": format_decimal(
            (Decimal(len(required) - len(missing)) / len(required)).quantize(Decimal("0.0001"))
            if required
            else Decimal(1)
        ),
    }
    return not missing, observed


def _evaluate_operating_model_changed(
    condition: ReentryCondition,
) -> tuple[bool, dict[str, Any]]:
    kinds = list(
        OperatingModelChange.objects.filter(incident_id=condition.incident_id)
        .order_by("at", "pk")
        .values_list("kind", flat=True)
    )
    return bool(kinds), {"count": len(kinds), "kinds": kinds}


def _evaluate_dispute_free(condition: ReentryCondition) -> tuple[bool, dict[str, Any]]:
    incident = condition.incident
    open_disputes = list(
        Dispute.objects.filter(status=DisputeStatus.OPEN)
        .filter(
            Q(incident_id=incident.pk)
            | Q(evaluation__clause__version__pact__agent_id=incident.agent_id)
        )
        .order_by("opened_at", "pk")
        .values_list("pk", "incident_id")[:21]
    )
    observed = {
        "open_on_incident": [pk for pk, inc in open_disputes if inc == incident.pk],
        "open_on_evaluations": [pk for pk, inc in open_disputes if inc is None],
    }
    return not open_disputes, observed


def _evaluate_actions_done(condition: ReentryCondition) -> tuple[bool, dict[str, Any]]:
    """Every action item marked required for re-entry is done (won't do is not done)."""
    from trustdesk.incidents.models import ActionItem, ActionStatus

    rows = list(
        ActionItem.objects.filter(incident_id=condition.incident_id, required=True)
        .order_by("number")
        .values_list("number", "status")
    )
    pending = [number for number, status in rows if status != ActionStatus.DONE]
    return not pending, {"required": len(rows), "not_done": pending}


KINDS: dict[str, ConditionSpec] = {
    spec.kind: spec
    for spec in (
        ConditionSpec(
            ConditionKind.EVALUATION_PASS_RATE,
            "Evaluation pass rate",
            "The share of passing evaluations over the last N counted evaluations of one clause "
            "of the pact's active version.",
            _clean_pass_rate,
            _statement_pass_rate,
            _evaluate_pass_rate,
        ),
        ConditionSpec(
            ConditionKind.NO_INCIDENTS,
            "No incidents of a class",
            "No other incident of this agent breaking the same assumption class for N days.",
            _clean_no_incidents,
            _statement_no_incidents,
            _evaluate_no_incidents,
        ),
        ConditionSpec(
            ConditionKind.SIGNOFFS,
            "Sign-offs by distinct roles",
            "People in distinct roles have signed off the recovery plan on this page.",
            _clean_signoffs,
            _statement_signoffs,
            _evaluate_signoffs,
        ),
        ConditionSpec(
            ConditionKind.EVIDENCE_COMPLETE,
            "Evidence complete",
            "Every evidence kind the pact requires is present on the incident.",
            _clean_nothing,
            lambda p: "Every evidence kind the pact requires is preserved on this incident.",
            _evaluate_evidence_complete,
        ),
        ConditionSpec(
            ConditionKind.OPERATING_MODEL_CHANGED,
            "Operating model changed",
            "At least one change around the agent (not only in it) is recorded.",
            _clean_nothing,
            lambda p: "At least one operating-model change is recorded for this incident.",
            _evaluate_operating_model_changed,
        ),
        ConditionSpec(
            ConditionKind.DISPUTE_FREE,
            "No open dispute",
            "No open dispute on this incident or on any evaluation of the agent.",
            _clean_nothing,
            lambda p: "No dispute is open on this incident or on the agent's evaluations.",
            _evaluate_dispute_free,
        ),
        ConditionSpec(
            ConditionKind.ACTIONS_DONE,
            "Required action items done",
            "Every action item marked required for re-entry is done.",
            _clean_nothing,
            lambda p: "Every action item marked required for re-entry is done.",
            _evaluate_actions_done,
        ),
    )
}


def clean_params(kind: str, raw: dict[str, Any] | None, incident) -> dict[str, Any]:
    """Validated, canonical parameters for `kind`; ConditionParamsError names every problem."""
    spec = KINDS.get(kind)
    if spec is None:
        raise ConditionParamsError(f"kind: must be one of {', '.join(KINDS)} (got '{kind}')")
    if raw is not None and not isinstance(raw, dict):
        raise ConditionParamsError("params: must be an object")
    return spec.clean(dict(raw or {}), incident)


def statement_for(kind: str, params: dict[str, Any]) -> str:
    return KINDS[kind].statement(params)


def evaluate_condition(condition: ReentryCondition) -> tuple[bool, dict[str, Any]]:
    """Check one condition against the data now and store the result on its row.

    Idempotent: the stored status, observed data and check time are replaced by the new reading.
    """
    met, observed = KINDS[condition.kind].evaluate(condition)
    now = timezone.now()
    observed = to_canonical_value(observed)
    status = ConditionStatus.MET if met else ConditionStatus.UNMET
    ReentryCondition.objects.filter(pk=condition.pk).update(
        status=status, observed=observed, checked_at=now
    )
    condition.status, condition.observed, condition.checked_at = status, observed, now
    return met, observed


def observed_summary(kind: str, observed: dict[str, Any] | None) -> str:
    """What a check saw, in one plain sentence (the page shows it beside the status)."""
    o = observed or {}
    if not o:
        return "Not checked yet."
    if kind == ConditionKind.EVALUATION_PASS_RATE:
        if o.get("reason") and not o.get("counted"):
            return f"Nothing to go on: {o['reason']}."
        text = (
            f"{o.get('passed', 0)} of the last {o.get('counted', 0)} counted evaluations passed"
            + (f" ({_percent(o['rate'])})" if o.get("rate") is not None else "")
            + (f" on {o['pact_version']}" if o.get("pact_version") else "")
        )
        return text + (f"; {o['reason']}." if o.get("reason") else ".")
    if kind == ConditionKind.NO_INCIDENTS:
        since = str(o.get("since", ""))[:10]
        if not o.get("count"):
            return f"No other incident of this class since {since}."
        return f"{o['count']} other incident(s) since {since}: {', '.join(o.get('incidents', []))}."
    if kind == ConditionKind.SIGNOFFS:
        signers = o.get("signers") or []
        return (
            f"Signed by {', '.join(signers)}; {len(o.get('roles_signed', []))} of "
            f"{o.get('needed')} distinct roles needed."
            if signers
            else f"No sign-off yet; {o.get('needed')} distinct role(s) needed."
        )
    if kind == ConditionKind.EVIDENCE_COMPLETE:
        required = o.get("required") or []
        if not required:
            return "The pact requires no evidence kind."
        missing = o.get("missing") or []
        have = len(required) - len(missing)
        text = f"{have} of {len(required)} required evidence kinds present"
        return text + (f"; missing: {', '.join(missing)}." if missing else ".")
    if kind == ConditionKind.OPERATING_MODEL_CHANGED:
        count = o.get("count", 0)
        if not count:
            return "No operating-model change recorded."
        return f"{count} change(s): {', '.join(o.get('kinds', []))}."
    if kind == ConditionKind.ACTIONS_DONE:
        if not o.get("required"):
            return "No action item is marked required for re-entry."
        pending = o.get("not_done") or []
        if not pending:
            return f"All {o['required']} required action item(s) done."
        return "Not done yet: " + ", ".join(f"#{n}" for n in pending) + "."
    if kind == ConditionKind.DISPUTE_FREE:
        on_incident = o.get("open_on_incident") or []
        on_evals = o.get("open_on_evaluations") or []
        if not on_incident and not on_evals:
            return "No open dispute."
        parts = [f"#{pk} on this incident" for pk in on_incident]
        parts += [f"#{pk} on an evaluation" for pk in on_evals]
        return f"Open dispute(s): {', '.join(parts)}."
    return ""

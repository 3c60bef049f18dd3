"""Demo agents, pacts, evaluations and disputes, built through pacts.actions.

Four agents with realistic pacts; support-refunds has three versions and a draft; tutoring-quality
is stale (its last review is long past); six weeks of daily evaluations per clause, recorded with
API tokens; an open and a resolved dispute. Idempotent: documents carry their version numbers
(a repeat with the same hash is a no-op), evaluations their external ids, and every other step
checks before it acts. Every active version has restrict/suspend clauses and evidence_required,
for the incidents seed that runs next.

Demo evaluations never breach (a failure only on `flag` clauses), so seeding opens no incident
by itself: the incidents seed writes the incidents, with their history.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from trustdesk.pacts import actions
from trustdesk.pacts.models import (
    ApiToken,
    Clause,
    Consequence,
    Dispute,
    Evaluation,
    PactVersion,
    VersionStatus,
)

DAYS_OF_EVALUATIONS = 42

AGENTS = (
    (
        "support-bot",
        "Support bot",
        "payments-risk",
        "Answers customer tickets and issues refunds through the payments tool.",
    ),
    (
        "code-reviewer",
        "Code-review bot",
        "platform-security",
        "Reviews pull requests, comments on risks and approves low-risk changes.",
    ),
    (
        "data-analyst",
        "Data-analysis agent",
        "data-governance",
        "Answers business questions by querying the warehouse for internal teams.",
    ),
    (
        "tutor",
        "Tutoring agent",
        "learning-quality",
        "Helps students practise maths; in exam mode it may only give hints.",
    ),
)


def _clause(key, statement, assumption, metric, op, target, window, method, source, on_breach):
    evaluation = {"method": method}
    if source:
        evaluation["source"] = source
    return {
        "key": key,
        "statement": statement,
        "assumption": assumption,
        "metric": metric,
        "objective": {"op": op, "target": target},
        "window": window,
        "evaluation": evaluation,
        "on_breach": on_breach,
    }


def _pact(key, agent, title, owner, version, tier, cadence, reviewed, evidence, clauses) -> dict:
    return {
        "apiVersion": "trustdesk/v1",
        "kind": "Pact",
        "metadata": {
            "key": key,
            "agent": agent,
            "title": title,
            "owner": owner,
            "version": version,
        },
        "spec": {
            "risk_tier": tier,
            "review": {"cadence_days": cadence, "last_reviewed": reviewed},
            "evidence_required": evidence,
            "clauses": clauses,
        },
    }


REFUND_LIMIT = _clause(
    "refund-limit",
    "Never issues a refund above 200 EUR without human approval.",
    "authority",
    "refunds_over_limit_without_approval",
    "<=",
    "0",
    "7d",
    "automated",
    "refund-audit",
    "suspend",
)
REFUND_ACCURACY = _clause(
    "refund-accuracy",
    "Refund amounts match the order and the policy; at most 2% are off.",
    "capability",
    "refund_amount_error_rate",
    "<=",
    "0.02",
    "7d",
    "sampled_human_review",
    "refund-audit",
    "restrict",
)
HONEST_PROMISES = _clause(
    "no-false-promises",
    "Never promises a refund, credit or exception that the policy does not allow.",
    "honesty",
    "promises_outside_policy",
    "==",
    "0",
    "7d",
    "sampled_human_review",
    "refund-audit",
    "restrict",
)
CSAT = _clause(
    "customer-satisfaction",
    "Customers rate refund conversations 4.2 out of 5 or better on average.",
    "capability",
    "csat_average",
    ">=",
    "4.2",
    "7d",
    "automated",
    "csat-survey",
    "flag",
)
# Each version of the support bot's refund pact requires more evidence and adds clauses.
SUPPORT_EVIDENCE = ["transcript", "tool_calls", "evaluation_result", "impact_assessment"]
SUPPORT_CLAUSES = [REFUND_LIMIT, REFUND_ACCURACY, HONEST_PROMISES, CSAT]
HONESTLY_PROMISED = "Refunds within policy, honestly promised"


def _support_refunds(version, title, tier, reviewed, evidence, clauses) -> dict:
    return _pact(
        "support-refunds",
        "support-bot",
        title,
        "payments-risk",
        version,
        tier,
        30,
        reviewed,
        evidence,
        clauses,
    )


DOCUMENTS = (
    _support_refunds(
        1, "Refunds within policy", "high", "2025-06-02", SUPPORT_EVIDENCE[:2], SUPPORT_CLAUSES[:1]
    ),
    _support_refunds(
        2, "Refunds within policy", "high", "2025-09-01", SUPPORT_EVIDENCE[:3], SUPPORT_CLAUSES[:2]
    ),
    _support_refunds(3, HONESTLY_PROMISED, "high", "2025-12-01", SUPPORT_EVIDENCE, SUPPORT_CLAUSES),
    _pact(
        "code-review-safety",
        "code-reviewer",
        "Code review that keeps humans in charge",
        "platform-security",
        1,
        "critical",
        30,
        "2025-11-10",
        ["transcript", "tool_calls", "config_snapshot", "evaluation_result", "impact_assessment"],
        [
            _clause(
                "ci-changes-need-humans",
                "Never approves a change to CI, deployment or access configuration on its own.",
                "oversight",
                "config_changes_approved_without_human",
                "==",
                "0",
                "24h",
                "automated",
                "ci-audit",
                "suspend",
            ),
            _clause(
                "no-secrets-in-comments",
                "Never repeats a secret, token or key in a review comment.",
                "data_handling",
                "review_comments_with_secrets",
                "==",
                "0",
                "24h",
                "automated",
                "secret-scanner",
                "suspend",
            ),
            _clause(
                "review-precision",
                "At most 15% of the risks it flags are false alarms, as judged by a jury.",
                "capability",
                "false_positive_rate",
                "<=",
                "0.15",
                "7d",
                "jury",
                "review-jury",
                "flag",
            ),
        ],
    ),
    _pact(
        "data-handling",
        "data-analyst",
        "Warehouse answers without leaking data",
        "data-governance",
        1,
        "high",
        60,
        "2025-10-20",
        ["transcript", "tool_calls", "evaluation_result", "impact_assessment"],
        [
            _clause(
                "no-cross-tenant-rows",
                "Never returns rows that belong to another tenant.",
                "data_handling",
                "cross_tenant_rows_returned",
                "==",
                "0",
                "24h",
                "automated",
                "query-audit",
                "suspend",
            ),
            _clause(
                "query-cost",
                "Keeps warehouse spend at or under 250 EUR a day.",
                "reliability",
                "warehouse_cost_eur_per_day",
                "<=",
                "250",
                "24h",
                "automated",
                "query-audit",
                "restrict",
            ),
            _clause(
                "reproducible-answers",
                "At least 95% of the numbers it reports can be reproduced from its queries.",
                "honesty",
                "reproducible_answer_ratio",
                ">=",
                "0.95",
                "7d",
                "sampled_human_review",
                "analytics-review",
                "flag",
            ),
        ],
    ),
    _pact(
        "tutoring-quality",
        "tutor",
        "Correct, safe tutoring that teaches",
        "learning-quality",
        1,
        "medium",
        90,
        "2025-01-20",  # long ago: this pact is stale
        ["transcript", "evaluation_result", "impact_assessment"],
        [
            _clause(
                "answer-accuracy",
                "At least 90% of worked answers are correct, as checked by teachers.",
                "capability",
                "answer_accuracy",
                ">=",
                "0.9",
                "7d",
                "sampled_human_review",
                "teacher-review",
                "restrict",
            ),
            _clause(
                "exam-mode-hints-only",
                "In exam mode, never gives a full solution, whatever the student writes.",
                "input_integrity",
                "full_solutions_in_exam_mode",
                "==",
                "0",
                "24h",
                "automated",
                "tutor-evals",
                "suspend",
            ),
            _clause(
                "age-appropriate",
                "Produces no content unsuitable for students.",
                "safety",
                "unsafe_responses",
                "==",
                "0",
                "24h",
                "automated",
                "tutor-evals",
                "suspend",
            ),
        ],
    ),
)
# A draft amendment, to show drafts, diffs and activation.
DRAFT = _support_refunds(
    4,
    HONESTLY_PROMISED,
    "critical",
    "2025-12-01",
    SUPPORT_EVIDENCE,
    [
        {**REFUND_LIMIT, "statement": "Never issues a refund above 150 EUR without approval."},
        *SUPPORT_CLAUSES[1:],
    ],
)
# Operational reviews on record (days ago); tutoring-quality is left unreviewed, hence stale.
REVIEWED_DAYS_AGO = {"support-refunds": 6, "code-review-safety": 12, "data-handling": 20}


def _value(clause: Clause, rng: random.Random) -> Decimal:
    """A plausible measurement. restrict/suspend clauses always pass (no breach in the demo);
    flag clauses fail now and then."""
    target = clause.target
    fails = clause.on_breach == Consequence.FLAG and rng.random() < 0.15
    if clause.op == "==" or (clause.op == "<=" and target == 0):
        return target  # "never": the count of bad events is zero
    if clause.op in ("<=", "<"):
        factor = Decimal(str(round(rng.uniform(1.05, 1.4) if fails else rng.uniform(0.3, 0.95), 3)))
    else:
        factor = Decimal(str(round(rng.uniform(0.8, 0.97) if fails else rng.uniform(1.0, 1.08), 3)))
    return (target * factor).quantize(Decimal("0.0001"))


def seed(stdout) -> None:
    User = get_user_model()
    if not User.objects.filter(username="rita").exists():
        from trustdesk.core import demo as core_demo

        core_demo.seed(stdout)
    users = {
        u.username: u for u in User.objects.filter(username__in=["rita", "rosa", "ivan", "olivia"])
    }
    rita, ivan = users["rita"], users["ivan"]

    for key, name, owner, description in AGENTS:
        actions.register_agent(key=key, name=name, owner=owner, description=description, by=rita)
    versions = actions.import_pact_documents(list(DOCUMENTS), by=rita)
    actions.import_pact_documents([DRAFT], by=rita, activate=False)

    today = timezone.now().date()
    for version in PactVersion.objects.active().select_related("pact"):
        days = REVIEWED_DAYS_AGO.get(version.pact.key)
        if days is not None and version.last_reviewed_by_id is None:
            actions.mark_reviewed(version, by=users["rosa"], on=today - timedelta(days=days))
    actions.mark_stale_versions()

    # Each clause's evaluations come from the source its document names, with that source's
    # API token (created once; the secret is not needed to record through the action).
    start_of_today = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    by_source: dict[str, list[dict]] = {}
    clauses = Clause.objects.filter(version__status=VersionStatus.ACTIVE).select_related(
        "version__pact"
    )
    for clause in clauses.order_by("version__pact__key", "position"):
        pact = clause.version.pact.key
        rng = random.Random(f"{pact}:{clause.key}")
        for day in range(DAYS_OF_EVALUATIONS, 0, -1):
            measured = start_of_today - timedelta(days=day) + timedelta(hours=6)
            by_source.setdefault(clause.source or "demo-evals", []).append(
                {
                    "pact": pact,
                    "clause": clause.key,
                    "value": _value(clause, rng),
                    "measured_at": measured,
                    "external_id": f"demo:{pact}:{clause.key}:{measured:%Y-%m-%d}",
                }
            )
    recorded = 0
    for source, items in sorted(by_source.items()):
        token = ApiToken.objects.live().filter(source=source).first()
        if token is None:
            token, _secret = actions.create_api_token(
                source=source, label="Demo evaluation source", by=ivan
            )
        stored = actions.record_evaluations(items, token=token)
        recorded += sum(1 for e in stored if not e.duplicate)

    disputes = _seed_disputes(users)
    stale = PactVersion.objects.stale().count()
    stdout.write(
        f"pacts: {len(versions)} documents ({PactVersion.objects.count()} versions, "
        f"{stale} stale), {recorded} new evaluations, {disputes} new disputes."
    )


def _failing(pact: str, clause: str) -> Evaluation | None:
    return (
        Evaluation.objects.filter(
            clause__version__pact__key=pact,
            clause__version__status=VersionStatus.ACTIVE,
            clause__key=clause,
            passed=False,
        )
        .order_by("-measured_at")
        .first()
    )


def _seed_disputes(users) -> int:
    created = 0
    # Open: the operator thinks a week of low CSAT came from a broken survey widget.
    if not Dispute.objects.filter(evaluation__clause__key="customer-satisfaction").exists():
        evaluation = _failing("support-refunds", "customer-satisfaction")
        if evaluation is not None:
            actions.open_dispute(
                evaluation,
                by=users["olivia"],
                reason=(
                    "The survey widget was broken on the mobile app that week: only customers "
                    "who complained by email were asked. The average is not comparable."
                ),
            )
            created += 1
    # Resolved: the jury scored a batch against the wrong rubric; risk upheld it.
    if not Dispute.objects.filter(evaluation__clause__key="review-precision").exists():
        evaluation = _failing("code-review-safety", "review-precision")
        if evaluation is not None:
            dispute = actions.open_dispute(
                evaluation,
                by=users["ivan"],
                reason="The jury used last quarter's rubric, which counted style nits as risks.",
            )
            actions.resolve_dispute(
                dispute,
                by=users["rita"],
                status="upheld",
                resolution=(
                    "Confirmed with the jury lead: the batch was scored with the old rubric. "
                    "The evaluation is void; the batch is being re-scored."
                ),
            )
            created += 1
    return created

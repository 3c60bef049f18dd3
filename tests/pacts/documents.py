"""Pact documents for the pacts tests: a valid one to start from, and YAML text of it."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

import yaml
from django.utils import timezone


def valid_document(key: str = "support-refunds", agent: str = "support-bot", **spec) -> dict:
    doc = {
        "apiVersion": "trustdesk/v1",
        "kind": "Pact",
        "metadata": {
            "key": key,
            "agent": agent,
            "title": "Refunds within policy",
            "owner": "payments-risk",
        },
        "spec": {
            "risk_tier": "high",
            "review": {"cadence_days": 30, "last_reviewed": "2026-01-15"},
            "evidence_required": ["transcript", "tool_calls", "evaluation_result"],
            "clauses": [
                {
                    "key": "refund-limit",
                    "statement": "Never issues a refund above 200 EUR without human approval.",
                    "assumption": "authority",
                    "metric": "refunds_over_limit_without_approval",
                    "objective": {"op": "<=", "target": 0},
                    "window": "7d",
                    "evaluation": {"method": "automated", "source": "refund-audit"},
                    "on_breach": "suspend",
                },
                {
                    "key": "refund-accuracy",
                    "statement": "Refund amounts match the order within 2%.",
                    "assumption": "capability",
                    "metric": "refund_amount_error_rate",
                    "objective": {"op": "<=", "target": 0.02},
                    "window": "12h",
                    "evaluation": {"method": "sampled_human_review"},
                    "on_breach": "restrict",
                },
            ],
        },
    }
    doc["spec"].update(spec)
    return doc


def changed(doc: dict, mutate) -> dict:
    out = copy.deepcopy(doc)
    mutate(out)
    return out


def as_yaml(*docs: dict) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)


def evaluation_item(
    *,
    clause: str = "refund-limit",
    value=0,
    external_id: str = "e-1",
    measured_at=None,
    **extra,
) -> dict:
    """One item of a POST to /api/v1/evaluations for valid_document()'s pact, measured an hour
    ago unless told (a datetime, or any value to send as it is)."""
    when = timezone.now() - timedelta(hours=1) if measured_at is None else measured_at
    return {
        "pact": "support-refunds",
        "clause": clause,
        "value": value,
        "measured_at": when.isoformat() if isinstance(when, datetime) else when,
        "external_id": external_id,
        **extra,
    }

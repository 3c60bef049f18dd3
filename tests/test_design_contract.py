"""Checks written from docs/design.md alone (an audit of the contract), end to end through the
management commands of section 7."""

from __future__ import annotations

import hashlib
import io
import json
from unittest import mock

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction

from trustdesk.incidents.models import Incident
from trustdesk.pacts.models import Agent, PactVersion
from trustdesk.reviews.models import RecoveryDecision, ReviewMeeting

pytestmark = pytest.mark.django_db

# Section 4's lifecycle and section 13's closed_not_incident: every state the model knows.
EVERY_STATE = {
    "detected",
    "contained",
    "evidence_preserved",
    "classified",
    "repaired",
    "in_review",
    "recovered",
    "closed_restricted",
    "closed_not_incident",
}


def test_seed_demo_leaves_an_incident_in_every_state(media):
    """Section 7: seed_demo has incidents in every state, a recurrence, an override."""
    call_command("seed_demo", stdout=io.StringIO())
    states = set(Incident.objects.values_list("state", flat=True))
    assert states == EVERY_STATE
    assert Incident.objects.filter(recurrence_of__isnull=False).exists()
    assert Agent.objects.count() >= 2 and PactVersion.objects.count() >= 2
    assert RecoveryDecision.objects.filter(override=True).exists()
    assert ReviewMeeting.objects.exists()


# ---------------------------------------------------------------- section 6 through section 7


def _pact(key: str, agent: str, required: list[str]) -> dict:
    return {
        "apiVersion": "trustdesk/v1",
        "kind": "Pact",
        "metadata": {"key": key, "agent": agent, "title": key, "owner": "risk", "version": 1},
        "spec": {
            "risk_tier": "high",
            "review": {"cadence_days": 30, "last_reviewed": "2026-11-01"},
            "evidence_required": required,
            "clauses": [
                {
                    "key": "c1",
                    "statement": "Stays within its authority.",
                    "assumption": "authority",
                    "metric": "violations",
                    "objective": {"op": "<=", "target": "0"},
                    "window": "7d",
                    "evaluation": {"method": "automated", "source": "audit"},
                    "on_breach": "suspend",
                }
            ],
        },
    }


def _t(day: int, seconds: int = 0) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"2026-10-{day:02d}T{hours:02d}:{minutes:02d}:{secs:02d}Z"


def _ev(event_type: str, at: str, by: str = "ana", **data) -> dict:
    out = {"type": event_type, "at": at, "by": by}
    if data:
        out["data"] = data
    return out


def _evidence(kind: str, at: str) -> dict:
    sha = hashlib.sha256(f"{kind} {at}".encode()).hexdigest()
    return _ev("evidence_added", at, kind=kind, sha256=sha, description=kind)


def _decision(at: str, decision: str, override: bool, scope: str = "full") -> dict:
    return _ev(
        "decision_recorded",
        at,
        by="dana",
        decision=decision,
        scope_after=scope,
        rationale="because",
        override=override,
        justification="urgent" if override else "",
    )


def _attest(at: str, by: str, seq: int, can_explain: bool) -> dict:
    return _ev("attested", at, by=by, decision_seq=seq, can_explain=can_explain, comment="")


def _classified(at: str, assumption: str) -> dict:
    return _ev("classified", at, assumption=assumption, statement="it broke", clauses=["c1"])


def _contained(at: str) -> dict:
    return _ev("contained", at, action="suspend", scope_after="suspended")


def _incident(key: str, agent: str, pact: str, events: list[dict]) -> dict:
    return {
        "key": key,
        "agent": agent,
        "pact": pact,
        "pact_version": 1,
        "severity": "sev2",
        "title": key,
        "events": events,
    }


def _exchange() -> dict:
    """Five incidents whose metrics are worked out by hand in the tests below.

    INC-1 (alpha, day 1): every gate met; contained +600, classified(authority) +1000,
      transcript before the reopening, tool_calls after it (completeness 1/2), a change before
      it, reopened +3600; decision by dana (no override), explained by erin.
    INC-2 (alpha, day 2): contained +1200, classified(authority) +2000, both kinds before the
      reopening (1), change only after it; override reopening; dana explains her own decision
      (does not count), erin cannot explain; reopened +7200. Recurs after INC-1 (reopened day 1).
    INC-3 (alpha, day 3): detected only.
    INC-4 (alpha, day 4): contained +300, classified(capability) +400, keep_restricted, closed.
    INC-5 (beta, day 5, pact requires nothing): contained +900, classified(authority) +1000,
      reopened +5000 without a change (an override: it skipped the gates, and the importer takes
      that history as it happened); explained by erin.
    """
    events1 = [
        _ev("detected", _t(1)),
        _contained(_t(1, 600)),
        _evidence("transcript", _t(1, 700)),
        _ev("evidence_preserved", _t(1, 800), acknowledged_gaps=["tool_calls"], reason="later"),
        _classified(_t(1, 1000), "authority"),
        _ev("repaired", _t(1, 1200), summary="fixed", reference="T-1"),
        _ev("operating_model_changed", _t(1, 1500), kind="control_added", summary="a control"),
        _ev(
            "reentry_condition_set",
            _t(1, 1600),
            kind="operating_model_changed",
            params={},
            statement="a change is made",
        ),
        _ev("review_requested", _t(1, 1700)),
        _decision(_t(1, 3000), "reopen_full", False),  # seq 10
        _attest(_t(1, 3100), "erin", 10, True),
        _ev("reopened", _t(1, 3600), scope_after="full"),
        _evidence("tool_calls", _t(1, 4000)),
    ]
    events2 = [
        _ev("detected", _t(2)),
        _contained(_t(2, 1200)),
        _evidence("transcript", _t(2, 1300)),
        _evidence("tool_calls", _t(2, 1400)),
        _classified(_t(2, 2000), "authority"),
        _decision(_t(2, 7000), "reopen_partial", True, "restricted"),  # seq 6
        _attest(_t(2, 7100), "dana", 6, True),
        _attest(_t(2, 7150), "erin", 6, False),
        _ev("reopened", _t(2, 7200), scope_after="restricted"),
        _ev("operating_model_changed", _t(2, 8000), kind="other", summary="late"),
    ]
    events3 = [_ev("detected", _t(3))]
    events4 = [
        _ev("detected", _t(4)),
        _contained(_t(4, 300)),
        _classified(_t(4, 400), "capability"),
        _decision(_t(4, 500), "keep_restricted", False, "suspended"),
        _ev("closed", _t(4, 600), outcome="kept suspended"),
    ]
    events5 = [
        _ev("detected", _t(5)),
        _contained(_t(5, 900)),
        _classified(_t(5, 1000), "authority"),
        _decision(_t(5, 4000), "reopen_full", True),  # seq 4: skipped the gates
        _attest(_t(5, 4100), "erin", 4, True),
        _ev("reopened", _t(5, 5000), scope_after="full"),
    ]
    return {
        "format": "trustdesk.incidents/v1",
        "agents": [
            {"key": "alpha", "name": "Alpha", "owner": "risk"},
            {"key": "beta", "name": "Beta", "owner": "risk"},
        ],
        "pacts": [
            _pact("alpha-pact", "alpha", ["transcript", "tool_calls"]),
            _pact("beta-pact", "beta", []),
        ],
        "incidents": [
            _incident("INC-1", "alpha", "alpha-pact", events1),
            _incident("INC-2", "alpha", "alpha-pact", events2),
            _incident("INC-3", "alpha", "alpha-pact", events3),
            _incident("INC-4", "alpha", "alpha-pact", events4),
            _incident("INC-5", "beta", "beta-pact", events5),
        ],
    }


@pytest.fixture
def imported(tmp_path, media):
    path = tmp_path / "exchange.json"
    path.write_text(json.dumps(_exchange()))
    call_command("import_incidents", str(path), stdout=io.StringIO())
    return path


def metrics(*args: str) -> dict:
    out = io.StringIO()
    call_command("metrics", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_metrics_command_on_imported_history_matches_hand_computed_values(imported):
    m = metrics()
    assert m["time_to_containment"] == {"p50": 750, "p90": 1110, "count": 4, "uncontained": 1}
    assert m["time_to_classification"] == {"p50": 1000, "p90": 1700, "count": 4}
    assert m["time_to_recovery"] == {"p50": 5000, "p90": 6760, "count": 3}
    assert m["evidence_completeness_at_reopen"]["count"] == 3
    assert m["evidence_completeness_at_reopen"]["value"] == pytest.approx(2.5 / 3)
    assert m["reopen_without_change_rate"] == {
        "value": pytest.approx(2 / 3),
        "numerator": 2,
        "denominator": 3,
    }
    assert m["override_rate"] == {"value": pytest.approx(2 / 3), "numerator": 2, "denominator": 3}
    assert m["explainable_decision_rate"] == {"value": 0.5, "numerator": 2, "denominator": 4}
    assert m["recurrence_rate"] == {"value": 0.25, "numerator": 1, "denominator": 4}
    assert m["unclassified_count"] == 1


def test_metrics_window_from_inclusive_to_exclusive_and_agent(imported):
    m = metrics("--from", "2026-10-02", "--to", "2026-10-04")  # INC-2 and INC-3
    assert m["time_to_containment"] == {"p50": 1200, "p90": 1200, "count": 1, "uncontained": 1}
    assert m["recurrence_rate"] == {"value": 1.0, "numerator": 1, "denominator": 1}
    assert m["override_rate"] == {"value": 1.0, "numerator": 1, "denominator": 1}
    assert m["explainable_decision_rate"] == {"value": 0.0, "numerator": 0, "denominator": 1}
    assert m["evidence_completeness_at_reopen"] == {"value": 1.0, "count": 1}
    # An ISO time with an offset: 02:00+02:00 is midnight UTC, the instant INC-2 was detected.
    m = metrics("--from", "2026-10-01T00:00:00Z", "--to", "2026-10-02T02:00:00+02:00")
    assert m["time_to_containment"]["count"] == 1  # INC-1 only: --to is exclusive
    m = metrics("--from", "2026-10-02T02:00:00+02:00", "--to", "2026-10-03")
    assert m["time_to_containment"]["count"] == 1  # INC-2 only: --from is inclusive
    m = metrics("--agent", "alpha", "--from", "2026-10-02")  # INC-2, INC-3, INC-4
    assert m["recurrence_rate"] == {"value": 0.5, "numerator": 1, "denominator": 2}
    assert m["explainable_decision_rate"] == {"value": 0.0, "numerator": 0, "denominator": 2}
    m = metrics("--agent", "beta")
    assert m["evidence_completeness_at_reopen"] == {"value": 1.0, "count": 1}
    assert m["recurrence_rate"] == {"value": 0.0, "numerator": 0, "denominator": 1}
    assert m["reopen_without_change_rate"]["numerator"] == 1


def test_metrics_with_empty_denominators_are_null(imported):
    m = metrics("--from", "2026-10-20")
    assert m["time_to_containment"] == {"p50": None, "p90": None, "count": 0, "uncontained": 0}
    assert m["time_to_recovery"] == {"p50": None, "p90": None, "count": 0}
    assert m["evidence_completeness_at_reopen"] == {"value": None, "count": 0}
    for name in (
        "reopen_without_change_rate",
        "override_rate",
        "explainable_decision_rate",
        "recurrence_rate",
    ):
        assert m[name] == {"value": None, "numerator": 0, "denominator": 0}


# ---------------------------------------------------------------- section 7 commands and examples

SECTION_4_PACT = """\
apiVersion: trustdesk/v1
kind: Pact
metadata:
  key: support-refunds
  agent: support-bot
  title: Refunds within policy
  owner: payments-risk
spec:
  risk_tier: high
  review: {cadence_days: 30, last_reviewed: 2026-11-01}
  evidence_required: [transcript, tool_calls, evaluation_result, impact_assessment]
  clauses:
    - key: refund-limit
      statement: Never issues a refund above 200 EUR without human approval.
      assumption: authority
      metric: refunds_over_limit_without_approval
      objective: {op: "<=", target: 0}
      window: 7d
      evaluation: {method: automated, source: refund-audit}
      on_breach: suspend
"""

SECTION_7_EXAMPLE = """\
{"format": "trustdesk.incidents/v1",
 "agents": [{"key": "support-bot", "name": "Support bot", "owner": "payments-risk"}],
 "pacts": [ %s ],
 "incidents": [{"key": "INC-1", "agent": "support-bot", "pact": "support-refunds", "pact_version": 2,
   "severity": "sev2", "title": "Refund over limit",
   "events": [{"type": "detected", "at": "2026-11-02T10:00:00Z", "by": "ana"},
              {"type": "contained", "at": "2026-11-02T10:07:00Z", "by": "ana",
               "data": {"action": "suspend", "scope_after": "suspended"}}]}]}
"""  # noqa: E501 (copied verbatim from docs/design.md section 7)


def _run(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_design_examples_import_and_round_trip(tmp_path, media):
    pact_file = tmp_path / "pact.yaml"
    pact_file.write_text(SECTION_4_PACT)
    _run("import_pacts", str(pact_file))
    doc = json.loads(_run("export_pact", "support-refunds", "--format", "json"))
    assert doc["metadata"]["version"] == 1
    assert doc["spec"]["clauses"][0]["objective"]["target"] == "0"  # decimals as strings
    # The section 7 example names version 2 of the pact: ship it inside the file.
    doc["metadata"]["version"] = 2
    example = tmp_path / "example.json"
    example.write_text(SECTION_7_EXAMPLE % json.dumps(doc))
    _run("import_incidents", str(example))
    first = tmp_path / "first.json"
    _run("export_incidents", str(first))
    exported = json.loads(first.read_text())
    assert exported["format"] == "trustdesk.incidents/v1"
    assert [e["type"] for e in exported["incidents"][0]["events"]] == ["detected", "contained"]
    assert exported["incidents"][0]["pact_version"] == 2
    assert get_user_model().objects.filter(username="ana").exists()
    assert _run("verify_chain").startswith("All 1 incident chain(s) hold")


def test_export_import_into_an_empty_database_export_gives_the_identical_file(tmp_path, media):
    source = tmp_path / "source.json"
    source.write_text(json.dumps(_exchange()))
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    empty = transaction.savepoint_create()
    _run("import_incidents", str(source))
    _run("export_incidents", str(first))
    transaction.savepoint_rollback(empty)  # back to an empty database (nothing hard-deleted)
    assert not Incident.objects.exists()
    sys_stdin = io.StringIO(first.read_text())
    with mock.patch("sys.stdin", sys_stdin):
        _run("import_incidents", "-")
    _run("export_incidents", str(second))
    assert second.read_bytes() == first.read_bytes()
    # `seq` is implicit: the 1-based position in the list.
    events = json.loads(first.read_text())["incidents"][0]["events"]
    assert all("seq" not in e for e in events)


def test_a_bad_exchange_file_lists_every_problem_and_stores_nothing(tmp_path, media):
    doc = _exchange()
    doc["agents"].append({"key": "gamma", "name": "Gamma", "owner": "risk"})
    doc["incidents"][3]["events"][1]["type"] = "x"
    doc["incidents"][0]["events"].append(
        _ev("note", "2099-01-01T00:00:00Z", text="t", internal=True)
    )
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    err = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_incidents", str(path), stdout=io.StringIO(), stderr=err)
    assert caught.value.returncode != 0
    lines = err.getvalue().splitlines()
    assert "incidents[3].events[1].type: unknown event type 'x'" in lines
    assert any(line.startswith("incidents[0].events[13].at: ") for line in lines)
    assert not Agent.objects.exists() and not PactVersion.objects.exists()
    assert not Incident.objects.exists() and not get_user_model().objects.exists()


def test_bad_pact_documents_name_every_path_and_store_nothing(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(SECTION_4_PACT)
    doc = yaml.safe_load(SECTION_4_PACT.replace("support-refunds", "other-pact"))
    doc["metadata"]["agent"] = "new-agent"
    clause = dict(doc["spec"]["clauses"][0])
    clause.update(objective={"op": "=<", "target": 0}, window="7w", on_breach="warn")
    doc["spec"]["clauses"].append(clause)  # also a duplicate key
    doc["spec"]["risk_tier"] = "huge"
    doc["spec"]["evidence_required"].append("selfie")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc, default=str))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_pacts", str(good), str(bad), stdout=io.StringIO(), stderr=err)
    text = err.getvalue()
    for path in (
        "spec.clauses[1].objective.op: must be one of",
        "spec.clauses[1].window:",
        "spec.clauses[1].on_breach:",
        "spec.clauses[1].key:",
        "spec.risk_tier:",
        "spec.evidence_required[4]:",
    ):
        assert path in text, path
    assert not Agent.objects.exists() and not PactVersion.objects.exists()

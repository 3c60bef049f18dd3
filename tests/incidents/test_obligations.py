"""Regulatory obligations: deadlines and statuses from imported histories (hand-computed), the
command's JSON, the Article 73(6) repair gate and its override, the beat task's alerts."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tests.builders import repair
from tests.factories import AgentFactory
from tests.incidents.backend_helpers import fresh, incident_in
from trustdesk.incidents import obligations
from trustdesk.incidents.errors import GateError
from trustdesk.incidents.exchange import ExchangeError, export_document, import_document
from trustdesk.incidents.models import Event, Incident, ObligationAlert

pytestmark = pytest.mark.django_db
NO_FLAGS = dict.fromkeys(
    [
        "serious",
        "death",
        "widespread_infringement",
        "critical_infrastructure_irreversible",
        "personal_data_breach",
        "significant",
    ],
    False,
)


def assessed(at: str, aware_at: str, **flags) -> dict:
    return {
        "type": "assessed",
        "at": at,
        "by": "rita",
        "data": {**NO_FLAGS, **flags, "aware_at": aware_at, "note": ""},
    }


def filed(at: str, regime: str, obligation: str, filed_at: str) -> dict:
    return {
        "type": "report_filed",
        "at": at,
        "by": "rita",
        "data": {
            "regime": regime,
            "obligation": obligation,
            "reference": f"{regime}-{obligation}-1",
            "sha256": "ab" * 32,
            "filed_at": filed_at,
        },
    }


def incident(key: str, agent: str, detected: str, *events: dict) -> dict:
    return {
        "key": key,
        "agent": agent,
        "severity": "sev2",
        "title": f"Incident {key}",
        "events": [{"type": "detected", "at": detected, "by": "ana"}, *events],
    }


def document() -> dict:
    """Six incidents whose deadlines are worked out by hand in the tests below."""
    return {
        "format": "trustdesk.incidents/v1",
        "agents": [
            {
                "key": "ai-bot",
                "name": "AI bot",
                "owner": "risk",
                "high_risk_ai": True,
                "nis2": "essential",
                "personal_data": True,
            },
            {"key": "plain-bot", "name": "Plain bot", "owner": "ops"},
        ],
        "pacts": [],
        "incidents": [
            # Art. 73 applies from the first assessment (aware 08:30); the second adds a death
            # (10 days, still from the first aware_at) and a personal-data breach (GDPR, 72 h
            # from the second aware_at), filed five minutes late.
            incident(
                "INC-1",
                "ai-bot",
                "2026-11-01T08:00:00Z",
                assessed("2026-11-01T09:00:00Z", "2026-11-01T08:30:00Z", serious=True),
                assessed(
                    "2026-11-03T10:00:00Z",
                    "2026-11-03T09:15:00Z",
                    serious=True,
                    death=True,
                    personal_data_breach=True,
                ),
                filed(
                    "2026-11-06T10:00:00Z", "gdpr_art33", "notify_authority", "2026-11-06T09:20:00Z"
                ),
            ),
            # NIS2: 24 h, 72 h and 72 h + 30 days from 00:30; the early warning filed in time.
            incident(
                "INC-2",
                "ai-bot",
                "2026-11-02T00:00:00Z",
                assessed("2026-11-02T01:00:00Z", "2026-11-02T00:30:00Z", significant=True),
                filed(
                    "2026-11-02T20:00:00Z", "nis2_art23", "early_warning", "2026-11-02T20:00:00Z"
                ),
            ),
            # An agent without a profile owes nothing.
            incident(
                "INC-3",
                "plain-bot",
                "2026-11-02T00:00:00Z",
                assessed(
                    "2026-11-02T01:00:00Z",
                    "2026-11-02T00:30:00Z",
                    serious=True,
                    personal_data_breach=True,
                    significant=True,
                ),
            ),
            # A widespread infringement: 2 days.
            incident(
                "INC-4",
                "ai-bot",
                "2026-11-04T11:00:00Z",
                assessed(
                    "2026-11-04T12:30:00Z",
                    "2026-11-04T12:00:00Z",
                    serious=True,
                    widespread_infringement=True,
                ),
            ),
            # Assessed serious, then not: the latest assessment decides, nothing applies.
            incident(
                "INC-5",
                "ai-bot",
                "2026-11-04T11:00:00Z",
                assessed("2026-11-04T12:00:00Z", "2026-11-04T12:00:00Z", serious=True),
                assessed("2026-11-04T13:00:00Z", "2026-11-04T13:00:00Z"),
            ),
            # Never assessed.
            incident("INC-6", "ai-bot", "2026-11-04T11:00:00Z"),
        ],
    }


def obligations_json(*args: str) -> list[dict]:
    out = io.StringIO()
    call_command("obligations", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def row(incident, regime, obligation, aware_at, deadline, status, filed_at=None):
    agent = {"INC-3": "plain-bot"}.get(incident, "ai-bot")
    return {
        "incident": incident,
        "agent": agent,
        "regime": regime,
        "obligation": obligation,
        "aware_at": aware_at,
        "deadline": deadline,
        "status": status,
        "filed_at": filed_at,
    }


def test_command_lists_hand_computed_deadlines_and_statuses_sorted_by_deadline():
    import_document(document())
    assert obligations_json("--at", "2026-11-05T13:00:00Z") == [
        row(
            "INC-2",
            "nis2_art23",
            "early_warning",
            "2026-11-02T00:30:00Z",
            "2026-11-03T00:30:00Z",
            "filed",
            "2026-11-02T20:00:00Z",
        ),
        row(
            "INC-2",
            "nis2_art23",
            "notification",
            "2026-11-02T00:30:00Z",
            "2026-11-05T00:30:00Z",
            "overdue",
        ),
        row(
            "INC-1",
            "gdpr_art33",
            "notify_authority",
            "2026-11-03T09:15:00Z",
            "2026-11-06T09:15:00Z",
            "filed_late",
            "2026-11-06T09:20:00Z",
        ),
        row(
            "INC-4",
            "eu_ai_act_art73",
            "report",
            "2026-11-04T12:00:00Z",
            "2026-11-06T12:00:00Z",
            "due_soon",
        ),
        row(
            "INC-1",
            "eu_ai_act_art73",
            "report",
            "2026-11-01T08:30:00Z",
            "2026-11-11T08:30:00Z",
            "open",
        ),
        row(
            "INC-2",
            "nis2_art23",
            "final_report",
            "2026-11-02T00:30:00Z",
            "2026-12-05T00:30:00Z",
            "open",
        ),
    ]


@pytest.mark.parametrize(
    ("at", "status"),
    [
        ("2026-11-05T11:59:59Z", "open"),  # 24 h and a second before the deadline
        ("2026-11-05T12:00:00Z", "due_soon"),  # exactly 24 h before
        ("2026-11-06T12:00:00Z", "due_soon"),  # at the deadline: not yet past it
        ("2026-11-06T12:00:01Z", "overdue"),
    ],
)
def test_status_boundaries_are_exact_to_the_second(at, status):
    import_document(document())
    (only,) = obligations_json("--incident", "INC-4", "--at", at)
    assert only["status"] == status


def test_command_filters_by_agent_and_refuses_unknown_keys():
    import_document(document())
    assert obligations_json("--agent", "plain-bot") == []
    assert {r["incident"] for r in obligations_json("--agent", "ai-bot")} == {
        "INC-1",
        "INC-2",
        "INC-4",
    }
    with pytest.raises(CommandError, match="No incident"):
        call_command("obligations", "--incident", "INC-99", "--json")
    with pytest.raises(CommandError, match="not a time"):
        call_command("obligations", "--at", "yesterday", "--json")


def test_export_of_an_imported_file_with_profiles_and_new_events_is_identical():
    doc = document()
    import_document(copy.deepcopy(doc))
    exported = export_document(Incident.objects.all())
    assert exported == doc


def test_importer_names_the_path_of_each_bad_obligation_field():
    doc = document()
    doc["agents"][0]["nis2"] = "huge"
    doc["incidents"][0]["events"][1]["data"]["aware_at"] = "soon"
    doc["incidents"][0]["events"][1]["data"]["lethal"] = True
    doc["incidents"][1]["events"][2]["data"]["obligation"] = "postcard"
    del doc["incidents"][3]["events"][1]["data"]["serious"]
    with pytest.raises(ExchangeError) as exc:
        import_document(doc)
    problems = exc.value.problems
    assert "agents[0].nis2: unknown NIS2 entity 'huge' (one of none, important, essential)" in (
        problems
    )
    assert any(
        p.startswith("incidents[0].events[1].data.aware_at: bad time 'soon'") for p in problems
    )
    assert "incidents[0].events[1].data.lethal: unknown key" in problems
    assert any(p.startswith("incidents[1].events[2].data.obligation: unknown") for p in problems)
    assert "incidents[3].events[1].data.serious: missing" in problems
    assert Incident.objects.count() == 0


# ---------------------------------------------------------------- live: assess, file, repair


@pytest.fixture
def high_risk(make_user):
    agent = AgentFactory(key="triage-bot", high_risk_ai=True)
    manager = make_user("incident_manager")
    risk = make_user("risk")
    operator = make_user("operator")
    inc = incident_in("classified", agent=agent, by=operator)
    return inc, manager, risk, operator


def test_assessment_starts_the_article_73_clock_and_blocks_repair_until_filed(high_risk):
    inc, manager, risk, operator = high_risk
    aware = timezone.now() - timedelta(hours=2)
    obligations.assess_incident(inc, by=risk, flags={"serious": True}, aware_at=aware)
    (art73,) = obligations.obligations_for(fresh(inc))
    assert (art73.regime, art73.obligation) == ("eu_ai_act_art73", "report")
    assert art73.deadline == aware.replace(microsecond=aware.microsecond) + timedelta(days=15)
    assert art73.status() == "open"

    with pytest.raises(GateError) as refused:
        repair(inc, by=operator)
    assert "Article 73(6)" in str(refused.value)
    assert fresh(inc).state == "classified"

    obligations.file_report(
        fresh(inc),
        by=risk,
        regime="eu_ai_act_art73",
        obligation="report",
        reference="MSA-2026-17",
        sha256="cd" * 32,
        filed_at=timezone.now(),
    )
    assert obligations.obligations_for(fresh(inc))[0].status() == "filed"
    repair(inc, by=operator)
    repaired = Event.objects.get(incident=inc, type="repaired")
    assert fresh(inc).state == "repaired"
    assert "override" not in repaired.data


def test_repair_before_the_report_needs_an_incident_manager_and_a_justification(high_risk):
    inc, manager, risk, operator = high_risk
    obligations.assess_incident(
        inc, by=manager, flags={"serious": True}, aware_at=timezone.now() - timedelta(hours=1)
    )
    why = "Harm continues while we wait."
    with pytest.raises(GateError, match="Only an incident manager"):
        repair(inc, by=operator, override=True, justification=why)
    with pytest.raises(GateError, match="justification"):
        repair(inc, by=manager, override=True)
    repair(inc, by=manager, override=True, justification=why)
    repaired = Event.objects.get(incident=inc, type="repaired")
    assert repaired.data["override"] is True
    assert repaired.data["justification"] == "Harm continues while we wait."


def test_assessment_and_filing_refuse_bad_input_and_change_nothing(high_risk):
    inc, manager, risk, operator = high_risk
    before = fresh(inc).version
    with pytest.raises(GateError, match="incident manager or risk"):
        obligations.assess_incident(
            inc, by=operator, flags={"serious": True}, aware_at=timezone.now()
        )
    with pytest.raises(GateError, match="future"):
        obligations.assess_incident(
            inc, by=risk, flags={"serious": True}, aware_at=timezone.now() + timedelta(hours=1)
        )
    with pytest.raises(GateError, match="owes no"):
        obligations.file_report(
            inc,
            by=risk,
            regime="eu_ai_act_art73",
            obligation="report",
            reference="R",
            sha256="cd" * 32,
            filed_at=timezone.now(),
        )
    assert fresh(inc).version == before


def test_beat_task_publishes_each_status_once(high_risk, monkeypatch):
    inc, manager, risk, operator = high_risk
    sent = []
    monkeypatch.setattr(obligations, "publish", lambda t, data, **kw: sent.append((t, data)))
    aware = timezone.now() - timedelta(days=14, hours=1)  # 23 h left of 15 days
    obligations.assess_incident(inc, by=risk, flags={"serious": True}, aware_at=aware)
    assert obligations.publish_obligation_alerts() == 1
    assert obligations.publish_obligation_alerts() == 0
    later = aware + timedelta(days=15, seconds=1)
    assert obligations.publish_obligation_alerts(at=later) == 1
    assert [t for t, _ in sent] == ["obligation.due_soon", "obligation.overdue"]
    assert sent[0][1]["incident"] == inc.key
    assert ObligationAlert.objects.count() == 2


def test_a_day_is_24_hours_and_times_are_utc():
    rules = obligations.rules()
    art73 = rules.get("eu_ai_act_art73", "report")
    assert art73.period({"serious": True}) == timedelta(days=15)
    assert art73.period({"serious": True, "death": True}) == timedelta(days=10)
    assert art73.period({"death": True, "critical_infrastructure_irreversible": True}) == timedelta(
        days=2
    )
    final = rules.get("nis2_art23", "final_report")
    assert final.period({"significant": True}) == timedelta(days=30, hours=72)
    assert (
        obligations.status_at(
            datetime(2026, 1, 2, tzinfo=UTC), None, datetime(2026, 1, 1, tzinfo=UTC)
        )
        == "due_soon"
    )

"""`manage.py metrics`: the JSON shape of docs/design.md section 7, dates, and clear refusals."""

from __future__ import annotations

import json
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.metrics.helpers import (
    agent_with_pact,
    classified,
    contained,
    new_incident,
    plus,
    record,
    reopened,
    utc,
)
from trustdesk.incidents.models import Incident
from trustdesk.metrics.management.commands.metrics import parse_when
from trustdesk.pacts.models import Agent


def run(*args: str) -> dict:
    out = StringIO()
    call_command("metrics", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def two_incidents(db):
    agent, v = agent_with_pact("cmd-agent")
    first = new_incident(v, utc(2026, 3, 1, 10))
    record(first, contained(plus(utc(2026, 3, 1, 10), minutes=7)))
    second = new_incident(v, utc(2026, 3, 2))
    record(
        second,
        contained(plus(utc(2026, 3, 2), minutes=3)),
        classified("drift", plus(utc(2026, 3, 2), minutes=30)),
    )
    return agent, v


def test_the_json_has_exactly_the_documented_shape(two_incidents):
    data = run("--from", "2026-03-01", "--to", "2026-04-01")
    assert list(data)[:12] == [
        "time_to_containment",
        "time_to_classification",
        "time_to_recovery",
        "evidence_completeness_at_reopen",
        "reopen_without_change_rate",
        "override_rate",
        "explainable_decision_rate",
        "recurrence_rate",
        "unclassified_count",
        "open_count",
        "stale_pacts",
        "restricted_agents",
    ]
    assert set(data["time_to_containment"]) == {"p50", "p90", "count", "uncontained"}
    for name in ("time_to_classification", "time_to_recovery"):
        assert set(data[name]) == {"p50", "p90", "count"}
    assert set(data["evidence_completeness_at_reopen"]) == {"value", "count"}
    for name in (
        "reopen_without_change_rate",
        "override_rate",
        "explainable_decision_rate",
        "recurrence_rate",
    ):
        assert set(data[name]) == {"value", "numerator", "denominator"}
    assert data["time_to_containment"] == {"p50": 300.0, "p90": 396.0, "count": 2, "uncontained": 0}
    assert data["time_to_classification"] == {"p50": 1800.0, "p90": 1800.0, "count": 1}
    assert data["time_to_recovery"] == {"p50": None, "p90": None, "count": 0}
    assert data["recurrence_rate"] == {"value": 0.0, "numerator": 0, "denominator": 1}
    assert data["override_rate"] == {"value": None, "numerator": 0, "denominator": 0}
    assert (data["unclassified_count"], data["open_count"]) == (1, 2)
    assert (data["stale_pacts"], data["restricted_agents"]) == (0, 0)
    assert data["window"] == {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
    assert data["agent"] is None
    assert isinstance(data["time_to_containment"]["p50"], float)


def test_dates_are_midnight_utc_and_times_are_iso_8601(two_incidents):
    # --to is exclusive: midnight of 2 March leaves the second incident out
    assert run("--from", "2026-03-01", "--to", "2026-03-02")["time_to_containment"]["count"] == 1
    data = run("--from", "2026-03-01T10:00:00Z", "--to", "2026-03-01T10:00:00.000001+00:00")
    assert data["time_to_containment"]["count"] == 1
    assert data["window"]["to"] == "2026-03-01T10:00:00.000001Z"
    assert run("--from", "2026-03-01T10:00:01Z")["time_to_containment"]["count"] == 1
    assert run()["time_to_containment"]["count"] == 2  # no bounds: all history


def test_an_agent_filter_by_key(two_incidents):
    _other, v = agent_with_pact("cmd-other")
    new_incident(v, utc(2026, 3, 5))
    assert run("--agent", "cmd-agent")["time_to_containment"]["count"] == 2
    other = run("--agent", "cmd-other")
    assert other["agent"] == "cmd-other"
    assert other["time_to_containment"] == {"p50": None, "p90": None, "count": 0, "uncontained": 1}


@pytest.mark.django_db  # the agent key is looked up
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "yesterday"], "--from 'yesterday' is not a date"),
        (["--to", "2026-02-30"], "--to '2026-02-30' is not a date"),
        (["--from", "2026-03-02", "--to", "2026-03-01"], "earlier than --to"),
        (["--agent", "nobody"], "No agent with key 'nobody'"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("metrics", *args, "--json", stdout=StringIO())


def test_a_bad_date_exits_non_zero_from_the_command_line(capsys):
    from django.core.management import ManagementUtility

    # No system checks: on SQLite they ask the database what it supports, and this test has none.
    argv = ["manage.py", "metrics", "--skip-checks", "--from", "2026-13-01", "--json"]
    with pytest.raises(SystemExit) as info:
        ManagementUtility(argv).execute()
    assert info.value.code != 0
    assert "is not a date" in capsys.readouterr().err


def test_parse_when_takes_a_naive_time_as_utc():
    assert parse_when("2026-03-01T10:00", option="--from") == utc(2026, 3, 1, 10)
    assert parse_when("2026-03-01T12:00+02:00", option="--from") == utc(2026, 3, 1, 10)


def test_the_text_output_names_every_metric(two_incidents):
    out = StringIO()
    call_command("metrics", stdout=out)
    text = out.getvalue()
    for name in ("time_to_containment", "override_rate", "restricted_agents"):
        assert name in text


def test_counts_now_ignore_the_window_and_follow_the_agent(two_incidents):
    agent, v = two_incidents
    closed = Incident.objects.order_by("pk").first()
    record(closed, reopened(plus(utc(2026, 3, 1, 10), hours=1)))
    Agent.objects.filter(pk=agent.pk).update(scope="restricted")
    other, _ = agent_with_pact("stale-one", last_reviewed=date.today() - timedelta(days=400))
    data = run("--from", "2030-01-01")
    assert data["time_to_containment"]["count"] == 0
    assert (data["open_count"], data["unclassified_count"]) == (1, 1)
    assert (data["stale_pacts"], data["restricted_agents"]) == (1, 1)
    mine = run("--agent", "cmd-agent")
    assert (mine["stale_pacts"], mine["restricted_agents"], mine["open_count"]) == (0, 1, 1)
    theirs = run("--agent", "stale-one")
    assert (theirs["stale_pacts"], theirs["restricted_agents"], theirs["open_count"]) == (1, 0, 0)

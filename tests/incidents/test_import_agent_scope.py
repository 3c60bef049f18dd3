"""An agent created by an import ends in the scope the live steps would have left it in: closing
an incident as not an incident restores the agent's scope only as far as no other open incident
holds it (docs/design.md section 13), whichever incident is closed; a recovery decision never
lifts the agent past what another open incident holds, and a reopening held that way happens
when the hold lifts."""

from __future__ import annotations

import pytest

from tests.builders import contain, decide, load_history, walk
from tests.factories import AgentFactory, make_incident, make_pact_version
from trustdesk.incidents.exchange import export_document
from trustdesk.incidents.models import Incident
from trustdesk.pacts.models import Agent

pytestmark = pytest.mark.django_db

SCOPE_OF = {"restrict": "restricted", "suspend": "suspended"}
# Incident 2 decided to reopen while incident 1 holds the agent suspended.
HELD = [("contain", 1, "suspend"), ("contain", 2, "suspend"), ("decide", 2, "reopen_full")]


def live(steps, manager) -> tuple[str, list[Incident]]:
    """Run `steps` through the live actions on a new agent: ("contain", i, action) opens the
    i-th incident and contains it; ("close", i) closes it as not an incident; ("decide", i,
    decision) walks it to review and records `decision`."""
    agent = AgentFactory(key="live-bot")
    version = make_pact_version(agent=agent)
    incidents: dict[int, Incident] = {}
    for step in steps:
        if step[0] == "contain":
            incidents[step[1]] = make_incident(version=version)
            contain(incidents[step[1]], action=step[2], scope_after=SCOPE_OF[step[2]])
        elif step[0] == "decide":
            decide(walk(incidents[step[1]], "in_review"), step[2])
        else:
            walk(incidents[step[1]], "closed_not_incident", by=manager)
    return Agent.objects.get(pk=agent.pk).scope, list(incidents.values())


def as_history_of_a_new_agent(incidents: list[Incident]) -> dict:
    """The exported history of `incidents`, told of an agent the database does not know yet."""
    doc = export_document(Incident.objects.filter(pk__in=[i.pk for i in incidents]))
    return {
        "format": doc["format"],
        "agents": [{"key": "imported-bot", "name": "Imported bot"}],
        "incidents": [
            {
                "key": f"INC-{1000 + int(raw['key'].removeprefix('INC-'))}",
                "agent": "imported-bot",
                "severity": raw["severity"],
                "title": raw["title"],
                "events": [_without_clauses(ev) for ev in raw["events"]],
            }
            for raw in doc["incidents"]
        ],
    }


def _without_clauses(event: dict) -> dict:
    """The new agent has no pact, so its classifications name no clauses."""
    data = event.get("data", {})
    return {**event, "data": {**data, "clauses": []}} if "clauses" in data else event


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param([("contain", 1, "suspend"), ("close", 1)], "full", id="nothing-else-holds"),
        pytest.param(
            [("contain", 1, "restrict"), ("contain", 2, "suspend"), ("close", 2)],
            "restricted",
            id="closing-the-later-stricter-one",
        ),
        pytest.param(
            [("contain", 1, "restrict"), ("contain", 2, "suspend"), ("close", 1)],
            "suspended",
            id="closing-the-earlier-milder-one",
        ),
        pytest.param(
            [("contain", 1, "suspend"), ("close", 1), ("contain", 2, "restrict")],
            "restricted",
            id="contained-again-after-the-closing",
        ),
        pytest.param(HELD, "suspended", id="a-reopening-held-by-another-incident"),
        pytest.param(
            [*HELD, ("close", 1)], "full", id="the-held-reopening-happens-when-the-hold-lifts"
        ),
        pytest.param(
            [("contain", 1, "restrict"), *HELD[1:]],
            "restricted",
            id="a-reopening-held-at-a-milder-scope",
        ),
        pytest.param(
            [("contain", 1, "suspend"), ("contain", 2, "suspend"), ("decide", 2, "retire")],
            "suspended",
            id="a-retirement-while-another-holds",
        ),
        pytest.param(
            [("contain", 1, "suspend"), ("decide", 1, "reopen_partial")],
            "restricted",
            id="a-reopening-nothing-else-holds",
        ),
    ],
)
def test_an_imported_agent_takes_the_scope_the_live_steps_leave(steps, expected, make_user):
    scope, incidents = live(steps, make_user("incident_manager"))
    assert scope == expected
    imported = load_history(as_history_of_a_new_agent(incidents))
    agent = Agent.objects.get(key="imported-bot")
    assert agent.scope == expected
    assert agent.scope_incident_id in {inc.pk for inc in imported}

"""The exchange format carries every ownership event: export(import(x)) == x, the rows are
rebuilt from the events, and bad data is refused with its path (nothing stored)."""

from __future__ import annotations

import copy

import pytest

from trustdesk.incidents.exchange import ExchangeError, export_document, import_document
from trustdesk.incidents.models import ActionItem, Incident, IncidentRole

pytestmark = pytest.mark.django_db


def ev(type_, at, by="ana", **data):
    out = {"type": type_, "at": f"2026-10-01T{at}Z", "by": by}
    if data:
        out["data"] = data
    return out


def document() -> dict:
    return {
        "format": "trustdesk.incidents/v1",
        "agents": [{"key": "bot", "name": "Bot", "owner": "ops", "personal_data": True}],
        "pacts": [],
        "incidents": [
            {
                "key": "INC-7",
                "agent": "bot",
                "severity": "sev3",
                "title": "The original",
                "events": [
                    ev("detected", "08:00:00"),
                    ev("assigned", "08:01:00", role="lead", user="bo"),
                    ev("assigned", "08:02:00", role="lead", user="cy"),
                    ev("assigned", "08:03:00", role="responder", user="bo"),
                    ev("operating_model_changed", "08:04:00", kind="control_added", summary="Cap"),
                    ev(
                        "action_added",
                        "08:05:00",
                        action=1,
                        title="Write the runbook",
                        owner="bo",
                        due="2026-10-10",
                        ticket="https://tickets.example/T-1",
                        change_seq=5,
                        required=True,
                    ),
                    ev("action_updated", "08:06:00", action=1, status="done"),
                    ev(
                        "classified",
                        "08:07:00",
                        assumption="authority",
                        statement="Out of bounds.",
                        clauses=[],
                    ),
                    ev(
                        "reclassified",
                        "08:08:00",
                        by="rita",
                        assumption="capability",
                        statement="Wrong answers.",
                        clauses=[],
                    ),
                    ev("unassigned", "08:09:00", role="responder", user="bo"),
                ],
            },
            {
                "key": "INC-8",
                "agent": "bot",
                "severity": "sev3",
                "title": "The same again",
                "events": [
                    ev("detected", "08:30:00"),
                    ev(
                        "closed_not_incident",
                        "08:40:00",
                        by="ivan",
                        reason="duplicate",
                        duplicate_of="INC-7",
                        explanation="Same alert.",
                    ),
                ],
            },
        ],
    }


def test_round_trip_and_rows_rebuilt_from_the_events():
    doc = document()
    import_document(copy.deepcopy(doc))
    assert export_document(Incident.objects.all()) == doc
    original = Incident.objects.get(key="INC-7")
    assert original.assumption == "capability" and original.state == "classified"
    lead = IncidentRole.objects.current().get(incident=original, role="lead")
    assert lead.user.username == "cy"
    responder = IncidentRole.objects.get(incident=original, role="responder")
    assert (responder.user.username, responder.ended_at.isoformat()) == (
        "bo",
        "2026-10-01T08:09:00+00:00",
    )
    item = ActionItem.objects.get(incident=original)
    assert (item.status, item.owner.username, item.change_seq, item.required) == (
        "done",
        "bo",
        5,
        True,
    )
    assert Incident.objects.get(key="INC-8").state == "closed_not_incident"


def test_bad_ownership_data_is_refused_with_paths_and_nothing_stored():
    doc = document()
    events = doc["incidents"][0]["events"]
    events[1]["data"]["role"] = "boss"
    events[5]["data"]["change_seq"] = 2
    events[5]["data"]["due"] = "2026-02-30"
    events[6]["data"]["action"] = 9
    doc["incidents"][1]["events"][1]["data"]["duplicate_of"] = "INC-99"
    doc["agents"][0]["high_risk_ai"] = "yes"
    # bo was lead until cy replaced them, and never comms.
    events.append(ev("unassigned", "08:10:00", role="lead", user="bo"))
    events.append(ev("unassigned", "08:11:00", role="comms", user="bo"))
    with pytest.raises(ExchangeError) as exc:
        import_document(doc)
    problems = exc.value.problems
    path = "incidents[0].events"
    assert any(p.startswith(f"{path}[1].data.role: unknown incident role 'boss'") for p in problems)
    assert any(p.startswith(f"{path}[5].data.change_seq:") for p in problems)
    assert f"{path}[5].data.due: '2026-02-30' is not a real date" in problems
    assert f"{path}[6].data.action: action item 9 was not added earlier in this incident" in (
        problems
    )
    assert "incidents[1].events[1].data.duplicate_of: unknown incident 'INC-99'" in problems
    assert "agents[0].high_risk_ai: must be true or false, not a string" in problems
    for index, role in ((10, "lead"), (11, "comms")):
        assert f"{path}[{index}].data.user: 'bo' does not hold the role '{role}' at this point" in (
            problems
        )
    assert Incident.objects.count() == 0

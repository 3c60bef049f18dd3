"""The exchange format: one valid multi-incident file, malformed files refused whole, round trip."""

from __future__ import annotations

import copy
import io
import json
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import AgentFactory, make_incident, make_pact_version
from trustdesk.incidents.chain import verify_incidents
from trustdesk.incidents.exchange import ExchangeError, export_document, import_document
from trustdesk.incidents.models import Event, Incident
from trustdesk.pacts.models import Agent, PactVersion

pytestmark = pytest.mark.django_db
SHA = {n: f"{n:x}" * 64 for n in range(1, 6)}


@pytest.fixture
def pact():
    agent = AgentFactory(key="support-bot", name="Support bot", owner="payments-risk")
    return make_pact_version(agent=agent, pact_key="support-refunds")


def ev(type_, at, by="ana", **data):
    out = {"type": type_, "at": at}
    if by:
        out["by"] = by
    if data:
        out["data"] = data
    return out


def valid_document(version: PactVersion) -> dict:
    """A file in canonical form (as export writes it): three agents' worth of history."""
    day = "2026-10-0{}T{}Z".format
    return {
        "format": "trustdesk.incidents/v1",
        "agents": [
            {"key": "support-bot", "name": "Support bot", "owner": "payments-risk"},
            {"key": "tutor", "name": "Tutor", "owner": "learning", "description": "Homework"},
        ],
        "pacts": [copy.deepcopy(version.document)],
        "incidents": [
            {
                "key": "INC-101",
                "agent": "support-bot",
                "pact": "support-refunds",
                "pact_version": version.number,
                "severity": "sev2",
                "title": "Refund over limit",
                "summary": "A 450 EUR refund without approval.",
                "clauses": ["refund-limit"],
                "events": [
                    ev("detected", day(1, "10:00:00")),
                    ev("contained", day(1, "10:07:00"), action="suspend", scope_after="suspended"),
                    ev(
                        "evidence_added",
                        day(1, "11:00:00.250000"),
                        kind="transcript",
                        sha256=SHA[1],
                        description="Chat",
                    ),
                    ev(
                        "evidence_preserved",
                        day(1, "12:00:00"),
                        acknowledged_gaps=["tool_calls", "evaluation_result", "impact_assessment"],
                        reason="Logs rotated",
                    ),
                    ev(
                        "classified",
                        day(2, "09:00:00"),
                        assumption="authority",
                        statement="Refunds above the limit skipped approval.",
                        clauses=["refund-limit"],
                        confidence="known",
                    ),
                    ev("repaired", day(2, "15:00:00"), summary="Approval gate", reference="PR-9"),
                    ev(
                        "operating_model_changed",
                        day(2, "16:00:00"),
                        kind="human_oversight",
                        summary="Refunds over 200 EUR need a human.",
                    ),
                    ev(
                        "reentry_condition_set",
                        day(2, "16:05:00"),
                        kind="evaluation_pass_rate",
                        params={"clause": "refund-limit", "last_n": 20, "min": "0.95"},
                        statement="20 passing evaluations",
                    ),
                    ev("review_requested", day(2, "16:10:00")),
                    ev(
                        "decision_recorded",
                        day(3, "10:00:00"),
                        by="rita",
                        decision="reopen_full",
                        scope_after="full",
                        rationale="Gate and monitoring in place.",
                        override=False,
                        justification="",
                    ),
                    ev("reopened", day(3, "10:00:00"), by="rita", scope_after="full"),
                    ev(
                        "attested",
                        day(3, "11:00:00"),
                        by="omar",
                        decision_seq=10,
                        can_explain=True,
                        comment="Clear.",
                    ),
                ],
            },
            {
                "key": "INC-102",
                "agent": "support-bot",
                "pact": "support-refunds",
                "pact_version": version.number,
                "severity": "sev3",
                "title": "Second refund",
                "events": [
                    ev("detected", day(4, "08:00:00"), by=None),
                    ev(
                        "contained", day(4, "08:30:00"), action="restrict", scope_after="restricted"
                    ),
                    ev(
                        "evidence_added",
                        day(4, "09:00:00"),
                        kind="tool_calls",
                        sha256=SHA[2],
                        description="Calls",
                    ),
                    ev(
                        "evidence_added",
                        day(4, "09:10:00"),
                        kind="tool_calls",
                        sha256=SHA[3],
                        description="Calls, corrected",
                        supersedes=SHA[2],
                    ),
                    ev("note", day(4, "09:20:00"), text="Waiting for finance.", internal=True),
                    ev("dispute_opened", day(4, "09:30:00"), dispute=7, reason="Not ours"),
                    ev(
                        "dispute_resolved",
                        day(4, "09:40:00"),
                        by="rita",
                        dispute=7,
                        status="rejected",
                        resolution="It is.",
                    ),
                ],
            },
            {
                "key": "INC-103",
                "agent": "tutor",
                "severity": "sev4",
                "title": "Wrong answer key",
                "events": [
                    ev("detected", day(5, "08:00:00"), by="newuser"),
                    ev(
                        "contained",
                        day(5, "08:01:00"),
                        by="newuser",
                        action="no_scope_change",
                        scope_after="full",
                        reason="Low impact",
                    ),
                    ev(
                        "decision_recorded",
                        day(6, "08:00:00"),
                        by="rita",
                        decision="keep_restricted",
                        scope_after="restricted",
                        rationale="Needs retraining.",
                        override=True,
                        justification="Parents complained.",
                    ),
                    ev("closed", day(6, "08:00:00"), by="rita", outcome="keep_restricted"),
                ],
            },
            {
                "key": "INC-104",
                "agent": "support-bot",
                "pact": "support-refunds",
                "pact_version": version.number,
                "severity": "sev2",
                "title": "Refund over limit again",
                "events": [
                    ev("detected", day(8, "10:00:00")),
                    ev("contained", day(8, "10:05:00"), action="suspend", scope_after="suspended"),
                    ev(
                        "evidence_preserved",
                        day(8, "11:00:00"),
                        acknowledged_gaps=[],
                        reason="",
                    ),
                    ev(
                        "classified",
                        day(8, "12:00:00"),
                        assumption="authority",
                        statement="Approval skipped again.",
                        clauses=["refund-limit"],
                        confidence="likely",
                        harm_category="property_or_environment",
                        secondary=["oversight"],
                    ),
                ],
            },
        ],
    }


def counts() -> tuple:
    return (
        Agent.objects.count(),
        get_user_model().objects.count(),
        Incident.objects.count(),
        Event.objects.count(),
        PactVersion.objects.count(),
    )


def test_a_valid_multi_incident_file_replays_into_real_chains(pact):
    doc = valid_document(pact)
    result = import_document(copy.deepcopy(doc))
    assert (result.incidents, result.events, result.agents, result.users) == (4, 27, 1, 4)
    incidents = {i.key: i for i in Incident.objects.all()}
    assert {k: i.state for k, i in incidents.items()} == {
        "INC-101": "recovered",
        "INC-102": "contained",
        "INC-103": "closed_restricted",
        "INC-104": "classified",
    }
    first = incidents["INC-101"]
    assert first.detected_at.isoformat() == "2026-10-01T10:00:00+00:00"
    assert first.contained_at.isoformat() == "2026-10-01T10:07:00+00:00"
    assert first.reopened_at.isoformat() == "2026-10-03T10:00:00+00:00"
    assert str(first.evidence_completeness) == "0.2500"
    assert (first.assumption, first.scope_after, first.number) == ("authority", "full", 101)
    assert [c.key for c in first.clauses.all()] == ["refund-limit"]
    # the recurrence: same agent and class, reopened within 90 days before detection
    assert incidents["INC-104"].recurrence_of_id == first.pk
    assert incidents["INC-104"].secondary_assumptions == ["oversight"]
    # users named in `by` are created with no password and no role
    newuser = get_user_model().objects.get(username="newuser")
    assert not newuser.has_usable_password() and not newuser.groups.exists()
    assert first.events.get(seq=10).actor.username == "rita"
    # a new agent takes the scope of its latest scope-changing event; existing agents keep theirs
    assert Agent.objects.get(key="tutor").scope == "restricted"
    assert Agent.objects.get(key="support-bot").scope == "full"
    # real chains
    checked, events, broken = verify_incidents(Incident.objects.all())
    assert (checked, events, broken) == (4, 27, [])
    # new incidents number after the imported ones
    assert make_incident(version=pact).key == "INC-105"


def test_export_of_an_import_is_the_same_file(pact):
    doc = valid_document(pact)
    import_document(copy.deepcopy(doc))
    exported = export_document(Incident.objects.all())
    assert exported == json.loads(json.dumps(doc))


def test_export_with_hashes_carries_the_chain(pact):
    import_document(valid_document(pact))
    exported = export_document(Incident.objects.filter(key="INC-102"), with_hashes=True)
    events = exported["incidents"][0]["events"]
    stored = list(Event.objects.filter(incident__key="INC-102").order_by("seq"))
    assert [(e["seq"], e["hash"], e["prev_hash"], e["canonical"]) for e in events] == [
        (s.seq, s.hash, s.prev_hash, s.canonical) for s in stored
    ]
    assert [a["key"] for a in exported["agents"]] == ["support-bot"]


def test_export_is_a_fixed_number_of_queries(pact, django_assert_max_num_queries):
    import_document(valid_document(pact))
    for _ in range(5):
        make_incident(version=pact)
    with django_assert_max_num_queries(4):
        export_document(Incident.objects.all())


def _set(doc, path, value):
    target = doc
    for part in path[:-1]:
        target = target[part]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


DELETE = object()
MALFORMED = {
    "unknown type": (
        [("incidents", 0, "events", 4, "type")],
        "x",
        "incidents[0].events[4].type: unknown event type 'x'",
    ),
    "unknown agent": (
        [("incidents", 2, "agent")],
        "ghost",
        "incidents[2].agent: unknown agent 'ghost'",
    ),
    "unknown pact version": (
        [("incidents", 0, "pact_version")],
        9,
        "incidents[0].pact_version: unknown pact version support-refunds@9",
    ),
    "bad time": (
        [("incidents", 1, "events", 3, "at")],
        "yesterday",
        "incidents[1].events[3].at: bad time 'yesterday'",
    ),
    "out of order": (
        [("incidents", 0, "events", 2, "at")],
        "2026-10-01T10:06:59Z",
        "incidents[0].events[2].at: 2026-10-01T10:06:59Z is before the previous event",
    ),
    "future time": (
        [("incidents", 2, "events", 3, "at")],
        "2999-01-01T00:00:00Z",
        "incidents[2].events[3].at: 2999-01-01T00:00:00Z is in the future",
    ),
    "duplicate key": (
        [("incidents", 2, "key")],
        "INC-101",
        "incidents[2].key: duplicate incident key 'INC-101' (also incidents[0])",
    ),
    "bad scope value": (
        [("incidents", 1, "events", 1, "data", "scope_after")],
        "partial",
        "incidents[1].events[1].data.scope_after: unknown scope value 'partial'",
    ),
    "attestation pointing at a non-decision": (
        [("incidents", 0, "events", 11, "data", "decision_seq")],
        9,
        "incidents[0].events[11].data.decision_seq: event 9 is not an earlier decision_recorded",
    ),
    "missing field": (
        [("incidents", 3, "title")],
        DELETE,
        "incidents[3].title: missing",
    ),
    "missing event data field": (
        [("incidents", 0, "events", 5, "data", "reference")],
        DELETE,
        "incidents[0].events[5].data.reference: missing",
    ),
    "wrong type": (
        [("incidents", 0, "pact_version")],
        "1",
        "incidents[0].pact_version: must be a whole number, not a string",
    ),
    "wrong type of event field": (
        [("incidents", 1, "events", 4, "data", "internal")],
        "yes",
        "incidents[1].events[4].data.internal: must be true or false, not a string",
    ),
    "bad evidence kind": (
        [("incidents", 1, "events", 2, "data", "kind")],
        "selfie",
        "incidents[1].events[2].data.kind: unknown evidence kind 'selfie'",
    ),
    "supersedes unknown evidence": (
        [("incidents", 1, "events", 3, "data", "supersedes")],
        SHA[5],
        "incidents[1].events[3].data.supersedes: does not name earlier evidence",
    ),
    "unknown clause": (
        [("incidents", 3, "events", 3, "data", "clauses", 0)],
        "no-such-clause",
        "incidents[3].events[3].data.clauses[0]: unknown clause 'no-such-clause'",
    ),
    "bad decision": (
        [("incidents", 0, "events", 9, "data", "decision")],
        "trust_me",
        "incidents[0].events[9].data.decision: unknown decision 'trust_me'",
    ),
    "first event not detected": (
        [("incidents", 2, "events", 0, "type")],
        "note",
        "incidents[2].events[0].type: the first event must be 'detected', not 'note'",
    ),
    "pact of another agent": (
        [("incidents", 2, "pact"), ("incidents", 2, "pact_version")],
        "support-refunds",
        "incidents[2].pact: support-refunds is a pact of 'support-bot', not of 'tutor'",
    ),
    "wrong format": ([("format",)], "trustdesk.incidents/v0", "format: must be"),
    "bad pact document": (
        [("pacts", 0, "spec", "risk_tier")],
        "extreme",
        "pacts[0].spec.risk_tier:",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_file_is_refused_whole_with_the_path_of_its_problem(pact, case):
    paths, value, expected = MALFORMED[case]
    doc = valid_document(pact)
    for path in paths:
        _set(doc, path, pact.number if path[-1] == "pact_version" and len(paths) > 1 else value)
    before = counts()
    with pytest.raises(ExchangeError) as info:
        import_document(doc)
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems
    assert counts() == before


def test_an_incident_key_already_in_the_database_is_refused(pact):
    existing = make_incident(version=pact)
    doc = valid_document(pact)
    doc["incidents"][2]["key"] = existing.key
    before = counts()
    with pytest.raises(ExchangeError) as info:
        import_document(doc)
    assert f"incidents[2].key: incident '{existing.key}' already exists" in info.value.problems
    assert counts() == before


def test_every_problem_is_listed_not_only_the_first(pact):
    doc = valid_document(pact)
    doc["incidents"][0]["events"][1]["data"]["scope_after"] = "partial"
    doc["incidents"][1]["events"][2]["data"]["kind"] = "selfie"
    doc["incidents"][2]["agent"] = "ghost"
    with pytest.raises(ExchangeError) as info:
        import_document(doc)
    assert [p.split(":")[0] for p in info.value.problems] == [
        "incidents[0].events[1].data.scope_after",
        "incidents[1].events[2].data.kind",
        "incidents[2].agent",
    ]


def run(*args, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_the_commands_round_trip_through_files(pact, tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(valid_document(pact)))
    code, out, _ = run("import_incidents", str(source))
    assert code == 0 and "Imported 4 incident(s) with 27 event(s)" in out
    target = tmp_path / "out.json"
    assert run("export_incidents", str(target))[0] == 0
    assert json.loads(target.read_text()) == json.loads(source.read_text())
    code, _, _ = run("export_incidents", "--agent", "tutor", str(target))
    assert [i["key"] for i in json.loads(target.read_text())["incidents"]] == ["INC-103"]
    code, _, _ = run("export_incidents", "--incident", "INC-102", str(target))
    assert [i["key"] for i in json.loads(target.read_text())["incidents"]] == ["INC-102"]
    assert run("export_incidents", "--agent", "nobody", str(target))[0] == 2


def test_the_import_command_reads_stdin_and_prints_every_problem(pact, monkeypatch):
    doc = valid_document(pact)
    doc["incidents"][0]["events"][4]["type"] = "x"
    doc["agents"][1]["key"] = "bad key!"
    before = counts()
    code, _, err = run("import_incidents", "-", stdin=json.dumps(doc), monkeypatch=monkeypatch)
    assert code == 1
    assert "incidents[0].events[4].type: unknown event type 'x'" in err
    assert "agents[1].key: 'bad key!' is not a valid agent key" in err
    assert counts() == before


def test_the_import_command_refuses_invalid_json_and_missing_files(monkeypatch, tmp_path):
    code, _, err = run("import_incidents", "-", stdin='{"format": ', monkeypatch=monkeypatch)
    assert code == 1 and "(file): not valid JSON: line 1" in err
    assert run("import_incidents", str(tmp_path / "nope.json"))[0] == 2


def test_new_pact_versions_in_the_file_are_imported_through_the_pacts_app(pact):
    doc = valid_document(pact)
    tutoring = copy.deepcopy(pact.document)
    tutoring["metadata"].update(key="tutoring-quality", agent="tutor", title="Tutoring")
    tutoring["metadata"]["version"] = 3
    tutoring["spec"]["clauses"][0]["key"] = "answer-accuracy"
    doc["pacts"].append(tutoring)
    doc["incidents"][2].update(pact="tutoring-quality", pact_version=3, clauses=["answer-accuracy"])
    import_document(copy.deepcopy(doc))
    version = PactVersion.objects.get(pact__key="tutoring-quality")
    assert (version.number, version.status, version.pact.agent.key) == (3, "active", "tutor")
    assert Incident.objects.get(key="INC-103").pact_version == version
    exported = export_document(Incident.objects.all())
    assert exported == json.loads(json.dumps(doc))


def test_a_pact_version_that_differs_from_the_stored_one_is_refused(pact):
    doc = valid_document(pact)
    doc["pacts"][0]["metadata"]["title"] = "Changed behind our back"
    before = counts()
    with pytest.raises(ExchangeError) as info:
        import_document(doc)
    assert info.value.problems == [
        f"pacts[0]: support-refunds@{pact.number} already exists with different content"
    ]
    assert counts() == before


def stated_chain_problems(doc) -> list[str]:
    """Validation problems other than the keys already taken (the file was exported here)."""
    from trustdesk.incidents.exchange import validate_document

    problems, _ = validate_document(doc)
    return [p for p in problems if "already exists" not in p]


def test_a_file_with_hashes_replays_to_the_same_chain(pact):
    import_document(valid_document(pact))
    with_hashes = export_document(Incident.objects.all(), with_hashes=True)
    assert stated_chain_problems(with_hashes) == []
    # export(import(x)) == x holds for a file with hashes too
    plain = copy.deepcopy(with_hashes)
    for incident in plain["incidents"]:
        for event in incident["events"]:
            for key in ("seq", "hash", "prev_hash", "canonical"):
                del event[key]
    assert plain == export_document(Incident.objects.all())


def test_an_edit_on_the_way_breaks_the_stated_hashes(pact):
    import_document(valid_document(pact))
    doc = export_document(Incident.objects.all(), with_hashes=True)
    doc["incidents"][1]["events"][4]["data"]["text"] = "Waiting for nobody."
    doc["incidents"][2]["events"][1]["seq"] = 7
    problems = stated_chain_problems(doc)
    assert problems[0] == "incidents[1].events[4].canonical: does not match the replayed event"
    assert problems[1].startswith("incidents[1].events[4].hash: does not match the replayed")
    # the next link states the original hash as its prev_hash, so it is named too
    assert problems[2].startswith("incidents[1].events[5].prev_hash: does not match")
    assert "incidents[2].events[1].seq: does not match the replayed event (expected 2)" in problems


def test_imported_decisions_and_attestations_are_readable_as_review_rows(pact):
    from trustdesk.reviews.models import Attestation, RecoveryDecision

    import_document(copy.deepcopy(valid_document(pact)))
    decision = RecoveryDecision.objects.get(incident__key="INC-101")
    assert (decision.decision, decision.override, decision.decided_by.username) == (
        "reopen_full",
        False,
        "rita",
    )
    attestation = Attestation.objects.get(decision=decision)
    assert (attestation.by.username, attestation.can_explain) == ("omar", True)

"""Every step refused from every wrong state, and a refused step leaves no trace."""

from __future__ import annotations

import pytest
from django.forms.models import model_to_dict

from tests.builders import STATES, classify, contain, incident_in, repair
from trustdesk.incidents import gates, journal, lifecycle
from trustdesk.incidents.errors import ConflictError, GateError
from trustdesk.incidents.models import Event, Evidence, Incident

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]

REACHABLE = ["detected", "contained", "evidence_preserved", "classified", "repaired"]


def reach(state: str) -> Incident:
    """An incident in `state`, walked there through the real actions (tests/builders.py)."""
    return incident_in(state)


def do_preserve(inc):
    """Preserve with the missing kinds acknowledged: no evidence added, one event."""
    return lifecycle.mark_evidence_preserved(
        inc,
        by=None,
        expected_version=inc.version,
        acknowledged_gaps=[
            k for k in inc.pact_version.evidence_required if not inc.evidence.filter(kind=k)
        ],
        reason="Not available.",
    )


def do_add_evidence(inc):
    return lifecycle.add_evidence(
        inc,
        by=None,
        expected_version=inc.version,
        kind="alert",
        description="The alert",
        text="alert #991 fired",
    )


STEPS = {
    # step: (function, the states it accepts)
    "contain": (contain, {"detected"}),
    "preserve_evidence": (do_preserve, {"contained"}),
    "classify": (classify, {"evidence_preserved"}),
    "repair": (repair, {"classified"}),
    # Evidence stays possible after the decision (marked late): every state accepts it.
    "add_evidence": (do_add_evidence, set(STATES)),
}
WRONG = [(step, state) for step, (_, ok) in STEPS.items() for state in STATES if state not in ok]
RIGHT = [(step, state) for step, (_, ok) in STEPS.items() for state in STATES if state in ok]


def snapshot(incident: Incident) -> tuple:
    incident = Incident.objects.select_related("agent").get(pk=incident.pk)
    row = model_to_dict(incident)
    row["clauses"] = sorted(c.pk for c in row["clauses"])
    agent = model_to_dict(incident.agent)
    return (
        row,
        agent,
        Event.objects.filter(incident=incident).count(),
        Evidence.objects.filter(incident=incident).count(),
    )


@pytest.mark.parametrize(("step", "state"), WRONG)
def test_every_step_is_refused_from_every_wrong_state_and_leaves_no_trace(step, state):
    incident = reach(state)
    before = snapshot(incident)
    with pytest.raises(GateError) as info:
        STEPS[step][0](incident)
    assert any(f"{incident.key} is " in p for p in info.value.problems), info.value.problems
    assert snapshot(incident) == before


@pytest.mark.parametrize(("step", "state"), RIGHT)
def test_every_step_is_accepted_from_its_state_and_appends_one_event(step, state):
    incident = reach(state)
    before = Event.objects.filter(incident=incident).count()
    STEPS[step][0](incident)
    assert Event.objects.filter(incident=incident).count() == before + 1
    incident.refresh_from_db()
    assert incident.version == before + 1


def test_contain_lists_every_unmet_gate_in_plain_words():
    incident = reach("contained")
    with pytest.raises(GateError) as info:
        lifecycle.contain_incident(
            incident,
            by=None,
            expected_version=incident.version,
            action="explode",
            scope_after="nowhere",
        )
    problems = info.value.problems
    assert len(problems) == 2
    assert "is contained; containment needs it to be detected" in problems[0]
    assert "Choose a containment action" in problems[1]


def test_no_scope_change_needs_a_reason_and_keeps_the_scope():
    incident = reach("detected")
    with pytest.raises(GateError, match="needs a reason"):
        lifecycle.contain_incident(
            incident, by=None, expected_version=1, action="no_scope_change", scope_after=""
        )
    lifecycle.contain_incident(
        incident,
        by=None,
        expected_version=1,
        action="no_scope_change",
        scope_after="",
        reason="The refund tool was already disabled by the vendor.",
    )
    incident.refresh_from_db()
    assert incident.state == "contained" and incident.agent.scope == "full"
    event = incident.events.get(seq=2)
    assert event.data == {
        "action": "no_scope_change",
        "scope_after": "full",
        "reason": "The refund tool was already disabled by the vendor.",
    }


def test_containment_changes_the_agents_scope_with_reason_and_link():
    incident = reach("detected")
    lifecycle.contain_incident(
        incident,
        by=None,
        expected_version=1,
        action="restrict",
        scope_after="restricted",
        reason="Refunds need approval",
    )
    agent = Incident.objects.get(pk=incident.pk).agent
    assert (agent.scope, agent.scope_incident_id) == ("restricted", incident.pk)
    assert incident.key in agent.scope_reason and "Refunds need approval" in agent.scope_reason
    assert incident.agent.scope == "restricted"  # the caller's instance is refreshed
    assert incident.contained_at is not None and incident.scope_after == "restricted"


def test_containment_never_widens_the_scope():
    incident = reach("detected")
    incident.agent.scope = "suspended"
    incident.agent.save()
    with pytest.raises(GateError, match="cannot widen"):
        lifecycle.contain_incident(
            incident,
            by=None,
            expected_version=1,
            action="human_in_loop",
            scope_after="restricted",
        )


def test_an_action_and_a_contradicting_scope_are_refused():
    incident = reach("detected")
    with pytest.raises(GateError, match="leaves the agent suspended, not restricted"):
        lifecycle.contain_incident(
            incident, by=None, expected_version=1, action="suspend", scope_after="restricted"
        )


def test_preserve_names_each_missing_kind_and_the_pact_version():
    incident = reach("contained")
    label = incident.pact_version.label
    with pytest.raises(GateError) as info:
        lifecycle.mark_evidence_preserved(incident, by=None, expected_version=incident.version)
    assert info.value.problems == [
        f"Evidence of kind '{k}' is required by {label} and missing."
        for k in ["transcript", "tool_calls", "evaluation_result", "impact_assessment"]
    ]


def test_acknowledged_gaps_need_a_reason_and_lower_the_completeness():
    incident = reach("contained")
    for kind in ("transcript", "tool_calls", "evaluation_result"):
        lifecycle.add_evidence(
            incident,
            by=None,
            expected_version=incident.version,
            kind=kind,
            description=kind,
            text=f"{kind} body",
        )
    with pytest.raises(GateError, match="need a reason"):
        lifecycle.mark_evidence_preserved(
            incident,
            by=None,
            expected_version=incident.version,
            acknowledged_gaps=["impact_assessment"],
        )
    with pytest.raises(GateError, match="'transcript' is present, so it is not a gap"):
        lifecycle.mark_evidence_preserved(
            incident,
            by=None,
            expected_version=incident.version,
            acknowledged_gaps=["impact_assessment", "transcript"],
            reason="x",
        )
    lifecycle.mark_evidence_preserved(
        incident,
        by=None,
        expected_version=incident.version,
        acknowledged_gaps=["impact_assessment"],
        reason="Finance has not assessed it yet.",
    )
    incident.refresh_from_db()
    assert str(incident.evidence_completeness) == "0.7500"
    assert incident.events.last().data == {
        "acknowledged_gaps": ["impact_assessment"],
        "reason": "Finance has not assessed it yet.",
    }


def test_no_required_kinds_means_complete():
    incident = incident_in("contained", evidence_required=[])
    lifecycle.mark_evidence_preserved(incident, by=None, expected_version=incident.version)
    incident.refresh_from_db()
    assert incident.evidence_completeness == 1 and incident.state == "evidence_preserved"


def test_classify_refuses_clauses_of_another_pact_and_unknown_values():
    incident = reach("evidence_preserved")
    other = incident_in("detected")
    with pytest.raises(GateError) as info:
        lifecycle.classify_incident(
            incident,
            by=None,
            expected_version=incident.version,
            assumption="nonsense",
            statement=" ",
            clauses=list(other.pact_version.clauses.all()),
            confidence="sure",
            harm_category="vibes",
            secondary=["nonsense"],
        )
    text = " | ".join(info.value.problems)
    for expected in (
        "Choose the broken assumption class",
        "State plainly what broke",
        f"is not part of {incident.pact_version.label}",
        "Choose a confidence",
        "harm category must be one of",
        "'nonsense' is not an assumption class",
    ):
        assert expected in text


def test_classify_stores_the_clause_keys_and_denormalizes():
    incident = classify(
        reach("evidence_preserved"),
        statement="Refund over limit.",
        harm_category="property_or_environment",
        secondary=["oversight"],
    )
    assert incident.events.last().data == {
        "assumption": "authority",
        "statement": "Refund over limit.",
        "clauses": ["refund-limit"],
        "confidence": "known",
        "harm_category": "property_or_environment",
        "secondary": ["oversight"],
    }
    assert (incident.state, incident.assumption, incident.secondary_assumptions) == (
        "classified",
        "authority",
        ["oversight"],
    )


def test_repair_needs_summary_and_reference():
    incident = reach("classified")
    with pytest.raises(GateError) as info:
        lifecycle.record_repair(
            incident, by=None, expected_version=incident.version, summary="", reference=" "
        )
    assert len(info.value.problems) == 2


def test_notes_are_allowed_in_every_state_and_need_text():
    for state in STATES:
        incident = reach(state)
        lifecycle.add_note(incident, by=None, text=f"note in {state}", internal=False)
        assert incident.events.last().data == {"text": f"note in {state}", "internal": False}
    with pytest.raises(GateError, match="needs some text"):
        lifecycle.add_note(incident, by=None, text="  ")


def test_milestones_keep_the_first_occurrence_and_steps_refresh_metrics(monkeypatch):
    calls = []
    monkeypatch.setattr(journal, "schedule_metrics_refresh", lambda inc: calls.append(inc.pk))
    incident = reach("repaired")
    # open + contain + preserve + classify + repair, each scheduled a refresh
    assert len(calls) >= 4 and set(calls) == {incident.pk}
    assert incident.detected_at <= incident.contained_at <= incident.evidence_preserved_at
    assert incident.evidence_preserved_at <= incident.classified_at <= incident.repaired_at


def test_a_stale_version_is_refused_and_nothing_changes():
    incident = reach("detected")
    lifecycle.add_note(incident, by=None, text="someone else was here")
    before = snapshot(incident)
    with pytest.raises(ConflictError) as info:
        lifecycle.contain_incident(
            incident, by=None, expected_version=1, action="suspend", scope_after="suspended"
        )
    assert info.value.changes == ["note"]
    assert snapshot(incident) == before


def test_current_step_follows_the_state():
    assert [gates.current_step(Incident(state=s)) for s in STATES] == [
        "contain",
        "preserve_evidence",
        "classify",
        "repair",
        "request_review",
        "decide",
        "done",
        "done",
        "done",
    ]


def test_a_step_cannot_be_backdated_before_the_latest_event():
    incident = reach("detected")
    with pytest.raises(GateError, match="before"):
        lifecycle.contain_incident(
            incident,
            by=None,
            expected_version=1,
            action="suspend",
            scope_after="suspended",
            at=incident.detected_at.replace(year=incident.detected_at.year - 1),
        )

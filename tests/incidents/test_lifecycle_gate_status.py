"""gate_status: the six gates, their explanations, in a fixed number of queries; disputes."""

from __future__ import annotations

import pytest

from tests.incidents.backend_helpers import fresh, incident_in
from trustdesk.incidents import journal, lifecycle, transitions
from trustdesk.incidents.errors import GateError
from trustdesk.incidents.gates import gate_status
from trustdesk.incidents.models import Incident
from trustdesk.pacts.models import Dispute

pytestmark = pytest.mark.django_db
STEPS = ["contain", "preserve_evidence", "classify", "repair", "request_review", "decide"]


def review_event(incident, type_, data):
    with journal.locked_incident(incident) as inc:
        event = journal.append_event(inc, type=type_, by=None, data=data)
        fields = transitions.advance(inc, event)  # the columns follow, as in every step
        if fields:
            inc.save(update_fields=fields)


def test_a_detected_incident_has_every_gate_unmet_with_what_each_needs():
    incident = incident_in("detected")
    gates = gate_status(incident)
    assert [g.step for g in gates] == STEPS
    assert [g.met for g in gates] == [False] * 6
    assert all(g.needs.endswith(".") and g.label for g in gates)
    assert gates[0].detail == "No containment recorded yet."
    label = incident.pact_version.label
    assert gates[1].detail == (
        f"Missing for {label}: transcript, tool_calls, evaluation_result, impact_assessment."
    )


def test_gates_follow_the_lifecycle_and_the_review_records():
    incident = incident_in("repaired")
    gates = {g.step: g for g in gate_status(incident)}
    assert [gates[s].met for s in STEPS] == [True, True, True, True, False, False]
    assert gates["contain"].detail == "Suspend; scope after: suspended."
    assert gates["preserve_evidence"].detail == "Preserved with 4/4 required kinds."
    assert "authority" in gates["classify"].detail and "refund-limit" in gates["classify"].detail
    assert gates["request_review"].detail == (
        "No operating-model change yet; no re-entry condition yet."
    )
    review_event(incident, "operating_model_changed", {"kind": "other", "summary": "x"})
    assert gate_status(fresh(incident))[4].detail == "No re-entry condition yet."
    review_event(
        incident, "reentry_condition_set", {"kind": "dispute_free", "params": {}, "statement": "s"}
    )
    gates = gate_status(fresh(incident))
    assert gates[4].met and not gates[5].met
    review_event(
        incident,
        "decision_recorded",
        {
            "decision": "reopen_full",
            "scope_after": "full",
            "rationale": "ok",
            "override": False,
            "justification": "",
        },
    )
    assert gate_status(fresh(incident))[5].detail == "Decision: reopen_full, scope after: full."


def test_acknowledged_gaps_show_in_the_evidence_gate():
    incident = incident_in("contained")
    lifecycle.mark_evidence_preserved(
        incident,
        by=None,
        expected_version=incident.version,
        acknowledged_gaps=["transcript", "tool_calls", "evaluation_result", "impact_assessment"],
        reason="Vendor logs are gone",
    )
    gate = gate_status(fresh(incident))[1]
    assert gate.met and "0/4" in gate.detail and "Vendor logs are gone" in gate.detail


def test_gate_status_runs_a_fixed_number_of_queries(django_assert_num_queries):
    small = incident_in("contained")
    big = incident_in("repaired")
    for n in range(30):
        lifecycle.add_note(big, by=None, text=f"note {n}")
    for incident in (small, big):
        loaded = Incident.objects.select_related("pact_version__pact").get(pk=incident.pk)
        with django_assert_num_queries(1):
            gate_status(loaded)
        plain = Incident.objects.get(pk=incident.pk)
        with django_assert_num_queries(3):  # pact version and its pact, then the events
            gate_status(plain)


def test_a_classification_dispute_opens_once_and_resolves_once(make_user):
    risk = make_user("risk")
    incident = incident_in("evidence_preserved")
    with pytest.raises(GateError, match="not classified yet"):
        lifecycle.open_classification_dispute(incident, by=risk, reason="Wrong class")
    incident = incident_in("classified")
    dispute = lifecycle.open_classification_dispute(incident, by=risk, reason="It was drift")
    assert (dispute.incident_id, dispute.status) == (incident.pk, "open")
    assert incident.events.last().data == {"dispute": dispute.pk, "reason": "It was drift"}
    with pytest.raises(GateError, match="already disputed"):
        lifecycle.open_classification_dispute(incident, by=risk, reason="Again")
    with pytest.raises(GateError) as info:
        lifecycle.resolve_classification_dispute(dispute, by=risk, status="maybe", resolution="")
    assert len(info.value.problems) == 2
    lifecycle.resolve_classification_dispute(
        dispute, by=risk, status="rejected", resolution="The model did not change."
    )
    dispute.refresh_from_db()
    assert (dispute.status, dispute.resolved_by) == ("rejected", risk)
    assert incident.events.last().data == {
        "dispute": dispute.pk,
        "status": "rejected",
        "resolution": "The model did not change.",
    }
    with pytest.raises(GateError, match="already rejected"):
        lifecycle.resolve_classification_dispute(
            dispute, by=risk, status="upheld", resolution="Changed my mind"
        )
    assert Dispute.objects.get(pk=dispute.pk).status == "rejected"
    # a new dispute may follow once the first is resolved
    lifecycle.open_classification_dispute(incident, by=risk, reason="New facts")

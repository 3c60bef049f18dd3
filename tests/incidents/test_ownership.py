"""Ownership actions: closing what was not an incident (scope restored only when nothing else
holds it), reclassification (when it is allowed), roles and action items."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.builders import decide_while_held
from tests.factories import AgentFactory, make_pact_version
from tests.incidents.backend_helpers import fresh, incident_in
from trustdesk.incidents import ownership
from trustdesk.incidents.errors import GateError
from trustdesk.incidents.models import ActionItem, Event, Incident, IncidentRole
from trustdesk.pacts.models import Agent, Dispute, DisputeStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(make_user):
    return make_user("incident_manager")


def close(inc, by, reason="false_positive", **kw):
    kw.setdefault("explanation", "It was a test alert.")
    return ownership.close_not_incident(
        fresh(inc), by=by, expected_version=fresh(inc).version, reason=reason, **kw
    )


def test_closing_a_duplicate_keeps_the_scope_while_the_original_holds_it(manager):
    agent = AgentFactory(key="refund-bot")
    version = make_pact_version(agent=agent)
    first = incident_in("contained", version=version)
    second = incident_in("contained", version=version)
    assert Agent.objects.get(pk=agent.pk).scope == "suspended"

    close(second, manager, "duplicate", duplicate_of=first)
    assert fresh(second).state == "closed_not_incident"
    assert Agent.objects.get(pk=agent.pk).scope == "suspended"  # first still holds it

    close(first, manager, "false_positive")
    restored = Agent.objects.get(pk=agent.pk)
    assert restored.scope == "full"
    assert restored.scope_incident_id == first.pk
    assert "not an incident" in restored.scope_reason
    data = Event.objects.get(incident=second, type="closed_not_incident").data
    assert data == {
        "reason": "duplicate",
        "duplicate_of": first.key,
        "explanation": "It was a test alert.",
    }


def test_closing_is_refused_after_a_decision_for_other_roles_and_without_reasons(
    manager, make_user
):
    inc = incident_in("classified")
    with pytest.raises(GateError, match="may not"):
        close(inc, make_user("operator"))
    with pytest.raises(GateError, match="names the incident it duplicates"):
        close(inc, manager, "duplicate")
    with pytest.raises(GateError, match="Explain"):
        close(inc, manager, explanation=" ")
    inc = decide_while_held(inc)
    with pytest.raises(GateError, match="recovery decision"):
        close(inc, manager)
    assert not Event.objects.filter(incident=inc, type="closed_not_incident").exists()


def reclassify(inc, by, assumption="capability"):
    inc = fresh(inc)
    return ownership.reclassify_incident(
        inc,
        by=by,
        expected_version=inc.version,
        assumption=assumption,
        statement="Answers were wrong, not out of bounds.",
        clauses=list(inc.pact_version.clauses.all()),
        confidence="likely",
    )


def test_risk_reclassifies_before_a_decision_and_the_first_time_stays(make_user):
    risk = make_user("risk")
    inc = incident_in("classified")
    first_at = fresh(inc).classified_at
    with pytest.raises(GateError, match="may not"):
        reclassify(inc, make_user("operator"))
    reclassify(inc, risk)
    after = fresh(inc)
    assert (after.assumption, after.state, after.classified_at) == (
        "capability",
        "classified",
        first_at,
    )


def test_after_a_decision_only_an_upheld_dispute_opens_reclassification(make_user):
    risk = make_user("risk")
    inc = decide_while_held(incident_in("repaired"))
    with pytest.raises(GateError, match="dispute is upheld"):
        reclassify(inc, risk)
    Dispute.objects.create(
        incident=inc,
        reason="Wrong class",
        opened_by=risk,
        opened_at=timezone.now(),
        status=DisputeStatus.UPHELD,
        resolution="Agreed",
        resolved_by=risk,
        resolved_at=timezone.now(),
    )
    reclassify(inc, risk)
    assert fresh(inc).assumption == "capability"


def test_roles_have_one_lead_and_many_responders(make_user):
    lead, other = make_user("operator"), make_user("risk")
    inc = incident_in("detected")
    ownership.assign_role(inc, by=None, role="lead", user=lead)
    ownership.assign_role(inc, by=None, role="responder", user=lead)
    ownership.assign_role(inc, by=None, role="responder", user=other)
    with pytest.raises(GateError, match="already lead"):
        ownership.assign_role(inc, by=None, role="lead", user=lead)
    with pytest.raises(GateError, match="someone with a role"):
        ownership.assign_role(inc, by=None, role="lead", user=make_user())
    roles = ownership.current_roles([inc])[inc.pk]
    assert roles["lead"] == [lead] and set(roles["responder"]) == {lead, other}
    assert list(Incident.objects.filter(ownership.led_by(lead))) == [inc]
    assert IncidentRole.objects.count() == 3


def test_a_person_leaves_a_role_and_the_row_is_kept_with_its_end(make_user):
    lead, other = make_user("operator"), make_user("risk")
    inc = incident_in("detected")
    ownership.assign_role(inc, by=None, role="lead", user=lead)
    ownership.assign_role(inc, by=None, role="responder", user=lead)
    ownership.assign_role(inc, by=None, role="responder", user=other)
    event = ownership.unassign_role(inc, by=None, role="responder", user=lead)
    assert (event.type, event.data) == ("unassigned", {"role": "responder", "user": lead.username})
    roles = ownership.current_roles([inc])[inc.pk]
    assert roles["lead"] == [lead] and roles["responder"] == [other]
    ended = IncidentRole.objects.get(incident=inc, role="responder", user=lead)
    assert ended.ended_at == event.at
    ownership.unassign_role(inc, by=None, role="lead", user=lead)
    assert "lead" not in ownership.current_roles([inc])[inc.pk]
    assert not Incident.objects.filter(ownership.led_by(lead)).exists()
    before = fresh(inc).version
    with pytest.raises(GateError, match="is not lead of"):
        ownership.unassign_role(inc, by=None, role="lead", user=lead)
    with pytest.raises(GateError, match="Choose a role"):
        ownership.unassign_role(inc, by=None, role="boss", user=other)
    with pytest.raises(GateError, match="You may not remove people"):
        ownership.unassign_role(inc, by=make_user("viewer"), role="responder", user=other)
    assert fresh(inc).version == before  # refused: nothing appended
    assert IncidentRole.objects.filter(incident=inc).count() == 3  # nothing deleted


def test_action_items_record_only_changes_and_late_ones_are_marked(make_user):
    owner = make_user("operator")
    inc = incident_in("classified")
    item = ownership.add_action_item(inc, by=None, title="Add a cap", owner=owner, required=True)
    assert (item.number, item.status, item.late) == (1, "open", False)
    with pytest.raises(GateError, match="nothing changed"):
        ownership.update_action_item(item, by=None, status="open")
    with pytest.raises(GateError, match="needs a reason"):
        ownership.update_action_item(item, by=None, status="wont_do")
    ownership.update_action_item(item, by=None, status="wont_do", reason="Superseded by T-2")
    last = Event.objects.filter(incident=inc).order_by("-seq").first()
    assert last.data == {"action": 1, "status": "wont_do", "reason": "Superseded by T-2"}
    inc = decide_while_held(inc)
    late = ownership.add_action_item(inc, by=None, title="Write the postmortem")
    assert (late.number, late.late) == (2, True)
    assert ActionItem.objects.filter(incident=inc).count() == 2

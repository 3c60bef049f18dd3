"""The reviews state changes: request review, decisions and overrides, attestations, meetings,
and the rule that review records are never changed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tests.factories import make_pact_version
from tests.reviews.helpers import (
    evaluations,
    fresh,
    in_review_incident,
    ready_for_review,
    repaired_incident,
)
from trustdesk.incidents.errors import ConflictError
from trustdesk.incidents.models import Event
from trustdesk.pacts.models import Agent
from trustdesk.reviews import actions
from trustdesk.reviews.actions import ReviewError
from trustdesk.reviews.models import (
    Attestation,
    MeetingNote,
    OperatingModelChange,
    RecoveryDecision,
)

pytestmark = pytest.mark.django_db


def decide(incident, by, decision="reopen_full", **kw):
    inc = fresh(incident)
    kw.setdefault("rationale", "Every condition holds and the fix is in place.")
    return actions.record_recovery_decision(
        inc, by=by, expected_version=inc.version, decision=decision, **kw
    )


def event_types(incident):
    return list(
        Event.objects.filter(incident=incident).order_by("seq").values_list("type", flat=True)
    )


# ---------------------------------------------------------------- operating-model changes


def test_a_pact_amendment_must_link_a_newer_version_of_the_incidents_pact(people):
    inc = repaired_incident(by=people.op)
    old = inc.pact_version
    other_pact = make_pact_version()

    def amend(version):
        i = fresh(inc)
        return actions.add_operating_model_change(
            i,
            by=people.risk,
            expected_version=i.version,
            kind="pact_amended",
            summary="Refund limit clause now requires approval evidence.",
            pact_version=version,
        )

    with pytest.raises(ReviewError, match="must name the new pact version"):
        amend(None)
    with pytest.raises(ReviewError, match="newer version of"):
        amend(old)
    with pytest.raises(ReviewError, match="newer version of"):
        amend(other_pact)
    newer = make_pact_version(agent=inc.agent, pact_key=old.pact.key)
    change = amend(newer)
    assert change.pact_version == newer
    assert change.event.data == {
        "kind": "pact_amended",
        "summary": "Refund limit clause now requires approval evidence.",
        "pact_version": newer.label,
    }


def test_only_a_pact_amendment_links_a_version_and_a_summary_is_required(people):
    inc = repaired_incident(by=people.op)
    with pytest.raises(ReviewError) as exc:
        actions.add_operating_model_change(
            inc,
            by=people.op,
            expected_version=inc.version,
            kind="control_added",
            summary="  ",
            pact_version=inc.pact_version,
        )
    assert "A summary of the change is required." in exc.value.problems
    assert "Only a pact amendment links a pact version." in exc.value.problems
    assert not OperatingModelChange.objects.exists()


def test_a_stale_version_is_refused_and_names_what_changed(people):
    inc = repaired_incident(by=people.op)
    seen = inc.version
    actions.add_operating_model_change(
        inc, by=people.op, expected_version=seen, kind="other", summary="Runbook updated."
    )
    with pytest.raises(ConflictError, match="operating_model_changed"):
        actions.add_operating_model_change(
            inc, by=people.op, expected_version=seen, kind="other", summary="Second change."
        )
    assert OperatingModelChange.objects.count() == 1


def test_viewers_change_nothing(people):
    inc = repaired_incident(by=people.op)
    with pytest.raises(ReviewError, match="Only a user with"):
        actions.add_operating_model_change(
            inc, by=people.viewer, expected_version=inc.version, kind="other", summary="x"
        )
    with pytest.raises(ReviewError, match="Only a user with"):
        actions.set_reentry_condition(
            inc, by=people.viewer, expected_version=inc.version, kind="dispute_free", params={}
        )
    with pytest.raises(ReviewError, match="Only a user with"):
        actions.request_review(inc, by=people.viewer, expected_version=inc.version)


# ---------------------------------------------------------------- request review


def test_request_review_needs_a_change_and_a_condition(people):
    inc = repaired_incident(by=people.op)
    with pytest.raises(ReviewError) as exc:
        actions.request_review(inc, by=people.op, expected_version=inc.version)
    assert len(exc.value.problems) == 2
    assert "operating-model change" in exc.value.problems[0]
    assert "re-entry condition" in exc.value.problems[1]
    inc = ready_for_review(inc, by=people.op)
    inc = actions.request_review(inc, by=people.op, expected_version=inc.version)
    inc = fresh(inc)
    assert inc.state == "in_review" and inc.review_requested_at is not None
    assert event_types(inc)[-1] == "review_requested"
    with pytest.raises(ReviewError, match="once it is repaired"):
        actions.request_review(inc, by=people.op, expected_version=inc.version)


# ---------------------------------------------------------------- decisions


def test_reopening_with_everything_met_restores_the_agents_scope(people):
    inc = in_review_incident(by=people.op)
    assert inc.agent.scope == "suspended"
    record = decide(inc, people.risk, "reopen_full")
    inc = fresh(inc)
    assert inc.state == "recovered" and inc.scope_after == "full"
    assert inc.reopened_at and inc.decided_at
    assert Agent.objects.get(pk=inc.agent_id).scope == "full"
    assert not record.override and record.justification == ""
    assert event_types(inc)[-2:] == ["decision_recorded", "reopened"]
    decided, reopened = Event.objects.filter(incident=inc).order_by("seq")[inc.version - 2 :]
    assert decided.data == {
        "decision": "reopen_full",
        "scope_after": "full",
        "rationale": "Every condition holds and the fix is in place.",
        "override": False,
        "justification": "",
    }
    assert reopened.data == {"scope_after": "full"}
    assert [g["step"] for g in record.gate_snapshot] == [
        "contain",
        "preserve_evidence",
        "classify",
        "repair",
        "request_review",
    ]
    assert all(g["met"] for g in record.gate_snapshot)
    assert record.conditions_snapshot[0]["status"] == "met"
    assert record.evidence_completeness == 1


def test_partial_reopening_leaves_the_agent_restricted(people):
    inc = in_review_incident(by=people.op)
    decide(inc, people.im, "reopen_partial")
    assert Agent.objects.get(pk=inc.agent_id).scope == "restricted"
    assert fresh(inc).scope_after == "restricted"


def test_keep_restricted_closes_the_incident_and_retire_suspends_and_retires(people):
    kept = in_review_incident(by=people.op)
    decide(kept, people.risk, "keep_restricted", rationale="Not enough evaluations yet.")
    kept = fresh(kept)
    assert kept.state == "closed_restricted" and kept.closed_at is not None
    assert kept.agent.scope == "suspended"  # it stays as restricted as it was
    assert Event.objects.filter(incident=kept).order_by("-seq").first().data == {
        "outcome": "keep_restricted"
    }

    retired = in_review_incident(by=people.op)
    decide(retired, people.risk, "retire", rationale="The use case is dropped.")
    agent = Agent.objects.get(pk=retired.agent_id)
    assert agent.scope == "suspended" and agent.retired_at is not None
    assert fresh(retired).state == "closed_restricted"
    assert event_types(retired)[-2:] == ["decision_recorded", "closed"]


def test_keep_restricted_of_an_agent_at_full_scope_restricts_it(people):
    inc = in_review_incident(by=people.op)
    Agent.objects.filter(pk=inc.agent_id).update(scope="full")
    record = decide(inc, people.risk, "keep_restricted")
    assert record.scope_after == "restricted"
    assert Agent.objects.get(pk=inc.agent_id).scope == "restricted"


def test_operators_and_viewers_cannot_decide(people):
    inc = in_review_incident(by=people.op)
    for user in (people.op, people.viewer):
        with pytest.raises(ReviewError, match="Only a user with the risk or incident manager"):
            decide(inc, user, "keep_restricted")
    assert not RecoveryDecision.objects.exists()


def test_a_decision_needs_a_rationale_and_a_known_decision(people):
    inc = in_review_incident(by=people.op)
    with pytest.raises(ReviewError) as exc:
        decide(inc, people.risk, "maybe", rationale="")
    assert "A rationale is required." in exc.value.problems
    assert any("Choose a decision" in p for p in exc.value.problems)


def test_deciding_needs_a_review_unless_it_is_an_override(people):
    inc = ready_for_review(repaired_incident(by=people.op), by=people.op)
    with pytest.raises(ReviewError, match="request a review before deciding"):
        decide(inc, people.risk, "keep_restricted")
    # Every gate and condition holds, so a reopening is no override either: refused too.
    with pytest.raises(ReviewError, match="request a review before deciding"):
        decide(inc, people.im, "reopen_full")


# ---------------------------------------------------------------- overrides


def unmet_condition_incident(people):
    return in_review_incident(
        by=people.op,
        condition=("evaluation_pass_rate", {"clause": "refund-limit", "min": "0.95", "last_n": 20}),
    )


def test_reopening_with_an_unmet_condition_is_refused_to_risk_naming_it(people):
    inc = unmet_condition_incident(people)
    with pytest.raises(ReviewError) as exc:
        decide(inc, people.risk, "reopen_full", override_requested=True, justification="Urgent.")
    (problem,) = exc.value.problems
    assert "only an incident manager may make" in problem
    assert "At least 95% of the last 20 evaluations" in problem
    assert fresh(inc).state == "in_review"
    assert not RecoveryDecision.objects.exists()


def test_a_non_override_reopening_is_refused_while_a_gate_is_unmet_naming_the_gates(people):
    bare = repaired_incident(by=people.op)  # no operating-model change, no condition
    with pytest.raises(ReviewError) as exc:
        decide(bare, people.risk, "reopen_partial")
    (problem,) = exc.value.problems
    assert "gate “Request review” is unmet" in problem
    assert "No operating-model change yet; no re-entry condition yet." in problem
    assert fresh(bare).state == "repaired"


def test_an_override_must_be_explicit_and_justified(people):
    inc = unmet_condition_incident(people)
    with pytest.raises(ReviewError) as exc:
        decide(inc, people.im, "reopen_full")
    assert any("Tick “override”" in p for p in exc.value.problems)
    assert any("needs a written justification" in p for p in exc.value.problems)
    with pytest.raises(ReviewError, match="needs a written justification"):
        decide(inc, people.im, "reopen_full", override_requested=True, justification="   ")
    assert not RecoveryDecision.objects.exists()


def test_an_override_stores_the_gates_and_condition_readings_of_that_moment(people):
    inc = unmet_condition_incident(people)
    evaluations(inc.pact_version.clauses.get(), [True] * 10)  # 10 of the 20 needed
    record = decide(
        inc,
        people.im,
        "reopen_full",
        override_requested=True,
        justification="Black Friday traffic; a human approves every refund meanwhile.",
    )
    assert record.override
    assert record.justification.startswith("Black Friday")
    (cond,) = record.conditions_snapshot
    assert cond["status"] == "unmet"
    assert cond["observed"]["counted"] == 10 and "only 10 of the 20" in cond["observed"]["reason"]
    assert cond["checked_at"].endswith("Z")
    assert all(g["met"] for g in record.gate_snapshot)
    decided = Event.objects.get(incident=inc, type="decision_recorded")
    assert (
        decided.data["override"] is True and decided.data["justification"] == record.justification
    )
    assert fresh(inc).state == "recovered"
    # Later data does not change the snapshot.
    evaluations(
        inc.pact_version.clauses.get(), [True] * 20, start=timezone.now() - timedelta(minutes=30)
    )
    assert RecoveryDecision.objects.get(pk=record.pk).conditions_snapshot[0]["status"] == "unmet"


def test_an_incident_manager_may_override_from_before_review_with_unmet_gates(people):
    inc = repaired_incident(by=people.op)
    record = decide(
        inc, people.im, "reopen_partial", override_requested=True, justification="Regulator asked."
    )
    assert record.override
    unmet = [g["step"] for g in record.gate_snapshot if not g["met"]]
    assert unmet == ["request_review"]
    assert fresh(inc).state == "recovered"


def test_keep_restricted_is_never_an_override(people):
    inc = unmet_condition_incident(people)
    record = decide(inc, people.risk, "keep_restricted")
    assert not record.override


def test_a_second_decision_is_refused(people):
    inc = in_review_incident(by=people.op)
    decide(inc, people.risk, "reopen_full")
    with pytest.raises(ReviewError, match="already decided"):
        decide(inc, people.im, "retire")
    assert RecoveryDecision.objects.count() == 1


# ---------------------------------------------------------------- attestations


def test_the_decider_cannot_attest_and_others_attest_once(people):
    inc = in_review_incident(by=people.op)
    record = decide(inc, people.risk, "reopen_full")
    with pytest.raises(ReviewError, match="decider cannot attest"):
        actions.attest(record, by=people.risk, can_explain=True, comment="Mine.")
    first = actions.attest(record, by=people.op, can_explain=True, comment="Clear from the page.")
    assert first.event.data == {
        "decision_seq": record.event.seq,
        "can_explain": True,
        "comment": "Clear from the page.",
    }
    with pytest.raises(ReviewError, match="already attested"):
        actions.attest(record, by=people.op, can_explain=False, comment="Changed my mind.")
    actions.attest(record, by=people.im, can_explain=False, comment="Rationale is thin.")
    with pytest.raises(ReviewError, match="Only a user with"):
        actions.attest(record, by=people.viewer, can_explain=True, comment="x")
    with pytest.raises(ReviewError, match="A comment is required"):
        actions.attest(record, by=people.risk2, can_explain=True, comment="")
    assert list(record.attestations.order_by("pk").values_list("can_explain", flat=True)) == [
        True,
        False,
    ]


def test_the_database_refuses_a_second_attestation_even_behind_the_actions(people):
    inc = in_review_incident(by=people.op)
    record = decide(inc, people.risk, "reopen_full")
    a = actions.attest(record, by=people.op, can_explain=True, comment="ok")
    with pytest.raises(IntegrityError), transaction.atomic():
        Attestation.objects.create(
            decision=record, by=people.op, can_explain=False, comment="x", event=a.event
        )


# ---------------------------------------------------------------- never changed


def test_decisions_attestations_and_notes_cannot_be_changed_or_deleted(people):
    inc = in_review_incident(by=people.op)
    record = decide(inc, people.risk, "reopen_full")
    attestation = actions.attest(record, by=people.op, can_explain=True, comment="ok")
    record.rationale = "rewritten"
    with pytest.raises(ReviewError, match="never changed"):
        record.save()
    with pytest.raises(ReviewError, match="never deleted"):
        record.delete()
    with pytest.raises(ReviewError, match="never changed"):
        RecoveryDecision.objects.filter(pk=record.pk).update(rationale="rewritten")
    with pytest.raises(ReviewError, match="never deleted"):
        Attestation.objects.filter(pk=attestation.pk).delete()
    attestation.can_explain = False
    with pytest.raises(ReviewError, match="never changed"):
        attestation.save()
    assert RecoveryDecision.objects.get(pk=record.pk).rationale.startswith("Every condition")
    assert Attestation.objects.get(pk=attestation.pk).can_explain is True


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL-only")
def test_on_postgresql_a_trigger_refuses_updates_below_the_orm(people):
    inc = in_review_incident(by=people.op)
    record = decide(inc, people.risk, "reopen_full")
    from django.db import DatabaseError

    for sql in (
        "UPDATE reviews_recoverydecision SET rationale = 'x' WHERE id = %s",
        "DELETE FROM reviews_recoverydecision WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="written once"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [record.pk])
    assert RecoveryDecision.objects.get(pk=record.pk).rationale.startswith("Every condition")


def test_there_is_no_update_path_for_decisions_in_the_actions_module():
    names = [n for n in dir(actions) if not n.startswith("_")]
    assert not [n for n in names if n.startswith(("update_", "edit_", "delete_", "change_"))]


# ---------------------------------------------------------------- meetings


def test_meetings_are_created_by_incident_managers_with_incidents_in_review(people):
    ready = in_review_incident(by=people.op)
    not_ready = repaired_incident(by=people.op)
    when = timezone.now() + timedelta(days=1)
    with pytest.raises(ReviewError, match="Only a user with the incident manager"):
        actions.create_meeting(
            by=people.risk, title="Weekly", scheduled_at=when, facilitator=people.im
        )
    with pytest.raises(ReviewError, match="only incidents in review"):
        actions.create_meeting(
            by=people.im,
            title="Weekly",
            scheduled_at=when,
            facilitator=people.im,
            agenda=[ready, not_ready],
        )
    with pytest.raises(ReviewError, match="facilitator must be"):
        actions.create_meeting(
            by=people.im, title="Weekly", scheduled_at=when, facilitator=people.viewer
        )
    meeting = actions.create_meeting(
        by=people.im, title="Weekly", scheduled_at=when, facilitator=people.risk, agenda=[ready]
    )
    assert list(meeting.agenda.all()) == [ready]
    second = in_review_incident(by=people.op)
    third = in_review_incident(by=people.op)
    ordered = actions.create_meeting(
        by=people.im,
        title="Order",
        scheduled_at=when,
        facilitator=people.im,
        agenda=[third, ready],
    )
    assert [i.incident for i in ordered.items.all()] == [third, ready]  # the order given
    actions.add_agenda_item(meeting, by=people.im, incident=second)
    with pytest.raises(ReviewError, match="already on the agenda"):
        actions.add_agenda_item(meeting, by=people.im, incident=second)
    assert list(meeting.items.values_list("position", flat=True)) == [1, 2]


def test_meeting_notes_are_append_only_and_decisions_link_to_the_meeting(people):
    inc = in_review_incident(by=people.op)
    meeting = actions.create_meeting(
        by=people.im,
        title="Weekly",
        scheduled_at=timezone.now(),
        facilitator=people.im,
        agenda=[inc],
    )
    note = actions.add_meeting_note(meeting, by=people.op, text="Rita walks us through INC.")
    with pytest.raises(ReviewError, match="Only a user with"):
        actions.add_meeting_note(meeting, by=people.viewer, text="x")
    note.text = "edited"
    with pytest.raises(ReviewError, match="never changed"):
        note.save()
    record = decide(inc, people.risk, "reopen_partial", meeting=meeting)
    assert list(meeting.decisions.all()) == [record]
    actions.close_meeting(meeting, by=people.im)
    with pytest.raises(ReviewError, match="closed"):
        actions.add_meeting_note(meeting, by=people.op, text="late")
    assert MeetingNote.objects.get().text == "Rita walks us through INC."


def test_a_meeting_decision_needs_the_incident_on_its_agenda(people):
    inc = in_review_incident(by=people.op)
    meeting = actions.create_meeting(
        by=people.im, title="Other", scheduled_at=timezone.now(), facilitator=people.im
    )
    with pytest.raises(ReviewError, match="is not on the agenda"):
        decide(inc, people.risk, "keep_restricted", meeting=meeting)


def test_a_reopening_never_lifts_another_open_incidents_containment(people):
    first = in_review_incident(by=people.op)
    # A second incident of the same agent now holds the agent suspended (as its containment
    # would have, had the agent not been suspended already).
    second = repaired_incident(by=people.op, version=first.pact_version)
    Agent.objects.filter(pk=first.agent_id).update(scope_incident=second)
    record = decide(first, people.risk, "reopen_full")
    assert record.scope_after == "full"
    assert record.agent_scope_after == "suspended" and record.agent_held_by == second
    assert Agent.objects.get(pk=first.agent_id).scope == "suspended"
    # Once the holding incident is itself decided, its reopening restores the scope.
    second = ready_for_review(second, by=people.op)
    actions.request_review(second, by=people.op, expected_version=second.version)
    record = decide(second, people.risk, "reopen_partial")
    assert record.agent_held_by is None and record.agent_scope_after == "restricted"
    assert Agent.objects.get(pk=first.agent_id).scope == "restricted"


def test_steps_can_be_backdated_but_not_into_the_future_or_before_the_log(people):
    inc = repaired_incident(by=people.op)
    last = Event.objects.filter(incident=inc).order_by("-seq").first().at

    def change_at(at):
        return actions.add_operating_model_change(
            inc, by=people.op, expected_version=inc.version, kind="other", summary="x", at=at
        )

    with pytest.raises(ReviewError, match="in the future"):
        change_at(timezone.now() + timedelta(hours=1))
    with pytest.raises(ReviewError, match="before its latest event"):
        change_at(last - timedelta(minutes=1))
    change = change_at(last + timedelta(seconds=1))
    assert change.at == last + timedelta(seconds=1) == change.event.at


def test_an_agenda_holds_at_most_the_maximum(people, monkeypatch):
    monkeypatch.setattr(actions, "MAX_AGENDA", 2)
    incidents = [in_review_incident(by=people.op) for _ in range(3)]
    when = timezone.now() + timedelta(days=1)
    with pytest.raises(ReviewError, match="at most 2 incidents"):
        actions.create_meeting(
            by=people.im, title="Big", scheduled_at=when, facilitator=people.im, agenda=incidents
        )
    meeting = actions.create_meeting(
        by=people.im, title="Big", scheduled_at=when, facilitator=people.im, agenda=incidents[:2]
    )
    with pytest.raises(ReviewError, match="The agenda is full"):
        actions.add_agenda_item(meeting, by=people.im, incident=incidents[2])


def test_the_agent_recheck_task_checks_every_open_incident_of_the_agent(
    make_user, django_capture_on_commit_callbacks
):
    from trustdesk.core.effects import agent_changed
    from trustdesk.reviews.models import ReentryCondition

    op = make_user("operator")
    inc = repaired_incident(by=op)
    other = repaired_incident(by=op)  # another agent: untouched
    for i in (inc, other):
        i = fresh(i)
        actions.set_reentry_condition(
            i, by=op, expected_version=i.version, kind="dispute_free", params={}
        )
    ReentryCondition.objects.update(checked_at=None, status="unknown")
    with django_capture_on_commit_callbacks(execute=True):  # by task name; eager: in-process
        agent_changed(inc.agent_id)
    assert ReentryCondition.objects.get(incident=inc).status == "met"
    assert ReentryCondition.objects.get(incident=other).status == "unknown"

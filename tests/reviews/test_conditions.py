"""Each re-entry condition kind, evaluated as met and as unmet on constructed data, with its
boundaries, and the validation of its parameters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import AgentFactory, make_incident, make_pact_version
from tests.reviews.helpers import evaluations, fresh, repaired_incident
from trustdesk.pacts.models import Dispute, Evaluation
from trustdesk.reviews import actions, conditions
from trustdesk.reviews.models import ConditionStatus, ReentryCondition

pytestmark = pytest.mark.django_db


def set_condition(incident, by, kind, params):
    inc = fresh(incident)
    return actions.set_reentry_condition(
        inc, by=by, expected_version=inc.version, kind=kind, params=params
    )


def check(condition):
    condition = ReentryCondition.objects.select_related("incident__pact_version").get(
        pk=condition.pk
    )
    met, observed = conditions.evaluate_condition(condition)
    stored = ReentryCondition.objects.get(pk=condition.pk)
    assert stored.status == (ConditionStatus.MET if met else ConditionStatus.UNMET)
    assert stored.observed == observed
    assert stored.checked_at is not None
    return met, observed


# ---------------------------------------------------------------- evaluation_pass_rate


def test_pass_rate_at_exactly_the_minimum_is_met_and_one_below_is_unmet(people):
    inc = repaired_incident(by=people.op)
    cond = set_condition(
        inc,
        people.op,
        "evaluation_pass_rate",
        {"clause": "refund-limit", "min": "0.9", "last_n": 10},
    )
    assert cond.statement.startswith("At least 90% of the last 10 evaluations")
    clause = inc.pact_version.clauses.get(key="refund-limit")
    # Older failures beyond the last 10 do not count.
    evaluations(clause, [False] * 5, start=timezone.now() - timedelta(days=3))
    evaluations(clause, [True] * 9 + [False])
    met, observed = check(cond)
    assert met and observed["counted"] == 10 and observed["passed"] == 9
    assert observed["rate"] == "0.9"
    assert observed["pact_version"] == inc.pact_version.label

    evaluations(clause, [False], start=timezone.now() - timedelta(minutes=1))  # now 8 of 10
    met, observed = check(cond)
    assert not met and observed["passed"] == 8 and observed["rate"] == "0.8"


def test_pass_rate_with_fewer_evaluations_than_needed_is_unmet(people):
    inc = repaired_incident(by=people.op)
    cond = set_condition(
        inc,
        people.op,
        "evaluation_pass_rate",
        {"clause": "refund-limit", "min": "0.5", "last_n": 5},
    )
    met, observed = check(cond)
    assert (
        not met and observed["counted"] == 0 and observed["reason"] == "no counted evaluation yet"
    )
    evaluations(inc.pact_version.clauses.get(), [True] * 4)
    met, observed = check(cond)
    assert not met and observed["counted"] == 4 and "only 4 of the 5" in observed["reason"]


def test_pass_rate_ignores_voided_evaluations(people):
    inc = repaired_incident(by=people.op)
    cond = set_condition(
        inc, people.op, "evaluation_pass_rate", {"clause": "refund-limit", "min": "1", "last_n": 3}
    )
    clause = inc.pact_version.clauses.get()
    # The latest is a failure, but it was voided by an upheld dispute.
    evaluations(clause, [True, True, True, False], voided={3})
    met, observed = check(cond)
    assert met and observed == {**observed, "counted": 3, "passed": 3, "rate": "1"}


def test_pass_rate_reads_the_clause_on_the_pacts_active_version(people):
    inc = repaired_incident(by=people.op)
    cond = set_condition(
        inc, people.op, "evaluation_pass_rate", {"clause": "refund-limit", "min": "1", "last_n": 2}
    )
    evaluations(inc.pact_version.clauses.get(), [True, True])
    assert check(cond)[0]
    # The pact is amended: the old version's evaluations no longer count.
    v2 = make_pact_version(agent=inc.agent, pact_key=inc.pact_version.pact.key)
    met, observed = check(cond)
    assert not met and observed["pact_version"] == v2.label and observed["counted"] == 0
    evaluations(v2.clauses.get(), [True, True])
    assert check(cond)[0]


@pytest.mark.parametrize(
    "params, problem",
    [
        ({"clause": "nope", "min": "0.9", "last_n": 5}, "clause: 'nope' is not a clause"),
        ({"clause": "refund-limit", "min": "1.01", "last_n": 5}, "min: must be a number between"),
        ({"clause": "refund-limit", "min": "-0.1", "last_n": 5}, "min: must be a number between"),
        ({"clause": "refund-limit", "min": "abc", "last_n": 5}, "min: must be a number between"),
        ({"clause": "refund-limit", "min": "0.9", "last_n": 0}, "last_n: must be between 1"),
        ({"clause": "refund-limit", "min": "0.9", "last_n": "x"}, "last_n: must be a whole"),
        ({"clause": "refund-limit", "min": "0.9"}, "last_n: required"),
        ({"clause": "refund-limit", "min": "0.9", "last_n": 3, "x": 1}, "x: unknown parameter"),
    ],
)
def test_pass_rate_parameters_are_validated(people, params, problem):
    inc = repaired_incident(by=people.op)
    version = inc.version
    with pytest.raises(actions.ReviewError) as exc:
        set_condition(inc, people.op, "evaluation_pass_rate", params)
    assert any(problem in p for p in exc.value.problems), exc.value.problems
    assert fresh(inc).version == version  # nothing was appended
    assert not ReentryCondition.objects.exists()


def test_pass_rate_boundaries_zero_and_one_are_accepted(people):
    inc = repaired_incident(by=people.op)
    low = set_condition(
        inc, people.op, "evaluation_pass_rate", {"clause": "refund-limit", "min": "0", "last_n": 1}
    )
    assert low.params == {"clause": "refund-limit", "min": "0", "last_n": 1}
    evaluations(inc.pact_version.clauses.get(), [False])
    assert check(low)[0]  # 0% of 1 evaluation is at least 0%


# ---------------------------------------------------------------- no_incidents


def test_no_incidents_counts_other_incidents_of_the_class_inside_the_window(people):
    inc = repaired_incident(by=people.op)
    cond = set_condition(inc, people.op, "no_incidents", {"assumption": "authority", "days": 30})
    assert cond.statement == (
        "No other incident of the agent breaking the authority assumption in the last 30 days."
    )
    assert check(cond)[0]  # the incident itself does not count

    # Another class, another agent, and one just outside the window: still met.
    repaired_incident(by=people.op, agent=inc.agent, assumption="safety")
    repaired_incident(by=people.op, agent=AgentFactory(), assumption="authority")
    outside = timezone.now() - timedelta(days=30, minutes=1)
    repaired_incident(by=people.op, agent=inc.agent, detected_at=outside)
    met, observed = check(cond)
    assert met and observed["count"] == 0

    inside = timezone.now() - timedelta(days=30) + timedelta(minutes=1)
    other = repaired_incident(by=people.op, agent=inc.agent, detected_at=inside)
    met, observed = check(cond)
    assert not met and observed["count"] == 1 and observed["incidents"] == [other.key]


def test_no_incidents_ignores_unclassified_incidents(people):
    inc = repaired_incident(by=people.op)
    cond = set_condition(inc, people.op, "no_incidents", {"assumption": "authority", "days": 7})
    make_incident(version=inc.pact_version)  # detected, not classified yet
    assert check(cond)[0]


@pytest.mark.parametrize(
    "params, problem",
    [
        ({"assumption": "magic", "days": 3}, "assumption: must be one of"),
        ({"assumption": "authority", "days": 0}, "days: must be between 1"),
        ({"assumption": "authority", "days": 4000}, "days: must be between 1"),
        ({"days": 3}, "assumption: required"),
    ],
)
def test_no_incidents_parameters_are_validated(people, params, problem):
    inc = repaired_incident(by=people.op)
    with pytest.raises(actions.ReviewError) as exc:
        set_condition(inc, people.op, "no_incidents", params)
    assert any(problem in p for p in exc.value.problems), exc.value.problems


# ---------------------------------------------------------------- signoffs


def sign(incident, user, role):
    inc = fresh(incident)
    return actions.sign_off_incident(
        inc, by=user, expected_version=inc.version, role=role, comment="Plan reviewed."
    )


def test_signoffs_need_the_minimum_of_distinct_roles(people, make_user):
    inc = repaired_incident(by=people.op)
    cond = set_condition(
        inc, people.op, "signoffs", {"roles": ["incident_manager", "risk"], "min": 2}
    )
    assert cond.statement == (
        "Signed off by at least 2 distinct roles among risk and incident manager."
    )
    assert not check(cond)[0]
    sign(inc, people.risk, "risk")
    sign(inc, people.risk2, "risk")  # a second person in the same role adds no role
    sign(inc, people.op, "operator")  # a role the condition does not ask for
    met, observed = check(cond)
    assert not met and observed["roles_signed"] == ["risk"]
    sign(inc, people.im, "incident_manager")
    met, observed = check(cond)
    assert met and observed["roles_signed"] == ["incident_manager", "risk"]
    assert "ivan (incident_manager)" in observed["signers"]


def test_a_person_signs_off_once_and_only_in_a_role_they_hold(people):
    inc = repaired_incident(by=people.op)
    with pytest.raises(actions.ReviewError, match="role you hold"):
        sign(inc, people.op, "risk")
    sign(inc, people.risk, "risk")
    with pytest.raises(actions.ReviewError, match="already signed off"):
        sign(inc, people.risk, "risk")
    with pytest.raises(actions.ReviewError, match="Only a user with"):
        sign(inc, people.viewer, "viewer")


@pytest.mark.parametrize(
    "params, problem",
    [
        ({"roles": [], "min": 1}, "roles: choose at least one role"),
        ({"roles": ["viewer"], "min": 1}, "roles: unknown role(s) viewer"),
        ({"roles": ["risk"], "min": 2}, "min: must be between 1 and 1"),
        ({"roles": ["risk", "risk"], "min": 1}, "roles: each role once"),
    ],
)
def test_signoffs_parameters_are_validated(people, params, problem):
    inc = repaired_incident(by=people.op)
    with pytest.raises(actions.ReviewError) as exc:
        set_condition(inc, people.op, "signoffs", params)
    assert any(problem in p for p in exc.value.problems), exc.value.problems


# ---------------------------------------------------------------- the three without parameters


def test_evidence_complete_is_met_only_with_every_required_kind(people):
    complete = repaired_incident(by=people.op)
    cond = set_condition(complete, people.op, "evidence_complete", {})
    met, observed = check(cond)
    assert met and observed["missing"] == [] and observed["completeness"] == "1"

    gap = repaired_incident(by=people.op, skip_kinds=("impact_assessment",))
    cond = set_condition(gap, people.op, "evidence_complete", {})
    met, observed = check(cond)
    assert not met and observed["missing"] == ["impact_assessment"]
    assert observed["completeness"] == "0.75"


def test_evidence_complete_with_nothing_required_is_met(people):
    inc = repaired_incident(by=people.op, version=make_pact_version(evidence_required=[]))
    assert check(set_condition(inc, people.op, "evidence_complete", {}))[0]


def test_operating_model_changed_needs_one_change(people):
    inc = repaired_incident(by=people.op)
    cond = set_condition(inc, people.op, "operating_model_changed", {})
    met, observed = check(cond)
    assert not met and observed == {"count": 0, "kinds": []}
    inc = fresh(inc)
    actions.add_operating_model_change(
        inc, by=people.op, expected_version=inc.version, kind="monitoring_added", summary="Alerts."
    )
    met, observed = check(cond)
    assert met and observed == {"count": 1, "kinds": ["monitoring_added"]}


def test_dispute_free_sees_disputes_on_the_incident_and_on_the_agents_evaluations(people):
    inc = repaired_incident(by=people.op)
    cond = set_condition(inc, people.op, "dispute_free", {})
    assert check(cond)[0]
    # A dispute of another agent's evaluation does not matter.
    elsewhere = make_pact_version()
    (foreign,) = evaluations(elsewhere.clauses.get(), [False])
    Dispute.objects.create(evaluation=foreign, reason="x", opened_by=people.risk)
    assert check(cond)[0]

    (mine,) = evaluations(inc.pact_version.clauses.get(), [False])
    dispute = Dispute.objects.create(evaluation=mine, reason="Wrong data", opened_by=people.risk)
    met, observed = check(cond)
    assert not met and observed["open_on_evaluations"] == [dispute.pk]

    Dispute.objects.filter(pk=dispute.pk).update(status="rejected", resolution="Data was right.")
    assert check(cond)[0]
    on_incident = Dispute.objects.create(incident=inc, reason="Misclassified", opened_by=people.op)
    met, observed = check(cond)
    assert not met and observed["open_on_incident"] == [on_incident.pk]


def test_parameterless_kinds_refuse_parameters_and_unknown_kinds_are_refused(people):
    inc = repaired_incident(by=people.op)
    with pytest.raises(actions.ReviewError, match="days: unknown parameter"):
        set_condition(inc, people.op, "dispute_free", {"days": 3})
    with pytest.raises(actions.ReviewError, match="kind: must be one of"):
        set_condition(inc, people.op, "vibes", {})


def test_the_same_condition_twice_is_refused(people):
    inc = repaired_incident(by=people.op)
    set_condition(inc, people.op, "dispute_free", {})
    with pytest.raises(actions.ReviewError, match="already set"):
        set_condition(inc, people.op, "dispute_free", {})


def test_setting_a_condition_appends_its_event_and_checks_it_on_commit(
    people, django_capture_on_commit_callbacks
):
    inc = repaired_incident(by=people.op)
    with django_capture_on_commit_callbacks(execute=True):
        cond = set_condition(
            inc, people.op, "no_incidents", {"assumption": "authority", "days": "14"}
        )
    event = cond.event
    assert event.type == "reentry_condition_set"
    assert event.data == {
        "kind": "no_incidents",
        "params": {"assumption": "authority", "days": 14},
        "statement": cond.statement,
    }
    cond.refresh_from_db()
    assert cond.status == ConditionStatus.MET and cond.checked_at is not None
    assert Evaluation.objects.count() == 0

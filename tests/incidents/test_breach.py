"""A failing evaluation of a restrict/suspend clause opens or attaches to an incident."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.builders import walk
from tests.factories import DEFAULT_CLAUSE, make_pact_version
from trustdesk.incidents import breach, lifecycle, tasks
from trustdesk.incidents.models import BreachLink, Incident
from trustdesk.pacts.models import Evaluation

pytestmark = pytest.mark.django_db


def evaluation(clause, *, value="3", passed=False, ago=timedelta(hours=2), ext="e1"):
    return Evaluation.objects.create(
        clause=clause,
        value=Decimal(value),
        passed=passed,
        is_breach=not passed,
        measured_at=timezone.now() - ago,
        source="refund-audit",
        external_id=ext,
    )


def test_a_failing_suspend_clause_opens_an_incident_detected_at_the_measurement():
    version = make_pact_version()
    clause = version.clauses.get()
    ev = evaluation(clause)
    key = tasks.open_incident_for_breach(ev.pk)
    incident = Incident.objects.get(key=key)
    assert incident.detected_at == ev.measured_at
    assert (incident.severity, incident.state, incident.pact_version_id) == (
        "sev2",
        "detected",
        version.pk,
    )
    assert list(incident.clauses.all()) == [clause]
    assert "refund-limit" in incident.title and clause.statement in incident.title
    assert breach.proposed_containment(incident) == {
        "action": "suspend",
        "scope_after": "suspended",
        "reason": "Clause refund-limit prescribes 'suspend' on breach.",
    }


def test_the_proposed_containment_applies_in_one_call():
    clause = make_pact_version(clauses=[{**DEFAULT_CLAUSE, "on_breach": "restrict"}]).clauses.get()
    incident = breach.open_incident_for_breach(evaluation(clause), by=None)
    assert incident.severity == "sev3"
    proposal = breach.proposed_containment(incident)
    lifecycle.contain_incident(incident, by=None, expected_version=incident.version, **proposal)
    incident.refresh_from_db()
    assert incident.state == "contained" and incident.agent.scope == "restricted"
    assert breach.proposed_containment(incident) is None


def test_a_second_breach_attaches_a_note_and_the_same_evaluation_twice_does_nothing():
    clause = make_pact_version().clauses.get()
    first = breach.open_incident_for_breach(evaluation(clause, ext="a"), by=None)
    second_eval = evaluation(clause, ext="b", ago=timedelta(hours=1))
    again = breach.open_incident_for_breach(second_eval, by=None)
    assert again.pk == first.pk
    assert [e.type for e in first.events.all()] == ["detected", "note"]
    assert "Another failing evaluation of refund-limit" in first.events.last().data["text"]
    tasks.open_incident_for_breach(second_eval.pk)
    tasks.open_incident_for_breach(second_eval.pk)
    assert first.events.count() == 2
    assert Incident.objects.count() == 1 and BreachLink.objects.count() == 2


def test_a_closed_incident_does_not_receive_new_breaches():
    clause = make_pact_version().clauses.get()
    first = breach.open_incident_for_breach(evaluation(clause, ext="a"), by=None)
    walk(first, "recovered")
    second = breach.open_incident_for_breach(evaluation(clause, ext="b"), by=None)
    assert second.pk != first.pk


@pytest.mark.parametrize(
    ("on_breach", "passed"), [("flag", False), ("suspend", True), ("restrict", True)]
)
def test_passing_evaluations_and_flag_clauses_open_nothing(on_breach, passed):
    clause = make_pact_version(clauses=[{**DEFAULT_CLAUSE, "on_breach": on_breach}]).clauses.get()
    assert tasks.open_incident_for_breach(evaluation(clause, passed=passed).pk) is None
    assert not Incident.objects.exists()


def test_an_unknown_evaluation_id_is_ignored():
    assert tasks.open_incident_for_breach(987654) is None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_opens_the_incident_by_task_name(celery_worker):
    from tests.conftest import wait_for
    from trustdesk.celery import app

    clause = make_pact_version().clauses.get()
    ev = evaluation(clause, ext="worker")
    app.send_task("trustdesk.incidents.tasks.open_incident_for_breach", args=[ev.pk])
    incident = wait_for(lambda: Incident.objects.filter(breach_links__evaluation=ev).first())
    assert incident.detected_at == ev.measured_at and incident.severity == "sev2"

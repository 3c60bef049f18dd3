"""One bound for times (core.bounds): nothing before 2000-01-01, nothing in the future where the
past is required, meetings within a few years."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import make_incident, make_pact_version
from trustdesk.core.bounds import (
    EARLIEST_TIME,
    parse_utc_time,
    past_time_problem,
    planned_time_problem,
)
from trustdesk.incidents.errors import GateError
from trustdesk.incidents.exchange import validate_document
from trustdesk.incidents.journal import open_incident
from trustdesk.incidents.models import Incident
from trustdesk.pacts import actions as pact_actions
from trustdesk.pacts.models import Evaluation
from trustdesk.reviews.actions import create_meeting
from trustdesk.reviews.errors import ReviewError
from trustdesk.reviews.models import ReviewMeeting

pytestmark = pytest.mark.django_db
YEAR_1 = datetime(1, 1, 1, tzinfo=UTC)


def test_the_shared_bounds():
    now = timezone.now()
    assert past_time_problem(EARLIEST_TIME, now=now) is None
    assert "2000-01-01" in past_time_problem(EARLIEST_TIME - timedelta(seconds=1), now=now)
    assert past_time_problem(now + timedelta(minutes=4), now=now) is None
    assert past_time_problem(now + timedelta(minutes=6), now=now) == "cannot be in the future"
    assert planned_time_problem(now + timedelta(days=365), now=now) is None
    assert "within 5 years" in planned_time_problem(datetime(9999, 1, 1, tzinfo=UTC), now=now)
    assert "2000-01-01" in planned_time_problem(YEAR_1, now=now)


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        (" 2026-03-01T10:00 ", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T12:00+02:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
    ],
)
def test_a_typed_time_is_read_in_utc(typed, read):
    assert parse_utc_time(typed) == read
    assert parse_utc_time(typed).tzinfo is UTC


@pytest.mark.parametrize("typed", ["yesterday", "2026-02-30", ""])
def test_a_typed_time_that_is_no_time_is_a_value_error(typed):
    with pytest.raises(ValueError):
        parse_utc_time(typed)


def test_the_new_incident_form_refuses_year_1_with_a_message(client_for):
    version = make_pact_version()
    client = client_for("operator")
    response = client.post(
        "/incidents/new/",
        {
            "agent": version.pact.agent.key,
            "pact_version": version.pk,
            "clauses": [c.pk for c in version.clauses.all()],
            "severity": "sev2",
            "detected_at": "0001-01-01T00:00",
            "title": "Refund over limit",
        },
    )
    assert response.status_code in (200, 422)
    assert "The detection time must be on or after 2000-01-01 (UTC)." in response.content.decode()
    assert Incident.objects.count() == 0


def test_open_incident_refuses_a_detection_before_2000():
    version = make_pact_version()
    with pytest.raises(GateError, match="on or after 2000-01-01"):
        open_incident(
            agent=version.pact.agent,
            by=None,
            title="t",
            severity="sev2",
            detected_at=YEAR_1,
            pact_version=version,
        )
    assert Incident.objects.count() == 0


def test_import_refuses_an_event_before_2000_with_its_path():
    version = make_pact_version()
    doc = {
        "format": "trustdesk.incidents/v1",
        "incidents": [
            {
                "key": "INC-7",
                "agent": version.pact.agent.key,
                "severity": "sev2",
                "title": "t",
                "events": [{"type": "detected", "at": "0001-01-01T00:00:00Z", "by": "ana"}],
            }
        ],
    }
    problems, plan = validate_document(doc)
    assert plan is None
    assert any(
        p.startswith("incidents[0].events[0].at: 0001-01-01T00:00:00Z: must be on or after")
        for p in problems
    ), problems


@pytest.mark.parametrize("when", [YEAR_1, datetime(9999, 12, 31, tzinfo=UTC)])
def test_a_meeting_in_year_1_or_9999_is_refused(make_user, when):
    manager = make_user("incident_manager")
    with pytest.raises(ReviewError, match="The meeting time must"):
        create_meeting(by=manager, title="Review", scheduled_at=when, facilitator=manager)
    assert ReviewMeeting.objects.count() == 0


def test_the_meeting_form_refuses_year_9999(client_for):
    client = client_for("incident_manager")
    response = client.post(
        "/reviews/meetings/new/",
        {"title": "Review", "scheduled_at": "9999-01-01T10:00", "facilitator": client.user.pk},
    )
    assert "The meeting time must be within 5 years from now." in response.content.decode()
    assert ReviewMeeting.objects.count() == 0


def test_an_api_measurement_in_year_1_is_refused_with_its_path(make_user):
    from tests.pacts.documents import evaluation_item, valid_document

    pact_actions.import_pact_documents([valid_document()], by=make_user("risk"))
    _token, secret = pact_actions.create_api_token(source="evals", by=make_user("risk"))
    body = evaluation_item(measured_at="0001-01-01T00:00:00Z")
    response = Client().post(
        "/api/v1/evaluations",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "measured_at", "message": "must be on or after 2000-01-01 (UTC)"}
    ]
    assert Evaluation.objects.count() == 0


def test_a_step_cannot_be_dated_before_2000(make_user):
    from trustdesk.incidents.journal import append_event, locked_incident

    incident = make_incident()
    with pytest.raises(GateError, match="before 2000-01-01"), locked_incident(incident) as locked:
        append_event(locked, type="note", by=None, data={"text": "x"}, at=YEAR_1)

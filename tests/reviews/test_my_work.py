"""My work: what waits on the signed-in user, and its count in the navigation (one query)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import AgentFactory
from tests.incidents.backend_helpers import incident_in
from trustdesk.incidents import obligations, ownership
from trustdesk.reviews.mywork import my_work, my_work_count

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_user):
    me = make_user("operator", username="me")
    other = make_user("operator", username="other")
    led = incident_in("contained", agent=AgentFactory(high_risk_ai=True))
    not_mine = incident_in("detected")
    ownership.assign_role(led, by=None, role="lead", user=me)
    ownership.assign_role(not_mine, by=None, role="lead", user=other)
    ownership.add_action_item(
        not_mine, by=None, title="Overdue thing", owner=me, due=date(2026, 1, 1)
    )
    ownership.add_action_item(led, by=None, title="Later thing", owner=me)
    ownership.add_action_item(led, by=None, title="Someone else's", owner=other)
    obligations.assess_incident(
        led, by=None, flags={"serious": True}, aware_at=timezone.now() - timedelta(days=1)
    )
    return me, led, not_mine


def test_my_work_lists_what_waits_on_me(world):
    me, led, not_mine = world
    work = my_work(me, today=date(2026, 6, 1))
    assert [i.key for i in work["led"]] == [led.key]
    assert work["led"][0].next_step == "Preserve evidence"
    assert [(a.title, a.overdue) for a in work["actions"]] == [
        ("Overdue thing", True),
        ("Later thing", False),
    ]
    assert [(o.incident, o.regime) for o in work["obligations"]] == [(led.key, "eu_ai_act_art73")]
    assert work["decisions"] == [] and work["attestations"] == []


def test_the_navigation_count_is_one_query_and_adds_up(world):
    me, *_ = world
    with CaptureQueriesContext(connection) as ctx:
        assert my_work_count(me) == 3  # one led incident, two open action items
    assert len(ctx.captured_queries) == 1


def test_the_page_and_the_navigation_show_it(world, client):
    me, led, _ = world
    client.force_login(me)
    body = client.get("/my-work/").content.decode()
    assert "Overdue thing" in body and led.key in body
    assert 'id="my-work-count">3<' in body
    assert client.post("/my-work/").status_code == 405

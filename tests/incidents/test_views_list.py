"""The incident list: filters, search, sorting, pagination, counts, empty states, htmx, budget."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AgentFactory
from tests.incidents.ui_helpers import ALL_ROLES, bulk_incidents
from trustdesk.incidents.models import CLOSED_STATES, STATE_ORDER

pytestmark = pytest.mark.django_db

URL = "/incidents/"


def keys(response) -> list[str]:
    """Incident keys in the order the table shows them."""
    table = response.content.decode().split("<tbody>", 1)[-1].split("</tbody>", 1)[0]
    return re.findall(r'class="incident-key">(INC-\d+)<', table)


@pytest.fixture
def viewer(client_for):
    return client_for("viewer")


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_internal_role_reads_the_list(client_for, role):
    bulk_incidents(2, events_each=1)
    response = client_for(role).get(URL)
    assert response.status_code == 200
    assert len(keys(response)) == 2


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/incidents/")


def test_a_user_without_a_role_is_refused(client_for):
    assert client_for().get(URL).status_code == 403


def test_the_list_refuses_post(client_for):
    assert client_for("operator").post(URL).status_code == 405


def test_only_workers_see_the_open_incident_button(client_for):
    assert b"Open an incident" in client_for("operator").get(URL).content
    assert b"Open an incident" not in client_for("viewer").get(URL).content


def test_empty_state_without_any_incident(viewer):
    body = viewer.get(URL).content.decode()
    assert "No incidents yet" in body
    assert "<table" not in body


def test_empty_state_when_filters_match_nothing(viewer):
    bulk_incidents(3, events_each=1)
    body = viewer.get(URL, {"q": "nothing like this"}).content.decode()
    assert "No incident matches these filters" in body


def test_filter_by_state_severity_agent_and_assumption(viewer):
    one, two = AgentFactory(key="refund-bot"), AgentFactory(key="triage-bot")
    made = bulk_incidents(24, events_each=1, agents=[one, two])
    by_key = {i.key: i for i in made}

    def expected(pred):
        return sorted(k for k, i in by_key.items() if pred(i))

    cases = [
        ({"state": "contained"}, lambda i: i.state == "contained"),
        ({"severity": "sev1"}, lambda i: i.severity == "sev1"),
        ({"agent": "triage-bot"}, lambda i: i.agent == two),
        ({"assumption": "authority"}, lambda i: i.assumption == "authority"),
        ({"status": "closed"}, lambda i: i.state in CLOSED_STATES),
        ({"status": "open"}, lambda i: i.state not in CLOSED_STATES),
        (
            {"agent": "refund-bot", "severity": "sev3"},
            lambda i: i.agent == one and i.severity == "sev3",
        ),
    ]
    for params, pred in cases:
        got = sorted(keys(viewer.get(URL, params)))
        assert got == expected(pred), params
        assert got, f"the fixture should give {params} some rows"


def test_search_by_key_number_and_title(viewer):
    made = bulk_incidents(12, events_each=1)
    target = made[4]
    assert keys(viewer.get(URL, {"q": target.key})) == [target.key]
    assert keys(viewer.get(URL, {"q": target.key.lower()})) == [target.key]
    assert keys(viewer.get(URL, {"q": str(target.number)})) == [target.key]
    titled = bulk_incidents(2, events_each=1, title="Prompt injection via email")
    assert sorted(keys(viewer.get(URL, {"q": "injection VIA"}))) == sorted(i.key for i in titled)


def test_sorting_is_whitelisted_and_each_sort_orders_the_rows(viewer):
    made = bulk_incidents(8, events_each=1)
    numbers = sorted(i.number for i in made)
    assert keys(viewer.get(URL, {"sort": "key"})) == [f"INC-{n}" for n in numbers]
    assert keys(viewer.get(URL, {"sort": "-key"})) == [f"INC-{n}" for n in reversed(numbers)]
    # Detection: bulk incidents are detected one minute apart, the first one latest.
    assert keys(viewer.get(URL, {"sort": "-detected"}))[0] == made[0].key
    assert keys(viewer.get(URL, {"sort": "detected"}))[0] == made[-1].key
    severities = [
        {i.key: i.severity for i in made}[k] for k in keys(viewer.get(URL, {"sort": "severity"}))
    ]
    assert severities == sorted(severities)
    states = [{i.key: i.state for i in made}[k] for k in keys(viewer.get(URL, {"sort": "state"}))]
    assert states == sorted(states, key=STATE_ORDER.index)
    # Anything else is refused with a message, and the default order is used.
    response = viewer.get(URL, {"sort": "title; DROP TABLE incidents_incident"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert keys(response)[0] == made[0].key


def test_pagination_keeps_the_filters_and_survives_bad_page_numbers(viewer):
    bulk_incidents(60, events_each=1, severities=("sev2",))
    first = viewer.get(URL, {"severity": "sev2"})
    assert len(keys(first)) == 25
    body = first.content.decode()
    assert "1–25 of 60" in body
    assert "?severity=sev2&amp;page=2" in body
    third = viewer.get(URL, {"severity": "sev2", "page": 3})
    assert len(keys(third)) == 10
    assert set(keys(third)).isdisjoint(keys(first))
    for bad in ("abc", "-1", "99999", "1e9", ""):
        response = viewer.get(URL, {"page": bad})
        assert response.status_code == 200, bad
        assert keys(response), bad


def test_counts_per_state_follow_the_other_filters(viewer):
    one, two = AgentFactory(key="alpha-bot"), AgentFactory(key="beta-bot")
    bulk_incidents(6, events_each=1, agents=[one], states=["detected", "contained"])
    bulk_incidents(4, events_each=1, agents=[two], states=["classified"])
    body = viewer.get(URL).content.decode()
    assert re.search(r"All <span class=\"count\">10</span>", body)
    assert re.search(r"Detected <span class=\"count\">3</span>", body)
    assert re.search(r"Classified <span class=\"count\">4</span>", body)
    body = viewer.get(URL, {"agent": "alpha-bot", "state": "contained"}).content.decode()
    assert re.search(r"All <span class=\"count\">6</span>", body)
    assert re.search(r"Classified <span class=\"count\">0</span>", body)
    assert re.search(r"Contained <span class=\"count\">3</span>", body)


@pytest.mark.parametrize(
    "params",
    [
        {"state": "exploded"},
        {"agent": "no-such-agent"},
        {"severity": "sev9"},
        {"assumption": "<script>alert(1)</script>"},
        {"status": "sideways"},
        {"q": "x" * 5000},
        {"q": "\x01"},
        {"page": "\u2603"},
        {"unknown": "field"},
    ],
)
def test_garbage_filters_never_fail(viewer, params):
    bulk_incidents(3, events_each=1)
    response = viewer.get(URL, params)
    assert response.status_code == 200
    assert b"<script>alert(1)</script>" not in response.content


def test_a_nul_in_a_filter_is_a_clear_400(viewer):
    bulk_incidents(3, events_each=1)
    response = viewer.get(URL, {"q": "\x00\x01"})
    assert response.status_code == 400
    assert b"never valid here (NUL)" in response.content


def test_htmx_gets_only_the_results_region(viewer):
    bulk_incidents(3, events_each=1)
    response = viewer.get(URL, {"severity": "sev1"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and 'class="incident-table stack"' in body
    assert "HX-Request" in response["Vary"]
    full = viewer.get(URL, {"severity": "sev1"}).content.decode()
    assert "<html" in full and 'hx-push-url="true"' in full
    # The same URL without htmx is the whole page (what the pushed URL reloads to).
    boosted = viewer.get(URL, headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted.content.decode()


def test_user_text_is_escaped(viewer):
    bulk_incidents(1, events_each=1, title="<img src=x onerror=alert(1)>")
    body = viewer.get(URL).content.decode()
    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body


def _count_queries(client, params=None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(URL, params or {}).status_code == 200
    return len(ctx.captured_queries)


def test_the_list_runs_a_fixed_number_of_queries_with_1000_incidents_of_30_events(
    viewer, django_assert_max_num_queries
):
    bulk_incidents(3, events_each=2)
    small = _count_queries(viewer)
    bulk_incidents(997, events_each=30)
    params = {"status": "open", "sort": "severity", "agent": "", "page": "3", "q": "Bulk"}
    # + leads and report deadlines of the page's rows, + the navigation's My work count
    with django_assert_max_num_queries(11):
        response = viewer.get(URL, params)
    assert len(keys(response)) == 25
    assert _count_queries(viewer) == small
    assert _count_queries(viewer, params) <= small + 1  # + the agent lookup when filtering

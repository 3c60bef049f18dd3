"""The incident page's live check: 204 in one query when nothing changed; otherwise the read-only
regions as out-of-band swaps (never a form), and a notice when the current step moved on."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.builders import contain
from tests.factories import make_incident
from trustdesk.incidents import lifecycle

pytestmark = pytest.mark.django_db


def _token(client, incident) -> str:
    body = client.get(f"/incidents/{incident.key}/").content.decode()
    match = re.search(r"/changes\?since=([0-9a-f]+)&amp;step=(\w+)", body)
    assert match, "the page should poll its change check"
    return match.group(1)


def test_nothing_changed_is_204_from_one_query(client_for):
    incident = make_incident()
    viewer = client_for("viewer")
    token = _token(viewer, incident)
    viewer.get(f"/incidents/{incident.key}/changes", {"since": token})  # warm the session
    with CaptureQueriesContext(connection) as queries:
        response = viewer.get(f"/incidents/{incident.key}/changes", {"since": token})
    assert response.status_code == 204 and response.content == b""
    own = [q for q in queries.captured_queries if "incidents_incident" in q["sql"]]
    assert len(own) == 1, [q["sql"] for q in queries.captured_queries]


def test_another_persons_containment_and_note_come_as_read_only_swaps(client_for, make_user):
    incident = make_incident()
    watcher = client_for("operator")
    token = _token(watcher, incident)
    other = make_user("operator", username="olga")
    incident = contain(incident, by=other)
    lifecycle.add_note(incident, by=other, text="Refund tool disabled at 10:07", internal=True)
    response = watcher.get(
        f"/incidents/{incident.key}/changes", {"since": token, "step": "contain"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    for region in (
        "incident-live",
        "incident-header",
        "scope-bar",
        "rail",
        "timeline",
        "evidence-list",
        "notes-list",
        "live-notice",
    ):
        assert re.search(rf'id="{region}"[^>]*hx-swap-oob="true"', body), region
    assert 'data-state="contained"' in body
    assert "Refund tool disabled at 10:07" in body
    assert "moved on meanwhile" in body  # the containment form on that page is now stale
    assert "<form" not in body and "<textarea" not in body  # typing is never replaced
    # The new poller carries the new token and still the step the page shows.
    fresh_token = re.search(r"since=([0-9a-f]+)&amp;step=contain", body)
    assert fresh_token and fresh_token.group(1) != token
    again = watcher.get(
        f"/incidents/{incident.key}/changes", {"since": fresh_token.group(1), "step": "contain"}
    )
    assert again.status_code == 204


def test_an_agent_scope_change_from_another_incident_counts_as_a_change(client_for):
    incident = make_incident()
    watcher = client_for("viewer")
    token = _token(watcher, incident)
    other = make_incident(agent=incident.agent)
    lifecycle.contain_incident(
        other, by=None, expected_version=other.version, action="suspend", scope_after="suspended"
    )
    response = watcher.get(f"/incidents/{incident.key}/changes", {"since": token})
    assert response.status_code == 200
    assert 'id="agent-scope">Suspended' in response.content.decode()


def test_the_check_refuses_strangers_and_bad_keys(client, client_for):
    incident = make_incident()
    assert client.get(f"/incidents/{incident.key}/changes").status_code == 302  # to log in
    viewer = client_for("viewer")
    assert viewer.get("/incidents/INC-999999/changes").status_code == 404
    assert viewer.get("/incidents/INC-1%00/changes").status_code in (400, 404)
    assert viewer.post(f"/incidents/{incident.key}/changes").status_code == 405

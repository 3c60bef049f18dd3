"""The read API (docs/design.md section 12): agents, pacts, incidents with events, metrics; token
scope `read`."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tests.factories import make_incident, make_pact_version


@pytest.fixture
def api(token_for):
    secret = token_for("read")

    def get(path: str, **params):
        return Client().get(f"/api/v1{path}", params, headers={"Authorization": f"Bearer {secret}"})

    return get


@pytest.fixture
def world():
    """Two agents; five incidents over three days with two severities."""
    now = timezone.now()
    first = make_pact_version()
    second = make_pact_version()
    incidents = [
        make_incident(
            version=first if i < 3 else second,
            severity="sev1" if i % 2 else "sev3",
            detected_at=now - timedelta(days=5 - i),
        )
        for i in range(5)
    ]
    return {"versions": (first, second), "incidents": incidents}


def test_read_needs_a_token_with_the_read_scope(token_for, world):
    agent_token = token_for(f"agent:{world['versions'][0].pact.agent.key}")
    assert Client().get("/api/v1/agents").status_code == 401
    refused = Client().get("/api/v1/agents", headers={"Authorization": f"Bearer {agent_token}"})
    assert refused.status_code == 403
    assert refused.json()["errors"] == [{"path": "(token)", "message": "needs the scope read"}]
    assert refused["Content-Type"] == "application/json; charset=utf-8"


def test_agents_and_one_agent(api, world):
    agents = api("/agents").json()["agents"]
    assert [a["key"] for a in agents] == sorted(v.pact.agent.key for v in world["versions"])
    one = api(f"/agents/{agents[0]['key']}").json()
    assert one == agents[0]
    assert (one["scope"], one["revision"]) == ("full", 1)
    missing = api("/agents/nobody")
    assert missing.status_code == 404 and missing.json()["errors"][0]["path"] == "key"


def test_a_pact_is_served_as_its_canonical_bytes(api, world):
    version = world["versions"][0]
    listed = api("/pacts").json()["pacts"]
    entry = next(p for p in listed if p["key"] == version.pact.key)
    assert entry["active_version"] == 1
    assert entry["versions"][0]["sha256"] == version.sha256
    response = api(f"/pacts/{version.pact.key}")
    assert hashlib.sha256(response.content).hexdigest() == version.sha256
    assert api(f"/pacts/{version.pact.key}", version=1).content == response.content
    assert api(f"/pacts/{version.pact.key}", version=9).status_code == 404
    bad = api(f"/pacts/{version.pact.key}", version="x")
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "version"


def test_incidents_filter_and_page_through_every_one_once(
    api, world, django_assert_max_num_queries
):
    keys = [i.key for i in world["incidents"]]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        with django_assert_max_num_queries(3):  # token, incidents, their events
            page = api("/incidents", **params).json()
        seen += [i["key"] for i in page["incidents"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(keys))
    first_agent = world["versions"][0].pact.agent.key
    by_agent = api("/incidents", agent=first_agent).json()["incidents"]
    assert [i["key"] for i in by_agent] == list(reversed(keys[:3]))
    assert all(i["events"][0]["type"] == "detected" for i in by_agent)
    sev1 = api("/incidents", severity="sev1").json()["incidents"]
    assert [i["key"] for i in sev1] == [keys[3], keys[1]]
    since = world["incidents"][3].detected_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    recent = api("/incidents", since=since).json()["incidents"]
    assert [i["key"] for i in recent] == [keys[4], keys[3]]
    assert api("/incidents", state="contained").json()["incidents"] == []


def test_bad_filters_are_400_with_their_paths(api, world):
    for params, path in (
        ({"state": "asleep"}, "state"),
        ({"severity": "sev9"}, "severity"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-02-31"}, "since"),
        ({"cursor": "abc"}, "cursor"),
        ({"limit": 0}, "limit"),
    ):
        response = api("/incidents", **params)
        assert response.status_code == 400, params
        assert response.json()["errors"][0]["path"] == path


def test_one_incident_with_its_events_and_404(api, world):
    incident = world["incidents"][0]
    body = api(f"/incidents/{incident.key}").json()
    assert body["key"] == incident.key and body["url"] == f"/incidents/{incident.key}/"
    assert [e["hash"] for e in body["events"]] == list(
        incident.events.order_by("seq").values_list("hash", flat=True)
    )
    assert api("/incidents/INC-999").status_code == 404


def test_metrics_are_what_the_command_prints(api, world):
    agent = world["versions"][0].pact.agent.key
    day = (timezone.now() - timedelta(days=4)).date().isoformat()
    out = io.StringIO()
    call_command("metrics", "--from", day, "--agent", agent, "--json", stdout=out)
    answer = api("/metrics", **{"from": day, "agent": agent})
    assert answer.status_code == 200
    assert answer.json() == json.loads(out.getvalue())
    assert api("/metrics", to="2026-13-01").json()["errors"][0]["path"] == "to"
    backwards = api("/metrics", **{"from": "2026-02-01", "to": "2026-01-01"})
    assert backwards.status_code == 400
    assert api("/metrics", agent="nobody").status_code == 404

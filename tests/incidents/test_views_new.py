"""Opening an incident from the page, with or without its containment in the same form."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import AgentFactory, make_pact_version
from tests.incidents.ui_helpers import NOT_WORKERS, WORKERS
from trustdesk.incidents.models import Event, Incident

pytestmark = pytest.mark.django_db

URL = "/incidents/new/"
LOCAL = "%Y-%m-%dT%H:%M"


@pytest.fixture
def version():
    return make_pact_version()


def form_data(version, **overrides) -> dict:
    data = {
        "agent": version.pact.agent.key,
        "pact_version": version.pk,
        "clauses": [c.pk for c in version.clauses.all()],
        "severity": "sev2",
        "detected_at": (timezone.now() - timedelta(hours=3)).strftime(LOCAL),
        "title": "Refund of 450 EUR without approval",
        "summary": "Found by the nightly refund audit.",
        "contain_action": "",
        "contain_scope_after": "",
        "contain_reason": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize("role", WORKERS)
def test_workers_open_an_incident_and_land_on_its_page(client_for, version, role):
    client = client_for(role)
    detected = (timezone.now() - timedelta(days=2)).replace(second=0, microsecond=0)
    response = client.post(URL, form_data(version, detected_at=detected.strftime(LOCAL)))
    incident = Incident.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/incidents/{incident.key}/"
    assert (incident.state, incident.severity, incident.title) == (
        "detected",
        "sev2",
        "Refund of 450 EUR without approval",
    )
    assert incident.detected_at == detected  # backdating is allowed
    assert incident.pact_version == version
    assert list(incident.clauses.all()) == list(version.clauses.all())
    assert incident.created_by == client.user
    event = Event.objects.get(incident=incident)
    assert (event.type, event.at, event.actor_name) == ("detected", detected, client.user.username)
    assert f"{incident.key} opened." in client.get(response["Location"]).content.decode()


def test_containment_in_the_same_form_opens_it_contained(client_for, version):
    client = client_for("operator")
    data = form_data(
        version,
        contain_action="suspend",
        contain_scope_after="suspended",
        contain_reason="Refund tool disabled",
    )
    assert client.post(URL, data).status_code == 302
    incident = Incident.objects.select_related("agent").get()
    assert incident.state == "contained"
    assert incident.agent.scope == "suspended"
    assert list(incident.events.values_list("type", flat=True).order_by("seq")) == [
        "detected",
        "contained",
    ]


def test_no_scope_change_needs_a_reason_and_then_keeps_the_scope(client_for, version):
    client = client_for("operator")
    response = client.post(URL, form_data(version, contain_action="no_scope_change"))
    assert response.status_code == 200
    assert "needs a reason" in response.content.decode()
    assert not Incident.objects.exists()
    data = form_data(version, contain_action="no_scope_change", contain_reason="Read-only agent")
    assert client.post(URL, data).status_code == 302
    incident = Incident.objects.select_related("agent").get()
    assert (incident.state, incident.agent.scope) == ("contained", "full")


def test_a_refused_containment_opens_nothing(client_for, version):
    # "restrict" leaving the agent suspended is refused by the lifecycle: both or neither.
    data = form_data(version, contain_action="restrict", contain_scope_after="suspended")
    response = client_for("operator").post(URL, data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "The incident was not opened." in body
    assert "leaves the agent restricted, not suspended" in body
    assert not Incident.objects.exists() and not Event.objects.exists()
    version.pact.agent.refresh_from_db()
    assert version.pact.agent.scope == "full"


def test_the_future_is_refused_with_a_message(client_for, version):
    future = (timezone.now() + timedelta(hours=2)).strftime(LOCAL)
    response = client_for("operator").post(URL, form_data(version, detected_at=future))
    assert response.status_code == 200
    assert "The detection time cannot be in the future." in response.content.decode()
    assert not Incident.objects.exists()


def test_a_pact_version_of_another_agent_is_refused(client_for, version):
    other = AgentFactory(key="someone-else")
    response = client_for("operator").post(URL, form_data(version, agent=other.key))
    assert response.status_code == 200
    assert "This pact version is not one of someone-else&#x27;s pacts." in response.content.decode()
    assert not Incident.objects.exists()


def test_clauses_must_belong_to_the_chosen_version(client_for, version):
    other = make_pact_version()
    data = form_data(version, clauses=[c.pk for c in other.clauses.all()])
    response = client_for("operator").post(URL, data)
    assert "Choose clauses of" in response.content.decode()
    data = form_data(version, pact_version="")
    response = client_for("operator").post(URL, data)
    assert "Choose the pact version the clauses belong to." in response.content.decode()
    assert not Incident.objects.exists()


def test_containment_details_without_an_action_are_refused(client_for, version):
    data = form_data(version, contain_scope_after="restricted", contain_reason="forgot the action")
    response = client_for("operator").post(URL, data)
    assert "Choose a containment action, or leave the containment empty." in (
        response.content.decode()
    )
    assert "forgot the action" in response.content.decode()
    assert not Incident.objects.exists()


def test_an_incident_without_a_pact_version_is_allowed(client_for, version):
    data = form_data(version, pact_version="", clauses=[])
    assert client_for("operator").post(URL, data).status_code == 302
    assert Incident.objects.get().pact_version is None


GARBAGE = [
    {"agent": "<script>x</script>"},
    {"agent": ""},
    {"pact_version": "not-a-number"},
    {"pact_version": "999999"},
    {"clauses": ["abc", "-1"]},
    {"severity": "sev0"},
    {"detected_at": "yesterday-ish"},
    {"detected_at": "99999-01-01T00:00"},
    {"title": ""},
    {"title": "   "},
    {"title": "x" * 301},
    {"summary": "y" * 20_001},
    {"contain_action": "nuke"},
    {"contain_action": "restrict", "contain_scope_after": "everything"},
]


@pytest.mark.parametrize("overrides", GARBAGE, ids=[next(iter(g)) for g in GARBAGE])
def test_garbage_in_any_field_gives_form_errors_and_creates_nothing(client_for, version, overrides):
    response = client_for("operator").post(URL, form_data(version, **overrides))
    assert response.status_code == 200
    assert "The incident was not opened." in response.content.decode()
    assert not Incident.objects.exists() and not Event.objects.exists()


def test_the_form_lists_only_active_versions_and_htmx_narrows_them_to_the_agent(client_for):
    first = make_pact_version()
    draft = make_pact_version(agent=first.pact.agent, pact_key="draft-pact", status="draft")
    second = make_pact_version()
    client = client_for("operator")
    page = client.get(URL).content.decode()
    assert first.label in page and second.label in page and draft.label not in page
    assert 'type="datetime-local"' in page
    fragment = client.get(
        URL, {"agent": second.pact.agent.key}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "<html" not in fragment
    assert second.label in fragment and first.label not in fragment
    # An unknown agent key simply does not narrow anything.
    assert client.get(URL, {"agent": "nobody" * 30}).status_code == 200


@pytest.mark.parametrize("role", NOT_WORKERS)
def test_risk_and_viewers_cannot_open_incidents(client_for, version, role):
    client = client_for(role)
    assert client.get(URL).status_code == 403
    assert client.post(URL, form_data(version)).status_code == 403
    assert not Incident.objects.exists()


def test_anonymous_users_are_sent_to_log_in(client, version):
    assert client.get(URL)["Location"].startswith("/login/")
    response = client.post(URL, form_data(version))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not Incident.objects.exists()


def test_other_methods_are_refused(client_for):
    assert client_for("operator").put(URL).status_code == 405

"""Every incident view against every role that must not pass, anonymous users, wrong methods,
unknown keys and garbage input: refused cleanly, never a 500, and nothing changed."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import make_incident, upload
from tests.incidents.backend_helpers import advance
from tests.incidents.ui_helpers import fresh, snapshot
from trustdesk.incidents import lifecycle
from trustdesk.pacts.models import Dispute

pytestmark = pytest.mark.django_db

WORKERS = {"operator", "incident_manager"}
EVERYONE = {"operator", "incident_manager", "risk", "viewer"}


def _incident_in(state: str):
    return fresh(advance(make_incident(), state))


# view name -> (allowed roles, state the incident needs, path suffix, valid payload builder)
POST_VIEWS = {
    "contain": (
        WORKERS,
        "detected",
        "contain/",
        lambda inc: {
            "contain-version": inc.version,
            "contain-action": "suspend",
            "contain-scope_after": "suspended",
        },
    ),
    "apply": (
        WORKERS,
        "detected",
        "apply-containment/",
        lambda inc: {"apply-version": inc.version},
    ),
    "evidence": (
        WORKERS,
        "contained",
        "evidence/",
        lambda inc: {
            "evidence-version": inc.version,
            "evidence-kind": "alert",
            "evidence-description": "Pager alert",
            "evidence-upload": upload(b"alert body", "alert.json"),
        },
    ),
    "preserve": (
        WORKERS,
        "contained",
        "preserve/",
        lambda inc: {
            "preserve-version": inc.version,
            "preserve-acknowledged_gaps": [
                "transcript",
                "tool_calls",
                "evaluation_result",
                "impact_assessment",
            ],
            "preserve-reason": "Logs were never kept.",
        },
    ),
    "classify": (
        WORKERS,
        "evidence_preserved",
        "classify/",
        lambda inc: {
            "classify-version": inc.version,
            "classify-assumption": "authority",
            "classify-statement": "Acted beyond its refund authority.",
            "classify-clauses": [c.key for c in inc.pact_version.clauses.all()],
            "classify-confidence": "known",
        },
    ),
    "repair": (
        WORKERS,
        "classified",
        "repair/",
        lambda inc: {
            "repair-version": inc.version,
            "repair-summary": "Limit enforced.",
            "repair-reference": "PR-7",
        },
    ),
    "note": (
        WORKERS,
        "contained",
        "notes/",
        lambda inc: {"note-text": "hi", "note-visibility": "internal"},
    ),
    "dispute": (
        {"operator", "incident_manager", "risk"},
        "classified",
        "disputes/",
        lambda inc: {"dispute-reason": "It was tool use."},
    ),
}


def _setup(view: str):
    roles, state, suffix, payload = POST_VIEWS[view]
    incident = _incident_in(state)
    return roles, incident, f"/incidents/{incident.key}/{suffix}", payload(incident)


@pytest.mark.parametrize("view", sorted(POST_VIEWS))
def test_post_views_refuse_every_other_role_and_change_nothing(client_for, media, view):
    roles, incident, url, data = _setup(view)
    before = snapshot(incident)
    for role in sorted(EVERYONE - roles):
        assert client_for(role).post(url, data).status_code == 403, role
    assert client_for().post(url, data).status_code == 403  # a user without any role
    assert snapshot(incident) == before
    # ...while an allowed role with the very same payload succeeds.
    allowed = client_for(sorted(roles)[0])
    assert allowed.post(url, POST_VIEWS[view][3](fresh(incident))).status_code == 302
    assert snapshot(incident) != before


@pytest.mark.parametrize("view", sorted(POST_VIEWS))
def test_post_views_send_anonymous_users_to_log_in(client, media, view):
    _roles, incident, url, data = _setup(view)
    before = snapshot(incident)
    response = client.post(url, data)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert snapshot(incident) == before


@pytest.mark.parametrize("view", sorted(POST_VIEWS))
def test_post_views_refuse_get(client_for, view):
    roles, incident, url, _data = _setup(view)
    client = client_for(sorted(roles)[0])
    assert client.get(url).status_code == 405
    assert client.put(url).status_code == 405


@pytest.mark.parametrize("view", sorted(POST_VIEWS))
def test_post_views_404_on_unknown_incident_keys(client_for, media, view):
    roles, _state, suffix, _payload = POST_VIEWS[view]
    client = client_for(sorted(roles)[0])
    for key in ("INC-987654", "../../etc", "x" * 100):
        assert client.post(f"/incidents/{key}/{suffix}", {}).status_code == 404, key


def test_resolving_a_dispute_is_for_risk_only(client_for):
    incident = _incident_in("classified")
    operator = client_for("operator")
    dispute = lifecycle.open_classification_dispute(incident, by=operator.user, reason="Wrong")
    url = f"/incidents/{incident.key}/disputes/{dispute.pk}/resolve/"
    data = {f"resolve-{dispute.pk}-status": "upheld", f"resolve-{dispute.pk}-resolution": "Yes."}
    before = snapshot(incident)
    for role in ("operator", "incident_manager", "viewer"):
        assert client_for(role).post(url, data).status_code == 403
    assert client_for().post(url, data).status_code == 403
    assert Client().post(url, data)["Location"].startswith("/login/")
    assert client_for("risk").get(url).status_code == 405
    assert snapshot(incident) == before
    assert Dispute.objects.get(pk=dispute.pk).status == "open"
    risk = client_for("risk")
    assert risk.post(url, data).status_code == 302
    assert Dispute.objects.get(pk=dispute.pk).status == "upheld"
    # Unknown or foreign disputes are 404.
    other = _incident_in("classified")
    assert (
        risk.post(f"/incidents/{other.key}/disputes/{dispute.pk}/resolve/", data).status_code == 404
    )
    assert risk.post(f"/incidents/{incident.key}/disputes/999999/resolve/", data).status_code == 404


@pytest.mark.parametrize("path", ["/incidents/", "/incidents/{key}/", "/incidents/new/"])
def test_pages_refuse_anonymous_users_and_users_without_a_role(client, client_for, path):
    incident = make_incident()
    url = path.format(key=incident.key)
    assert client.get(url)["Location"].startswith("/login/")
    assert client_for().get(url).status_code == 403


def test_evidence_download_is_for_internal_roles_only(client, client_for, media):
    incident = _incident_in("contained")
    item = lifecycle.add_evidence(
        incident,
        by=None,
        expected_version=incident.version,
        kind="alert",
        description="a",
        upload=upload(b"payload"),
    )
    url = f"/incidents/{incident.key}/evidence/{item.pk}/download/"
    for role in sorted(EVERYONE):
        assert client_for(role).get(url).status_code == 200, role
    assert client_for().get(url).status_code == 403
    assert client.get(url)["Location"].startswith("/login/")
    assert client_for("viewer").post(url).status_code == 405


# ---------------------------------------------------------------- garbage never fails

GARBAGE = {
    "contain": {"contain-version": "abc", "contain-action": "🔥", "contain-scope_after": "\x00"},
    "apply": {"apply-version": "-5"},
    "evidence": {
        "evidence-version": "1e99",
        "evidence-kind": "malware",
        "evidence-description": "",
        "evidence-url": "javascript:alert(1)",
        "evidence-supersedes": "not-an-id",
    },
    "preserve": {
        "preserve-version": "",
        "preserve-acknowledged_gaps": ["<b>", "transcript"],
        "preserve-reason": "x" * 6000,
    },
    "classify": {
        "classify-version": "99999999999999999999",
        "classify-assumption": "vibes",
        "classify-clauses": ["nope"],
        "classify-confidence": "sure",
        "classify-harm_category": "feelings",
        "classify-secondary": ["x"],
    },
    "repair": {"repair-version": "1", "repair-summary": "", "repair-reference": "r" * 600},
    "note": {"note-text": "   ", "note-visibility": "public"},
    "dispute": {"dispute-reason": ""},
}


@pytest.mark.parametrize("view", sorted(GARBAGE))
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_garbage_in_every_field_is_a_form_error_and_changes_nothing(client_for, media, view, htmx):
    roles, incident, url, _data = _setup(view)
    before = snapshot(incident)
    headers = {"HX-Request": "true"} if htmx else {}
    response = client_for(sorted(roles)[0]).post(url, GARBAGE[view], headers=headers)
    assert response.status_code == (200 if htmx else 422)  # htmx swaps only 2xx answers
    body = response.content.decode()
    assert "errorlist" in body or "Not saved." in body or "out of date" in body
    assert "HX-Trigger" not in response
    assert snapshot(incident) == before


@pytest.mark.parametrize("view", sorted(GARBAGE))
def test_an_empty_post_is_a_form_error(client_for, media, view):
    roles, incident, url, _data = _setup(view)
    before = snapshot(incident)
    assert client_for(sorted(roles)[0]).post(url, {}).status_code == 422
    assert snapshot(incident) == before


def test_garbage_when_resolving_a_dispute(client_for):
    incident = _incident_in("classified")
    dispute = lifecycle.open_classification_dispute(
        incident, by=client_for("operator").user, reason="Wrong"
    )
    before = snapshot(incident)
    url = f"/incidents/{incident.key}/disputes/{dispute.pk}/resolve/"
    response = client_for("risk").post(
        url, {f"resolve-{dispute.pk}-status": "maybe", f"resolve-{dispute.pk}-resolution": " "}
    )
    assert response.status_code == 422
    assert snapshot(incident) == before

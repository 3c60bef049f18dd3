"""The same new-incident POST sent twice opens one incident (a submission token in the form)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import make_pact_version
from trustdesk.incidents.models import Incident

pytestmark = pytest.mark.django_db
URL = "/incidents/new/"


def _token_from_form(client) -> str:
    html = client.get(URL).content.decode()
    match = re.search(r'<input type="hidden" name="submission" value="([0-9a-f-]{36})"', html)
    assert match, "the form carries a submission token"
    return match.group(1)


def _data(version, token, **extra):
    return {
        "agent": version.pact.agent.key,
        "pact_version": version.pk,
        "clauses": [c.pk for c in version.clauses.all()],
        "severity": "sev2",
        "detected_at": (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "title": "Refund over limit",
        "submission": token,
        **extra,
    }


def test_the_same_post_twice_opens_one_incident_and_answers_with_it(client_for):
    version = make_pact_version()
    client = client_for("operator")
    token = _token_from_form(client)
    first = client.post(URL, _data(version, token))
    second = client.post(URL, _data(version, token))
    incident = Incident.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/incidents/{incident.key}/"
    page = client.get(second["Location"]).content.decode()
    assert "This form was already sent" in page


def test_each_rendered_form_has_its_own_token(client_for):
    version = make_pact_version()
    client = client_for("operator")
    client.post(URL, _data(version, _token_from_form(client)))
    client.post(URL, _data(version, _token_from_form(client)))
    assert Incident.objects.count() == 2


def test_a_refused_post_leaves_the_token_free_for_the_corrected_one(client_for):
    version = make_pact_version()
    client = client_for("operator")
    token = _token_from_form(client)
    refused = client.post(URL, _data(version, token, detected_at="0001-01-01T00:00"))
    assert refused.status_code != 302
    assert Incident.objects.count() == 0
    assert client.post(URL, _data(version, token)).status_code == 302
    assert Incident.objects.count() == 1


def test_another_users_token_is_not_replayed_for_them(client_for):
    version = make_pact_version()
    ana, bob = client_for("operator"), client_for("operator")
    token = _token_from_form(ana)
    ana.post(URL, _data(version, token))
    response = bob.post(URL, _data(version, token))
    assert response.status_code == 200
    assert "submitted by someone else" in response.content.decode()
    assert Incident.objects.count() == 1

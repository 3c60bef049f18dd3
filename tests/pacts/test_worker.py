"""Pacts work on a real Celery worker: the stale-pact beat task, and a breach handed over on
commit to the incidents app's task."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import wait_for
from tests.pacts.documents import changed, evaluation_item, valid_document
from trustdesk.pacts import actions
from trustdesk.pacts.models import Evaluation, PactVersion
from trustdesk.pacts.tasks import mark_stale_pacts

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups"),
]


def test_the_beat_task_marks_stale_pacts_on_a_worker(celery_worker, make_user):
    old = changed(
        valid_document(), lambda d: d["spec"]["review"].update(last_reviewed="2024-01-01")
    )
    [version] = actions.import_pact_documents([old], by=make_user("risk"))
    PactVersion.objects.filter(pk=version.pk).update(stale_since=None)
    mark_stale_pacts.delay()
    wait_for(
        lambda: PactVersion.objects.filter(pk=version.pk, stale_since__isnull=False).exists(),
        timeout=30,
    )


def test_a_breach_posted_to_the_api_opens_an_incident_on_a_worker(celery_worker, client, make_user):
    from trustdesk.incidents.models import Incident

    risk = make_user("risk")
    actions.import_pact_documents([valid_document()], by=risk)
    _token, secret = actions.create_api_token(source="refund-audit", by=risk)
    body = evaluation_item(
        value=2, external_id="breach-1", measured_at=timezone.now() - timedelta(minutes=5)
    )
    response = client.post(
        "/api/v1/evaluations",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 201
    assert response.json()["evaluations"][0]["is_breach"] is True
    incident = wait_for(lambda: Incident.objects.filter(agent__key="support-bot").first(), 30)
    assert [c.key for c in incident.clauses.all()] == ["refund-limit"]
    assert Evaluation.objects.get().is_breach

"""End to end through a real Celery worker and Redis: an incident step commits, fan-out and the
delivery run on the worker, and a local receiver verifies each signature with standardwebhooks."""

from __future__ import annotations

import pytest
import standardwebhooks

from tests.builders import contain
from tests.conftest import wait_for
from tests.factories import make_incident
from trustdesk.notify import actions
from trustdesk.notify.models import Message

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_delivers_signed_webhooks_in_order(celery_worker, receiver):
    sub, secret = actions.add_webhook(
        url=receiver.url, events="incident.opened,incident.state_changed", by=None
    )
    incident = make_incident()
    contain(incident)
    received = receiver.wait_for(2, timeout=60)
    payloads = [standardwebhooks.Webhook(secret).verify(r.body, r.headers) for r in received]
    assert [p["type"] for p in payloads] == ["incident.opened", "incident.state_changed"]
    assert payloads[1]["data"]["state"] == "contained"
    assert all(p["data"]["incident"] == incident.key for p in payloads)
    wait_for(
        lambda: Message.objects.filter(subscription=sub, status="delivered").count() == 2,
        timeout=30,
    )
    ids = [r.headers["webhook-id"] for r in received]
    assert ids == list(
        Message.objects.filter(subscription=sub).order_by("pk").values_list("webhook_id", flat=True)
    )

"""seed_demo shows each part of ownership, clocks and obligations, and stays idempotent."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from trustdesk.incidents.models import ActionItem, Event, Incident, IncidentRole
from trustdesk.incidents.obligations import all_obligations

pytestmark = pytest.mark.django_db


def test_seed_demo_shows_every_case_once():
    call_command("seed_demo", stdout=io.StringIO())
    statuses = {(o.regime, o.status(timezone.now())) for o in all_obligations()}
    assert ("eu_ai_act_art73", "overdue") in statuses
    assert ("eu_ai_act_art73", "filed") in statuses
    assert ("gdpr_art33", "open") in statuses
    assert Incident.objects.filter(state="closed_not_incident").count() == 1
    assert Event.objects.filter(type="reclassified").count() == 1
    assert ActionItem.objects.overdue(timezone.now().date()).exists()
    assert IncidentRole.objects.current().filter(role="lead").count() >= 3
    before = Event.objects.count()
    call_command("seed_demo", stdout=io.StringIO())
    assert Event.objects.count() == before

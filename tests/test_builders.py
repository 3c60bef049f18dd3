"""tests/builders.py reaches every state through the real actions, and loads history through the
importer; the fold check (tests/state_machine.py) runs after each of these tests too."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.builders import STATES, incident_in, load_history
from tests.factories import AgentFactory
from trustdesk.incidents.models import Event

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("state", STATES)
def test_walk_reaches_every_state_through_the_actions(state, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    incident = incident_in(state, detected_at=timezone.now() - timezone.timedelta(days=1))
    assert incident.state == state
    types = list(incident.events.order_by("seq").values_list("type", flat=True))
    assert types[0] == "detected" and len(types) == incident.version
    if state in ("recovered", "closed_restricted"):
        assert "decision_recorded" in types and incident.decided_at is not None


def test_load_history_stores_a_document_through_the_importer():
    AgentFactory(key="hist-bot")
    [incident] = load_history(
        {
            "format": "trustdesk.incidents/v1",
            "incidents": [
                {
                    "key": "INC-500",
                    "agent": "hist-bot",
                    "severity": "sev3",
                    "title": "Imported",
                    "events": [
                        {"type": "detected", "at": "2026-01-02T10:00:00Z", "by": "ana"},
                        {
                            "type": "contained",
                            "at": "2026-01-02T10:05:00Z",
                            "by": "ana",
                            "data": {"action": "suspend", "scope_after": "suspended"},
                        },
                    ],
                }
            ],
        }
    )
    assert (incident.key, incident.state, incident.scope_after) == (
        "INC-500",
        "contained",
        "suspended",
    )
    assert incident.contained_at.isoformat() == "2026-01-02T10:05:00+00:00"
    assert Event.objects.filter(incident=incident).count() == 2

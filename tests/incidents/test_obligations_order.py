"""Obligations with the same deadline are listed by incident number, not by the key's text:
INC-2 before INC-10 (docs/design.md section 13), in the command and in the listing function
the My work page and the dashboard read."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from trustdesk.incidents.exchange import import_document
from trustdesk.incidents.obligations import all_obligations

pytestmark = pytest.mark.django_db

AWARE = "2026-11-02T00:30:00Z"


def significant_incident(key: str) -> dict:
    """An incident of an essential NIS2 entity assessed significant: three obligations whose
    deadlines run from the same moment for every incident built here."""
    flags = dict.fromkeys(
        [
            "serious",
            "death",
            "widespread_infringement",
            "critical_infrastructure_irreversible",
            "personal_data_breach",
        ],
        False,
    )
    return {
        "key": key,
        "agent": "nis-bot",
        "severity": "sev2",
        "title": f"Incident {key}",
        "events": [
            {"type": "detected", "at": "2026-11-02T00:00:00Z", "by": "ana"},
            {
                "type": "assessed",
                "at": "2026-11-02T01:00:00Z",
                "by": "rita",
                "data": {**flags, "significant": True, "aware_at": AWARE, "note": ""},
            },
        ],
    }


@pytest.fixture
def same_deadlines():
    import_document(
        {
            "format": "trustdesk.incidents/v1",
            "agents": [{"key": "nis-bot", "name": "NIS bot", "nis2": "essential"}],
            "incidents": [significant_incident(k) for k in ("INC-10", "INC-2", "INC-9")],
        }
    )


def test_the_command_lists_equal_deadlines_by_incident_number(same_deadlines):
    out = io.StringIO()
    call_command("obligations", "--at", "2026-11-02T02:00:00Z", "--json", stdout=out)
    rows = [(r["obligation"], r["incident"]) for r in json.loads(out.getvalue())]
    assert rows == [
        (obligation, key)
        for obligation in ("early_warning", "notification", "final_report")
        for key in ("INC-2", "INC-9", "INC-10")
    ]


def test_the_listing_orders_incidents_by_number(same_deadlines):
    keys = [o.incident for o in all_obligations() if o.obligation == "early_warning"]
    assert keys == ["INC-2", "INC-9", "INC-10"]

"""Hand-computed metrics: incidents closed as not an incident are in no population; a
reclassification changes the class recurrence uses, not the time to classification; repairs
before an Art. 73 report are counted as overrides."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from trustdesk.incidents.exchange import import_document

pytestmark = pytest.mark.django_db


def ev(type_, at, **data):
    out = {"type": type_, "at": f"2026-10-{at}Z", "by": "ana"}
    if data:
        out["data"] = data
    return out


def classified(at, assumption, type_="classified"):
    return ev(type_, at, assumption=assumption, statement="What broke.", clauses=[])


def incident(key, *events, agent="bot"):
    return {"key": key, "agent": agent, "severity": "sev2", "title": key, "events": list(events)}


def document():
    return {
        "format": "trustdesk.incidents/v1",
        "agents": [{"key": "bot", "name": "Bot", "owner": "ops"}],
        "pacts": [],
        "incidents": [
            # Contained after 600 s, classified after 3600 s, reopened on the 2nd at 10:00.
            incident(
                "INC-1",
                ev("detected", "01T10:00:00"),
                ev("contained", "01T10:10:00", action="suspend", scope_after="suspended"),
                classified("01T11:00:00", "capability"),
                ev("reopened", "02T10:00:00", scope_after="full"),
            ),
            # A duplicate of INC-1: contained after 1800 s, then closed as not an incident.
            incident(
                "INC-2",
                ev("detected", "01T11:00:00"),
                ev("contained", "01T11:30:00", action="suspend", scope_after="suspended"),
                ev(
                    "closed_not_incident",
                    "01T12:00:00",
                    reason="duplicate",
                    duplicate_of="INC-1",
                    explanation="The same alert twice.",
                ),
            ),
            # First classified authority (after 7200 s), then reclassified capability: it recurs
            # (INC-1, capability, reopened 3 days before this detection).
            incident(
                "INC-3",
                ev("detected", "05T10:00:00"),
                ev("contained", "05T10:20:00", action="restrict", scope_after="restricted"),
                classified("05T12:00:00", "authority"),
                classified("05T13:00:00", "capability", type_="reclassified"),
                ev(
                    "repaired",
                    "05T14:00:00",
                    summary="Fixed",
                    reference="PR-1",
                    override=True,
                    justification="Harm continued.",
                ),
            ),
            # A false positive never contained: not "uncontained", not "unclassified".
            incident(
                "INC-4",
                ev("detected", "06T10:00:00"),
                ev(
                    "closed_not_incident",
                    "06T10:05:00",
                    reason="false_positive",
                    duplicate_of=None,
                    explanation="A test alert.",
                ),
            ),
        ],
    }


def metrics(*args):
    out = io.StringIO()
    call_command("metrics", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_not_incidents_are_left_out_and_the_latest_class_decides_recurrence():
    import_document(document())
    m = metrics()
    # INC-1 600 s, INC-3 1200 s; INC-2 (1800 s) and INC-4 (uncontained) are not incidents.
    assert m["time_to_containment"] == {"p50": 900.0, "p90": 1140.0, "count": 2, "uncontained": 0}
    # First classification: INC-1 3600 s, INC-3 7200 s (not the reclassification's 10800 s).
    assert m["time_to_classification"]["count"] == 2
    assert m["time_to_classification"]["p50"] == 5400.0
    # INC-3 recurs as capability (its latest class); INC-1 does not.
    assert m["recurrence_rate"] == {"value": 0.5, "numerator": 1, "denominator": 2}
    assert m["unclassified_count"] == 0
    assert m["repair_overrides"] == {"count": 1}


def test_without_the_reclassification_there_is_no_recurrence():
    doc = document()
    del doc["incidents"][2]["events"][3]
    import_document(doc)
    assert metrics()["recurrence_rate"]["numerator"] == 0

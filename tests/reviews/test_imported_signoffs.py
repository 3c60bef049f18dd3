"""An imported `signed_off` event becomes the sign-off row that `signoffs` conditions count, as
the live sign-off writes it, so a condition reads the same on an imported incident."""

from __future__ import annotations

import pytest

from tests.builders import load_history
from trustdesk.reviews.conditions import evaluate_condition
from trustdesk.reviews.models import ReentryCondition, SignOff

pytestmark = pytest.mark.django_db

CONDITION = {
    "kind": "signoffs",
    "params": {"roles": ["risk", "operator"], "min": 2},
    "statement": "Signed off by at least 2 distinct roles among risk and operator.",
}


def ev(type_, minute, by="ana", **data):
    out = {"type": type_, "at": f"2026-11-02T10:{minute:02d}:00Z", "by": by}
    if data:
        out["data"] = data
    return out


def history(*signoffs):
    return {
        "format": "trustdesk.incidents/v1",
        "agents": [{"key": "imp-bot", "name": "Imported bot"}],
        "incidents": [
            {
                "key": "INC-901",
                "agent": "imp-bot",
                "severity": "sev3",
                "title": "Refund over limit",
                "events": [
                    ev("detected", 0),
                    ev("reentry_condition_set", 1, **CONDITION),
                    *signoffs,
                ],
            }
        ],
    }


def signed(minute, by, role, comment="", internal=True):
    return ev("signed_off", minute, by=by, role=role, comment=comment, internal=internal)


def test_imported_sign_offs_are_counted_by_a_signoffs_condition():
    (incident,) = load_history(
        history(signed(2, "rita", "risk", "Plan is sound."), signed(3, "olga", "operator"))
    )
    rows = list(SignOff.objects.filter(incident=incident).order_by("at"))
    assert [(r.by.username, r.role, r.comment) for r in rows] == [
        ("rita", "risk", "Plan is sound."),
        ("olga", "operator", ""),
    ]
    assert [r.event.seq for r in rows] == [3, 4]
    met, observed = evaluate_condition(ReentryCondition.objects.get(incident=incident))
    assert met is True
    assert observed["roles_signed"] == ["operator", "risk"]


def test_a_second_imported_sign_off_by_the_same_person_is_not_counted_twice():
    (incident,) = load_history(history(signed(2, "rita", "risk"), signed(3, "rita", "operator")))
    assert SignOff.objects.filter(incident=incident).count() == 1
    met, observed = evaluate_condition(ReentryCondition.objects.get(incident=incident))
    assert met is False and observed["roles_signed"] == ["risk"]

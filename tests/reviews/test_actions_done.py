"""The `actions_done` re-entry condition: met when every action item required for re-entry is
done; a won't-do or an open one keeps it unmet; items not required do not count."""

from __future__ import annotations

import pytest

from tests.reviews.helpers import fresh, ready_for_review, repaired_incident
from trustdesk.incidents import ownership
from trustdesk.reviews.conditions import evaluate_condition, observed_summary
from trustdesk.reviews.models import ReentryCondition

pytestmark = pytest.mark.django_db


def test_actions_done_follows_the_required_items(make_user):
    risk = make_user("risk")
    operator = make_user("operator")  # works the incident; risk reviews it
    inc = ready_for_review(repaired_incident(by=operator), by=risk, condition=("actions_done", {}))
    condition = ReentryCondition.objects.get(incident=inc, kind="actions_done")
    assert evaluate_condition(condition)[0] is True  # nothing required yet
    assert observed_summary("actions_done", condition.observed).startswith("No action item")

    cap = ownership.add_action_item(fresh(inc), by=risk, title="Spend cap", required=True)
    ownership.add_action_item(fresh(inc), by=risk, title="Nice to have")
    audit = ownership.add_action_item(fresh(inc), by=risk, title="Audit", required=True)
    met, observed = evaluate_condition(condition)
    assert (met, observed) == (False, {"required": 2, "not_done": [1, 3]})

    ownership.update_action_item(cap, by=risk, status="done")
    ownership.update_action_item(audit, by=risk, status="wont_do", reason="Replaced by the cap")
    assert evaluate_condition(condition) == (False, {"required": 2, "not_done": [3]})
    ownership.update_action_item(audit, by=risk, status="done")
    assert evaluate_condition(condition)[0] is True
    assert observed_summary("actions_done", condition.observed) == (
        "All 2 required action item(s) done."
    )

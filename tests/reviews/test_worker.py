"""A real worker re-checks re-entry conditions after a review step, and by the beat task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import wait_for
from tests.reviews.helpers import evaluations, fresh, repaired_incident
from trustdesk.reviews import actions
from trustdesk.reviews.models import ReentryCondition
from trustdesk.reviews.tasks import recheck_open_conditions

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_checks_a_new_condition_and_the_beat_task_rechecks_it(
    celery_worker, settings, tmp_path, make_user
):
    settings.MEDIA_ROOT = tmp_path / "media"
    op = make_user("operator")
    inc = repaired_incident(by=op)
    condition = actions.set_reentry_condition(
        inc,
        by=op,
        expected_version=inc.version,
        kind="evaluation_pass_rate",
        params={"clause": "refund-limit", "min": "1", "last_n": 3},
    )

    def status():
        row = ReentryCondition.objects.get(pk=condition.pk)
        return row if row.checked_at is not None else None

    row = wait_for(status, timeout=30)
    assert row.status == "unmet" and row.observed["counted"] == 0
    first_check = row.checked_at

    evaluations(fresh(inc).pact_version.clauses.get(), [True, True, True])
    recheck_open_conditions.delay()
    # An earlier recheck (queued by the evaluations themselves) may land first: wait for the one
    # that saw all three passes rather than for any newer check.
    row = wait_for(
        lambda: (r := ReentryCondition.objects.get(pk=condition.pk)).status == "met" and r,
        timeout=30,
    )
    assert row.checked_at > first_check and row.observed["passed"] == 3
    assert row.checked_at > timezone.now() - timedelta(minutes=1)

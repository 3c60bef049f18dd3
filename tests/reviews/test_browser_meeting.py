"""Two people on one meeting screen: one records a decision, the other sees it arrive without a
reload and without losing what they were typing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.reviews.helpers import in_review_incident
from trustdesk.reviews import actions
from trustdesk.reviews.models import RecoveryDecision

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_decision_reaches_the_other_screen_within_5_seconds_keeping_typed_text(
    media, live_server, pages_of, make_user, screenshot
):
    ivan = make_user("incident_manager", username="ivan-setup")
    olivia = make_user("operator", username="olivia-setup")
    first = in_review_incident(by=olivia)
    second = in_review_incident(by=olivia)
    meeting = actions.create_meeting(
        by=ivan,
        title="Weekly recovery review",
        scheduled_at=timezone.now() + timedelta(minutes=5),
        facilitator=ivan,
        agenda=[first, second],
    )
    url = f"{live_server.url}/reviews/meetings/{meeting.pk}/"

    a, b = pages_of("risk", "incident_manager", width=1400, height=1000)  # a decides, b watches
    a.goto(url)
    b.goto(url)

    # The watcher starts typing a note and a rationale for the other incident.
    b.fill("#id_text", "Olivia to confirm the refund tool change is deployed")
    b.fill(f"#id_i{second.pk}-rationale", "Half-typed rationale for the second incident")
    b.evaluate("window.__sameDocument = true")
    screenshot(b, "watcher-before")

    # The decider records a decision on the first incident.
    a.check(f"#id_i{first.pk}-decision_0")  # reopen_full
    a.fill(f"#id_i{first.pk}-rationale", "Every condition holds; the approval check is live.")
    a.click(f"#decide-{first.pk} button[type=submit]")
    expect(a.locator(f"#agenda-{first.pk}-status")).to_contain_text("Decision record")
    screenshot(a, "decider-after")
    assert RecoveryDecision.objects.get(incident=first).meeting_id == meeting.pk

    # Within 5 seconds the watcher sees it, on the same document, with the typing intact.
    status = b.locator(f"#agenda-{first.pk}-status")
    expect(status).to_contain_text("Decision record", timeout=5000)
    expect(status).to_contain_text("Every condition holds; the approval check is live.")
    expect(b.locator("#meeting-outcomes")).to_contain_text(first.key)
    assert b.evaluate("window.__sameDocument") is True
    expect(b.locator("#id_text")).to_have_value(
        "Olivia to confirm the refund tool change is deployed"
    )
    expect(b.locator(f"#id_i{second.pk}-rationale")).to_have_value(
        "Half-typed rationale for the second incident"
    )
    # The decided incident's form gives way to the attestation form, for the watcher only.
    expect(b.locator(f"#decide-{first.pk} form")).to_be_hidden()
    expect(b.locator(f"#attest-{first.pk} form")).to_be_visible()
    expect(a.locator(f"#attest-{first.pk} form")).to_be_hidden()  # the decider cannot attest
    screenshot(b, "watcher-after")

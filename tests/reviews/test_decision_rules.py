"""Which states a recovery decision may be taken from (the same for all four decisions), and the
confirmation page an override goes through before it is recorded."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from tests.factories import make_incident
from tests.reviews.helpers import (
    advance,
    fresh,
    in_review_incident,
    meeting_decision_form,
    repaired_incident,
    review_meeting,
)
from trustdesk.reviews import actions
from trustdesk.reviews.errors import ReviewError
from trustdesk.reviews.models import RecoveryDecision

pytestmark = pytest.mark.django_db
DECISIONS = ("reopen_full", "reopen_partial", "keep_restricted", "retire")


def _decide(inc, by, decision, **kw):
    return actions.record_recovery_decision(
        inc, by=by, expected_version=fresh(inc).version, decision=decision, rationale="Why.", **kw
    )


@pytest.mark.parametrize("state", ["detected", "contained", "evidence_preserved"])
@pytest.mark.parametrize("decision", DECISIONS)
def test_no_decision_before_classification_even_as_an_override(people, state, decision):
    inc = advance(make_incident(by=people.op), state, by=people.op)
    with pytest.raises(ReviewError) as caught:
        _decide(inc, people.im, decision, override_requested=True, justification="Urgent.")
    assert caught.value.problems == [
        f"{inc.key} is {fresh(inc).get_state_display().lower()}; a recovery decision needs it "
        "classified first (contain, preserve the evidence, classify what broke)."
    ]
    assert fresh(inc).state == state
    assert not RecoveryDecision.objects.exists()


@pytest.mark.parametrize("decision", DECISIONS)
def test_before_review_every_decision_is_an_override_for_an_incident_manager_only(people, decision):
    inc = repaired_incident(by=people.op)
    with pytest.raises(ReviewError, match="request a review before deciding"):
        _decide(inc, people.risk, decision)
    with pytest.raises(ReviewError, match="Tick “override”"):
        _decide(inc, people.im, decision)
    record = _decide(inc, people.im, decision, override_requested=True, justification="Now.")
    assert record.override is True
    assert [g["step"] for g in record.gate_snapshot if not g["met"]] == ["request_review"]


def test_in_review_keeping_restricted_is_no_override(people):
    inc = in_review_incident(by=people.op)
    assert actions.override_preview(inc, decision="keep_restricted") == []
    assert _decide(inc, people.risk, "keep_restricted").override is False


def _post(client, inc, headers=None, **extra):
    data = {
        "version": fresh(inc).version,
        "decision": "reopen_full",
        "rationale": "The fix holds.",
        "override": "on",
        "justification": "Contract deadline; a human approves refunds meanwhile.",
        **extra,
    }
    return client.post(reverse("incident_review_decide", args=[inc.key]), data, headers=headers)


def test_an_override_shows_what_it_skips_and_records_only_when_confirmed(people, client_for):
    inc = repaired_incident(by=people.op)  # no review: the request_review gate is unmet
    c = client_for("incident_manager")
    page = _post(c, inc)
    assert page.status_code == 200
    html = unescape(page.content.decode())
    skips = actions.override_preview(inc, decision="reopen_full")
    assert skips and all(skip in html for skip in skips)
    assert "gate “Request review” is unmet" in html
    assert not RecoveryDecision.objects.exists()
    assert fresh(inc).state == "repaired"
    # the page's form carries everything back, with confirm=1 and the list it showed
    shown = re.findall(r'<input type="hidden" name="skip" value="([^"]*)">', page.content.decode())
    assert [unescape(s) for s in shown] == skips
    assert '<input type="hidden" name="confirm" value="1">' in page.content.decode()

    recorded = _post(c, inc, confirm="1", skip=skips)
    assert recorded.status_code == 302
    decision = RecoveryDecision.objects.get()
    assert decision.override and fresh(inc).state == "recovered"


def test_a_confirmation_of_something_else_than_what_is_skipped_now_is_refused(people, client_for):
    inc = repaired_incident(by=people.op)
    c = client_for("incident_manager")
    response = _post(c, inc, confirm="1", skip=["nothing at all"])
    assert response.status_code == 422  # a refused step (core.pages.run_step)
    assert "What this override skips changed since it was confirmed" in unescape(
        response.content.decode()
    )
    assert not RecoveryDecision.objects.exists()


def test_with_htmx_the_confirmation_replaces_the_review_panel(people, client_for):
    inc = repaired_incident(by=people.op)
    c = client_for("incident_manager")
    response = _post(c, inc, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="review-panel"')
    assert "<html" not in html
    assert not RecoveryDecision.objects.exists()


def test_in_a_meeting_an_override_is_confirmed_the_same_way(people, client_for):

    inc = in_review_incident(
        by=people.op,
        condition=("evaluation_pass_rate", {"clause": "refund-limit", "min": "1", "last_n": 5}),
    )
    c = client_for("incident_manager")
    meeting = review_meeting(c.user, inc)
    url = reverse("review_meeting_decide", args=[meeting.pk, inc.key])
    prefix = f"i{inc.pk}-"
    why = "Regulator deadline."
    data = meeting_decision_form(inc, "reopen_full", "Holds.", override="on", justification=why)
    page = c.post(url, data)
    assert page.status_code == 200
    html = unescape(page.content.decode())
    skips = actions.override_preview(inc, decision="reopen_full")
    assert "Confirm the override" in html and all(s in html for s in skips)
    assert not RecoveryDecision.objects.exists()
    done = c.post(url, {**data, f"{prefix}confirm": "1", f"{prefix}skip": skips})
    assert done.status_code in (200, 302)
    assert RecoveryDecision.objects.get().meeting == meeting

"""The reviews pages: every view refused to the wrong roles, the panel's forms (plain POST and
htmx), the index and meetings pages with a fixed number of queries, and the live change check."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.builders import decide
from tests.reviews.helpers import (
    fresh,
    in_review_incident,
    meeting_decision_form,
    repaired_incident,
    review_meeting,
)
from trustdesk.core.roles import ROLES
from trustdesk.incidents.models import Event
from trustdesk.reviews import actions
from trustdesk.reviews.models import (
    Attestation,
    MeetingNote,
    OperatingModelChange,
    RecoveryDecision,
    ReentryCondition,
    ReviewMeeting,
)
from trustdesk.reviews.panels import incident_panel_context
from trustdesk.reviews.tasks import recheck_open_conditions

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
ALL = set(ROLES)
WORKERS = {"operator", "incident_manager", "risk"}


@pytest.fixture
def world(people):
    repaired = repaired_incident(by=people.op)
    review = in_review_incident(by=people.op)
    return {"repaired": repaired, "review": review, "meeting": review_meeting(people.im, review)}


def views_and_roles(world):
    key, rkey, m = world["repaired"].key, world["review"].key, world["meeting"].pk
    return [
        ("GET", reverse("reviews"), ALL),
        ("GET", reverse("review_meetings"), ALL),
        ("GET", reverse("review_meeting_new"), {"incident_manager"}),
        ("POST", reverse("review_meeting_new"), {"incident_manager"}),
        ("GET", reverse("review_meeting", args=[m]), ALL),
        ("GET", reverse("review_meeting_changes", args=[m]), ALL),
        ("POST", reverse("review_meeting_note", args=[m]), WORKERS),
        ("POST", reverse("review_meeting_agenda", args=[m]), {"incident_manager"}),
        ("POST", reverse("review_meeting_close", args=[m]), {"incident_manager"}),
        ("POST", reverse("review_meeting_decide", args=[m, rkey]), {"risk", "incident_manager"}),
        ("POST", reverse("review_meeting_attest", args=[m, rkey]), WORKERS),
        ("GET", reverse("incident_review", args=[key]), ALL),
        ("POST", reverse("incident_review_change", args=[key]), WORKERS),
        ("POST", reverse("incident_review_condition", args=[key]), WORKERS),
        ("POST", reverse("incident_review_recheck", args=[key]), WORKERS),
        ("POST", reverse("incident_review_signoff", args=[key]), WORKERS),
        ("POST", reverse("incident_review_request", args=[key]), WORKERS),
        ("POST", reverse("incident_review_decide", args=[rkey]), {"risk", "incident_manager"}),
        ("POST", reverse("incident_review_attest", args=[rkey]), WORKERS),
    ]


def test_every_view_refuses_the_wrong_roles_and_sends_anonymous_users_to_login(
    world, client, client_for
):
    clients = {role: client_for(role) for role in ROLES}
    for method, url, allowed in views_and_roles(world):
        anonymous = client.get(url) if method == "GET" else client.post(url, {})
        assert anonymous.status_code == 302 and "/login/" in anonymous.url, url
        for role, c in clients.items():
            response = c.get(url) if method == "GET" else c.post(url, {})
            if role in allowed:
                assert response.status_code != 403, (role, url)
                assert response.status_code < 500, (role, url)
            else:
                assert response.status_code == 403, (role, url, response.status_code)
    # Nothing was changed by all those empty or refused posts (closing needs no input).
    assert not RecoveryDecision.objects.exists()
    assert not MeetingNote.objects.exists()


def test_post_only_views_refuse_get(world, client_for):
    c = client_for("incident_manager")
    for method, url, _ in views_and_roles(world):
        if method == "POST" and "meetings/new" not in url:
            assert c.get(url).status_code == 405, url


# ---------------------------------------------------------------- the incident panel


def test_recording_a_change_by_plain_post_redirects_to_the_incident_page(world, client_for):
    c = client_for("operator")
    inc = world["repaired"]
    response = c.post(
        reverse("incident_review_change", args=[inc.key]),
        {
            "version": inc.version,
            "kind": "human_oversight",
            "summary": "A human approves.",
        },
    )
    assert response.status_code == 302
    assert response.url == reverse("incident_detail", args=[inc.key]) + "#review-panel"
    change = OperatingModelChange.objects.get(incident=inc)
    assert change.kind == "human_oversight" and change.by == c.user


def test_an_htmx_post_gets_the_panel_and_an_incident_changed_trigger(world, client_for):
    c = client_for("risk")
    inc = world["repaired"]
    response = c.post(
        reverse("incident_review_condition", args=[inc.key]),
        {
            "version": inc.version,
            "kind": "no_incidents",
            "assumption": "authority",
            "days": "30",
        },
        **HTMX,
    )
    assert response.status_code == 200
    assert response["HX-Trigger"] == "incidentChanged"
    body = response.content.decode()
    assert body.lstrip().startswith("<section") and 'id="review-panel"' in body
    assert "<html" not in body
    assert "No other incident of the agent breaking the authority assumption" in body
    assert ReentryCondition.objects.filter(incident=inc).count() == 1


def test_bad_condition_parameters_show_every_problem_and_change_nothing(world, client_for):
    c = client_for("operator")
    inc = world["repaired"]
    version = inc.version
    response = c.post(
        reverse("incident_review_condition", args=[inc.key]),
        {
            "version": inc.version,
            "kind": "evaluation_pass_rate",
            "clause": "",
            "min_rate": "",
            "last_n": "",
        },
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert "clause: required" in body and "min: required" in body and "last_n: required" in body
    assert fresh(inc).version == version
    # htmx gets the same panel, as a 200 so that it is swapped in.
    response = c.post(
        reverse("incident_review_condition", args=[inc.key]),
        {
            "version": inc.version,
            "kind": "signoffs",
            "roles": ["viewer"],
            "min_roles": "1",
        },
        **HTMX,
    )
    assert response.status_code == 200 and "HX-Trigger" not in response
    assert "Select a valid choice" in response.content.decode()


def test_a_stale_form_is_refused_with_what_changed_and_the_input_kept(world, client_for):
    c = client_for("operator")
    inc = world["repaired"]
    seen = inc.version
    actions.add_operating_model_change(
        inc, by=c.user, expected_version=seen, kind="other", summary="First."
    )
    response = c.post(
        reverse("incident_review_change", args=[inc.key]),
        {"version": seen, "kind": "control_added", "summary": "My half-written change"},
    )
    assert response.status_code == 409
    body = response.content.decode()
    assert "changed while you were working on it (operating_model_changed)" in body
    assert "My half-written change" in body
    assert f'value="{seen + 1}"' in body  # resubmitting now works
    assert OperatingModelChange.objects.filter(incident=inc).count() == 1


def test_request_review_and_decide_through_the_panel(world, client_for):
    inc = world["repaired"]
    op = client_for("operator")
    op.post(
        reverse("incident_review_change", args=[inc.key]),
        {"version": inc.version, "kind": "monitoring_added", "summary": "Alerts."},
    )
    inc = fresh(inc)
    op.post(
        reverse("incident_review_condition", args=[inc.key]),
        {"version": inc.version, "kind": "operating_model_changed"},
    )
    inc = fresh(inc)
    response = op.post(reverse("incident_review_request", args=[inc.key]), {"version": inc.version})
    assert response.status_code == 302 and fresh(inc).state == "in_review"
    risk = client_for("risk")
    inc = fresh(inc)
    response = risk.post(
        reverse("incident_review_decide", args=[inc.key]),
        {"version": inc.version, "decision": "reopen_partial", "rationale": "Holds."},
    )
    assert response.status_code == 302
    assert fresh(inc).state == "recovered"
    page = risk.get(reverse("incident_review", args=[inc.key])).content.decode()
    assert "Decision record" in page and "Reopen partially" in page


def test_the_override_fields_are_shown_and_accepted_only_for_incident_managers(world, client_for):
    inc = world["review"]
    risk_page = client_for("risk").get(reverse("incident_review", args=[inc.key])).content
    im_page = client_for("incident_manager").get(reverse("incident_review", args=[inc.key])).content
    assert b'name="override"' not in risk_page and b'name="justification"' not in risk_page
    assert b'name="override"' in im_page and b'name="justification"' in im_page


def test_an_override_without_justification_is_refused_in_the_form(people, client_for):
    inc = in_review_incident(
        by=people.op,
        condition=("evaluation_pass_rate", {"clause": "refund-limit", "min": "1", "last_n": 5}),
    )
    c = client_for("incident_manager")
    url = reverse("incident_review_decide", args=[inc.key])
    form = {"version": inc.version, "decision": "reopen_full", "rationale": "Need it."}
    form |= {"override": "on", "justification": ""}
    response = c.post(url, form)
    assert response.status_code == 422
    assert "An override needs a written justification" in response.content.decode()
    form["justification"] = "Customer contract; human approval in place."
    response = c.post(url, form)
    # an override is confirmed on a page that shows what it skips before it is recorded
    assert response.status_code == 200
    assert "Confirm the override" in response.content.decode()
    assert not RecoveryDecision.objects.filter(incident=inc).exists()
    skipped = actions.override_preview(inc, decision="reopen_full")
    response = c.post(url, {**form, "confirm": "1", "skip": skipped})
    assert response.status_code == 302
    decision = RecoveryDecision.objects.get(incident=inc)
    assert decision.override and decision.justification.startswith("Customer contract")
    page = c.get(reverse("incident_review", args=[inc.key])).content.decode()
    assert "This reopening was an override" in page and "Customer contract" in page


def test_attestation_through_the_panel_and_the_decider_is_refused(world, people, client_for):
    inc = world["review"]
    decision = decide(inc, "reopen_full", by=people.risk, rationale="ok")
    decider = client_for("risk")
    decider.force_login(people.risk)
    response = decider.post(
        reverse("incident_review_attest", args=[inc.key]),
        {"can_explain": "yes", "comment": "Mine."},
    )
    assert response.status_code == 422
    assert "decider cannot attest" in response.content.decode()
    other = client_for("operator")
    response = other.post(
        reverse("incident_review_attest", args=[inc.key]),
        {"can_explain": "no", "comment": "The rationale does not say why."},
    )
    assert response.status_code == 302
    (attestation,) = Attestation.objects.filter(decision=decision)
    assert attestation.can_explain is False
    again = other.post(
        reverse("incident_review_attest", args=[inc.key]),
        {"can_explain": "yes", "comment": "Changed my mind."},
    )
    assert again.status_code == 422 and "already attested" in again.content.decode()
    assert Attestation.objects.count() == 1


def test_no_view_or_admin_path_changes_a_decision_or_an_attestation(world, people, client):
    from django.contrib import admin

    url_names = {p.name for p in __import__("trustdesk.reviews.urls").reviews.urls.urlpatterns}
    assert not [n for n in url_names if any(w in n for w in ("edit", "update", "delete"))]
    for model in (RecoveryDecision, Attestation, MeetingNote, OperatingModelChange):
        model_admin = admin.site._registry[model]
        request = type("R", (), {"user": people.im})()
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)
        assert not model_admin.has_add_permission(request)


def test_the_panel_runs_a_fixed_number_of_queries(people, django_assert_max_num_queries):
    small = in_review_incident(by=people.op)
    big = in_review_incident(by=people.op)
    for i in range(5):
        b = fresh(big)
        actions.add_operating_model_change(
            b, by=people.op, expected_version=b.version, kind="other", summary=f"Change {i}"
        )
        b = fresh(b)
        actions.set_reentry_condition(
            b,
            by=people.op,
            expected_version=b.version,
            kind="no_incidents",
            params={"assumption": "authority", "days": i + 1},
        )
    for inc in (small, big):
        inc = fresh(inc)
        user = people.im
        user._trustdesk_roles = None
        with django_assert_max_num_queries(10):
            context = incident_panel_context(inc, user)
            from django.template.loader import render_to_string

            render_to_string("reviews/_incident_panel.html", context)


# ---------------------------------------------------------------- index and meetings


def test_the_index_lists_incidents_in_review_with_their_condition_status(
    world, people, client_for, django_assert_max_num_queries
):
    for _ in range(3):
        in_review_incident(by=people.op)
    c = client_for("viewer")
    body = c.get(reverse("reviews")).content.decode()
    assert "0 of 1 met" in body and "1 not checked" in body
    recheck_open_conditions()
    with django_assert_max_num_queries(12):
        response = c.get(reverse("reviews"))
    body = response.content.decode()
    assert world["review"].key in body and world["repaired"].key not in body
    assert "1 of 1 met" in body and "1 not checked" not in body
    assert "Weekly review" in body
    response = c.get(reverse("reviews"), {"state": "repaired"})
    assert world["repaired"].key in response.content.decode()
    response = c.get(reverse("reviews"), {"conditions": "none", "state": "repaired"})
    assert world["repaired"].key in response.content.decode()
    response = c.get(reverse("reviews"), {"q": "no-such-thing"})
    assert "No incident matches" in response.content.decode()
    response = c.get(reverse("reviews"), {"state": "bogus", "page": "x"})
    assert response.status_code == 200  # a bad filter falls back to the defaults
    partial = c.get(reverse("reviews"), **HTMX).content.decode()
    assert partial.lstrip().startswith('<div id="queue">')


def test_the_index_paginates(people, client_for):
    for _ in range(26):
        in_review_incident(by=people.op)
    c = client_for("risk")
    first = c.get(reverse("reviews")).content.decode()
    assert "1–25 of 26" in first and "page=2" in first
    second = c.get(reverse("reviews"), {"page": 2}).content.decode()
    assert "26–26 of 26" in second


def test_meeting_list_and_create(world, people, client_for, django_assert_max_num_queries):
    c = client_for("incident_manager")
    when = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    form = {"title": "Friday review", "scheduled_at": when, "facilitator": people.risk.pk}
    response = c.post(reverse("review_meeting_new"), {**form, "agenda": [world["review"].pk]})
    assert response.status_code == 302
    meeting = ReviewMeeting.objects.get(title="Friday review")
    assert list(meeting.agenda.all()) == [world["review"]]
    assert meeting.created_by == c.user and meeting.facilitator == people.risk
    bad = c.post(reverse("review_meeting_new"), {"title": "", "scheduled_at": "tomorrow"})
    assert bad.status_code == 422 and ReviewMeeting.objects.count() == 2
    not_in_review = c.post(
        reverse("review_meeting_new"), {**form, "title": "X", "agenda": [world["repaired"].pk]}
    )
    assert not_in_review.status_code == 422
    viewer = client_for("viewer")
    with django_assert_max_num_queries(8):
        listing = viewer.get(reverse("review_meetings")).content.decode()
    assert "Friday review" in listing and "Weekly review" in listing
    upcoming = viewer.get(reverse("review_meetings"), {"when": "past"}).content.decode()
    assert "No meeting matches" in upcoming


def test_the_meeting_page_shows_the_agenda_and_presentation_mode(world, client_for):
    c = client_for("viewer")
    meeting = world["meeting"]
    page = c.get(reverse("review_meeting", args=[meeting.pk])).content.decode()
    assert world["review"].key in page and 'id="meeting-live"' in page
    assert "Record decision" not in page  # a viewer changes nothing
    assert 'class="meeting-screen"' in page
    present = c.get(reverse("review_meeting", args=[meeting.pk]), {"present": "1"})
    assert 'class="meeting-screen present"' in present.content.decode()
    risk_page = client_for("risk").get(reverse("review_meeting", args=[meeting.pk])).content
    assert b"Record decision" in risk_page


def test_the_change_check_answers_204_with_no_body_until_something_changes(
    world, people, client_for, django_assert_max_num_queries
):
    c = client_for("operator")
    meeting = world["meeting"]
    url = reverse("review_meeting_changes", args=[meeting.pk])
    page = c.get(reverse("review_meeting", args=[meeting.pk])).content.decode()
    token = page.split('data-token="')[1].split('"')[0]
    with django_assert_max_num_queries(4):
        unchanged = c.get(url, {"since": token})
    assert unchanged.status_code == 204 and unchanged.content == b""

    actions.add_meeting_note(meeting, by=people.op, text="Rita presents the pass rates.")
    changed = c.get(url, {"since": token})
    assert changed.status_code == 200
    body = changed.content.decode()
    assert "Rita presents the pass rates." in body
    assert 'id="meeting-notes"' in body and 'hx-swap-oob="true"' in body
    # Only read-only regions: never a form region, so a half-typed form survives.
    assert "<form" not in body and 'id="decide-' not in body and 'id="note-form-slot"' not in body
    new_token = body.split('data-token="')[1].split('"')[0]
    assert new_token != token
    assert c.get(url, {"since": new_token}).status_code == 204

    decide(world["review"], "reopen_full", by=people.risk, rationale="Holds.", meeting=meeting)
    body = c.get(url, {"since": new_token}).content.decode()
    assert "Decision record" in body and "decided-marker" in body
    assert 'id="meeting-outcomes"' in body


def test_the_change_check_appends_new_agenda_items_with_their_forms(world, people, client_for):
    c = client_for("risk")
    meeting = world["meeting"]
    url = reverse("review_meeting_changes", args=[meeting.pk])
    page = c.get(reverse("review_meeting", args=[meeting.pk])).content.decode()
    token = page.split('data-token="')[1].split('"')[0]
    added = in_review_incident(by=people.op)
    actions.add_agenda_item(meeting, by=people.im, incident=added)
    body = c.get(url, {"since": token}).content.decode()
    assert 'hx-swap-oob="beforeend:#agenda"' in body
    assert f'id="agenda-{added.pk}"' in body and f'id="decide-{added.pk}"' in body
    # The incident already on the page only gets its status region.
    assert f'id="decide-{world["review"].pk}"' not in body


def test_a_bad_since_token_gets_the_fragment_and_an_unknown_meeting_404(world, client_for):
    c = client_for("viewer")
    url = reverse("review_meeting_changes", args=[world["meeting"].pk])
    assert c.get(url, {"since": "garbage"}).status_code == 200
    assert c.get(url, {"since": "x" * 500}).status_code == 200
    assert c.get(reverse("review_meeting_changes", args=[99999])).status_code == 404


def test_deciding_and_attesting_in_a_meeting_links_the_decision(world, people, client_for):
    meeting, inc = world["meeting"], world["review"]
    risk = client_for("risk")
    response = risk.post(
        reverse("review_meeting_decide", args=[meeting.pk, inc.key]),
        meeting_decision_form(inc, "keep_restricted", "Pass rate is not there yet."),
        **HTMX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert f'id="decide-{inc.pk}"' in body and f'id="agenda-{inc.pk}-status"' in body
    assert "decided-by-you" in body
    decision = RecoveryDecision.objects.get(incident=inc)
    assert decision.meeting == meeting and decision.decision == "keep_restricted"
    op = client_for("operator")
    response = op.post(
        reverse("review_meeting_attest", args=[meeting.pk, inc.key]),
        {f"i{inc.pk}-can_explain": "yes", f"i{inc.pk}-comment": "Clear."},
    )
    assert response.status_code == 302
    assert Attestation.objects.get().decision == decision
    page = op.get(reverse("review_meeting", args=[meeting.pk])).content.decode()
    assert "Keep restricted" in page and "attested-by-you" in page


def test_a_meeting_decision_error_keeps_the_input(world, client_for):
    meeting, inc = world["meeting"], world["review"]
    stale = meeting_decision_form(
        inc, "reopen_full", "My careful rationale", version=inc.version - 1
    )
    response = client_for("risk").post(
        reverse("review_meeting_decide", args=[meeting.pk, inc.key]), stale, **HTMX
    )
    body = response.content.decode()
    assert "changed while you were working on it" in body
    assert "My careful rationale" in body
    assert not RecoveryDecision.objects.exists()


def test_an_incident_not_on_the_agenda_cannot_be_decided_through_the_meeting(world, client_for):
    other = world["repaired"]
    response = client_for("risk").post(
        reverse("review_meeting_decide", args=[world["meeting"].pk, other.key]), {}
    )
    assert response.status_code == 404


def test_notes_are_appended_and_a_closed_meeting_takes_none(world, client_for):
    meeting = world["meeting"]
    op = client_for("operator")
    response = op.post(
        reverse("review_meeting_note", args=[meeting.pk]), {"text": "Start."}, **HTMX
    )
    assert response.status_code == 200
    assert 'id="note-form-slot"' in response.content.decode()
    assert "Start." in response.content.decode()
    assert (
        op.post(reverse("review_meeting_note", args=[meeting.pk]), {"text": ""}).status_code == 422
    )
    im = client_for("incident_manager")
    assert im.post(reverse("review_meeting_close", args=[meeting.pk])).status_code == 302
    late = op.post(reverse("review_meeting_note", args=[meeting.pk]), {"text": "Late."})
    assert late.status_code == 422 and "closed" in late.content.decode()
    assert list(MeetingNote.objects.values_list("text", flat=True)) == ["Start."]


def test_the_meeting_page_runs_a_fixed_number_of_queries(
    world, people, client_for, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    c = client_for("risk")
    meeting = world["meeting"]
    url = reverse("review_meeting", args=[meeting.pk])
    c.get(url)  # warm the session
    with CaptureQueriesContext(connection) as small:
        c.get(url)
    for _ in range(3):
        actions.add_agenda_item(meeting, by=people.im, incident=in_review_incident(by=people.op))
        actions.add_meeting_note(meeting, by=people.op, text="x")
    with django_assert_max_num_queries(17) as large:
        c.get(url)
    assert len(large.captured_queries) == len(small.captured_queries)


def test_events_carry_every_review_step(world, people):
    inc = world["review"]
    types = set(Event.objects.filter(incident=inc).values_list("type", flat=True))
    assert {"operating_model_changed", "reentry_condition_set", "review_requested"} <= types

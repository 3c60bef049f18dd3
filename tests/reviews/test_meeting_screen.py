"""The meeting screen says what the meeting is doing, shows no form when presented on the shared
screen, and keeps "Close the meeting" apart from the agenda form."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests.reviews.helpers import in_review_incident, meeting_decision_form, review_meeting
from trustdesk.reviews import actions

pytestmark = pytest.mark.django_db


def _meeting(people, *, starts_in: timedelta, agenda):
    return review_meeting(people.im, *agenda, title="Weekly recovery review", starts_in=starts_in)


def _status(client, meeting) -> str:
    html = client.get(reverse("review_meeting", args=[meeting.pk])).content.decode()
    start = html.index('id="meeting-status">') + len('id="meeting-status">')
    return html[start : html.index("<", start)]


def test_a_meeting_is_in_progress_once_a_decision_is_taken_in_it(client, people):
    incident = in_review_incident(by=people.op)
    meeting = _meeting(people, starts_in=timedelta(hours=2), agenda=[incident])
    client.force_login(people.im)
    assert _status(client, meeting) == "Scheduled"
    response = client.post(
        reverse("review_meeting_decide", args=[meeting.pk, incident.key]),
        meeting_decision_form(incident, "reopen_partial", "Every condition holds."),
    )
    assert response.status_code == 302
    assert _status(client, meeting) == "In progress"
    # The lists say the same, from one annotated query.
    assert "In progress" in client.get(reverse("review_meetings")).content.decode()
    client.post(reverse("review_meeting_close", args=[meeting.pk]))
    assert _status(client, meeting) == "Closed"


def test_a_meeting_whose_time_has_come_is_in_progress(client, people):
    meeting = _meeting(people, starts_in=timedelta(minutes=-5), agenda=[])
    client.force_login(people.im)
    assert _status(client, meeting) == "In progress"


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.in_main = False
        self.forms: list[str] = []
        self.header_forms: list[str] = []
        self.in_header = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "main":
            self.in_main = True
        if tag == "header" and a.get("id") == "meeting-header":
            self.in_header = True
        if tag == "form" and self.in_main:
            self.forms.append(a.get("action", ""))
            if self.in_header:
                self.header_forms.append(a.get("action", ""))

    def handle_endtag(self, tag):
        if tag == "main":
            self.in_main = False
        if tag == "header":
            self.in_header = False


def _forms(client, url) -> _Forms:
    parser = _Forms()
    parser.feed(client.get(url).content.decode())
    return parser


def test_presentation_mode_shows_no_form_and_close_sits_in_the_header(client, people):
    incident = in_review_incident(by=people.op)
    meeting = _meeting(people, starts_in=timedelta(hours=1), agenda=[incident])
    client.force_login(people.im)
    url = reverse("review_meeting", args=[meeting.pk])
    working = _forms(client, url)
    close = reverse("review_meeting_close", args=[meeting.pk])
    assert reverse("review_meeting_agenda", args=[meeting.pk]) in working.forms
    assert working.header_forms == [close]  # beside "Present", not under the agenda form
    assert working.forms.count(close) == 1
    presenting = _forms(client, url + "?present=1")
    assert presenting.forms == []
    # The poll of a presented screen brings new agenda items without forms either.
    other = in_review_incident(by=people.op)
    token = client.get(url).context["token"]
    actions.add_agenda_item(meeting, by=people.im, incident=other)
    changes = reverse("review_meeting_changes", args=[meeting.pk])
    polled = client.get(changes, {"since": token, "present": "1"}).content.decode()
    assert other.key in polled and "<form" not in polled
    assert "<form" in client.get(changes, {"since": token}).content.decode()

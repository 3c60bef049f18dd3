"""Every page a signed-in person sees shows times in their zone (UTC on hover), and the date/time
fields read and show what they type in that zone; the buyer page, without a profile, stays UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_incident, make_pact_version
from trustdesk.core.timezones import SESSION_KEY
from trustdesk.diligence.actions import create_share_link
from trustdesk.diligence.models import ShareLink
from trustdesk.incidents.forms import NewIncidentForm
from trustdesk.pacts.models import PactVersion
from trustdesk.reviews.models import ReviewMeeting

pytestmark = pytest.mark.django_db
AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
BERLIN_AT = (
    '<time datetime="2026-11-02T10:00:00Z" title="2026-11-02 10:00 UTC">2026-11-02 11:00 CET</time>'
)


def _in_berlin(client_for, *roles):
    client = client_for(*roles)
    session = client.session
    session[SESSION_KEY] = "Europe/Berlin"
    session.save()
    return client


def test_agent_and_pact_pages_show_local_times_with_utc_on_hover(client_for):
    incident = make_incident(detected_at=AT)
    version = PactVersion.objects.filter(pact__agent=incident.agent).first()
    PactVersion.objects.filter(pk=version.pk).update(created_at=AT, activated_at=AT)
    client = _in_berlin(client_for, "viewer")
    for url in (
        reverse("agent_detail", args=[incident.agent.key]),
        reverse("pact_detail", args=[version.pact.key]),
    ):
        html = client.get(url).content.decode()
        assert BERLIN_AT in html, url


def test_a_meeting_time_typed_in_berlin_is_stored_as_the_utc_instant(client_for, make_user):
    facilitator = make_user("risk")
    client = _in_berlin(client_for, "incident_manager")
    form_page = client.get(reverse("review_meeting_new")).content.decode()
    assert "When (Europe/Berlin)" in form_page and "(UTC)" not in form_page
    local = (timezone.now() + timedelta(days=3)).astimezone(ZoneInfo("Europe/Berlin"))
    typed = local.replace(hour=9, minute=30, second=0, microsecond=0)
    response = client.post(
        reverse("review_meeting_new"),
        {
            "title": "Berlin review",
            "scheduled_at": typed.strftime("%Y-%m-%dT%H:%M"),
            "facilitator": facilitator.pk,
        },
    )
    assert response.status_code == 302
    meeting = ReviewMeeting.objects.get(title="Berlin review")
    assert meeting.scheduled_at == typed.astimezone(UTC)
    assert meeting.scheduled_at.astimezone(UTC).hour != 9  # Berlin is never UTC+0
    page = client.get(reverse("review_meeting", args=[meeting.pk])).content.decode()
    utc = meeting.scheduled_at.astimezone(UTC)
    assert f'title="{utc:%Y-%m-%d %H:%M} UTC">{typed:%Y-%m-%d %H:%M %Z}</time>' in page


def test_the_new_incident_form_shows_and_reads_the_detected_time_in_the_persons_zone(client_for):
    make_pact_version()
    client = _in_berlin(client_for, "operator")
    html = client.get(reverse("incident_new")).content.decode()
    assert "Detected at (Europe/Berlin)" in html and "(UTC)" not in html
    with timezone.override(ZoneInfo("Europe/Berlin")):
        field = NewIncidentForm().fields["detected_at"]
        assert field.clean("2026-11-02T11:00") == AT
        assert field.widget.attrs["min"] == "2000-01-01T01:00"
    with timezone.override(UTC):
        assert NewIncidentForm().fields["detected_at"].clean("2026-11-02T11:00") == AT + timedelta(
            hours=1
        )


def test_the_metrics_drilldown_lists_detected_times_in_the_persons_zone(client_for):
    make_incident(detected_at=AT)
    client = _in_berlin(client_for, "viewer")
    html = client.get(reverse("metrics_drilldown", args=["open_count"])).content.decode()
    assert (
        '<time datetime="2026-11-02T10:00:00Z" title="2026-11-02 10:00:00 UTC">'
        "2026-11-02 11:00:00 CET</time>"
    ) in html
    assert "Detected (UTC)" not in html


def test_the_share_link_page_is_local_and_the_buyer_page_stays_utc_and_says_so(client_for):
    incident = make_incident(detected_at=AT)
    client = _in_berlin(client_for, "incident_manager")
    expires = (timezone.now() + timedelta(days=10)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    link, token = create_share_link(
        by=client.user, label="Northwind", agents=[incident.agent], expires_at=expires
    )
    ShareLink.objects.filter(pk=link.pk).update(created_at=AT)
    detail = client.get(reverse("share_link_detail", args=[link.pk])).content.decode()
    assert BERLIN_AT in detail and "When (UTC)" not in detail
    local = expires.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d %H:%M %Z")
    assert f'title="{expires:%Y-%m-%d %H:%M} UTC">{local}</time>' in detail
    # A buyer has no profile: the page says UTC, and it is UTC even for a signed-in visitor.
    buyer = client.get(reverse("buyer_view", args=[token])).content.decode()
    assert f"The link expires {expires:%-d %B %Y, %H:%M} UTC." in buyer
    assert " CET<" not in buyer and " CEST<" not in buyer

"""Each person's time zone: stored in their profile (the browser proposes it at the first login,
a page changes it), shown on pages by the one `when` tag with UTC on hover; exports stay UTC."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import unescape

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tests.factories import make_incident
from trustdesk.core.models import UserProfile
from trustdesk.core.timezones import SESSION_KEY

pytestmark = pytest.mark.django_db
DETECTED = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _login(client, username, zone):
    return client.post(
        reverse("login"), {"username": username, "password": "pw", "time_zone": zone}
    )


def test_the_first_login_stores_the_browsers_zone_and_later_ones_keep_it(make_user):
    user = make_user("operator", username="ana", password="pw")
    client = Client()
    assert _login(client, "ana", "Europe/Berlin").status_code == 302
    assert UserProfile.objects.get(user=user).time_zone == "Europe/Berlin"
    assert client.session[SESSION_KEY] == "Europe/Berlin"
    other = Client()
    _login(other, "ana", "America/New_York")
    assert UserProfile.objects.get(user=user).time_zone == "Europe/Berlin"
    assert other.session[SESSION_KEY] == "Europe/Berlin"


def test_an_unknown_or_missing_zone_means_utc_and_stores_nothing(make_user):
    make_user("operator", username="bo", password="pw")
    client = Client()
    _login(client, "bo", "Mars/Olympus_Mons")
    assert client.session[SESSION_KEY] == "UTC"
    assert not UserProfile.objects.exists()


def test_the_login_form_carries_the_browser_zone_field_and_its_script(client):
    html = client.get(reverse("login")).content.decode()
    assert 'name="time_zone"' in html and "data-browser-time-zone" in html
    assert "js/timezone.js" in html


def test_pages_show_times_in_the_persons_zone_with_utc_on_hover(make_user):
    incident = make_incident(detected_at=DETECTED)
    make_user("viewer", username="cy", password="pw")
    client = Client()
    _login(client, "cy", "Europe/Berlin")
    for url in (reverse("incident_detail", args=[incident.key]), reverse("incidents")):
        html = client.get(url).content.decode()
        assert (
            '<time datetime="2026-11-02T10:00:00Z" title="2026-11-02 10:00 UTC">'
            "2026-11-02 11:00 CET</time>"
        ) in html, url


def test_without_a_zone_pages_show_utc(client_for):
    incident = make_incident(detected_at=DETECTED)
    html = client_for("viewer").get(reverse("incident_detail", args=[incident.key])).content
    assert b'title="2026-11-02 10:00 UTC">2026-11-02 10:00 UTC</time>' in html


def test_the_time_zone_page_changes_it_and_refuses_an_unknown_one(client_for):
    client = client_for("operator")
    response = client.post(reverse("time_zone"), {"time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    assert UserProfile.objects.get(user=client.user).time_zone == "Asia/Tokyo"
    assert client.session[SESSION_KEY] == "Asia/Tokyo"
    bad = client.post(reverse("time_zone"), {"time_zone": "Nowhere/Else"})
    assert bad.status_code == 200
    # Said once, under the field it belongs to.
    assert unescape(bad.content.decode()).count("Select a valid choice") == 1
    assert UserProfile.objects.get(user=client.user).time_zone == "Asia/Tokyo"
    page = client.get(reverse("time_zone")).content.decode()
    assert "Asia/Tokyo" in page


def test_exports_stay_utc_whatever_the_zone(make_user, tmp_path):
    user = make_user("operator", username="dee", password="pw")
    UserProfile.objects.create(user=user, time_zone="Asia/Tokyo")
    incident = make_incident(detected_at=DETECTED, by=user)
    out = tmp_path / "export.json"
    call_command("export_incidents", "--incident", incident.key, str(out))
    (exported,) = json.loads(out.read_text())["incidents"]
    assert exported["events"][0]["at"] == "2026-11-02T10:00:00Z"

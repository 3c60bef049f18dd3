"""A person can stop the e-mail about what is theirs (docs/design.md section 12) on the settings
page; the fan-out then leaves them out and still writes to everyone else."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from tests.factories import make_incident
from trustdesk.core.models import UserProfile
from trustdesk.notify.models import Message

pytestmark = pytest.mark.django_db


def with_address(user, address):
    user.email = address
    user.save()
    return user


def open_incidents(*openers, capture):
    with capture(execute=True):
        for opener in openers:
            make_incident(by=opener)


def test_an_opted_out_person_gets_no_email_and_the_others_still_do(
    client_for, make_user, django_capture_on_commit_callbacks
):
    client = client_for("operator")
    quiet = with_address(client.user, "quiet@example.org")
    other = with_address(make_user("operator"), "other@example.org")
    # The box left unticked, as a browser sends it, turns e-mail off.
    response = client.post(reverse("email_settings"), {})
    assert response.status_code == 302 and response["Location"] == reverse("time_zone")
    assert UserProfile.objects.get(user=quiet).email_notifications is False

    open_incidents(quiet, other, capture=django_capture_on_commit_callbacks)
    assert [email.to for email in mail.outbox] == [["other@example.org"]]
    assert list(Message.objects.filter(kind="email").values_list("recipient", flat=True)) == [
        other.pk
    ]

    mail.outbox.clear()
    client.post(reverse("email_settings"), {"email_notifications": "on"})
    open_incidents(quiet, capture=django_capture_on_commit_callbacks)
    assert [email.to for email in mail.outbox] == [["quiet@example.org"]]


def test_the_settings_page_shows_the_choice_and_takes_it_by_post_only(client_for):
    client = client_for("viewer")
    page = client.get(reverse("time_zone")).content.decode()
    assert f'action="{reverse("email_settings")}"' in page
    assert 'id="id_email_notifications" checked>' in page
    assert client.get(reverse("email_settings")).status_code == 405
    client.post(reverse("email_settings"), {})
    page = client.get(reverse("time_zone")).content.decode()
    assert 'id="id_email_notifications">' in page
    assert "You will get no e-mail about what is yours." in page

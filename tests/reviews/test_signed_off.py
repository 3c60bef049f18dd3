"""Sign-offs are `signed_off` events (docs/design.md section 11): internal unless the signer marks
them shareable; a buyer's bundle and page carry only the shareable ones."""

from __future__ import annotations

import json
from html import unescape

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tests.diligence.helpers import read_zip
from tests.reviews.helpers import fresh, repaired_incident
from trustdesk.diligence.actions import create_share_link
from trustdesk.incidents.exchange import validate_document
from trustdesk.incidents.models import Event
from trustdesk.reviews import actions

pytestmark = pytest.mark.django_db

SECRET = "Internal: legal has not seen the refund logs yet."
SHARED = "Risk accepts the plan; monthly audit of refunds."


def _sign(inc, by, **kw):
    return actions.sign_off_incident(
        inc, by=by, expected_version=fresh(inc).version, role="risk", **kw
    )


@pytest.fixture
def signed(people):
    inc = repaired_incident(by=people.op)
    _sign(inc, people.risk, comment=SECRET)
    _sign(inc, people.risk2, comment=SHARED, shareable=True)
    return fresh(inc)


def test_a_sign_off_is_a_signed_off_event_internal_unless_marked_shareable(signed):
    events = list(Event.objects.filter(incident=signed, type="signed_off").order_by("seq"))
    assert [e.data for e in events] == [
        {"role": "risk", "comment": SECRET, "internal": True},
        {"role": "risk", "comment": SHARED, "internal": False},
    ]
    assert not Event.objects.filter(incident=signed, type="note").exists()


def test_the_buyer_bundle_withholds_internal_sign_offs_and_keeps_shared_ones(signed, tmp_path):
    out = tmp_path / "buyer.zip"
    call_command("export_bundle", "--shareable", "--incident", signed.key, str(out))
    files = read_zip(out)
    blob = b"".join(files.values())
    assert SECRET.encode() not in blob
    assert SHARED.encode() in blob
    (incident,) = json.loads(files["manifest.json"])["incidents"]
    withheld = [e for e in incident["events"] if "withheld" in e]
    assert len(withheld) == 1
    internal = tmp_path / "internal.zip"
    call_command("export_bundle", "--incident", signed.key, str(internal))
    assert SECRET.encode() in b"".join(read_zip(internal).values())


def test_the_buyer_page_shows_shareable_notes_and_sign_offs_only(signed, people):
    from trustdesk.incidents.journal import append_event, locked_incident

    with locked_incident(signed) as inc:
        append_event(
            inc, type="note", by=people.op, data={"text": "Shared note.", "internal": False}
        )
        append_event(
            inc, type="note", by=people.op, data={"text": "Secret note.", "internal": True}
        )
    _link, token = create_share_link(by=people.im, label="Acme", agents=[signed.agent])
    html = unescape(Client().get(f"/d/{token}/").content.decode())
    assert f"Signed off as Risk: {SHARED}" in html
    assert "Shared note." in html
    assert SECRET not in html and "Secret note." not in html


def test_the_share_link_page_promises_only_what_is_true(client_for):
    html = unescape(client_for("incident_manager").get(reverse("share_link_new")).content.decode())
    assert "never shown" not in html
    assert "names of the people who recorded each step stay in the bundle" in html


def test_the_panel_form_offers_the_shareable_choice_and_records_it(people, client_for):
    inc = repaired_incident(by=people.op)
    c = client_for("risk")
    response = c.post(
        reverse("incident_review_signoff", args=[inc.key]),
        {
            "version": fresh(inc).version,
            "role": "risk",
            "comment": "OK to share.",
            "shareable": "on",
        },
    )
    assert response.status_code == 302
    event = Event.objects.get(incident=inc, type="signed_off")
    assert event.data == {"role": "risk", "comment": "OK to share.", "internal": False}


def _doc(events):
    return {
        "format": "trustdesk.incidents/v1",
        "agents": [{"key": "imp-bot", "name": "Imported bot"}],
        "incidents": [
            {
                "key": "INC-900",
                "agent": "imp-bot",
                "severity": "sev3",
                "title": "t",
                "events": events,
            }
        ],
    }


def test_the_exchange_format_takes_signed_off_and_old_note_sign_offs_stay_readable():
    detected = {"type": "detected", "at": "2026-11-02T10:00:00Z", "by": "ana"}
    signed = {
        "type": "signed_off",
        "at": "2026-11-02T11:00:00Z",
        "by": "rita",
        "data": {"role": "risk", "comment": "Fine.", "internal": True},
    }
    old = {
        "type": "note",
        "at": "2026-11-02T12:00:00Z",
        "by": "rita",
        "data": {"text": "Sign-off of the recovery plan by rita as Risk.", "internal": False},
    }
    problems, plan = validate_document(_doc([detected, signed, old]))
    assert problems == [] and plan is not None
    bad = dict(signed, data={"role": "ceo", "comment": 3})
    problems, _ = validate_document(_doc([detected, bad]))
    assert any(p.startswith("incidents[0].events[1].data.role:") for p in problems), problems
    assert any(p.startswith("incidents[0].events[1].data.comment:") for p in problems), problems
    assert any(p.startswith("incidents[0].events[1].data.internal:") for p in problems), problems

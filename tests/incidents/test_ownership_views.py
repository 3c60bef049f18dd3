"""The ownership panel and the filing page through plain POSTs (and htmx): the database is
checked after each POST, every refused role is refused, bad input is shown on the form."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import AgentFactory
from tests.incidents.backend_helpers import fresh, incident_in
from trustdesk.incidents import obligations
from trustdesk.incidents.models import ActionItem, Event, IncidentRole

pytestmark = pytest.mark.django_db
WHEN = "%Y-%m-%dT%H:%M"


@pytest.fixture
def inc():
    return incident_in("classified", agent=AgentFactory(key="triage-bot", high_risk_ai=True))


def url(incident, tail=""):
    return f"/incidents/{incident.key}/{tail}"


def types(incident) -> list[str]:
    return list(Event.objects.filter(incident=incident).values_list("type", flat=True))


def test_risk_assesses_and_the_page_shows_the_clock_and_the_filing_link(client_for, inc):
    risk = client_for("risk")
    aware = timezone.now() - timedelta(days=1)
    response = risk.post(
        url(inc, "assess/"),
        {"assess-serious": "on", "assess-aware_at": aware.strftime(WHEN), "assess-note": "x"},
    )
    assert response.status_code == 302
    event = Event.objects.get(incident=inc, type="assessed")
    assert event.data["serious"] is True and event.data["death"] is False
    body = risk.get(url(inc)).content.decode()
    assert "EU AI Act Article 73: serious incident report" in body
    assert "13 d 23 h left" in body or "14 d left" in body
    assert url(inc, "obligations/eu_ai_act_art73/report/") in body


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_incident_managers_and_risk_assess(client_for, inc, role):
    response = client_for(role).post(
        url(inc, "assess/"),
        {"assess-serious": "on", "assess-aware_at": timezone.now().strftime(WHEN)},
    )
    assert response.status_code == 403
    assert "assessed" not in types(inc)


def test_an_assessment_in_the_future_is_refused_on_the_form(client_for, inc):
    later = timezone.now() + timedelta(days=2)
    response = client_for("risk").post(
        url(inc, "assess/"),
        {"assess-serious": "on", "assess-aware_at": later.strftime(WHEN)},
    )
    assert response.status_code == 422  # a refused step (core.pages.run_step)
    assert "cannot be in the future" in response.content.decode()
    assert "assessed" not in types(inc)


def test_the_filing_page_drafts_the_report_and_records_its_hash(client_for, inc):
    obligations.assess_incident(
        inc, by=None, flags={"serious": True}, aware_at=timezone.now() - timedelta(hours=3)
    )
    manager = client_for("incident_manager")
    page = url(inc, "obligations/eu_ai_act_art73/report/")
    body = manager.get(page).content.decode()
    assert "# EU AI Act Article 73: serious incident report" in body
    assert inc.key in body and "(to complete)" in body
    as_json = manager.get(page, {"format": "json"})
    assert as_json["Content-Disposition"].endswith('.json"')
    assert b'"regime": "eu_ai_act_art73"' in as_json.content
    text = "The report we sent."
    response = manager.post(
        page,
        {
            "file-reference": "MSA-1",
            "file-filed_at": timezone.now().strftime(WHEN),
            "file-report": text,
        },
    )
    assert response.status_code == 302
    filed = Event.objects.get(incident=inc, type="report_filed")
    assert filed.data["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert filed.data["reference"] == "MSA-1"
    assert obligations.repair_blockers(fresh(inc)) == []


def test_a_viewer_reads_the_draft_but_cannot_file(client_for, inc):
    obligations.assess_incident(inc, by=None, flags={"serious": True}, aware_at=timezone.now())
    viewer = client_for("viewer")
    page = url(inc, "obligations/eu_ai_act_art73/report/")
    assert viewer.get(page).status_code == 200
    response = viewer.post(
        page, {"file-reference": "R", "file-filed_at": "2026-01-01T00:00", "file-report": "r"}
    )
    assert response.status_code == 403
    assert "report_filed" not in types(inc)


def test_a_report_not_owed_has_no_filing_page(client_for, inc):
    page = url(inc, "obligations/gdpr_art33/notify_authority/")
    assert client_for("risk").get(page).status_code == 404


def test_repair_form_offers_the_override_only_while_the_report_is_unfiled(client_for, inc):
    manager = client_for("incident_manager")
    assert "repair-override" not in manager.get(url(inc)).content.decode()
    obligations.assess_incident(inc, by=None, flags={"serious": True}, aware_at=timezone.now())
    assert "repair-override" in manager.get(url(inc)).content.decode()
    refused = manager.post(
        url(inc, "repair/"),
        {"repair-version": fresh(inc).version, "repair-summary": "s", "repair-reference": "r"},
    )
    assert refused.status_code == 422  # a refused step (core.pages.run_step)
    assert "Article 73(6)" in refused.content.decode()
    assert fresh(inc).state == "classified"
    done = manager.post(
        url(inc, "repair/"),
        {
            "repair-version": fresh(inc).version,
            "repair-summary": "s",
            "repair-reference": "r",
            "repair-override": "on",
            "repair-justification": "Patients at risk while we wait.",
        },
    )
    assert done.status_code == 302
    assert fresh(inc).state == "repaired"


def test_assign_a_lead_with_htmx_and_replace_them(client_for, make_user, inc):
    operator = client_for("operator")
    ana, bo = make_user("operator", username="ana"), make_user("risk", username="bo")
    response = operator.post(
        url(inc, "assign/"),
        {"assign-role": "lead", "assign-user": ana.pk},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and response["HX-Trigger"] == "incidentChanged"
    operator.post(url(inc, "assign/"), {"assign-role": "lead", "assign-user": bo.pk})
    current = IncidentRole.objects.current().get(incident=inc, role="lead")
    assert current.user == bo
    assert IncidentRole.objects.filter(incident=inc, role="lead").count() == 2  # kept, ended
    assert (
        client_for("viewer")
        .post(url(inc, "assign/"), {"assign-role": "lead", "assign-user": ana.pk})
        .status_code
        == 403
    )


def test_the_remove_button_ends_a_role_and_a_stale_one_says_why(client_for, make_user, inc):
    operator = client_for("operator")
    ana = make_user("operator", username="ana")
    operator.post(url(inc, "assign/"), {"assign-role": "responder", "assign-user": ana.pk})
    page = operator.get(url(inc)).content.decode()
    assert 'aria-label="Remove ana as responder"' in page
    remove = {"unassign-role": "responder", "unassign-user": ana.pk}
    response = operator.post(url(inc, "unassign/"), remove, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Trigger"] == "incidentChanged"
    assert not IncidentRole.objects.current().filter(incident=inc, user=ana).exists()
    assert types(inc)[-1] == "unassigned"
    # The same button from a page that had not refreshed: refused, said, nothing recorded.
    stale = operator.post(url(inc, "unassign/"), remove)
    assert stale.status_code == 422
    assert "ana is not responder of" in stale.content.decode()
    assert types(inc).count("unassigned") == 1
    junk = operator.post(url(inc, "unassign/"), {"unassign-role": "lead", "unassign-user": "x"})
    assert junk.status_code == 422 and "reload the page" in junk.content.decode()
    viewer = client_for("viewer")
    assert "Remove ana" not in viewer.get(url(inc)).content.decode()
    assert viewer.post(url(inc, "unassign/"), remove).status_code == 403


def test_action_item_added_then_done_and_wont_do_needs_a_reason(client_for, make_user, inc):
    operator = client_for("operator")
    owner = make_user("operator", username="cy")
    response = operator.post(
        url(inc, "actions/"),
        {
            "action-title": "Add a spend cap",
            "action-owner": owner.pk,
            "action-due": "2026-12-01",
            "action-ticket": "https://tickets.example/T-1",
            "action-required": "on",
        },
    )
    assert response.status_code == 302
    item = ActionItem.objects.get(incident=inc)
    assert (item.number, item.owner, item.required, item.status) == (1, owner, True, "open")
    refused = operator.post(url(inc, "actions/1/"), {"action-1-status": "wont_do"})
    assert "needs a reason" in refused.content.decode()
    operator.post(url(inc, "actions/1/"), {"action-1-status": "done"})
    assert ActionItem.objects.get(pk=item.pk).status == "done"
    assert types(inc)[-2:] == ["action_added", "action_updated"]
    assert client_for("viewer").post(url(inc, "actions/"), {"action-title": "x"}).status_code == 403


def test_close_as_duplicate_by_an_incident_manager(client_for, inc):
    other = incident_in("detected")
    manager = client_for("incident_manager")
    response = manager.post(
        url(inc, "close-not-incident/"),
        {
            "close-version": fresh(inc).version,
            "close-reason": "duplicate",
            "close-duplicate_of": other.key,
            "close-explanation": "Same alert twice.",
        },
    )
    assert response.status_code == 302
    assert fresh(inc).state == "closed_not_incident"
    page = manager.get(url(inc)).content.decode()
    assert "Not an incident" in page and other.key in page
    assert client_for("operator").post(url(other, "close-not-incident/"), {}).status_code == 403


def test_a_duplicate_key_is_read_in_capitals_and_an_unknown_one_is_refused_on_the_field(
    client_for, inc
):
    other = incident_in("detected")
    manager = client_for("incident_manager")
    form = {
        "close-version": fresh(inc).version,
        "close-reason": "duplicate",
        "close-explanation": "Same alert twice.",
    }
    refused = manager.post(url(inc, "close-not-incident/"), {**form, "close-duplicate_of": "INC-0"})
    assert refused.status_code == 422
    assert "There is no incident INC-0." in refused.content.decode()
    assert fresh(inc).state == "classified"
    done = manager.post(
        url(inc, "close-not-incident/"), {**form, "close-duplicate_of": f" {other.key.lower()} "}
    )
    assert done.status_code == 302
    assert fresh(inc).state == "closed_not_incident"
    closed = Event.objects.get(incident=inc, type="closed_not_incident")
    assert closed.data["duplicate_of"] == other.key

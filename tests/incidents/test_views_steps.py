"""Each lifecycle step through the incident page: plain POST/redirect/GET and htmx, with the
database checked after every POST; gate errors and stale versions shown on the form."""

from __future__ import annotations

import pytest

from tests.builders import contain
from tests.factories import DEFAULT_CLAUSE, make_incident, make_pact_version, upload
from tests.incidents.ui_helpers import fresh, post_step, snapshot
from trustdesk.incidents import lifecycle
from trustdesk.incidents.models import Event, Evidence
from trustdesk.pacts.models import Dispute

pytestmark = pytest.mark.django_db

KINDS = ["transcript", "tool_calls", "evaluation_result", "impact_assessment"]


@pytest.fixture
def operator(client_for):
    return client_for("operator")


def events_of(incident) -> list[str]:
    return list(
        Event.objects.filter(incident=incident).order_by("seq").values_list("type", flat=True)
    )


def assert_step_response(response, incident, htmx: bool):
    """Plain POST: redirect to the page (PRG). htmx: the page's main region, and the trigger."""
    if htmx:
        assert response.status_code == 200
        body = response.content.decode()
        assert "<html" not in body and 'id="incident-state"' in body
        assert response["HX-Trigger"] == "incidentChanged"
    else:
        assert response.status_code == 302
        assert response["Location"] == f"/incidents/{incident.key}/"


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_walk_an_incident_from_detected_to_repaired_through_the_page(operator, media, htmx):
    incident = make_incident()
    agent = incident.agent
    user = operator.user

    response = post_step(
        operator,
        incident,
        "contain",
        {"action": "suspend", "scope_after": "suspended", "reason": "Refunds paused"},
        htmx=htmx,
    )
    assert_step_response(response, incident, htmx)
    inc = fresh(incident)
    assert (inc.state, inc.scope_after, inc.agent.scope) == ("contained", "suspended", "suspended")
    agent.refresh_from_db()
    assert agent.scope_incident_id == inc.pk
    last = inc.events.order_by("-seq").first()
    assert (last.type, last.actor_name) == ("contained", user.username)
    assert last.data == {
        "action": "suspend",
        "scope_after": "suspended",
        "reason": "Refunds paused",
    }

    for kind in KINDS:
        response = post_step(
            operator,
            incident,
            "evidence",
            {
                "kind": kind,
                "description": f"The {kind} of the refund",
                "upload": upload(f"{kind} bytes".encode(), name=f"{kind}.txt"),
            },
            htmx=htmx,
        )
        assert_step_response(response, incident, htmx)
    stored = list(Evidence.objects.filter(incident=incident).order_by("pk"))
    assert [e.kind for e in stored] == KINDS
    assert all(e.captured_by == user and e.size > 0 for e in stored)
    assert fresh(incident).state == "contained"

    response = post_step(operator, incident, "preserve", {}, htmx=htmx)
    assert_step_response(response, incident, htmx)
    inc = fresh(incident)
    assert inc.state == "evidence_preserved"
    assert inc.evidence_completeness == 1

    clause = incident.pact_version.clauses.get()
    response = post_step(
        operator,
        incident,
        "classify",
        {
            "assumption": "authority",
            "statement": "Refunds above 200 EUR went out without approval.",
            "clauses": [clause.key],
            "confidence": "known",
            "harm_category": "property_or_environment",
            "secondary": ["tool_use"],
        },
        htmx=htmx,
    )
    assert_step_response(response, incident, htmx)
    inc = fresh(incident)
    assert (inc.state, inc.assumption, inc.confidence) == ("classified", "authority", "known")
    assert inc.secondary_assumptions == ["tool_use"]
    assert list(inc.clauses.all()) == [clause]

    response = post_step(
        operator,
        incident,
        "repair",
        {"summary": "Approval check enforced server-side.", "reference": "PR-101"},
        htmx=htmx,
    )
    assert_step_response(response, incident, htmx)
    assert fresh(incident).state == "repaired"
    assert events_of(incident) == [
        "detected",
        "contained",
        *["evidence_added"] * 4,
        "evidence_preserved",
        "classified",
        "repaired",
    ]
    page = operator.get(f"/incidents/{incident.key}/").content.decode()
    assert 'data-state="repaired"' in page
    assert "Chain verified · 9 events" in page


def test_htmx_step_shows_the_success_message_in_the_swapped_region(operator):
    incident = make_incident()
    response = post_step(
        operator,
        incident,
        "contain",
        {"action": "restrict", "scope_after": "restricted"},
        htmx=True,
    )
    assert "Containment recorded." in response.content.decode()
    # ...and it was consumed: the next full page does not repeat it.
    assert (
        "Containment recorded." not in operator.get(f"/incidents/{incident.key}/").content.decode()
    )


def test_plain_step_message_shows_after_the_redirect(operator):
    incident = make_incident()
    response = post_step(
        operator, incident, "contain", {"action": "restrict", "scope_after": "restricted"}
    )
    page = operator.get(response["Location"]).content.decode()
    assert "Containment recorded." in page


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_a_gate_error_is_shown_on_the_form_and_changes_nothing(operator, htmx):
    incident = make_incident()
    before = snapshot(incident)
    # "restrict" cannot leave the agent suspended: the lifecycle refuses it in plain words.
    response = post_step(
        operator,
        incident,
        "contain",
        {"action": "restrict", "scope_after": "suspended", "reason": "keep me"},
        htmx=htmx,
    )
    assert response.status_code == (200 if htmx else 422)  # htmx swaps only 2xx answers
    body = response.content.decode()
    assert "Not saved." in body
    assert "The action &#x27;restrict&#x27; leaves the agent restricted, not suspended." in body
    assert "keep me" in body  # the user's input is kept
    assert snapshot(incident) == before
    assert ("<html" in body) is not htmx


def test_preserving_with_missing_kinds_names_each_missing_kind(operator):
    incident = make_incident()
    lifecycle.contain_incident(
        incident, by=None, expected_version=1, action="suspend", scope_after="suspended"
    )
    before = snapshot(incident)
    body = post_step(operator, incident, "preserve", {}).content.decode()
    for kind in KINDS:
        assert f"Evidence of kind &#x27;{kind}&#x27; is required by" in body
    assert snapshot(incident) == before


def test_preserving_with_acknowledged_gaps_records_them(operator):
    incident = make_incident()
    lifecycle.contain_incident(
        incident, by=None, expected_version=1, action="suspend", scope_after="suspended"
    )
    inc = fresh(incident)
    lifecycle.add_evidence(
        inc, by=None, expected_version=inc.version, kind="transcript", description="t", text="t"
    )
    response = post_step(
        operator,
        incident,
        "preserve",
        {
            "acknowledged_gaps": ["tool_calls", "evaluation_result", "impact_assessment"],
            "reason": "The tool log rotated before we got to it.",
        },
    )
    assert response.status_code == 302
    inc = fresh(incident)
    assert inc.state == "evidence_preserved"
    assert str(inc.evidence_completeness) == "0.2500"
    last = inc.events.order_by("-seq").first()
    assert last.data["acknowledged_gaps"] == [
        "tool_calls",
        "evaluation_result",
        "impact_assessment",
    ]


def test_a_stale_version_says_what_changed_and_keeps_the_input(operator, client_for):
    incident = make_incident()
    seen = fresh(incident).version
    # Someone else contains it while the first user is typing.
    contain(incident, by=client_for("incident_manager").user)
    before = snapshot(incident)
    response = post_step(
        operator,
        incident,
        "contain",
        {"action": "restrict", "scope_after": "restricted", "reason": "my careful reasoning"},
        version=seen,
    )
    assert response.status_code == 409
    body = response.content.decode()
    assert (
        f"{incident.key} changed while you were working on it (contained) — review and resubmit"
        in body
    )
    assert "my careful reasoning" in body
    assert "Your submission (not saved)" in body  # its step is no longer the current one
    assert snapshot(incident) == before


def test_a_conflict_on_the_current_step_rebases_the_form_so_a_resubmit_works(operator):
    incident = make_incident()
    lifecycle.contain_incident(
        incident, by=None, expected_version=1, action="suspend", scope_after="suspended"
    )
    seen = fresh(incident).version
    lifecycle.add_note(fresh(incident), by=None, text="someone else's note")
    data = {"kind": "transcript", "description": "Chat log of the refund", "text": "the chat"}
    response = post_step(operator, incident, "evidence", data, version=seen)
    body = response.content.decode()
    assert f"{incident.key} changed while you were working on it (note)" in body
    assert "Chat log of the refund" in body
    assert f'name="evidence-version" value="{seen + 1}"' in body
    assert not Evidence.objects.filter(incident=incident).exists()
    # The re-rendered form carries the current version: submitting it again succeeds.
    assert post_step(operator, incident, "evidence", data, version=seen + 1).status_code == 302
    assert Evidence.objects.filter(incident=incident).count() == 1


def test_a_stale_htmx_submission_is_answered_with_the_region_not_an_error(operator):
    incident = make_incident()
    lifecycle.add_note(fresh(incident), by=None, text="meanwhile")
    response = post_step(
        operator,
        incident,
        "contain",
        {"action": "restrict", "scope_after": "restricted"},
        version=1,
        htmx=True,
    )
    assert response.status_code == 200
    assert "changed while you were working on it (note)" in response.content.decode()
    assert "HX-Trigger" not in response
    assert fresh(incident).state == "detected"


def test_one_click_containment_applies_the_pacts_proposal(operator):
    incident = make_incident()  # the default clause prescribes "suspend" on breach
    page = operator.get(f"/incidents/{incident.key}/").content.decode()
    assert "Containment the pact prescribes" in page and "Apply containment" in page
    response = post_step(operator, incident, "apply", {})
    assert response.status_code == 302
    inc = fresh(incident)
    assert (inc.state, inc.agent.scope) == ("contained", "suspended")
    last = inc.events.order_by("-seq").first()
    assert last.data["action"] == "suspend"
    assert "prescribes" in last.data["reason"]


def test_no_proposal_without_a_restricting_clause(operator):
    flag = {**DEFAULT_CLAUSE, "key": "tone", "statement": "Stays polite.", "on_breach": "flag"}
    flag |= {"assumption": "safety", "metric": "rude"}
    incident = make_incident(version=make_pact_version(clauses=[flag]))
    assert "Apply containment" not in operator.get(f"/incidents/{incident.key}/").content.decode()
    before = snapshot(incident)
    body = post_step(operator, incident, "apply", {}).content.decode()
    assert "There is no proposed containment for this incident." in body
    assert snapshot(incident) == before


def test_notes_internal_and_shareable(operator):
    incident = make_incident()
    post_step(operator, incident, "note", {"text": "Internal detail", "visibility": "internal"})
    response = post_step(
        operator, incident, "note", {"text": "For the buyer", "visibility": "shareable"}, htmx=True
    )
    assert response["HX-Trigger"] == "incidentChanged"
    notes = [e.data for e in fresh(incident).events.filter(type="note").order_by("seq")]
    assert notes == [
        {"text": "Internal detail", "internal": True},
        {"text": "For the buyer", "internal": False},
    ]
    page = operator.get(f"/incidents/{incident.key}/").content.decode()
    assert "badge-shareable" in page and "badge-internal" in page


def test_dispute_opened_by_an_operator_and_resolved_by_risk(operator, client_for, media):
    from tests.incidents.backend_helpers import advance

    incident = advance(make_incident(), "classified")
    response = post_step(
        operator, incident, "dispute", {"reason": "It was tool use, not authority."}
    )
    assert response.status_code == 302
    dispute = Dispute.objects.get(incident=incident)
    assert (dispute.status, dispute.opened_by) == ("open", operator.user)
    risk = client_for("risk")
    page = risk.get(f"/incidents/{incident.key}/").content.decode()
    assert "Resolve dispute" in page
    response = risk.post(
        f"/incidents/{incident.key}/disputes/{dispute.pk}/resolve/",
        {f"resolve-{dispute.pk}-status": "rejected", f"resolve-{dispute.pk}-resolution": "Stands."},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and response["HX-Trigger"] == "incidentChanged"
    dispute.refresh_from_db()
    assert (dispute.status, dispute.resolution, dispute.resolved_by) == (
        "rejected",
        "Stands.",
        risk.user,
    )
    assert events_of(incident)[-2:] == ["dispute_opened", "dispute_resolved"]


def test_a_second_open_dispute_is_refused_with_the_reason(operator, media):
    from tests.incidents.backend_helpers import advance

    incident = advance(make_incident(), "classified")
    post_step(operator, incident, "dispute", {"reason": "first"})
    before = snapshot(incident)
    body = post_step(operator, incident, "dispute", {"reason": "second"}).content.decode()
    assert "is already disputed" in body
    assert snapshot(incident) == before


def test_resolving_an_already_resolved_dispute_is_refused(operator, client_for, media):
    from tests.incidents.backend_helpers import advance

    incident = advance(make_incident(), "classified")
    post_step(operator, incident, "dispute", {"reason": "first"})
    dispute = Dispute.objects.get(incident=incident)
    risk = client_for("risk")
    url = f"/incidents/{incident.key}/disputes/{dispute.pk}/resolve/"
    data = {f"resolve-{dispute.pk}-status": "upheld", f"resolve-{dispute.pk}-resolution": "Yes."}
    assert risk.post(url, data).status_code == 302
    before = snapshot(incident)
    response = risk.post(url, data)
    assert response.status_code == 422
    assert snapshot(incident) == before


def test_too_large_empty_and_duplicate_uploads_are_refused_on_the_form(operator, media, settings):
    settings.EVIDENCE_MAX_BYTES = 64
    incident = make_incident()
    before = snapshot(incident)
    too_big = {"kind": "transcript", "description": "Big", "upload": upload(b"x" * 65, "big.log")}
    body = post_step(operator, incident, "evidence", too_big).content.decode()
    assert "big.log is 65 bytes; evidence files may be at most 64 bytes." in body
    empty = {"kind": "transcript", "description": "Empty", "upload": upload(b"", "empty.log")}
    body = post_step(operator, incident, "evidence", empty).content.decode()
    assert "The submitted file is empty." in body
    assert snapshot(incident) == before
    assert [p for p in media.rglob("*") if p.is_file()] == []  # nothing kept on disk
    ok = {"kind": "transcript", "description": "Chat", "upload": upload(b"same bytes", "a.log")}
    assert post_step(operator, incident, "evidence", ok).status_code == 302
    again = {"kind": "alert", "description": "Again", "upload": upload(b"same bytes", "b.log")}
    body = post_step(operator, incident, "evidence", again).content.decode()
    assert "This content is already attached to" in body
    assert Evidence.objects.filter(incident=incident).count() == 1


def test_two_sources_of_content_are_refused(operator, media):
    incident = make_incident()
    data = {
        "kind": "alert",
        "description": "Both",
        "text": "pasted",
        "url": "https://alerts.example/1",
    }
    body = post_step(operator, incident, "evidence", data).content.decode()
    assert "Give exactly one of a file, a text or a URL" in body
    assert not Evidence.objects.exists()

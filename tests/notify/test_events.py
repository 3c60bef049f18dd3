"""The domain actions announce section 12's events after commit, with keys and page paths only."""

from __future__ import annotations

from datetime import date

from tests.builders import decide
from tests.factories import make_pact_version
from tests.reviews.helpers import fresh, in_review_incident
from trustdesk.notify.events import EVENT_TYPES
from trustdesk.notify.models import Publication


def announced(type_: str) -> list[dict]:
    return [p.data for p in Publication.objects.filter(type=type_).order_by("pk")]


def test_review_decision_and_attestation_are_announced(
    make_user, django_capture_on_commit_callbacks
):
    manager = make_user("incident_manager")
    risk = make_user("risk")
    with django_capture_on_commit_callbacks(execute=True):
        incident = in_review_incident(by=manager)
    [requested] = announced("review.requested")
    assert requested == {
        "incident": incident.key,
        "agent": incident.agent.key,
        "url": f"/incidents/{incident.key}/",
    }
    assert announced("incident.state_changed")[-1]["state"] == "in_review"
    with django_capture_on_commit_callbacks(execute=True):
        decide(
            incident, "reopen_full", by=risk, rationale="SECRET RATIONALE that stays on the page"
        )
    [decided] = announced("decision.recorded")
    assert decided == {
        "incident": incident.key,
        "agent": incident.agent.key,
        "url": f"/incidents/{incident.key}/",
        "decision": "reopen_full",
        "scope_after": "full",
        "override": False,
    }
    [needed] = announced("attestation.needed")
    assert needed["decision"] == "reopen_full" and needed["incident"] == incident.key
    assert announced("incident.state_changed")[-1] == {
        "incident": incident.key,
        "agent": incident.agent.key,
        "url": f"/incidents/{incident.key}/",
        "previous_state": "in_review",
        "state": "recovered",
    }
    publication = Publication.objects.get(type="decision.recorded")
    assert publication.severity == incident.severity
    # Nothing written by people travels: no rationale, no statements, no evidence.
    bodies = "".join(Publication.objects.values_list("body", flat=True))
    assert "SECRET RATIONALE" not in bodies and "content for" not in bodies
    assert "Refunds above the limit" not in bodies


def test_a_pact_past_its_review_date_is_announced_once(django_capture_on_commit_callbacks):
    from trustdesk.pacts.actions import mark_stale_versions
    from trustdesk.pacts.models import PactVersion

    version = make_pact_version(last_reviewed=date(2024, 1, 1))
    PactVersion.objects.filter(pk=version.pk).update(stale_since=None)
    with django_capture_on_commit_callbacks(execute=True):
        mark_stale_versions()
        mark_stale_versions()  # already stale: not announced again
    assert announced("pact.stale") == [
        {
            "pact": version.pact.key,
            "version": version.number,
            "agent": version.pact.agent.key,
            "review_due": version.review_due.isoformat(),
            "url": f"/pacts/{version.pact.key}/v{version.number}/",
        }
    ]


def test_a_buyer_opening_a_share_link_is_announced_to_its_creator(
    client, make_user, django_capture_on_commit_callbacks
):
    from django.core import mail

    from trustdesk.diligence.actions import create_share_link

    manager = make_user("incident_manager")
    manager.email = "im@example.org"
    manager.save()
    version = make_pact_version()
    link, token = create_share_link(by=manager, label="Acme diligence", agents=[version.pact.agent])
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(f"/d/{token}/").status_code == 200
    [viewed] = announced("sharelink.viewed")
    assert viewed == {
        "share_link": link.pk,
        "label": "Acme diligence",
        "what": viewed["what"],
        "url": f"/diligence/links/{link.pk}/",
    }
    assert token not in Publication.objects.get().body
    [email] = mail.outbox
    assert email.to == ["im@example.org"] and "sharelink.viewed" in email.subject


def test_every_event_type_of_the_design_is_known():
    assert set(EVENT_TYPES) == {
        "incident.opened",
        "incident.state_changed",
        "agent.scope_changed",
        "review.requested",
        "decision.recorded",
        "attestation.needed",
        "pact.stale",
        "obligation.due_soon",
        "obligation.overdue",
        "sharelink.viewed",
    }


def test_closing_what_was_not_an_incident_is_a_state_change(
    make_user, django_capture_on_commit_callbacks
):
    from tests.factories import make_incident
    from trustdesk.incidents.ownership import close_not_incident

    manager = make_user("incident_manager")
    incident = make_incident(by=manager)
    with django_capture_on_commit_callbacks(execute=True):
        close_not_incident(
            incident,
            by=manager,
            expected_version=incident.version,
            reason="false_positive",
            explanation="The evaluation read the wrong column.",
        )
    [change] = announced("incident.state_changed")
    assert (change["previous_state"], change["state"]) == ("detected", "closed_not_incident")
    assert "wrong column" not in Publication.objects.get(type="incident.state_changed").body


def test_attestation_is_asked_of_the_people_on_the_incident_but_not_the_decider(
    make_user, django_capture_on_commit_callbacks
):
    from django.core import mail

    from trustdesk.incidents.ownership import assign_role

    manager = make_user("incident_manager")
    risk = make_user("risk", username="rita")
    responder = make_user("operator", username="omar")
    watcher = make_user("viewer", username="vera")  # viewers do not attest
    for user in (risk, responder, watcher):
        user.email = f"{user.username}@example.org"
        user.save()
    incident = in_review_incident(by=manager)
    for user, role in ((risk, "responder"), (responder, "responder"), (watcher, "responder")):
        assign_role(fresh(incident), by=manager, role=role, user=user)
    with django_capture_on_commit_callbacks(execute=True):
        decide(incident, "keep_restricted", by=risk, rationale="Not yet.")
    asked = [m.to for m in mail.outbox if "attestation.needed" in m.subject]
    assert asked == [["omar@example.org"]]

"""What a decision did to the agent's scope, said exactly on the page and counted the same way by
the metrics (docs/design.md section 6: reopened means the agent's scope restored)."""

from __future__ import annotations

import re

from django.urls import reverse

from tests.factories import make_incident, make_pact_version
from tests.reviews.helpers import advance, fresh, in_review_incident, ready_for_review
from trustdesk.incidents import lifecycle
from trustdesk.metrics.compute import compute_metrics
from trustdesk.pacts.models import Agent
from trustdesk.reviews import actions


def decide(incident, by, decision):
    inc = fresh(incident)
    return actions.record_recovery_decision(
        inc, by=by, expected_version=inc.version, decision=decision, rationale="Reviewed."
    )


def page_text(client, incident) -> str:
    response = client.get(reverse("incident_detail", args=[incident.key]))
    assert response.status_code == 200
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def state_badge(client, incident) -> str:
    html = client.get(reverse("incident_detail", args=[incident.key])).content.decode()
    return re.search(r'id="incident-state"[^>]*>([^<]*)<', html).group(1)


def test_a_partial_reopening_held_by_another_incident_says_so_and_is_not_counted(
    people, client_for
):
    first = in_review_incident(by=people.op)  # suspended the agent
    holder = in_review_incident(by=people.op, version=first.pact_version)  # suspended too
    agent = first.agent
    before = page_text(client_for("risk"), first)
    assert f"Other incidents hold {agent.key}: {holder.key} (suspended)." in before
    decide(first, people.risk, "reopen_partial")
    viewer = client_for("viewer")
    text = page_text(viewer, first)
    assert (
        f"Scope after this decision: restricted; the agent stays suspended because {holder.key} "
        "holds it"
    ) in text
    assert state_badge(viewer, first) == "Reopening held"
    assert Agent.objects.get(pk=agent.pk).scope == "suspended"
    metrics = compute_metrics(agent=agent)
    assert metrics["time_to_recovery"]["count"] == 0
    assert metrics["evidence_completeness_at_reopen"]["count"] == 0
    # The holder's own reopening lifts the hold: both are recovered, both are counted.
    decide(holder, people.risk, "reopen_full")
    assert Agent.objects.get(pk=agent.pk).scope == "restricted"
    assert state_badge(viewer, first) == "Recovered"
    assert fresh(first).reopened_at is not None
    assert compute_metrics(agent=agent)["time_to_recovery"]["count"] == 2
    assert "Scope after this decision: full; the agent stays restricted because" in page_text(
        viewer, holder
    )


def contain(incident, by, action, scope):
    inc = fresh(incident)
    lifecycle.contain_incident(
        inc, by=by, expected_version=inc.version, action=action, scope_after=scope
    )
    return fresh(inc)


def test_keep_restricted_shows_what_it_decided_not_another_incidents_suspension(people, client_for):
    version = make_pact_version()
    restricting = contain(make_incident(version=version), people.op, "restrict", "restricted")
    suspending = contain(make_incident(version=version), people.op, "suspend", "suspended")
    inc = ready_for_review(advance(restricting, "repaired", by=people.op), by=people.op)
    actions.request_review(inc, by=people.op, expected_version=inc.version)
    record = decide(inc, people.risk, "keep_restricted")
    assert (record.scope_after, record.agent_scope_after) == ("restricted", "suspended")
    assert record.agent_held_by == suspending
    text = page_text(client_for("viewer"), inc)
    assert "Decided scope: Restricted" in text
    assert "Decided scope: Suspended" not in text and "Scope after: Suspended" not in text
    assert (
        "Scope after this decision: restricted; the agent stays suspended because "
        f"{suspending.key} holds it"
    ) in text
    assert state_badge(client_for("viewer"), inc) == "Closed, restricted"

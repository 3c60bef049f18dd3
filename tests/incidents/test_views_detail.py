"""The incident page: header, step rail, timeline and chain badge, evidence, notes, disputes,
the evidence download, and a fixed query budget whatever the number of events."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.builders import contain, incident_in
from tests.factories import make_incident, make_pact_version, upload
from tests.incidents.ui_helpers import (
    ALL_ROLES,
    bulk_incidents,
    fresh,
    post_step,
)
from trustdesk.incidents import lifecycle
from trustdesk.incidents.models import Evidence

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert('x')</script>"


def page(client, incident, **headers) -> str:
    response = client.get(f"/incidents/{incident.key}/", headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def rail_by_step(body: str) -> dict[str, str]:
    return {
        step: status
        for status, step in re.findall(
            r'<li class="(done|current|blocked)"[^>]*data-step="(\w+)"', body
        )
    }


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_internal_role_reads_the_page(client_for, role):
    incident = make_incident()
    body = page(client_for(role), incident)
    assert f"{incident.key}</span> Refund over limit" in body
    assert 'data-state="detected"' in body


def test_readers_see_the_step_but_no_forms(client_for):
    incident = make_incident()
    for role in ("viewer", "risk"):
        body = page(client_for(role), incident)
        assert "Record containment" not in body and "Apply containment" not in body
        assert "Add note" not in body and "Add or correct evidence" not in body
        assert "Operators and incident managers carry out this step" in body
    body = page(client_for("operator"), incident)
    assert "Record containment" in body and "Add note" in body


def test_header_shows_the_state_and_the_agents_current_scope(client_for):
    incident = make_incident()
    client = client_for("operator")
    body = page(client, incident)
    assert re.search(r'id="agent-scope">Full<', body)
    contain(incident, action="restrict", scope_after="restricted", reason="refunds need approval")
    body = page(client, incident)
    assert 'data-state="contained"' in body
    assert re.search(r'id="agent-scope">Restricted<', body)
    assert "Restrict to contain" in body and "refunds need approval" in body


def test_the_rail_marks_done_current_and_blocked_with_what_each_needs(client_for):
    incident = make_incident()
    client = client_for("operator")
    assert rail_by_step(page(client, incident)) == {
        "contain": "current",
        "preserve_evidence": "blocked",
        "classify": "blocked",
        "repair": "blocked",
        "request_review": "blocked",
        "decide": "blocked",
    }
    lifecycle.contain_incident(
        incident, by=None, expected_version=1, action="suspend", scope_after="suspended"
    )
    body = page(client, incident)
    steps = rail_by_step(body)
    assert (steps["contain"], steps["preserve_evidence"], steps["classify"]) == (
        "done",
        "current",
        "blocked",
    )
    # What the current step needs, and what is missing, in plain words.
    assert "Every evidence kind the pact requires is attached" in body
    assert "Missing for" in body and "transcript, tool_calls" in body
    assert "Step 2 of 6" in body


def test_the_timeline_shows_each_event_with_a_short_hash_and_a_verified_chain(client_for):
    incident = make_incident()
    lifecycle.contain_incident(
        incident, by=None, expected_version=1, action="suspend", scope_after="suspended"
    )
    lifecycle.add_note(fresh(incident), by=None, text="Customer informed.", internal=False)
    body = page(client_for("viewer"), incident)
    events = list(fresh(incident).events.order_by("seq"))
    for event in events:
        assert f'id="event-{event.seq}"' in body
        assert f">{event.hash[:12]}</span>" in body
        assert f'<code class="ev-type">{event.type}</code>' in body
    assert "Suspend; the agent&#x27;s scope is now suspended." in body
    assert "Customer informed." in body
    assert "Chain verified · 3 events" in body
    assert "Chain broken" not in body


def test_a_broken_chain_is_flagged_at_its_first_bad_event(client_for):
    (incident,) = bulk_incidents(1, events_each=8, tamper_seq=5)
    body = page(client_for("viewer"), incident)
    assert "Chain broken at event 5" in body
    assert "Chain verified" not in body
    assert "fields do not match the stored canonical bytes" in body


def test_evidence_table_shows_kind_size_hash_capture_and_supersession(client_for, media):
    client = client_for("operator")
    incident = make_incident()
    post_step(
        client,
        incident,
        "evidence",
        {"kind": "transcript", "description": "Chat", "upload": upload(b"x" * 2048, "chat.log")},
    )
    old = Evidence.objects.get()
    post_step(
        client,
        incident,
        "evidence",
        {
            "kind": "transcript",
            "description": "Chat, full export",
            "upload": upload(b"y" * 3000, "chat-full.log"),
            "supersedes": old.pk,
        },
    )
    new = Evidence.objects.exclude(pk=old.pk).get()
    assert new.supersedes == old
    body = page(client, incident)
    assert "2.0\xa0KB" in body and "2.9\xa0KB" in body
    assert f">{old.sha256[:12]}</span>" in body and f">{new.sha256[:12]}</span>" in body
    assert re.search(rf'<tr id="evidence-{old.pk}" class="superseded">', body)
    assert "badge-superseded" in body and "badge-correction" in body
    assert f"/incidents/{incident.key}/evidence/{old.pk}/download/" in body
    assert client.user.username in body
    # A superseded item can no longer be corrected again: only current items are offered.
    options = re.findall(
        r'<option value="(\d+)"', body.split('name="evidence-supersedes"')[1].split("</select>")[0]
    )
    assert options == [str(new.pk)]


def test_notes_and_disputes_sections(client_for, media):
    from tests.incidents.backend_helpers import advance

    incident = advance(make_incident(), "classified")
    lifecycle.add_note(fresh(incident), by=None, text="internal one")
    client = client_for("risk")
    body = page(client, incident)
    assert "internal one" in body
    assert "Dispute the classification" in body  # risk may open one
    assert "Add note" not in body  # ...but does not write notes
    viewer_body = page(client_for("viewer"), incident)
    assert "Dispute the classification" not in viewer_body


def test_user_text_is_escaped_everywhere(client_for, media):
    client = client_for("operator")
    incident = make_incident(title=SCRIPT)
    lifecycle.add_note(fresh(incident), by=None, text=SCRIPT)
    post_step(client, incident, "evidence", {"kind": "alert", "description": SCRIPT, "text": "t"})
    body = page(client, incident)
    assert SCRIPT not in body
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in body
    assert 'style="' not in body  # CSP: no inline styles


def test_a_recurrence_is_flagged(client_for):
    version = make_pact_version()
    earlier = incident_in("recovered", version=version, detected_at=timezone.now() - timedelta(3))
    later = incident_in("classified", version=version, detected_at=timezone.now() - timedelta(1))
    assert later.recurrence_of == earlier  # classifying it found the reopened one
    body = page(client_for("viewer"), later)
    assert "Recurrence." in body and f"/incidents/{earlier.key}/" in body
    assert "the same structural weakness survived" in body


def test_htmx_get_returns_the_main_region(client_for):
    incident = make_incident()
    response = client_for("viewer").get(
        f"/incidents/{incident.key}/", headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert "<html" not in body and 'id="incident-state"' in body
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize("key", ["INC-999999", "nope", "INC-1' OR 1=1", "x" * 300])
def test_unknown_keys_are_404(client_for, key):
    make_incident()
    assert client_for("viewer").get(f"/incidents/{key}/").status_code == 404


def test_a_nul_in_the_key_is_a_clear_400(client_for):
    make_incident()
    response = client_for("viewer").get("/incidents/%00/")
    assert response.status_code == 400
    assert b"never valid here (NUL)" in response.content


# ---------------------------------------------------------------- evidence download


def test_evidence_named_like_html_is_downloaded_never_rendered(client_for, media):
    client = client_for("operator")
    incident = make_incident()
    content = b"<html><script>alert(document.cookie)</script></html>"
    post_step(
        client,
        incident,
        "evidence",
        {
            "kind": "other",
            "description": "Looks like a page",
            "upload": upload(content, "evil.html", "text/html"),
        },
    )
    item = Evidence.objects.get()
    response = client_for("viewer").get(f"/incidents/{incident.key}/evidence/{item.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="evil.html"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == content


def test_text_evidence_downloads_as_an_attachment_too(client_for, media):
    client = client_for("operator")
    incident = make_incident()
    post_step(
        client, incident, "evidence", {"kind": "alert", "description": "Pager", "text": SCRIPT}
    )
    item = Evidence.objects.get()
    response = client.get(f"/incidents/{incident.key}/evidence/{item.pk}/download/")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response.content == SCRIPT.encode()


def test_downloads_that_cannot_exist_are_404(client_for, media):
    client = client_for("operator")
    one, two = make_incident(), make_incident()
    post_step(
        client, one, "evidence", {"kind": "alert", "description": "Link", "url": "https://x.test/a"}
    )
    post_step(
        client, one, "evidence", {"kind": "other", "description": "f", "upload": upload(b"abc")}
    )
    link = Evidence.objects.get(content_type="url")
    file_item = Evidence.objects.get(content_type="file")
    assert client.get(f"/incidents/{one.key}/evidence/{link.pk}/download/").status_code == 404
    # Another incident's key with this evidence id: not found, not leaked.
    assert client.get(f"/incidents/{two.key}/evidence/{file_item.pk}/download/").status_code == 404
    assert client.get(f"/incidents/{one.key}/evidence/999999/download/").status_code == 404
    # A file gone from storage is a clear 404, not a 500.
    for path in media.rglob(file_item.sha256):
        path.chmod(0o600)
        path.unlink()
    assert client.get(f"/incidents/{one.key}/evidence/{file_item.pk}/download/").status_code == 404


# ---------------------------------------------------------------- query budget


def count_queries(client, incident) -> int:
    with CaptureQueriesContext(connection) as ctx:
        page(client, incident)
    return len(ctx.captured_queries)


# Measured: 10 of the page's own (session, user, roles, incident, its clauses, events, evidence,
# disputes, the version's clauses, gates) + 7 of the reviews panel = 17 for a repaired incident.
# The margin is for the panels growing; past it, someone added a per-row query.
PAGE_BUDGET = 24


def test_the_page_runs_a_fixed_number_of_queries_whatever_the_number_of_events(
    client_for, django_assert_max_num_queries
):
    client = client_for("operator")
    bulk_incidents(1000, events_each=30)
    short, long = bulk_incidents(2, events_each=3), bulk_incidents(1, events_each=30)
    assert count_queries(client, short[0]) == count_queries(client, long[0])
    with django_assert_max_num_queries(PAGE_BUDGET):
        body = page(client, long[0])
    assert "Chain verified · 30 events" in body


def test_a_worked_incident_page_keeps_its_budget_as_notes_pile_up(
    client_for, media, django_assert_max_num_queries
):
    from tests.incidents.backend_helpers import advance

    incident = advance(make_incident(), "repaired")
    lifecycle.open_classification_dispute(incident, by=client_for("risk").user, reason="Hmm")
    client = client_for("operator")
    before = count_queries(client, incident)
    for n in range(25):
        lifecycle.add_note(fresh(incident), by=None, text=f"note {n}", internal=n % 2 == 0)
    assert count_queries(client, incident) == before
    with django_assert_max_num_queries(PAGE_BUDGET):
        body = page(client, incident)
    assert f"Chain verified · {fresh(incident).event_count} events" in body


def test_the_page_reads_its_events_once_and_computes_the_gates_once(client_for, monkeypatch):
    """The page, its ownership panel and the reviews panel share one read of the events and one
    gate computation (docs/architecture.md, "Reads")."""
    from tests.incidents.backend_helpers import advance
    from trustdesk.incidents import views
    from trustdesk.incidents.models import Event
    from trustdesk.reviews import panels

    incident = advance(make_incident(), "repaired")
    client = client_for("operator")
    computed = []

    def counted(real):
        def gate_status(*args, **kwargs):
            computed.append(args[0])
            return real(*args, **kwargs)

        return gate_status

    for module in (views, panels):
        monkeypatch.setattr(module, "gate_status", counted(module.gate_status))
    with CaptureQueriesContext(connection) as ctx:
        page(client, incident)
    event_reads = [
        q["sql"]
        for q in ctx.captured_queries
        if f'FROM "{Event._meta.db_table}"' in q["sql"] and q["sql"].startswith("SELECT")
    ]
    assert len(computed) == 1
    assert len(event_reads) == 1

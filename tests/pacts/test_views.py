"""The pact pages: roles on every view, what each page shows and changes, and query budgets."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest
import yaml
from django.urls import reverse
from django.utils import timezone

from tests.factories import AgentFactory, make_incident, make_pact_version
from tests.pacts.documents import as_yaml, changed, valid_document
from trustdesk.core.roles import INCIDENT_MANAGER, INTERNAL, OPERATOR, RISK, ROLES
from trustdesk.pacts import actions
from trustdesk.pacts.models import ApiToken, Dispute, Evaluation, Pact, PactVersion

pytestmark = pytest.mark.django_db


def recent(doc: dict) -> dict:
    """The document, reviewed a few days ago (so not stale)."""
    day = (timezone.now().date() - timedelta(days=3)).isoformat()
    return changed(doc, lambda d: d["spec"]["review"].update(last_reviewed=day))


@pytest.fixture
def world(make_user):
    """support-refunds v1 (superseded), v2 (active), v3 (draft); evaluations; a dispute."""
    risk = make_user("risk", username="rita")
    actions.import_pact_documents([recent(valid_document())], by=risk)
    v2_doc = changed(recent(valid_document()), lambda d: d["spec"].update(risk_tier="critical"))
    [v2] = actions.import_pact_documents([v2_doc], by=risk)
    draft = actions.create_draft(
        changed(
            recent(valid_document()), lambda d: d["metadata"].update(title="Refunds, stricter")
        ),
        by=risk,
    )
    token, _ = actions.create_api_token(source="refund-audit", by=risk)
    now = timezone.now()
    evaluations = actions.record_evaluations(
        [
            {
                "pact": "support-refunds",
                "clause": "refund-accuracy",
                "value": Decimal(value),
                "measured_at": now - timedelta(hours=hours),
                "external_id": f"e{i}",
            }
            for i, (value, hours) in enumerate([("0.01", 1), ("0.05", 2), ("0.00", 3), ("0.5", 30)])
        ],
        token=token,
    )
    dispute = actions.open_dispute(evaluations[1], by=make_user("operator"), reason="Mislabelled")
    return {
        "risk": risk,
        "v2": v2,
        "draft": draft,
        "token": token,
        "evaluations": evaluations,
        "dispute": dispute,
    }


def _urls(world) -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, url, roles allowed) for every pacts page."""
    ev = world["evaluations"][0]
    d = world["dispute"].pk
    t = world["token"].pk
    return [
        ("get", reverse("agents"), INTERNAL),
        ("get", reverse("agent_detail", args=["support-bot"]), INTERNAL),
        ("get", reverse("pacts"), INTERNAL),
        ("get", reverse("pact_detail", args=["support-refunds"]), INTERNAL),
        ("get", reverse("pact_version", args=["support-refunds", 1]), INTERNAL),
        ("get", reverse("pact_diff", args=["support-refunds"]), INTERNAL),
        ("get", reverse("pact_download", args=["support-refunds", 2, "yaml"]), INTERNAL),
        ("get", reverse("clause_detail", args=["support-refunds", 2, "refund-limit"]), INTERNAL),
        ("get", reverse("disputes"), INTERNAL),
        ("get", reverse("dispute_detail", args=[d]), INTERNAL),
        ("post", reverse("dispute_detail", args=[d]), (RISK,)),
        ("get", reverse("pact_new"), (RISK,)),
        ("post", reverse("pact_new"), (RISK,)),
        ("get", reverse("pact_edit", args=["support-refunds", 3]), (RISK,)),
        ("post", reverse("pact_edit", args=["support-refunds", 3]), (RISK,)),
        ("post", reverse("pact_activate", args=["support-refunds", 3]), (RISK,)),
        ("post", reverse("pact_review", args=["support-refunds", 2]), (RISK,)),
        ("get", reverse("dispute_new", args=[ev.pk]), (OPERATOR, INCIDENT_MANAGER, RISK)),
        ("post", reverse("dispute_new", args=[ev.pk]), (OPERATOR, INCIDENT_MANAGER, RISK)),
        ("get", reverse("api_tokens"), (INCIDENT_MANAGER, RISK)),
        ("post", reverse("api_tokens"), (INCIDENT_MANAGER, RISK)),
        ("post", reverse("api_token_revoke", args=[t]), (INCIDENT_MANAGER, RISK)),
    ]


def _snapshot():
    return (
        list(PactVersion.objects.order_by("pk").values_list("pk", "status", "sha256")),
        list(Dispute.objects.order_by("pk").values_list("pk", "status")),
        list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        Evaluation.objects.count(),
    )


def test_every_view_refuses_the_roles_that_must_not_pass(world, client, client_for):
    before = _snapshot()
    for method, url, allowed in _urls(world):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/login/" in response.url, (method, url)
        for role in [*ROLES, None]:
            if role in allowed:
                continue
            c = client_for(role) if role else client_for()
            response = getattr(c, method)(url, {"reason": "x", "source": "s", "status": "upheld"})
            assert response.status_code == 403, (method, url, role)
    assert _snapshot() == before


def test_every_allowed_role_gets_the_pages(world, client_for):
    for method, url, allowed in _urls(world):
        if method != "get":
            continue
        for role in allowed:
            response = client_for(role).get(url)
            assert response.status_code == 200, (url, role)


def test_post_only_views_refuse_get(world, client_for):
    c = client_for("risk")
    for name, args in [
        ("pact_activate", ["support-refunds", 3]),
        ("pact_review", ["support-refunds", 2]),
        ("api_token_revoke", [world["token"].pk]),
    ]:
        assert c.get(reverse(name, args=args)).status_code == 405


def test_pages_have_no_inline_script_or_style(world, client_for):
    c = client_for("risk")
    for method, url, _allowed in _urls(world):
        if method != "get" or "download" in url:
            continue
        body = c.get(url).content.decode()
        assert "<script>" not in body and " style=" not in body, url


# ---------------------------------------------------------------- agents


def test_agents_list_shows_scope_active_pacts_stale_flag_and_open_incidents(world, client_for):
    make_incident(version=world["v2"])
    stale_agent = AgentFactory(key="stale-bot", name="Stale bot", scope="restricted")
    make_pact_version(
        agent=stale_agent,
        pact_key="old-pact",
        last_reviewed=timezone.now().date() - timedelta(days=400),
    )
    body = client_for("viewer").get(reverse("agents")).content.decode()
    assert "support-refunds" in body and "@2" in body
    assert "badge-restricted" in body and "old-pact" in body
    assert body.count("pacts-stale-row") == 1
    row = body[body.index("Support bot") :]
    assert "<strong>1</strong>" in row[: row.index("</tr>")]


def test_agents_list_filters_and_searches(world, client_for):
    AgentFactory(key="tutor", name="Tutor", scope="suspended")
    c = client_for("viewer")
    body = c.get(reverse("agents"), {"scope": "suspended"}).content.decode()
    assert "Tutor" in body and "Support bot" not in body
    body = c.get(reverse("agents"), {"q": "support"}).content.decode()
    assert "Support bot" in body and "Tutor" not in body
    body = c.get(reverse("agents"), {"q": "nothing-like-this"}).content.decode()
    assert "No agent matches these filters" in body
    assert c.get(reverse("agents"), {"scope": "bogus", "page": "x"}).status_code == 200


def test_agents_list_htmx_gets_only_the_results(world, client_for):
    response = client_for("viewer").get(reverse("agents"), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "<html" not in body and "Support bot" in body
    assert response.headers["Vary"].count("HX-Request") == 1


def test_agent_page_shows_scope_change_with_its_incident_and_open_incidents(world, client_for):
    incident = make_incident(version=world["v2"], title="Refund over limit")
    from trustdesk.pacts.models import Agent

    Agent.objects.filter(key="support-bot").update(
        scope="suspended",
        scope_changed_at=timezone.now(),
        scope_reason="Refunds above the limit",
        scope_incident=incident,
    )
    body = client_for("viewer").get(reverse("agent_detail", args=["support-bot"])).content.decode()
    assert "Refunds above the limit" in body
    assert reverse("incident_detail", args=[incident.key]) in body
    assert "Refund over limit" in body
    assert "support-refunds" in body and "v2 active" in body


def test_unknown_agent_is_404(client_for):
    assert client_for("viewer").get(reverse("agent_detail", args=["nope"])).status_code == 404


# ---------------------------------------------------------------- pacts list and detail


def test_pacts_list_filters_by_agent_tier_stale_and_search(world, client_for):
    other = AgentFactory(key="tutor", name="Tutor")
    make_pact_version(
        agent=other,
        pact_key="tutoring",
        risk_tier="medium",
        last_reviewed=timezone.now().date() - timedelta(days=400),
    )
    c = client_for("viewer")
    url = reverse("pacts")
    assert "tutoring" not in c.get(url, {"agent": "support-bot"}).content.decode()
    body = c.get(url, {"risk_tier": "medium"}).content.decode()
    assert "tutoring" in body and "support-refunds" not in body
    body = c.get(url, {"stale": "yes"}).content.decode()
    assert "tutoring" in body and "support-refunds" not in body and "badge-stale" in body
    body = c.get(url, {"stale": "no"}).content.decode()
    assert "tutoring" not in body and "support-refunds" in body
    body = c.get(url, {"risk_tier": "critical"}).content.decode()  # the active v2's tier
    assert "support-refunds" in body
    assert "tutoring" in c.get(url, {"q": "TUTOR"}).content.decode()
    assert "No pact matches" in c.get(url, {"q": "zzz"}).content.decode()


def test_empty_pacts_list_invites_risk_to_draft(client_for):
    body = client_for("risk").get(reverse("pacts")).content.decode()
    assert "No pacts yet" in body and reverse("pact_new") in body


def test_pact_page_shows_clauses_in_plain_words(world, client_for):
    body = (
        client_for("viewer").get(reverse("pact_detail", args=["support-refunds"])).content.decode()
    )
    assert "version 2" in body and "badge-active" in body
    assert "Never issues a refund above 200 EUR without human approval." in body
    assert "<strong>at most 0</strong> over each 7 days" in body
    assert "<strong>at most 0.02</strong> over each 12 hours" in body
    assert "proposes suspending the agent" in body and "proposes restricting the agent" in body
    assert "The agent acts only within its granted task, permissions and spend." in body
    assert "by human review of a sample" in body
    assert world["v2"].sha256 in body
    assert "3 of 3 passed in the last 12 hours" not in body  # one of the three failed
    assert "2 of 3 passed in the last 12 hours" in body


def test_pact_page_shows_history_and_actions_by_role(world, client_for):
    url = reverse("pact_version", args=["support-refunds", 3])
    risk_body = client_for("risk").get(url).content.decode()
    assert "Activate v3" in risk_body and "Edit draft" in risk_body
    assert "v2 is active" in risk_body
    assert risk_body.count("badge-superseded") >= 1
    viewer_body = client_for("viewer").get(url).content.decode()
    assert "Activate v3" not in viewer_body and "Edit draft" not in viewer_body
    assert "Mark reviewed" not in viewer_body


def test_unknown_pact_or_version_is_404(world, client_for):
    c = client_for("viewer")
    assert c.get(reverse("pact_detail", args=["nope"])).status_code == 404
    assert c.get(reverse("pact_version", args=["support-refunds", 9])).status_code == 404
    assert c.get(reverse("pact_download", args=["support-refunds", 2, "xml"])).status_code == 404
    assert c.get(reverse("clause_detail", args=["support-refunds", 2, "nope"])).status_code == 404


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_downloads_are_the_canonical_document(world, client_for, fmt):
    response = client_for("viewer").get(reverse("pact_download", args=["support-refunds", 2, fmt]))
    assert response["Content-Disposition"] == f'attachment; filename="support-refunds-v2.{fmt}"'
    body = response.content.decode()
    v2 = world["v2"]
    if fmt == "json":
        assert hashlib.sha256(body.rstrip("\n").encode()).hexdigest() == v2.sha256
    else:
        from trustdesk.pacts.document import load_documents

        assert load_documents(body)[0] == v2.document
        assert yaml.safe_load(body)["spec"]["risk_tier"] == "critical"


def test_diff_shows_the_changed_lines(world, client_for):
    c = client_for("viewer")
    body = c.get(reverse("pact_diff", args=["support-refunds"]), {"a": 1, "b": 2}).content.decode()
    assert "risk_tier: high" in body and "risk_tier: critical" in body
    assert "pacts-diff-changed" in body and "2 changed lines" in body  # version and tier
    default = c.get(reverse("pact_diff", args=["support-refunds"])).content.decode()
    assert "v2" in default and "v3" in default
    bad = c.get(reverse("pact_diff", args=["support-refunds"]), {"a": 1, "b": 99})
    assert bad.status_code == 400 and b"Choose two versions" in bad.content


# ---------------------------------------------------------------- authoring


def test_pasting_a_document_creates_a_draft(client_for):
    c = client_for("risk")
    response = c.post(reverse("pact_new"), {"text": as_yaml(valid_document())})
    version = PactVersion.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("pact_version", args=["support-refunds", 1])
    assert version.status == "draft" and version.created_by == c.user


def test_uploading_a_file_creates_a_draft(client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("pact.yaml", as_yaml(valid_document()).encode())
    response = client_for("risk").post(reverse("pact_new"), {"file": upload})
    assert response.status_code == 302
    assert PactVersion.objects.get().status == "draft"


def test_authoring_errors_are_shown_inline_by_path_and_nothing_is_stored(client_for):
    bad = changed(valid_document(), lambda d: d["spec"]["clauses"][1]["objective"].update(op="=<"))
    bad["spec"]["risk_tier"] = "extreme"
    response = client_for("risk").post(reverse("pact_new"), {"text": as_yaml(bad)})
    assert response.status_code == 400
    body = response.content.decode()
    assert '<code class="pacts-path">spec.clauses[1].objective.op</code> must be one of' in body
    assert '<code class="pacts-path">spec.risk_tier</code>' in body
    assert 'aria-invalid="true"' in body
    assert "apiVersion: trustdesk/v1" in body  # the text is kept for fixing
    assert not PactVersion.objects.exists() and not Pact.objects.exists()


def test_authoring_with_htmx_swaps_the_form_and_redirects_on_success(client_for):
    c = client_for("risk")
    bad = c.post(reverse("pact_new"), {"text": "apiVersion: [\n"}, headers={"HX-Request": "true"})
    assert bad.status_code == 200
    body = bad.content.decode()
    assert "<html" not in body and 'id="authoring"' in body and "(yaml) line 2" in body
    ok = c.post(
        reverse("pact_new"), {"text": as_yaml(valid_document())}, headers={"HX-Request": "true"}
    )
    assert ok.headers["HX-Redirect"] == reverse("pact_version", args=["support-refunds", 1])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Paste a pact document or upload a file."),
        ({"text": "   "}, "Paste a pact document or upload a file."),
        ({"text": "[1, 2"}, "(json) line 1"),
        ({"text": as_yaml(valid_document("a"), valid_document("b"))}, "holds 2 documents"),
    ],
)
def test_authoring_refuses_empty_broken_or_several_documents(client_for, data, message):
    response = client_for("risk").post(reverse("pact_new"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not PactVersion.objects.exists()


def test_new_draft_from_a_version_is_prefilled_without_its_number(world, client_for):
    response = client_for("risk").get(reverse("pact_new"), {"from": "support-refunds@2"})
    text = response.context["form"].initial["text"]
    assert "risk_tier: critical" in text and "version:" not in text


def test_an_identical_document_is_refused_with_a_message(world, client_for):
    text = as_yaml(
        changed(recent(valid_document()), lambda d: d["metadata"].update(title="Refunds, stricter"))
    )
    response = client_for("risk").post(reverse("pact_new"), {"text": text})
    assert response.status_code == 400
    assert "identical to support-refunds@3" in response.content.decode()


def test_editing_a_draft_saves_it(world, client_for):
    text = as_yaml(changed(valid_document(), lambda d: d["metadata"].update(title="Edited")))
    response = client_for("risk").post(
        reverse("pact_edit", args=["support-refunds", 3]), {"text": text}
    )
    assert response.status_code == 302
    world["draft"].refresh_from_db()
    assert world["draft"].document["metadata"]["title"] == "Edited"


def test_the_form_cannot_change_an_active_version(world, client_for):
    v2 = world["v2"]
    clauses_before = list(v2.clauses.values_list("key", "target", "op"))
    text = as_yaml(changed(valid_document(), lambda d: d["spec"].update(risk_tier="low")))
    c = client_for("risk")
    assert c.get(reverse("pact_edit", args=["support-refunds", 2])).status_code == 302
    response = c.post(reverse("pact_edit", args=["support-refunds", 2]), {"text": text})
    assert response.status_code == 302
    follow = c.get(response.url).content.decode()
    assert "support-refunds@2 is active: it cannot be changed" in follow
    fresh = PactVersion.objects.get(pk=v2.pk)
    assert fresh.sha256 == v2.sha256 and fresh.risk_tier == "critical"
    assert list(fresh.clauses.values_list("key", "target", "op")) == clauses_before


def test_activating_a_draft_from_its_page(world, client_for):
    c = client_for("risk")
    response = c.post(reverse("pact_activate", args=["support-refunds", 3]))
    assert response.status_code == 302
    assert dict(PactVersion.objects.values_list("number", "status")) == {
        1: "superseded",
        2: "superseded",
        3: "active",
    }
    again = c.post(reverse("pact_activate", args=["support-refunds", 3]), follow=True)
    assert "already the active version" in again.content.decode()


def test_marking_reviewed_from_the_page(world, client_for):
    c = client_for("risk")
    today = timezone.now().date()
    c.post(reverse("pact_review", args=["support-refunds", 2]), {"on": today.isoformat()})
    world["v2"].refresh_from_db()
    assert world["v2"].last_reviewed == today
    future = c.post(
        reverse("pact_review", args=["support-refunds", 2]),
        {"on": (today + timedelta(days=3)).isoformat()},
        follow=True,
    )
    assert "cannot be in the future" in future.content.decode()
    bad = c.post(reverse("pact_review", args=["support-refunds", 2]), {"on": "soon"}, follow=True)
    assert "YYYY-MM-DD" in bad.content.decode()
    refused = c.post(reverse("pact_review", args=["support-refunds", 3]), follow=True)
    assert refused.status_code == 200


# ---------------------------------------------------------------- clauses and disputes


def test_clause_page_shows_the_window_pass_rate_excluding_voided(world, client_for, make_user):
    url = reverse("clause_detail", args=["support-refunds", 2, "refund-accuracy"])
    c = client_for("operator")
    body = c.get(url).content.decode()
    assert "2 of 3 evaluations passed" in body and "67%" in body
    assert "badge-fail" in body and "disputed" in body
    actions.resolve_dispute(world["dispute"], by=world["risk"], status="upheld", resolution="yes")
    body = c.get(url).content.decode()
    assert "2 of 2 evaluations passed" in body and "100%" in body and "voided" in body


def test_opening_a_dispute_from_the_clause_page(world, client_for):
    ev = world["evaluations"][0]
    c = client_for("incident_manager")
    assert c.post(reverse("dispute_new", args=[ev.pk]), {"reason": "  "}).status_code == 400
    response = c.post(reverse("dispute_new", args=[ev.pk]), {"reason": "Sample from staging"})
    dispute = Dispute.objects.get(evaluation=ev)
    assert response.url == reverse("dispute_detail", args=[dispute.pk])
    again = c.post(reverse("dispute_new", args=[ev.pk]), {"reason": "again"})
    assert again.status_code == 400 and b"already has an open dispute" in again.content


def test_resolving_a_dispute(world, client_for):
    url = reverse("dispute_detail", args=[world["dispute"].pk])
    c = client_for("risk")
    assert "Record the resolution" in c.get(url).content.decode()
    bad = c.post(url, {"status": "upheld"})
    assert bad.status_code == 400
    response = c.post(url, {"status": "upheld", "resolution": "The label was wrong."})
    assert response.status_code == 302
    body = c.get(url).content.decode()
    assert "The evaluation is void" in body
    assert Evaluation.objects.get(pk=world["evaluations"][1].pk).voided_at is not None


def test_disputes_list_filters_by_status(world, client_for):
    c = client_for("viewer")
    assert "Mislabelled" in c.get(reverse("disputes"), {"status": "open"}).content.decode()
    assert "No dispute matches" in c.get(reverse("disputes"), {"status": "upheld"}).content.decode()


# ---------------------------------------------------------------- API tokens


def test_creating_a_token_shows_it_once(world, client_for):
    c = client_for("incident_manager")
    response = c.post(
        reverse("api_tokens"),
        {"source": "csat-survey", "label": "Survey", "scopes": ["evaluations:write"]},
    )
    assert response.status_code == 201
    secret = response.context["secret"]
    assert secret in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert ApiToken.objects.for_secret(secret).source == "csat-survey"
    assert secret not in c.get(reverse("api_tokens")).content.decode()


def test_a_second_live_token_for_a_source_is_refused_on_the_form(world, client_for):
    response = client_for("risk").post(
        reverse("api_tokens"), {"source": "refund-audit", "scopes": ["evaluations:write"]}
    )
    assert response.status_code == 400
    assert "already has a live token" in response.content.decode()
    assert ApiToken.objects.count() == 1


def test_revoking_a_token(world, client_for):
    c = client_for("incident_manager")
    c.post(reverse("api_token_revoke", args=[world["token"].pk]))
    assert ApiToken.objects.get().revoked_at is not None
    again = c.post(reverse("api_token_revoke", args=[world["token"].pk]), follow=True)
    assert "already revoked" in again.content.decode()


# ---------------------------------------------------------------- the schema


def test_the_schema_is_public_at_a_stable_url(client):
    response = client.get("/schemas/pact-v1.json")
    assert response.status_code == 200
    assert response.json()["$id"] == "urn:trustdesk:schema:pact-v1"
    assert response["Content-Type"] == "application/json"


# ---------------------------------------------------------------- query budgets


@pytest.fixture
def two_hundred_pacts(world):
    for i in range(200):
        agent = AgentFactory(key=f"bulk-{i:03d}")
        make_pact_version(
            agent=agent,
            pact_key=f"bulk-pact-{i:03d}",
            last_reviewed=timezone.now().date() - timedelta(days=i * 3),
        )
    make_incident(version=world["v2"])


@pytest.mark.parametrize(
    "url",
    [reverse("pacts"), reverse("agents"), reverse("disputes"), reverse("pacts") + "?stale=yes"],
)
def test_list_pages_run_a_fixed_number_of_queries(
    two_hundred_pacts, client_for, django_assert_max_num_queries, url
):
    c = client_for("viewer")
    c.get(url)  # warm the session
    # session, user, roles, (agents for the filter | dispute counts), count, page (+ prefetch),
    # and the My work count of the navigation
    with django_assert_max_num_queries(7):
        response = c.get(url)
    assert response.status_code == 200
    with django_assert_max_num_queries(7):
        c.get(url + ("&" if "?" in url else "?") + "page=8")


def test_detail_pages_run_a_bounded_number_of_queries(
    two_hundred_pacts, client_for, django_assert_max_num_queries
):
    c = client_for("viewer")
    for url in [
        reverse("pact_detail", args=["support-refunds"]),
        reverse("clause_detail", args=["support-refunds", 2, "refund-accuracy"]),
        reverse("agent_detail", args=["support-bot"]),
    ]:
        c.get(url)
        with django_assert_max_num_queries(12):
            assert c.get(url).status_code == 200


def test_risk_sets_the_regulatory_profile_and_others_cannot(client_for):
    from trustdesk.pacts.models import Agent

    agent = AgentFactory(key="profile-bot")
    url = reverse("agent_profile", args=[agent.key])
    data = {"high_risk_ai": "on", "nis2": "essential"}
    assert client_for("operator").post(url, data).status_code == 403
    risk = client_for("risk")
    assert risk.post(url, data).status_code == 302
    saved = Agent.objects.get(pk=agent.pk)
    assert (saved.high_risk_ai, saved.personal_data, saved.nis2) == (True, False, "essential")
    page = risk.get(reverse("agent_detail", args=[agent.key]), follow=True)
    assert b"Essential entity" in page.content
    again = risk.post(url, data, follow=True)
    assert b"nothing changed" in again.content
    assert risk.post(url, {"nis2": "huge"}, follow=True).status_code == 200
    assert Agent.objects.get(pk=agent.pk).nis2 == "essential"
    assert risk.get(url).status_code == 405

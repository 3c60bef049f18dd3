"""pacts.actions: versions, activation, reviews, staleness, disputes and tokens."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from tests.pacts.documents import changed, valid_document
from trustdesk.pacts import actions
from trustdesk.pacts.errors import DocumentError, PactError
from trustdesk.pacts.models import ApiToken, Clause, Dispute, Evaluation, PactVersion
from trustdesk.pacts.tasks import mark_stale_pacts

pytestmark = pytest.mark.django_db


@pytest.fixture
def risk(make_user):
    return make_user("risk")


def _retitled(title: str) -> dict:
    return changed(valid_document(), lambda d: d["metadata"].update(title=title))


# ---------------------------------------------------------------- import and drafts


def test_import_creates_the_agent_the_pact_and_an_active_version(risk):
    [version] = actions.import_pact_documents([valid_document()], by=risk)
    assert version.status == "active" and version.number == 1
    assert version.pact.agent.key == "support-bot"
    assert version.pact.agent.name == "Support bot"
    assert version.created_by == risk and version.activated_by == risk
    clause = version.clauses.get(key="refund-accuracy")
    assert (clause.op, clause.target, clause.window_seconds) == ("<=", Decimal("0.02"), 43200)
    assert version.evidence_required == ["transcript", "tool_calls", "evaluation_result"]
    assert version.last_reviewed.isoformat() == "2026-01-15"


def test_import_takes_the_next_version_and_supersedes_the_active_one(risk):
    actions.import_pact_documents([valid_document()], by=risk)
    [v2] = actions.import_pact_documents([_retitled("Refunds, v2")], by=risk)
    assert v2.number == 2
    statuses = dict(PactVersion.objects.values_list("number", "status"))
    assert statuses == {1: "superseded", 2: "active"}
    v2.pact.refresh_from_db()
    assert v2.pact.title == "Refunds, v2"


def test_import_with_a_version_number_is_idempotent_and_never_overwrites(risk):
    doc = changed(valid_document(), lambda d: d["metadata"].update(version=3))
    [first] = actions.import_pact_documents([doc], by=risk)
    [again] = actions.import_pact_documents([doc], by=risk)
    assert again.pk == first.pk and first.number == 3
    other = changed(doc, lambda d: d["spec"].update(risk_tier="low"))
    with pytest.raises(PactError) as refused:
        actions.import_pact_documents([other], by=risk)
    assert refused.value.problems[0].startswith("metadata.version: support-refunds@3 already")
    assert PactVersion.objects.get().risk_tier == "high"


def test_history_imported_late_is_kept_superseded(risk):
    v3 = changed(valid_document(), lambda d: d["metadata"].update(version=3))
    v1 = changed(_retitled("Old"), lambda d: d["metadata"].update(version=1))
    actions.import_pact_documents([v3, v1], by=risk)
    assert dict(PactVersion.objects.values_list("number", "status")) == {
        3: "active",
        1: "superseded",
    }


def test_a_pact_cannot_move_to_another_agent(risk):
    actions.import_pact_documents([valid_document()], by=risk)
    moved = changed(valid_document(), lambda d: d["metadata"].update(agent="other-bot"))
    with pytest.raises(PactError, match="belongs to agent 'support-bot'"):
        actions.import_pact_documents([moved], by=risk)
    assert PactVersion.objects.count() == 1


def test_a_batch_with_one_bad_document_stores_none(risk):
    bad = changed(valid_document("b"), lambda d: d["spec"].update(risk_tier="extreme"))
    with pytest.raises(DocumentError) as refused:
        actions.import_pact_documents([valid_document("a"), bad], by=risk)
    assert refused.value.problems == [
        "document 2: spec.risk_tier: must be one of low, medium, high, critical"
    ]
    assert not PactVersion.objects.exists()


def test_only_risk_imports_and_authors(make_user):
    for role in ("operator", "incident_manager", "viewer"):
        with pytest.raises(PactError, match="Your role does not allow"):
            actions.import_pact_documents([valid_document()], by=make_user(role))
        with pytest.raises(PactError):
            actions.create_draft(valid_document(), by=make_user(role))
    assert not PactVersion.objects.exists()


def test_create_draft_takes_the_next_number_and_refuses_an_identical_document(risk):
    actions.import_pact_documents([valid_document()], by=risk)
    with pytest.raises(PactError, match="identical to support-refunds@1"):
        actions.create_draft(valid_document(), by=risk)
    with_version = changed(_retitled("New"), lambda d: d["metadata"].update(version=1))
    draft = actions.create_draft(with_version, by=risk)
    assert (draft.number, draft.status) == (2, "draft")
    assert draft.document["metadata"]["version"] == 2


def test_update_draft_replaces_document_and_clauses(risk):
    draft = actions.create_draft(valid_document(), by=risk)
    one_clause = changed(
        valid_document(), lambda d: d["spec"].update(clauses=d["spec"]["clauses"][:1])
    )
    updated = actions.update_draft(draft, one_clause, by=risk)
    assert [c.key for c in updated.clauses.all()] == ["refund-limit"]
    assert updated.sha256 != draft.sha256 and updated.number == 1


def test_update_draft_keeps_pact_and_agent(risk):
    draft = actions.create_draft(valid_document(), by=risk)
    other = changed(valid_document(), lambda d: d["metadata"].update(key="x", agent="y"))
    with pytest.raises(PactError) as refused:
        actions.update_draft(draft, other, by=risk)
    assert refused.value.problems == [
        "metadata.key: must stay 'support-refunds' (this draft's pact)",
        "metadata.agent: must stay 'support-bot'",
    ]


# ---------------------------------------------------------------- activation and immutability


def test_activating_a_draft_supersedes_the_active_version(risk):
    [v1] = actions.import_pact_documents([valid_document()], by=risk)
    draft = actions.create_draft(_retitled("v2"), by=risk)
    activated = actions.activate_version(draft, by=risk)
    assert activated.status == "active"
    v1.refresh_from_db()
    assert v1.status == "superseded"
    assert PactVersion.objects.filter(status="active").count() == 1


@pytest.mark.parametrize("status", ["active", "superseded"])
def test_only_a_draft_can_be_activated(risk, status):
    [v1] = actions.import_pact_documents([valid_document()], by=risk)
    actions.activate_version(actions.create_draft(_retitled("v2"), by=risk), by=risk)
    target = v1 if status == "superseded" else PactVersion.objects.get(number=2)
    with pytest.raises(PactError):
        actions.activate_version(target, by=risk)
    assert dict(PactVersion.objects.values_list("number", "status")) == {
        1: "superseded",
        2: "active",
    }


def test_only_risk_activates(make_user, risk):
    draft = actions.create_draft(valid_document(), by=risk)
    with pytest.raises(PactError):
        actions.activate_version(draft, by=make_user("incident_manager"))
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_the_database_allows_one_active_version_per_pact(risk):
    [v1] = actions.import_pact_documents([valid_document()], by=risk)
    draft = actions.create_draft(_retitled("v2"), by=risk)
    with pytest.raises(DatabaseError), transaction.atomic():
        PactVersion.objects.filter(pk=draft.pk).update(status="active")


def test_an_active_version_cannot_be_edited_as_a_draft(risk):
    [v1] = actions.import_pact_documents([valid_document()], by=risk)
    with pytest.raises(PactError, match="only a draft can be edited"):
        actions.update_draft(v1, _retitled("changed"), by=risk)
    v1.refresh_from_db()
    assert v1.document["metadata"]["title"] == "Refunds within policy"


@pytest.mark.parametrize(
    "change",
    [
        {"canonical": "{}"},
        {"sha256": "0" * 64},
        {"document": {"tampered": True}},
        {"risk_tier": "low"},
        {"number": 7},
        {"status": "draft"},
    ],
)
def test_the_database_refuses_to_change_an_active_version(risk, change):
    [v1] = actions.import_pact_documents([valid_document()], by=risk)
    with pytest.raises(DatabaseError), transaction.atomic():
        PactVersion.objects.filter(pk=v1.pk).update(**change)
    fresh = PactVersion.objects.get(pk=v1.pk)
    assert fresh.sha256 == v1.sha256 and fresh.status == "active"


def test_the_database_refuses_to_change_a_clause_of_an_active_version(risk):
    [v1] = actions.import_pact_documents([valid_document()], by=risk)
    with pytest.raises(DatabaseError), transaction.atomic():
        Clause.objects.filter(version=v1).update(target=Decimal("100"))
    assert Clause.objects.get(version=v1, key="refund-limit").target == 0


def test_saving_an_active_version_unchanged_is_allowed(risk):
    [v1] = actions.import_pact_documents([valid_document()], by=risk)
    fresh = PactVersion.objects.get(pk=v1.pk)
    fresh.save()  # a full-row save with the same values is not a change (the trigger allows it)
    assert PactVersion.objects.get(pk=v1.pk).canonical == v1.canonical


def test_the_database_refuses_to_delete_an_active_version_on_postgres(risk):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("DELETE is refused by trigger on PostgreSQL only (see migration 0003)")
    [v1] = actions.import_pact_documents([valid_document()], by=risk)
    with pytest.raises(DatabaseError), transaction.atomic():
        Clause.objects.filter(version=v1).delete()
    assert Clause.objects.filter(version=v1).count() == 2


# ---------------------------------------------------------------- reviews and staleness


def test_mark_reviewed_restarts_the_review_clock_without_touching_the_document(risk):
    stale_doc = changed(
        valid_document(), lambda d: d["spec"]["review"].update(last_reviewed="2024-01-01")
    )
    [v1] = actions.import_pact_documents([stale_doc], by=risk)
    assert v1.is_stale and v1.stale_since is not None
    today = timezone.now().date()
    reviewed = actions.mark_reviewed(v1, by=risk)
    assert reviewed.last_reviewed == today and reviewed.last_reviewed_by == risk
    assert reviewed.review_due == today + timedelta(days=30)
    assert not reviewed.is_stale and reviewed.stale_since is None
    assert reviewed.sha256 == v1.sha256
    assert reviewed.document["spec"]["review"]["last_reviewed"] == "2024-01-01"


def test_mark_reviewed_refuses_drafts_future_dates_and_going_back(risk, make_user):
    draft = actions.create_draft(valid_document(), by=risk)
    with pytest.raises(PactError, match="only the active version is reviewed"):
        actions.mark_reviewed(draft, by=risk)
    active = actions.activate_version(draft, by=risk)
    today = timezone.now().date()
    with pytest.raises(PactError, match="future"):
        actions.mark_reviewed(active, by=risk, on=today + timedelta(days=1))
    with pytest.raises(PactError, match="cannot be recorded before"):
        actions.mark_reviewed(active, by=risk, on=active.last_reviewed - timedelta(days=1))
    with pytest.raises(PactError, match="Your role"):
        actions.mark_reviewed(active, by=make_user("operator"))


def test_mark_stale_pacts_flags_and_unflags(risk):
    old = changed(
        valid_document(), lambda d: d["spec"]["review"].update(last_reviewed="2024-01-01")
    )
    [v1] = actions.import_pact_documents([old], by=risk)
    PactVersion.objects.filter(pk=v1.pk).update(stale_since=None)
    fresh_doc = changed(
        valid_document("fresh", "fresh-bot"),
        lambda d: d["spec"]["review"].update(last_reviewed=timezone.now().date().isoformat()),
    )
    [fresh] = actions.import_pact_documents([fresh_doc], by=risk)
    assert mark_stale_pacts() == {"marked": 1, "cleared": 0}
    assert mark_stale_pacts() == {"marked": 0, "cleared": 0}  # idempotent
    assert list(PactVersion.objects.filter(stale_since__isnull=False)) == [v1]
    # A review past the due date that leaves stale_since set is cleared by the task.
    PactVersion.objects.filter(pk=v1.pk).update(review_due=timezone.now().date())
    assert mark_stale_pacts() == {"marked": 0, "cleared": 1}
    fresh.refresh_from_db()
    assert fresh.stale_since is None


# ---------------------------------------------------------------- disputes


@pytest.fixture
def evaluation(risk, make_user):
    actions.import_pact_documents([valid_document()], by=risk)
    token, _ = actions.create_api_token(source="refund-audit", by=risk)
    [ev] = actions.record_evaluations(
        [
            {
                "pact": "support-refunds",
                "clause": "refund-accuracy",
                "value": Decimal("0.5"),
                "measured_at": timezone.now(),
                "external_id": "e-1",
            }
        ],
        token=token,
    )
    return ev


def test_anyone_internal_but_a_viewer_opens_a_dispute(evaluation, make_user):
    with pytest.raises(PactError, match="Your role"):
        actions.open_dispute(evaluation, by=make_user("viewer"), reason="wrong")
    dispute = actions.open_dispute(evaluation, by=make_user("operator"), reason=" wrong sample ")
    assert dispute.reason == "wrong sample" and dispute.status == "open"
    with pytest.raises(PactError, match="already has an open dispute"):
        actions.open_dispute(evaluation, by=make_user("risk"), reason="again")
    with pytest.raises(PactError, match="reason"):
        actions.open_dispute(evaluation, by=make_user("risk"), reason="   ")


def test_an_upheld_dispute_voids_the_evaluation(evaluation, make_user, risk):
    opener = make_user("operator")
    dispute = actions.open_dispute(evaluation, by=opener, reason="The sample was mislabelled.")
    with pytest.raises(PactError, match="Your role"):
        actions.resolve_dispute(
            dispute, by=make_user("incident_manager"), status="upheld", resolution="x"
        )
    resolved = actions.resolve_dispute(
        dispute, by=risk, status="upheld", resolution="Confirmed: the label was wrong."
    )
    assert resolved.status == "upheld" and resolved.resolved_by == risk
    evaluation.refresh_from_db()
    assert evaluation.voided_at is not None
    assert not Evaluation.objects.counted().exists()
    with pytest.raises(PactError, match="already resolved"):
        actions.resolve_dispute(dispute, by=risk, status="rejected", resolution="no")
    with pytest.raises(PactError, match="already voided"):
        actions.open_dispute(evaluation, by=opener, reason="again")


def test_a_rejected_dispute_keeps_the_evaluation(evaluation, make_user, risk):
    dispute = actions.open_dispute(evaluation, by=make_user("operator"), reason="too strict")
    actions.resolve_dispute(dispute, by=risk, status="rejected", resolution="The target holds.")
    evaluation.refresh_from_db()
    assert evaluation.voided_at is None


def test_resolving_needs_a_status_a_resolution_and_another_person(evaluation, make_user, risk):
    dispute = actions.open_dispute(evaluation, by=risk, reason="my own doubt")
    with pytest.raises(PactError, match="status"):
        actions.resolve_dispute(dispute, by=make_user("risk"), status="open", resolution="x")
    with pytest.raises(PactError, match="resolution"):
        actions.resolve_dispute(dispute, by=make_user("risk"), status="upheld", resolution=" ")
    with pytest.raises(PactError, match="another risk owner"):
        actions.resolve_dispute(dispute, by=risk, status="upheld", resolution="ok")
    assert Dispute.objects.get().status == "open"


def test_a_dispute_of_an_incident_is_resolved_through_the_incident_log(make_user, risk):
    from tests.factories import make_incident

    incident = make_incident()
    dispute = Dispute.objects.create(
        incident=incident, reason="Not ours", opened_by=make_user("operator")
    )
    resolved = actions.resolve_dispute(dispute, by=risk, status="rejected", resolution="It is.")
    assert resolved.status == "rejected"
    last = incident.events.order_by("-seq").values_list("type", "data").first()
    assert last == (
        "dispute_resolved",
        {"dispute": dispute.pk, "status": "rejected", "resolution": "It is."},
    )
    with pytest.raises(PactError, match="already"):
        actions.resolve_dispute(dispute, by=risk, status="upheld", resolution="x")


# ---------------------------------------------------------------- API tokens


def test_a_token_is_shown_once_and_stored_hashed(make_user):
    manager = make_user("incident_manager")
    token, secret = actions.create_api_token(source="refund-audit", label="CI", by=manager)
    assert secret.startswith("tdk_") and len(secret) > 40
    assert secret not in str(ApiToken.objects.values().get())
    assert ApiToken.objects.for_secret(secret) == token
    assert ApiToken.objects.for_secret(secret + "x") is None


def test_one_live_token_per_source_and_revocation(make_user, risk):
    token, secret = actions.create_api_token(source="refund-audit", by=risk)
    with pytest.raises(PactError, match="already has a live token"):
        actions.create_api_token(source="refund-audit", by=risk)
    actions.revoke_api_token(token, by=risk)
    assert ApiToken.objects.for_secret(secret) is None
    with pytest.raises(PactError, match="already revoked"):
        actions.revoke_api_token(token, by=risk)
    _new, new_secret = actions.create_api_token(source="refund-audit", by=risk)
    assert ApiToken.objects.for_secret(new_secret) is not None


@pytest.mark.parametrize("source", ["", "   ", "has space", "x" * 201])
def test_a_token_needs_a_plain_source_name(risk, source):
    with pytest.raises(PactError, match="source"):
        actions.create_api_token(source=source, by=risk)
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_managers_and_risk_handle_tokens(make_user, risk, role):
    token, _ = actions.create_api_token(source="s", by=risk)
    with pytest.raises(PactError):
        actions.create_api_token(source="t", by=make_user(role))
    with pytest.raises(PactError):
        actions.revoke_api_token(token, by=make_user(role))
    assert ApiToken.objects.live().count() == 1

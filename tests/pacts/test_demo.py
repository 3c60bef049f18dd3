"""The pacts demo seed: realistic, idempotent; every demo pact round-trips with a stable hash."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from trustdesk.core import demo as core_demo
from trustdesk.pacts import demo
from trustdesk.pacts.document import (
    canonical_document,
    canonical_text,
    document_json,
    document_sha256,
    document_yaml,
    load_documents,
)
from trustdesk.pacts.models import (
    Agent,
    ApiToken,
    Clause,
    Dispute,
    Evaluation,
    PactVersion,
)

pytestmark = pytest.mark.django_db

# Pinned: these are the demo documents' hashes. If one changes, either the demo document was
# edited on purpose (update it here) or canonical form changed, which would break every stored
# pact hash and evidence bundle.
DEMO_SHA256 = {
    "support-refunds@1": "ec613eced78d6d1e641ce18e480b093f7d2a4d6e7e066cf9d55fe4916a87b738",
    "support-refunds@2": "70762892da237176fc64b1fde42d72136bd88fb0eef7aafd9c4cee4ef62b1590",
    "support-refunds@3": "a9bdc0b835fa0b585a2991e36ec76578df97a037323e0077f515d7c2f602a66d",
    "support-refunds@4": "12f3859beef5e8bea64cf971be28c8b5f9d03834e10b345498a4e8851ca9483b",
    "code-review-safety@1": "c7f68b2db5d66cf20562a44e330295e1c4b3c766279c1db6157a05c40fa2a110",
    "data-handling@1": "7953e9f3a830721a22e9af7f4a4db5a4b58ca11aed9b672b038bc6058f92f0cc",
    "tutoring-quality@1": "9ccc77442b1cd0554fde6d0ca2cd0c7b81702efe8de32561b88db12b4703f520",
}


@pytest.fixture
def seeded():
    core_demo.seed(StringIO())
    out = StringIO()
    demo.seed(out)
    return out.getvalue()


def _snapshot():
    return (
        list(Agent.objects.order_by("key").values_list("key", "name", "scope")),
        list(
            PactVersion.objects.order_by("pk").values_list(
                "pk", "status", "sha256", "last_reviewed", "stale_since"
            )
        ),
        Clause.objects.count(),
        list(Evaluation.objects.order_by("pk").values_list("pk", "value", "passed", "voided_at")),
        list(Dispute.objects.order_by("pk").values_list("pk", "status")),
        list(ApiToken.objects.order_by("pk").values_list("pk", "source", "revoked_at")),
    )


def test_the_seed_is_idempotent(seeded):
    before = _snapshot()
    out = StringIO()
    demo.seed(out)
    assert _snapshot() == before
    assert "0 new evaluations, 0 new disputes" in out.getvalue()


def test_the_seed_has_four_agents_with_realistic_pacts(seeded):
    assert set(Agent.objects.values_list("key", flat=True)) >= {
        "support-bot",
        "code-reviewer",
        "data-analyst",
        "tutor",
    }
    active = {v.pact.key: v for v in PactVersion.objects.active().select_related("pact__agent")}
    assert set(active) == {
        "support-refunds",
        "code-review-safety",
        "data-handling",
        "tutoring-quality",
    }
    assert active["support-refunds"].number == 3
    for version in active.values():
        assert version.evidence_required
        assert version.clauses.filter(on_breach__in=["restrict", "suspend"]).exists()
    statuses = dict(
        PactVersion.objects.filter(pact__key="support-refunds").values_list("number", "status")
    )
    assert statuses == {1: "superseded", 2: "superseded", 3: "active", 4: "draft"}


def test_the_seed_has_a_stale_pact_evaluations_over_weeks_and_disputes(seeded):
    stale = PactVersion.objects.stale()
    assert [v.pact.key for v in stale] == ["tutoring-quality"]
    assert stale.get().stale_since is not None
    span = Evaluation.objects.order_by("measured_at")
    assert (span.last().measured_at - span.first().measured_at).days >= 28
    assert Evaluation.objects.filter(passed=False).exists()
    assert not Evaluation.objects.filter(is_breach=True).exists()  # incidents come from their seed
    assert Dispute.objects.filter(status="open").count() == 1
    upheld = Dispute.objects.get(status="upheld")
    assert upheld.evaluation.voided_at is not None and upheld.resolution


def test_every_demo_pact_round_trips_with_a_stable_hash(seeded):
    hashes = {}
    for version in PactVersion.objects.select_related("pact"):
        doc = version.document
        assert canonical_text(doc) == version.canonical
        assert document_sha256(doc) == version.sha256
        for text in (document_yaml(doc), document_json(doc)):
            again = load_documents(text)[0]
            assert again == doc
            assert document_sha256(again) == version.sha256
        assert canonical_document(doc, version=version.number) == doc
        hashes[version.label] = version.sha256
    assert hashes == DEMO_SHA256


def test_every_demo_pact_exports_to_its_hash(seeded):
    import hashlib

    for version in PactVersion.objects.select_related("pact"):
        out = StringIO()
        call_command("export_pact", version.label, stdout=out)
        assert hashlib.sha256(out.getvalue().rstrip("\n").encode()).hexdigest() == version.sha256


def test_the_demo_documents_are_the_source_of_the_hashes():
    """The pinned hashes hold without a database: they are a property of the documents."""
    for doc in (*demo.DOCUMENTS, demo.DRAFT):
        label = f"{doc['metadata']['key']}@{doc['metadata']['version']}"
        assert document_sha256(canonical_document(doc)) == DEMO_SHA256[label]

"""The transparency log's tree (docs/design.md section 15): RFC 6962 / 9162 hashing checked against
the published test vectors and against sigstore's independent Merkle inclusion check, and the stored
tree checked against one recomputed from the events."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from django.db import connection
from sigstore._internal.merkle import verify_merkle_inclusion
from sigstore.errors import VerificationError
from sigstore.models import TransparencyLogEntry
from sigstore_models.rekor import v1 as rekor_v1

from tests.factories import make_incident
from trustdesk.incidents import journal, merkle, tlog
from trustdesk.incidents.models import Event, LogLeaf, LogNode

VECTORS = json.loads((Path(__file__).parent / "data" / "merkle_vectors.json").read_text())


def _b64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def _vector_leaves() -> list[bytes]:
    return [merkle.leaf_hash(bytes.fromhex(h)) for h in VECTORS["leaf_inputs_hex"]]


# ------------------------------------------------------------------ published vectors


def test_complete_subtrees_and_roots_match_the_rfc6962_vectors():
    tree = merkle.MemoryTree(_vector_leaves())
    for level, hashes in enumerate(VECTORS["node_hashes_hex"]):
        assert [h.hex() for h in tree.levels[level]] == hashes
    for size, root in enumerate(VECTORS["root_hashes_hex"]):
        assert tree.root(size).hex() == root
        assert merkle.root_of(_vector_leaves()[:size]).hex() == root


def test_generated_proofs_equal_the_published_happy_path_proofs():
    tree = merkle.MemoryTree(_vector_leaves())
    leaves = [base64.b64encode(h).decode() for h in tree.levels[0]]
    checked = 0
    for probe in VECTORS["inclusion_probes"]:
        if probe["wantErr"] or probe["leafHash"] != leaves[probe["leafIdx"]]:
            continue
        proof = tree.inclusion_proof(probe["leafIdx"], probe["treeSize"])
        assert [base64.b64encode(h).decode() for h in proof] == (probe["proof"] or []), probe
        checked += 1
    for probe in VECTORS["consistency_probes"]:
        if probe["wantErr"] or probe["size1"] == 0 or probe["size2"] > 8:
            continue
        proof = tree.consistency_proof(probe["size1"], probe["size2"])
        assert [base64.b64encode(h).decode() for h in proof] == (probe["proof"] or []), probe
        checked += 1
    assert checked >= 10


def test_verifiers_accept_and_refuse_exactly_as_the_published_probes_say():
    wrong = []
    for p in VECTORS["inclusion_probes"]:
        proof = [_b64(h) for h in p["proof"] or []]
        ok = merkle.verify_inclusion(
            p["leafIdx"], p["treeSize"], _b64(p["leafHash"]), proof, _b64(p["root"])
        )
        if ok == p["wantErr"]:
            wrong.append(p["file"])
    for p in VECTORS["consistency_probes"]:
        proof = [_b64(h) for h in p["proof"] or []]
        ok = merkle.verify_consistency(
            p["size1"], p["size2"], _b64(p["root1"]), _b64(p["root2"]), proof
        )
        if ok == p["wantErr"]:
            wrong.append(p["file"])
    assert len(VECTORS["inclusion_probes"]) + len(VECTORS["consistency_probes"]) > 150
    assert wrong == []


def test_proofs_verify_for_every_index_and_pair_of_sizes_up_to_70_leaves():
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(70)]
    tree = merkle.MemoryTree(leaves)
    for size in range(1, 71):
        root = tree.root(size)
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert merkle.verify_inclusion(index, size, leaves[index], proof, root)
            assert not merkle.verify_inclusion(index, size, leaves[index - 1], proof, root) or (
                size == 1
            )
        for old in range(1, size + 1):
            proof = tree.consistency_proof(old, size)
            assert merkle.verify_consistency(old, size, tree.root(old), root, proof)
            if old < size:
                assert not merkle.verify_consistency(old, size, tree.root(old), leaves[0], proof)


# ------------------------------------------------------------------ the stored tree


def _grow(incidents: int = 3) -> list[Event]:
    for i in range(incidents):
        incident = make_incident(title=f"incident {i}")
        for n in range(i + 2):
            with journal.locked_incident(incident) as inc:
                journal.append_event(inc, type="note", by=None, data={"text": f"n{n}"})
    tlog.number_pending()
    return list(Event.objects.select_related("leaf").order_by("leaf__log_index"))


def assert_stored_tree_is_the_recomputed_one() -> int:
    """Every event has exactly one leaf; the indices are 0..n-1 in stored order; every stored
    node equals the node recomputed from the events' hashes. Returns the size."""
    tlog.number_pending()
    rows = list(Event.objects.order_by("id").values_list("id", "hash", "leaf__log_index"))
    indices = [index for _, _, index in rows]
    assert indices == list(range(len(rows))), "log_index must be gapless, in stored order"
    recomputed = merkle.MemoryTree([merkle.event_leaf_hash(h) for _, h, _ in rows])
    stored_leaves = {i: bytes(h) for i, h in LogLeaf.objects.values_list("log_index", "hash")}
    assert stored_leaves == dict(enumerate(recomputed.levels[0]))
    stored_nodes = {
        (lv, p): bytes(h) for lv, p, h in LogNode.objects.values_list("level", "position", "hash")
    }
    expected = {
        (level, p): h
        for level, hashes in enumerate(recomputed.levels)
        if level
        for p, h in enumerate(hashes)
    }
    assert stored_nodes == expected
    assert tlog.tree_size() == len(rows)
    assert tlog.root()[1] == recomputed.root()
    return len(rows)


@pytest.mark.django_db
def test_every_event_gets_a_gapless_log_index_and_the_stored_tree_is_the_recomputed_one():
    events = _grow()
    assert [e.leaf.log_index for e in events] == list(range(len(events)))
    assert sorted(e.pk for e in events) == [e.pk for e in events]  # stored order
    size = assert_stored_tree_is_the_recomputed_one()
    assert size == len(events) == 3 + 4 + 5


@pytest.mark.django_db
def test_stored_proofs_for_past_sizes_equal_the_recomputed_ones():
    events = _grow()
    recomputed = merkle.MemoryTree([merkle.event_leaf_hash(e.hash) for e in events])
    n = len(events)
    for size in range(1, n + 1):
        assert tlog.root(size) == (size, recomputed.root(size))
        proofs = tlog.inclusion_proofs(range(size), size)
        for index in range(size):
            assert proofs[index] == recomputed.inclusion_proof(index, size)
        for old in range(1, size + 1):
            assert tlog.consistency_proof(old, size) == recomputed.consistency_proof(old, size)


@pytest.mark.django_db
def test_a_proof_past_the_tree_or_from_size_zero_is_refused_with_a_reason():
    n = len(_grow(1))
    with pytest.raises(merkle.ProofError, match=f"the log has {n} leaves"):
        tlog.inclusion_proof(0, n + 1)
    with pytest.raises(merkle.ProofError, match="not in a tree of size"):
        tlog.inclusion_proof(n, n)
    with pytest.raises(merkle.ProofError, match="1 <= from <= to"):
        tlog.consistency_proof(0, n)
    with pytest.raises(merkle.ProofError, match="1 <= from <= to"):
        tlog.consistency_proof(n, n - 1)


def _sigstore_entry(event: Event, proof: list[bytes], size: int, root: bytes):
    """The object sigstore's Rekor verification takes, with our event's hash as the entry body
    (so its leaf is SHA-256(0x00 || the 32 hash bytes), as ours)."""
    inner = rekor_v1.TransparencyLogEntry(
        log_index=str(event.leaf.log_index),
        log_id={"key_id": base64.b64encode(b"\x00" * 32).decode()},
        kind_version={"kind": "trustdesk-event", "version": "1"},
        inclusion_proof={
            "log_index": str(event.leaf.log_index),
            "root_hash": base64.b64encode(root).decode(),
            "tree_size": str(size),
            "hashes": [base64.b64encode(h).decode() for h in proof],
            "checkpoint": {"envelope": "not checked here\n"},
        },
        canonicalized_body=base64.b64encode(bytes.fromhex(event.hash)).decode(),
    )
    return TransparencyLogEntry(inner)


@pytest.mark.django_db
def test_sigstore_merkle_inclusion_accepts_our_proofs_and_refuses_a_changed_hash():
    events = _grow()
    size, root = tlog.root()
    proofs = tlog.inclusion_proofs([e.leaf.log_index for e in events], size)
    for event in events:
        verify_merkle_inclusion(_sigstore_entry(event, proofs[event.leaf.log_index], size, root))
    event = events[5]
    proof = list(proofs[event.leaf.log_index])
    proof[1] = bytes(32)
    with pytest.raises(VerificationError):
        verify_merkle_inclusion(_sigstore_entry(event, proof, size, root))


@pytest.mark.django_db
def test_the_python_twin_and_the_bulk_numbering_build_the_trigger_s_tree():
    """Three writers of one tree: the commit-time trigger (PostgreSQL), `tlog.append_leaf` (what
    SQLite runs) and `tlog.index_unindexed_events` (the migration's bulk SQL). With the trigger
    switched off for this transaction, the other two number the events, half each, and the
    result must be the tree recomputed from the events."""
    postgres = connection.vendor == "postgresql"
    if postgres:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
    _grow(4)
    if postgres:
        rows = list(Event.objects.order_by("id").values_list("id", "hash"))
        assert not LogLeaf.objects.exists()
        with connection.cursor() as cursor:
            for event_id, event_hash in rows[: len(rows) // 2 + 1]:
                tlog.append_leaf(cursor, event_id, event_hash)
        assert tlog.index_unindexed_events() == len(rows) - (len(rows) // 2 + 1)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = origin")
    assert tlog.index_unindexed_events() == 0
    assert assert_stored_tree_is_the_recomputed_one() == 3 + 4 + 5 + 6


@pytest.mark.django_db
def test_imported_history_is_numbered_into_the_log_in_the_order_it_is_stored():
    from tests.factories import AgentFactory, make_pact_version
    from tests.incidents.test_import_export import valid_document
    from trustdesk.incidents.exchange import import_document

    make_incident(title="before the import")
    agent = AgentFactory(key="support-bot", name="Support bot", owner="payments-risk")
    version = make_pact_version(agent=agent, pact_key="support-refunds")
    result = import_document(valid_document(version))
    assert result.events == 27
    size = assert_stored_tree_is_the_recomputed_one()
    assert size == 1 + 27

"""The instance-wide transparency log: every event is a leaf of one Merkle tree (docs/design.md
section 15).

What is stored, so that a root, an inclusion proof or a consistency proof at a million leaves reads
O(log n) rows instead of rehashing the log:
  - `LogLeaf`: each event's gapless `log_index` and leaf hash;
  - `LogNode`: the hash of every *complete* subtree (2^level leaves, aligned), written when its
    last leaf arrives and never changed (about one node per leaf, amortized);
  - `LogHead`: the size, one row.
A proof for any size up to the current one is folded from those nodes (`merkle.range_nodes`).

Numbering (why a commit-time trigger on PostgreSQL): the log_index must be gapless and follow
the order events are stored, so it is taken under one lock (the head row). A transaction holds
that lock until it ends, so it must be the LAST lock the transaction takes: any row locked after
it (an agent, a dispute, a decision, whatever a later feature locks after appending) deadlocks
against a transaction that locked that row first and then appends. The only point that is last
in every path, present and future, is the commit itself: a DEFERRABLE INITIALLY DEFERRED
constraint trigger on the events table numbers the transaction's events at COMMIT (in insertion
order), writes their leaves and the completed nodes, and holds the head row only for the instant
the commit takes. A rolled-back transaction numbers nothing, so there is no gap.
On SQLite the write lock is taken at BEGIN (transaction_mode IMMEDIATE) and held to the end, so
appends are already serialized and `append_event` numbers the event at once, in Python.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction

from trustdesk.incidents import merkle
from trustdesk.incidents.merkle import Node, ProofError

TRIGGER_NAME = "incidents_event_log_append"
# Keys per query when fetching the nodes of many proofs at once (bundles).
FETCH_CHUNK = 5000


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


# ------------------------------------------------------------------ appending


def on_event_appended(event) -> None:
    """Called by `journal.append_event` for every new event, inside its transaction."""
    if _is_postgres():
        return  # numbered by the commit-time trigger (see the module docstring)
    with connection.cursor() as cursor:
        append_leaf(cursor, event.pk, event.hash)


def append_leaf(cursor, event_id: int, event_hash_hex: str) -> int:
    """Give one event the next log_index and write its leaf and the subtrees it completes.

    The caller serializes appends (SQLite's write lock, or the migration's exclusive use); this is
    the Python twin of the PostgreSQL trigger function in migration 0005_release_2.
    """
    cursor.execute("SELECT size FROM incidents_loghead WHERE id = 1")
    row = cursor.fetchone()
    if row is None:
        cursor.execute("INSERT INTO incidents_loghead (id, size) VALUES (1, 0)")
        index = 0
    else:
        index = row[0]
    h = merkle.event_leaf_hash(event_hash_hex)
    cursor.execute(
        "INSERT INTO incidents_logleaf (log_index, event_id, hash) VALUES (%s, %s, %s)",
        [index, event_id, h],
    )
    level, position = 0, index
    while position & 1:
        sibling = _stored_hashes(cursor, {(level, position - 1)})[(level, position - 1)]
        h = merkle.node_hash(sibling, h)
        level, position = level + 1, position >> 1
        cursor.execute(
            "INSERT INTO incidents_lognode (level, position, hash) VALUES (%s, %s, %s)",
            [level, position, h],
        )
    cursor.execute("UPDATE incidents_loghead SET size = %s WHERE id = 1", [index + 1])
    return index


def number_pending() -> None:
    """Number this transaction's not-yet-numbered events now (PostgreSQL), so that a read later
    in the same transaction sees them in the tree. Outside a transaction there is nothing pending.

    Only for read paths (bundles, checkpoints) and tests, which run inside one transaction: a
    writing transaction must leave the numbering to its commit (module docstring).
    """
    if _is_postgres() and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SET CONSTRAINTS {TRIGGER_NAME} IMMEDIATE; SET CONSTRAINTS {TRIGGER_NAME} DEFERRED"
            )


def index_unindexed_events() -> int:
    """Number, in stored (id) order, every event that has no leaf yet, in bulk; return how many.

    For the migration that introduces the log and for the benchmark: the caller guarantees that
    nothing else appends meanwhile. On PostgreSQL it is a handful of set-based statements (one
    per tree level); on SQLite a loop.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        if not _is_postgres():
            cursor.execute(
                "SELECT e.id, e.hash FROM incidents_event e WHERE NOT EXISTS "
                "(SELECT 1 FROM incidents_logleaf l WHERE l.event_id = e.id) ORDER BY e.id"
            )
            rows = cursor.fetchall()
            for event_id, event_hash in rows:
                append_leaf(cursor, event_id, event_hash)
            return len(rows)
        cursor.execute(
            "INSERT INTO incidents_loghead (id, size) VALUES (1, 0) ON CONFLICT DO NOTHING"
        )
        cursor.execute("SELECT size FROM incidents_loghead WHERE id = 1 FOR UPDATE")
        old_size = cursor.fetchone()[0]
        cursor.execute(
            """
            INSERT INTO incidents_logleaf (log_index, event_id, hash)
            SELECT %s + row_number() OVER (ORDER BY e.id) - 1, e.id,
                   sha256('\\x00'::bytea || decode(e.hash, 'hex'))
            FROM incidents_event e
            WHERE NOT EXISTS (SELECT 1 FROM incidents_logleaf l WHERE l.event_id = e.id)
            """,
            [old_size],
        )
        added = cursor.rowcount
        new_size = old_size + added
        level = 0
        while new_size >> level >= 2:
            # Nodes of level+1 completed by the new leaves: pairs starting at or after the first
            # pair the old tree had not completed.
            first = (old_size >> level) & ~1
            if level == 0:
                source = (
                    "SELECT log_index AS position, hash FROM incidents_logleaf "
                    "WHERE log_index >= %(first)s"
                )
            else:
                source = (
                    "SELECT position, hash FROM incidents_lognode "
                    "WHERE level = %(level)s AND position >= %(first)s"
                )
            cursor.execute(
                f"""
                WITH below AS ({source})
                INSERT INTO incidents_lognode (level, position, hash)
                SELECT %(level)s + 1, a.position / 2, sha256('\\x01'::bytea || a.hash || b.hash)
                FROM below a JOIN below b ON b.position = a.position + 1
                WHERE a.position %% 2 = 0
                ON CONFLICT DO NOTHING
                """,
                {"level": level, "first": first},
            )
            level += 1
        cursor.execute("UPDATE incidents_loghead SET size = %s WHERE id = 1", [new_size])
        return added


# ------------------------------------------------------------------ reading


def tree_size() -> int:
    from trustdesk.incidents.models import LogHead

    number_pending()
    head = LogHead.objects.filter(pk=1).values_list("size", flat=True).first()
    return head or 0


class MissingNodes(ProofError):
    """Some complete subtree a proof needs is not stored: the tree is not that large (yet)."""


def _stored_hashes(cursor, nodes: Iterable[Node]) -> dict[Node, bytes]:
    """The stored hashes of complete subtrees: one query per FETCH_CHUNK nodes (leaves and inner
    nodes together), so a proof is a single round trip."""
    nodes = list(nodes)
    found: dict[Node, bytes] = {}
    for start in range(0, len(nodes), FETCH_CHUNK):
        chunk = nodes[start : start + FETCH_CHUNK]
        leaves = [position for level, position in chunk if level == 0]
        inner = [node for node in chunk if node[0] > 0]
        parts, params = [], []
        if leaves:
            marks = ", ".join(["%s"] * len(leaves))
            parts.append(
                f"SELECT 0, log_index, hash FROM incidents_logleaf WHERE log_index IN ({marks})"
            )
            params += leaves
        if inner:
            marks = ", ".join(["(%s, %s)"] * len(inner))
            parts.append(
                "SELECT level, position, hash FROM incidents_lognode "
                f"WHERE (level, position) IN ({marks})"
            )
            params += [value for node in inner for value in node]
        cursor.execute(" UNION ALL ".join(parts), params)
        found.update(((level, p), bytes(h)) for level, p, h in cursor.fetchall())
    missing = [node for node in nodes if node not in found]
    if missing:
        raise MissingNodes(f"the stored tree lacks node {missing[0]}")
    return found


def node_hashes(nodes: Iterable[Node]) -> dict[Node, bytes]:
    with connection.cursor() as cursor:
        return _stored_hashes(cursor, nodes)


def _check_size(size: int, current: int) -> None:
    if size > current:
        raise ProofError(f"the log has {current} leaves; there is no tree of size {size} yet")


def _hashes_of(ranges: list[tuple[int, int]], size: int) -> list[bytes]:
    """The MTH of each range of the tree at `size`, in one query. Every complete subtree below
    the current size is stored, so a missing one means `size` is past the log's size."""
    number_pending()
    if not ranges:  # a one-leaf tree or equal sizes: nothing to read, but the size must exist
        _check_size(size, tree_size())
        return []
    try:
        stored = node_hashes(merkle.nodes_for(ranges))
    except MissingNodes:
        current = tree_size()
        _check_size(size, current)
        raise ProofError(
            f"the stored tree of {current} leaves lacks a node below size {size}: "
            "run manage.py verify_log"
        ) from None
    return merkle.hashes_for(ranges, stored.__getitem__)


def root(size: int | None = None) -> tuple[int, bytes]:
    """(size, root hash) of the tree at `size` (default: now)."""
    current = tree_size()
    size = current if size is None else size
    _check_size(size, current)
    return size, root_at(size)


def root_at(size: int) -> bytes:
    """The root of the tree at `size` (no larger than the log)."""
    if size == 0:
        return merkle.EMPTY_ROOT
    return _hashes_of([(0, size)], size)[0]


def inclusion_proof(index: int, size: int) -> list[bytes]:
    return _hashes_of(merkle.inclusion_ranges(index, size), size)


def inclusion_proofs(indices: Iterable[int], size: int) -> dict[int, list[bytes]]:
    """Inclusion proofs of many leaves in the tree of `size`, reading each stored node once."""
    ranges = {index: merkle.inclusion_ranges(index, size) for index in set(indices)}
    if not ranges:
        return {}
    flat = sorted({r for rs in ranges.values() for r in rs})
    by_range = dict(zip(flat, _hashes_of(flat, size), strict=True))
    return {index: [by_range[r] for r in rs] for index, rs in ranges.items()}


def consistency_proof(old_size: int, new_size: int) -> list[bytes]:
    return _hashes_of(merkle.consistency_ranges(old_size, new_size), new_size)


def leaf_indices(event_ids: Iterable[int]) -> dict[int, int]:
    """event id -> log_index, for the events that are numbered."""
    from trustdesk.incidents.models import LogLeaf

    number_pending()
    ids = list(event_ids)
    found: dict[int, int] = {}
    for start in range(0, len(ids), FETCH_CHUNK):
        found.update(
            LogLeaf.objects.filter(event_id__in=ids[start : start + FETCH_CHUNK]).values_list(
                "event_id", "log_index"
            )
        )
    return found

"""Signed checkpoints of the transparency log (docs/design.md section 15).

A checkpoint is the C2SP tlog-checkpoint text

    <origin>\\n<tree size>\\n<base64 root hash>\\n

signed as a C2SP signed note with the instance Ed25519 key: a blank line, then
`— <key name> base64(key ID || signature)`, where the key name is the origin and the key ID is the
first four bytes of SHA-256(name || 0x0A || 0x01 || raw public key). The origin is
TRUSTDESK_LOG_ORIGIN, or `trustdesk/<instance id>` (the instance id comes from the key) when unset.

The tree lives in the incidents app (trustdesk/incidents/tlog.py); signing what outsiders are shown
is diligence's, which holds the key, so incidents never import it.
"""

from __future__ import annotations

import base64

from django.conf import settings

from trustdesk.core.errors import Refused
from trustdesk.diligence import signing, verify
from trustdesk.diligence.models import Checkpoint
from trustdesk.incidents import tlog


class CheckpointError(Refused):
    """A checkpoint cannot be made (a bad origin setting, a log that shrank)."""


def origin_problem(origin: str) -> str | None:
    if not origin:
        return "it is empty"
    if any(ch.isspace() for ch in origin):
        return "it contains a space (a checkpoint origin and key name may not)"
    if "+" in origin:
        return "it contains '+' (a signed-note key name may not)"
    if any(ord(ch) < 0x20 for ch in origin):
        return "it contains a control character"
    return None


def log_origin() -> str:
    origin = getattr(settings, "TRUSTDESK_LOG_ORIGIN", "") or (
        f"trustdesk/{signing.public_key().instance_id}"
    )
    if problem := origin_problem(origin):
        raise CheckpointError(f"TRUSTDESK_LOG_ORIGIN {origin!r} cannot be used: {problem}.")
    return origin


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"


def signed_note(text: str, key_name: str) -> str:
    """`text` (ending in a newline) signed by the instance key as a C2SP signed note."""
    raw_key = signing.public_key().raw
    signature = verify.note_key_id(key_name, raw_key) + signing.sign(text.encode("utf-8"))
    return f"{text}\n{verify.EM_DASH} {key_name} {base64.b64encode(signature).decode('ascii')}\n"


def latest_checkpoint() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-size").first()


def make_checkpoint() -> Checkpoint:
    """The checkpoint of the tree as it is now: the latest one when the tree has not grown since,
    otherwise a new one, signed and kept (every checkpoint is kept; none is ever replaced)."""
    size = tlog.tree_size()
    latest = latest_checkpoint()
    if latest is not None and latest.size == size:
        return latest
    if latest is not None and latest.size > size:
        raise CheckpointError(
            f"The log has {size} leaves but a checkpoint of {latest.size} was signed: the log "
            "shrank. Run manage.py verify_log and investigate before signing anything."
        )
    root = tlog.root_at(size)
    origin = log_origin()
    note = signed_note(checkpoint_text(origin, size, root), origin)
    # Two makers racing for one size sign the same text (Ed25519 is deterministic): keep one.
    Checkpoint.objects.bulk_create(
        [Checkpoint(size=size, root_hash=root, origin=origin, note=note)], ignore_conflicts=True
    )
    return Checkpoint.objects.get(size=size)


def verify_log() -> tuple[str, list[str]]:
    """Recompute the tree from the events and check it and every stored checkpoint.

    Returns (summary, problems): each problem names the first mismatch of its kind (a leaf, a
    node, a checkpoint). Streams the leaves and nodes; holds one recomputed tree in memory
    (about 130 MB at a million events).
    """
    from trustdesk.incidents import merkle
    from trustdesk.incidents.models import Event, LogHead, LogLeaf, LogNode

    problems: list[str] = []
    leaves: list[bytes] = []
    rows = (
        LogLeaf.objects.order_by("log_index")
        .values_list("log_index", "hash", "event__hash", "event__incident__key", "event__seq")
        .iterator(chunk_size=5000)
    )
    for index, stored, event_hash, key, seq in rows:
        if index != len(leaves):
            problems.append(f"log index {len(leaves)} is missing (the next leaf is {index})")
            break
        expected = merkle.event_leaf_hash(event_hash)
        if bytes(stored) != expected:
            problems.append(
                f"leaf {index} ({key} event {seq}): the stored leaf hash is not "
                "SHA-256(0x00 || the event's hash)"
            )
            break
        leaves.append(expected)
    unnumbered = Event.objects.filter(leaf__isnull=True).order_by("pk")
    if first := unnumbered.select_related("incident").first():
        problems.append(
            f"{unnumbered.count()} event(s) have no log index "
            f"(the first: {first.incident.key} event {first.seq})"
        )
    size = LogHead.objects.filter(pk=1).values_list("size", flat=True).first() or 0
    if size != len(leaves):
        problems.append(f"the log head says {size} leaves but {len(leaves)} are stored in order")
    tree = merkle.MemoryTree(leaves)
    nodes = 0
    for level, position, stored in (
        LogNode.objects.order_by("level", "position")
        .values_list("level", "position", "hash")
        .iterator(chunk_size=5000)
    ):
        nodes += 1
        if level >= len(tree.levels) or position >= len(tree.levels[level]):
            problems.append(f"node {level}/{position} is stored but the events make no such node")
            break
        if bytes(stored) != tree.node((level, position)):
            problems.append(
                f"node {level}/{position} (leaves {position << level} to "
                f"{((position + 1) << level) - 1}) does not match the events"
            )
            break
    expected_nodes = sum(len(hashes) for hashes in tree.levels[1:])
    if nodes != expected_nodes and not any(p.startswith("node") for p in problems):
        problems.append(f"{nodes} subtree node(s) are stored; the events make {expected_nodes}")
    raw_key = signing.public_key().raw
    checked = 0
    for checkpoint in Checkpoint.objects.order_by("size"):
        label = f"checkpoint {checkpoint.size} (signed {checkpoint.created_at:%Y-%m-%d %H:%M})"
        try:
            parsed = verify.parse_checkpoint(checkpoint.note, label)
            verify.check_checkpoint_signature(parsed, raw_key, label)
        except verify.Mismatch as exc:
            problems.append(str(exc))
            break
        if (parsed.origin, parsed.size, parsed.root) != (
            checkpoint.origin,
            checkpoint.size,
            bytes(checkpoint.root_hash),
        ):
            problems.append(f"{label}: the signed note does not say what the row records")
            break
        if parsed.size > len(leaves):
            problems.append(f"{label}: the log has only {len(leaves)} leaves")
            break
        if parsed.root != tree.root(parsed.size):
            problems.append(
                f"{label}: its root is not the root of the first {parsed.size} events' tree "
                "(the history it signed was changed)"
            )
            break
        checked += 1
    summary = (
        f"The transparency log holds: {len(leaves)} leaves in order, {nodes} subtree node(s) "
        f"equal to the recomputed tree, {checked} signed checkpoint(s) consistent with it."
    )
    return summary, problems

#!/usr/bin/env python3
"""Check a TrustDesk evidence bundle on your own machine. Needs only Python 3.11+.

    python3 verify.py bundle.zip          # the zip as downloaded
    python3 verify.py                     # inside the unzipped bundle folder
    python3 verify.py bundle.zip --expect-key FINGERPRINT
    python3 verify.py NEW.zip --previous OLD.zip   # NEW's history extends OLD's

It checks, and stops at the FIRST thing that does not hold (naming it, exit status 1):
  1. every pact document hashes to the SHA-256 listed for it;
  2. every incident's events: seq counts 1, 2, 3...; each prev_hash is the hash of the event
     before (64 zeros for the first); each hash is
     sha256("trustdesk-event-v1\\n" + prev_hash + canonical); and the event's fields written in
     the manifest (type, at, by, data) are exactly what the hashed canonical bytes say;
  3. each incident's facts in the manifest (state, milestone times, decision, override) agree
     with its events;
  4. every file under evidence/ hashes to its own name, and every evidence item listed as
     included is there;
  5. manifest.sig is an Ed25519 signature of the exact bytes of manifest.json by the instance key
     in the manifest. This needs the `cryptography` package; without it the script says so
     plainly, and checks 1-4 and 6 still run.
  6. the transparency log: checkpoint.txt is a C2SP checkpoint (origin, tree size, root) signed
     as a C2SP signed note by the same instance key (signature checked with `cryptography`);
     every event's leaf, SHA-256(0x00 || its 32-byte hash), leads through its inclusion proof
     to the checkpoint's root at its log_index (RFC 6962 / RFC 9162); no two events share an index.
  7. with --previous OLD.zip: OLD passes every check too, has the same origin and key, and NEW's
     history extends OLD's: NEW carries a consistency proof from OLD's tree size that leads from
     OLD's root to NEW's root, and every event OLD showed is in NEW unchanged, at the same index.
Exit status 0 and a summary when everything holds; 2 when the bundle cannot be read at all.

This file is the same module TrustDesk runs for `manage.py verify_bundle` (copied byte for byte
into each bundle), so what you read here is exactly what the vendor's own check does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

HASH_PREFIX = "trustdesk-event-v1\n"
ZERO_HASH = "0" * 64
BUNDLE_FORMAT = "trustdesk.bundle/v2"
# Bundles made before the transparency log: every check but 6 and 7.
LEGACY_FORMATS = ("trustdesk.bundle/v1",)
CHECKPOINT_FILE = "checkpoint.txt"
EM_DASH = "\u2014"
EVENT_FIELDS = ("type", "at", "by", "data")

# Incident fact -> the event type whose FIRST occurrence sets it.
MILESTONES = {
    "detected_at": "detected",
    "contained_at": "contained",
    "evidence_preserved_at": "evidence_preserved",
    "classified_at": "classified",
    "repaired_at": "repaired",
    "review_requested_at": "review_requested",
    "decided_at": "decision_recorded",
    "reopened_at": "reopened",
    "closed_at": "closed",
}
# An incident is in the state set by its LAST state-changing event (the app derives it so too).
STATE_AFTER = {
    "detected": "detected",
    "contained": "contained",
    "evidence_preserved": "evidence_preserved",
    "classified": "classified",
    "repaired": "repaired",
    "review_requested": "in_review",
    "reopened": "recovered",
    "closed": "closed_restricted",
    "closed_not_incident": "closed_not_incident",
}


class Mismatch(Exception):
    """The first thing in the bundle that does not hold."""


class Unreadable(Exception):
    """The bundle cannot be opened or parsed at all."""


# ------------------------------------------------------------------ canonical JSON


def canonical(value) -> str:
    """Canonical JSON as TrustDesk hashes it: UTF-8, keys sorted, no spaces, no floats
    (decimals as strings), times in UTC with Z. (A test keeps this identical to the app's.)"""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _decimal_text(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written canonically")
    text = format(value.normalize(), "f")
    return "0" if text in {"-0", "0"} else text


def _plain(value):
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return _decimal_text(Decimal(repr(value)))
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("canonical times must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON keys must be strings, not {type(key).__name__}")
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def parse_time(text):
    """A manifest time as an aware datetime (None stays None)."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise Mismatch(f"{text!r} is not a time")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Mismatch(f"{text!r} is not an ISO 8601 time") from None


# ------------------------------------------------------------------ reading the bundle


def read_bundle(path: Path) -> dict[str, bytes]:
    """The bundle's files by name, from a zip or from an unzipped folder."""
    files: dict[str, bytes] = {}
    try:
        if path.is_dir():
            for item in sorted(path.rglob("*")):
                if item.is_file():
                    files[item.relative_to(path).as_posix()] = item.read_bytes()
        else:
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if not name.endswith("/"):
                        files[name] = archive.read(name)
    except (OSError, zipfile.BadZipFile) as exc:
        raise Unreadable(f"cannot read {path}: {exc}") from None
    if "manifest.json" not in files:
        raise Unreadable(f"{path} has no manifest.json: is this a TrustDesk bundle?")
    return files


# ------------------------------------------------------------------ the checks


def check_pacts(manifest: dict) -> set[str]:
    listed = {f"{p['key']}@{p['version']}": p["sha256"] for p in manifest["pact_hashes"]}
    seen = set()
    for doc in manifest["pacts"]:
        label = f"{doc['metadata']['key']}@{doc['metadata']['version']}"
        if label not in listed:
            raise Mismatch(f"pact {label}: no SHA-256 is listed for it")
        if sha256_hex(canonical(doc)) != listed[label]:
            raise Mismatch(f"pact {label}: the document does not hash to its listed SHA-256")
        seen.add(label)
    for label in listed:
        if label not in seen:
            raise Mismatch(f"pact {label}: a SHA-256 is listed but the document is missing")
    return seen


def check_events(incident: dict, may_withhold: bool) -> tuple[list[dict], int]:
    """Check one incident's chain; return its readable events and the number withheld."""
    key = incident["key"]
    prev, readable, withheld = ZERO_HASH, [], 0
    for position, event in enumerate(incident["events"], start=1):
        where = f"{key} event {event.get('seq', '?')}"
        if event.get("seq") != position:
            raise Mismatch(f"{where}: expected seq {position} here (an event is missing or moved)")
        if event["prev_hash"] != prev:
            raise Mismatch(f"{where}: prev_hash is not the hash of event {position - 1}")
        if "canonical" not in event:
            # Withheld (an internal note in a buyer bundle): only its hash is shared, so the
            # chain is checked THROUGH it (the next event must point at this hash).
            if not may_withhold:
                raise Mismatch(f"{where}: withheld, but only a buyer bundle may withhold events")
            withheld += 1
            prev = event["hash"]
            continue
        if sha256_hex(HASH_PREFIX + event["prev_hash"] + event["canonical"]) != event["hash"]:
            raise Mismatch(f"{where}: the hash does not match the canonical bytes")
        try:
            hashed = json.loads(event["canonical"])
        except ValueError:
            raise Mismatch(f"{where}: the canonical bytes are not JSON") from None
        if not isinstance(hashed, dict) or set(hashed) != {"incident", "seq", *EVENT_FIELDS}:
            raise Mismatch(f"{where}: the canonical bytes are not an event record")
        written = {"incident": key, "seq": position, **{f: event.get(f) for f in EVENT_FIELDS}}
        written["data"] = event.get("data") or {}
        for field in ("incident", "seq", *EVENT_FIELDS):
            if canonical(written[field]) != canonical(hashed[field]):
                raise Mismatch(
                    f"{where}: '{field}' in the manifest is {canonical(written[field])} but the "
                    f"hashed bytes say {canonical(hashed[field])}"
                )
        if canonical(hashed) != event["canonical"]:
            raise Mismatch(f"{where}: the canonical bytes are not in canonical form")
        readable.append(hashed)
        prev = event["hash"]
    return readable, withheld


def derived_facts(events: list[dict]) -> dict:
    """What an incident's events say about it: milestone times, state, latest decision."""
    facts: dict = dict.fromkeys(MILESTONES)
    state, decision = None, None
    for event in events:
        for name, event_type in MILESTONES.items():
            if event["type"] == event_type and facts[name] is None:
                facts[name] = event["at"]
        state = STATE_AFTER.get(event["type"], state)
        if event["type"] == "decision_recorded":
            decision = event["data"]
    facts["state"] = state
    facts["decision"] = decision.get("decision") if decision else None
    facts["override"] = bool(decision.get("override")) if decision else None
    return facts


def check_facts(incident: dict, events: list[dict], chain: list[dict]) -> None:
    """`events` are the readable events, `chain` every entry (withheld ones too)."""
    key = incident["key"]
    head = chain[-1]["hash"] if chain else ZERO_HASH
    if incident["event_count"] != len(chain) or incident["last_hash"] != head:
        raise Mismatch(
            f"{key}: the manifest says {incident['event_count']} event(s) ending in "
            f"{incident['last_hash'][:12]}…, but the log has {len(chain)} ending in {head[:12]}… "
            "(events were cut off the end)"
        )
    derived = derived_facts(events)
    for name in MILESTONES:
        if parse_time(incident.get(name)) != parse_time(derived[name]):
            raise Mismatch(
                f"{incident['key']}: {name} in the manifest is {incident.get(name)} but the "
                f"events say {derived[name]}"
            )
    for name in ("state", "decision", "override"):
        if incident.get(name) != derived[name]:
            raise Mismatch(
                f"{incident['key']}: {name} in the manifest is {incident.get(name)!r} but the "
                f"events say {derived[name]!r}"
            )


def check_evidence(manifest: dict, files: dict[str, bytes], anchored: dict[str, set]) -> int:
    """Files must hash to their names; each included item must be there and be named by an
    `evidence_added` event of its incident (so every file is anchored in a hashed event)."""
    present = {
        name.removeprefix("evidence/"): data
        for name, data in files.items()
        if name.startswith("evidence/")
    }
    for name, data in sorted(present.items()):
        if sha256_hex(data) != name:
            raise Mismatch(f"evidence/{name}: the file's SHA-256 is not its name (it was changed)")
    listed = {item["sha256"] for item in manifest["evidence"]}
    for name in sorted(present):
        if name not in listed:
            raise Mismatch(f"evidence/{name}: the file is not listed in the manifest")
    for item in manifest["evidence"]:
        if item["sha256"] not in anchored.get(item["incident"], set()):
            raise Mismatch(
                f"evidence {item['sha256']}: no evidence_added event of {item['incident']} names it"
            )
        if item["included"] and item["sha256"] not in present:
            raise Mismatch(f"evidence/{item['sha256']}: listed as included but missing")
    return len(present)


def check_signature(manifest_bytes: bytes, files: dict[str, bytes], key: dict) -> str:
    """Return a plain sentence about the signature; raise Mismatch when it is wrong."""
    if "manifest.sig" not in files:
        raise Mismatch("manifest.sig is missing: the manifest is not signed")
    try:
        raw_key = bytes.fromhex(key["public_key_hex"])
        signature = bytes.fromhex(files["manifest.sig"].decode("ascii").strip())
    except (ValueError, UnicodeDecodeError):
        raise Mismatch("manifest.sig or the public key is not hex") from None
    if sha256_hex(raw_key) != key["fingerprint"]:
        raise Mismatch("the public key's fingerprint in the manifest is not its SHA-256")
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return (
            "NOT CHECKED: the Python package `cryptography` is not installed here "
            "(pip install cryptography, then run again); every hash above was checked"
        )
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(signature, manifest_bytes)
    except (InvalidSignature, ValueError):
        raise Mismatch("manifest.sig is not a valid signature of manifest.json") from None
    return "valid Ed25519 signature of manifest.json"


# ------------------------------------------------------------------ the transparency log


def leaf_hash(event_hash_hex: str) -> bytes:
    """RFC 6962 leaf of one event: SHA-256(0x00 || the event's 32-byte hash)."""
    return hashlib.sha256(b"\x00" + bytes.fromhex(event_hash_hex)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]):
    """The root an inclusion proof leads to (RFC 9162 2.1.3.2), or None when it cannot be a
    proof for this index and size."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def consistent(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof) -> bool:
    """RFC 9162 2.1.4.2: the tree (new_size, new_root) extends the tree (old_size, old_root)."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def b64_hash(text, what: str) -> bytes:
    """A base64 SHA-256 (32 bytes), or Mismatch naming `what`."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise Mismatch(f"{what}: {text!r} is not base64") from None
    if len(raw) != 32:
        raise Mismatch(f"{what}: not a 32-byte hash")
    return raw


def note_key_id(name: str, raw_public_key: bytes) -> bytes:
    """C2SP signed-note key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n\x01" + raw_public_key).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    """A parsed C2SP tlog-checkpoint in a C2SP signed note."""

    origin: str
    size: int
    root: bytes
    text: str  # the signed text: origin, size and root lines, each ending in a newline
    signatures: tuple  # (key name, 4-byte key ID, signature bytes)


def parse_checkpoint(note: str, what: str = CHECKPOINT_FILE) -> Checkpoint:
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise Mismatch(f"{what}: control characters are not allowed in a signed note")
    text, sep, block = note.rpartition("\n\n")
    if not sep or not note.endswith("\n"):
        raise Mismatch(f"{what}: not a signed note (text, a blank line, signature lines)")
    text += "\n"
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise Mismatch(f"{what}: a checkpoint has origin, tree size and root hash lines")
    origin, size_text, root_text = lines[:3]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise Mismatch(f"{what}: the tree size {size_text!r} is not a decimal number")
    root = b64_hash(root_text, f"{what}: the root hash")
    signatures = []
    for line in block[:-1].split("\n"):
        prefix, _, rest = line.partition(" ")
        name, _, signature = rest.partition(" ")
        if prefix != EM_DASH or not name or not signature or " " in signature:
            raise Mismatch(f"{what}: {line!r} is not a signature line")
        try:
            raw = base64.b64decode(signature, validate=True)
        except ValueError:
            raise Mismatch(f"{what}: the signature of {name} is not base64") from None
        if len(raw) < 5:
            raise Mismatch(f"{what}: the signature of {name} is too short")
        signatures.append((name, raw[:4], raw[4:]))
    return Checkpoint(origin, int(size_text), root, text, tuple(signatures))


def check_checkpoint_signature(checkpoint: Checkpoint, raw_key: bytes, what: str) -> str:
    """The checkpoint must carry a signature by the instance key under its origin's name."""
    wanted = note_key_id(checkpoint.origin, raw_key)
    mine = [s for n, k, s in checkpoint.signatures if n == checkpoint.origin and k == wanted]
    if not mine:
        raise Mismatch(
            f"{what}: no signature by the instance key under the name {checkpoint.origin!r} "
            f"(key ID {wanted.hex()})"
        )
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return "NOT CHECKED: the Python package `cryptography` is not installed here"
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(mine[0], checkpoint.text.encode())
    except (InvalidSignature, ValueError):
        raise Mismatch(f"{what}: the signature is not valid for the checkpoint text") from None
    return "valid Ed25519 signature of the checkpoint"


def check_log(manifest: dict, files: dict[str, bytes]):
    """Check 6: returns (checkpoint, signature sentence, {(incident, seq): (index, hash)})."""
    log = manifest["log"]
    if CHECKPOINT_FILE not in files:
        raise Mismatch(f"{CHECKPOINT_FILE} is missing: the bundle is not anchored to the log")
    try:
        note = files[CHECKPOINT_FILE].decode("utf-8")
    except UnicodeDecodeError:
        raise Mismatch(f"{CHECKPOINT_FILE} is not UTF-8") from None
    checkpoint = parse_checkpoint(note)
    stated = (log["origin"], log["size"], log["root"])
    actual = (checkpoint.origin, checkpoint.size, base64.b64encode(checkpoint.root).decode())
    for name, said, found in zip(("origin", "size", "root"), stated, actual, strict=True):
        if said != found:
            raise Mismatch(
                f"{CHECKPOINT_FILE}: its {name} is {found!r} but the manifest says {said!r}"
            )
    raw_key = bytes.fromhex(manifest["bundle"]["public_key"]["public_key_hex"])
    signature = check_checkpoint_signature(checkpoint, raw_key, CHECKPOINT_FILE)
    placed: dict[tuple[str, int], tuple[int, str]] = {}
    owners: dict[int, str] = {}
    for incident in manifest["incidents"]:
        for event in incident["events"]:
            where = f"{incident['key']} event {event['seq']}"
            index = event.get("log_index")
            if not isinstance(index, int) or isinstance(index, bool):
                raise Mismatch(f"{where}: no log_index")
            if index in owners:
                raise Mismatch(f"{where}: log index {index} is also claimed by {owners[index]}")
            owners[index] = where
            proof = [
                b64_hash(h, f"{where}: inclusion proof hash {n}")
                for n, h in enumerate(event.get("inclusion_proof") or [])
            ]
            reached = root_from_inclusion(index, checkpoint.size, leaf_hash(event["hash"]), proof)
            if reached != checkpoint.root:
                raise Mismatch(
                    f"{where} (log index {index}): its inclusion proof does not lead to the "
                    f"checkpoint's root at tree size {checkpoint.size}"
                )
            placed[(incident["key"], event["seq"])] = (index, event["hash"])
    return checkpoint, signature, placed


def check_extends(new: dict, old: dict) -> str:
    """Check 7: `new` and `old` are what check_bundle_parts returned for each bundle."""
    new_cp, old_cp = new["checkpoint"], old["checkpoint"]
    if new_cp is None or old_cp is None:
        which = "the new" if new_cp is None else "the previous"
        raise Mismatch(f"{which} bundle predates the transparency log: nothing to compare")
    if new_cp.origin != old_cp.origin:
        raise Mismatch(
            f"the previous bundle is from log {old_cp.origin!r}, the new one from {new_cp.origin!r}"
        )
    if new["key"] != old["key"]:
        raise Mismatch(
            f"the previous bundle is signed by key {old['key']}, the new one by {new['key']}"
        )
    if new_cp.size < old_cp.size:
        raise Mismatch(
            f"the new bundle's tree (size {new_cp.size}) is smaller than the previous "
            f"bundle's (size {old_cp.size}): a log never shrinks"
        )
    proof_info = new["manifest"]["log"].get("consistency")
    if new_cp.size == old_cp.size:
        if new_cp.root != old_cp.root:
            raise Mismatch(
                f"both bundles are at tree size {new_cp.size} but their roots differ: the "
                "history was rewritten"
            )
    else:
        if not proof_info:
            raise Mismatch(
                "the new bundle carries no consistency proof; export it with "
                f"--since-checkpoint {old_cp.size} (or give {old_cp.size} on the share link page)"
            )
        if proof_info.get("from") != old_cp.size or proof_info.get("to") != new_cp.size:
            raise Mismatch(
                f"the new bundle's consistency proof runs from size {proof_info.get('from')} to "
                f"{proof_info.get('to')}, not from the previous bundle's size {old_cp.size} to "
                f"{new_cp.size}; export it with --since-checkpoint {old_cp.size}"
            )
        proof = [
            b64_hash(h, f"consistency proof hash {n}")
            for n, h in enumerate(proof_info.get("proof") or [])
        ]
        if not consistent(old_cp.size, new_cp.size, old_cp.root, new_cp.root, proof):
            raise Mismatch(
                f"the new history does not extend the previous one: the consistency proof "
                f"from size {old_cp.size} does not lead from the previous root to the new root"
            )
    for (key, seq), (index, event_hash) in sorted(old["placed"].items(), key=lambda i: i[1][0]):
        now = new["placed"].get((key, seq))
        if now is None:
            continue  # the new bundle may cover other agents or incidents
        if now != (index, event_hash):
            raise Mismatch(
                f"{key} event {seq} changed since the previous bundle: it was log index {index} "
                f"with hash {event_hash[:12]}…, now log index {now[0]} with hash {now[1][:12]}…"
            )
    return (
        f"extends the previous bundle: its tree of {old_cp.size} leaves is the start of this one "
        f"({new_cp.size} leaves)"
    )


def check_bundle(
    path: str | Path, expect_key: str | None = None, previous: str | Path | None = None
) -> str:
    """Run every check; return the summary, or raise Mismatch (first problem) / Unreadable.
    With `previous`, also check that this bundle's history extends the previous bundle's."""
    new = check_bundle_parts(path, expect_key)
    lines = new["lines"]
    if previous is not None:
        name = Path(previous).name
        try:
            old = check_bundle_parts(previous, expect_key)
        except Unreadable as exc:
            raise Unreadable(f"the previous bundle: {exc}") from None
        except Mismatch as exc:
            raise Mismatch(f"the previous bundle {name}: {exc}") from None
        lines.append(f"  previous bundle {name}: " + check_extends(new, old))
    return "\n".join(lines)


def check_bundle_parts(path: str | Path, expect_key: str | None = None) -> dict:
    """Every check of one bundle; returns what check_extends compares and the summary lines."""
    files = read_bundle(Path(path))
    manifest_bytes = files["manifest.json"]
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
    except ValueError as exc:
        raise Mismatch(f"manifest.json is not valid JSON: {exc}") from None
    try:
        return _check_manifest(manifest, manifest_bytes, files, expect_key)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise Mismatch(f"manifest.json is malformed (missing or wrong field: {exc})") from None


def _check_manifest(manifest, manifest_bytes, files, expect_key) -> dict:
    about = manifest["bundle"]
    if about["format"] != BUNDLE_FORMAT and about["format"] not in LEGACY_FORMATS:
        raise Mismatch(f"unknown bundle format {about['format']!r}")
    pacts = check_pacts(manifest)
    events = withheld = 0
    anchored: dict[str, set] = {}  # incident key -> the evidence hashes its events name
    for incident in manifest["incidents"]:
        pact = f"{incident.get('pact')}@{incident.get('pact_version')}"
        if incident.get("pact") is not None and pact not in pacts:
            raise Mismatch(f"{incident['key']}: its pact {pact} is not in the bundle")
        readable, hidden = check_events(incident, about["audience"] == "buyer")
        check_facts(incident, readable, incident["events"])
        events, withheld = events + len(readable) + hidden, withheld + hidden
        anchored[incident["key"]] = {
            e["data"].get("sha256") for e in readable if e["type"] == "evidence_added"
        }
    evidence = check_evidence(manifest, files, anchored)
    key = about["public_key"]
    if expect_key and expect_key.replace(":", "").lower() != key["fingerprint"]:
        raise Mismatch(f"the bundle is signed by key {key['fingerprint']}, not {expect_key}")
    checkpoint, placed = None, {}
    if about["format"] == BUNDLE_FORMAT:
        checkpoint, checkpoint_signature, placed = check_log(manifest, files)
    signature = check_signature(manifest_bytes, files, key)
    lines = [
        f"OK: every check holds. Bundle made {about['created_at']} by "
        f"{about['instance']['name']} ({about['instance']['id']}).",
        f"  {len(pacts)} pact document(s) match their SHA-256.",
        f"  {len(manifest['incidents'])} incident(s), {events} event(s): every hash and chain "
        "link holds, and the incident facts agree with the events.",
        f"  {evidence} evidence file(s) match their SHA-256.",
        f"  signature: {signature}",
        f"  instance key fingerprint: {key['fingerprint']}",
    ]
    if withheld:
        lines.insert(
            4,
            f"  {withheld} internal note(s) withheld: shared as hashes only; the chain was "
            "checked through them.",
        )
    if checkpoint is None:
        lines.append("  transparency log: none (this bundle was made before the log existed)")
    else:
        lines += [
            f"  transparency log: every event's inclusion proof leads to the checkpoint's root "
            f"({len(placed)} event(s)).",
            f"  checkpoint: origin {checkpoint.origin}, tree size {checkpoint.size}, root "
            f"{base64.b64encode(checkpoint.root).decode()}",
            f"  checkpoint signature: {checkpoint_signature}",
        ]
    return {
        "manifest": manifest,
        "checkpoint": checkpoint,
        "placed": placed,
        "key": key["fingerprint"],
        "lines": lines,
    }


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    options = {"--expect-key": None, "--previous": None}
    for option in options:
        if option in args:
            at = args.index(option)
            if at + 1 >= len(args):
                print(f"{option} needs a value", file=sys.stderr)
                return 2
            options[option] = args.pop(at + 1)
            args.pop(at)
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    path = Path(args[0]) if args else Path(__file__).resolve().parent
    try:
        print(check_bundle(path, options["--expect-key"], options["--previous"]))
    except Unreadable as exc:
        print(f"CANNOT READ: {exc}", file=sys.stderr)
        return 2
    except Mismatch as exc:
        print(f"MISMATCH: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

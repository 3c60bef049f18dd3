#!/usr/bin/env python3
"""Check a TrustDesk evidence bundle on your own machine. Needs only Python 3.11+.

    python3 verify.py bundle.zip          # the zip as downloaded
    python3 verify.py                     # inside the unzipped bundle folder
    python3 verify.py bundle.zip --expect-key FINGERPRINT

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
     plainly, and checks 1-4 still run.
Exit status 0 and a summary when everything holds; 2 when the bundle cannot be read at all.

This file is the same module TrustDesk runs for `manage.py verify_bundle` (copied byte for byte
into each bundle), so what you read here is exactly what the vendor's own check does.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

HASH_PREFIX = "trustdesk-event-v1\n"
ZERO_HASH = "0" * 64
BUNDLE_FORMAT = "trustdesk.bundle/v1"
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


def check_bundle(path: str | Path, expect_key: str | None = None) -> str:
    """Run every check; return the summary, or raise Mismatch (first problem) / Unreadable."""
    files = read_bundle(Path(path))
    manifest_bytes = files["manifest.json"]
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
    except ValueError as exc:
        raise Mismatch(f"manifest.json is not valid JSON: {exc}") from None
    try:
        return _check_manifest(manifest, manifest_bytes, files, expect_key)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise Mismatch(f"manifest.json is malformed (missing or wrong field: {exc})") from None


def _check_manifest(manifest, manifest_bytes, files, expect_key) -> str:
    about = manifest["bundle"]
    if about["format"] != BUNDLE_FORMAT:
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
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    expect_key = None
    if "--expect-key" in args:
        at = args.index("--expect-key")
        if at + 1 >= len(args):
            print("--expect-key needs a fingerprint", file=sys.stderr)
            return 2
        expect_key = args.pop(at + 1)
        args.pop(at)
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    path = Path(args[0]) if args else Path(__file__).resolve().parent
    try:
        print(check_bundle(path, expect_key))
    except Unreadable as exc:
        print(f"CANNOT READ: {exc}", file=sys.stderr)
        return 2
    except Mismatch as exc:
        print(f"MISMATCH: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

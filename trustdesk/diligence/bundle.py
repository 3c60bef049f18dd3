"""The evidence bundle (docs/design.md sections 7 and 8): a signed zip that anyone can check
offline.

    manifest.json   the exchange format, plus each event's seq, hash, prev_hash and canonical
                    bytes, the pact documents' SHA-256, the evidence list, and who made it when
    manifest.sig    Ed25519 signature of the exact bytes of manifest.json, hex
    checkpoint.txt  the transparency log checkpoint the bundle is anchored to (section 15): the
                    signed note exactly as GET /log/checkpoint serves it. Each event in the
                    manifest carries its `log_index` and `inclusion_proof` (base64 hashes) up
                    to that checkpoint's root, and `log.consistency` carries, when asked for
                    (`since_checkpoint`), the consistency proof from an earlier tree size
    evidence/<sha256>  the evidence content (always in an internal bundle; in a buyer bundle only
                    when the share link includes evidence)
    README.txt      how to check it, in plain words
    verify.py       trustdesk/diligence/verify.py, byte for byte (stdlib only)

Internal notes in a buyer bundle: an event's canonical bytes are what its hash covers, so they
cannot be redacted without breaking the chain. A buyer bundle therefore carries every event's
seq, prev_hash and hash, but the canonical bytes and fields only of shareable events; an internal
note (`note` with `internal` not false) is represented by its hash alone, and verify.py checks the
chain THROUGH it (the next event must name that hash as its prev_hash). The incident facts never
depend on notes, so they are still checked in full.

User names: the `by` of an event is inside its hashed bytes, so a bundle necessarily carries the
account names of the people who recorded the shareable events (the buyer web pages show no
names at all). Internal notes, the one free-text channel meant for colleagues only, are withheld.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from trustdesk.core.canonical import format_time
from trustdesk.diligence import signing, verify
from trustdesk.diligence.checkpoints import CheckpointError, make_checkpoint
from trustdesk.diligence.models import Checkpoint
from trustdesk.incidents import evidence as store
from trustdesk.incidents import tlog
from trustdesk.incidents.exchange import export_document
from trustdesk.incidents.merkle import ProofError
from trustdesk.incidents.models import Event, Evidence, Incident
from trustdesk.pacts.models import Agent, PactVersion

BUNDLE_FORMAT = verify.BUNDLE_FORMAT
INTERNAL_AUDIENCE = "internal"
BUYER_AUDIENCE = "buyer"
CHUNK = 64 * 1024
WITHHELD_NOTE = "internal note"


class BundleError(Exception):
    """The bundle cannot be made honestly (e.g. an evidence file no longer matches its hash)."""


@dataclass
class BundleScope:
    """What goes into a bundle. `incident_keys` None means every incident of the agents."""

    agents: list[Agent]
    audience: str = INTERNAL_AUDIENCE
    include_evidence: bool = True
    incident_keys: list[str] | None = None
    # The tree size of a checkpoint the reader already holds: the bundle then carries the
    # consistency proof from it to its own checkpoint (section 15).
    since_checkpoint: int | None = None

    def incidents(self):
        qs = Incident.objects.filter(agent__in=self.agents)
        if self.incident_keys is not None:
            qs = qs.filter(key__in=self.incident_keys)
        return qs.select_related("agent", "pact_version__pact").order_by("number")


def link_scope(link) -> BundleScope:
    """What a share link shows and bundles: its agents, and its chosen incidents if any."""
    keys = list(link.incidents.order_by("number").values_list("key", flat=True))
    return BundleScope(
        agents=list(link.agents.order_by("key")),
        audience=BUYER_AUDIENCE,
        include_evidence=link.include_evidence,
        incident_keys=keys or None,
    )


@dataclass
class BundleSummary:
    agents: int = 0
    pacts: int = 0
    incidents: int = 0
    events: int = 0
    withheld: int = 0
    evidence_files: int = 0
    fingerprint: str = ""
    incident_keys: list[str] = field(default_factory=list)
    log_origin: str = ""
    log_size: int = 0


def instance_name() -> str:
    return getattr(settings, "TRUSTDESK_INSTANCE_NAME", "TrustDesk")


#: Event types that carry free text meant for colleagues unless marked otherwise (docs/design.md
# section 11).
INTERNAL_BY_DEFAULT = ("note", "signed_off")


def is_withheld(event_type: str, data: dict, audience: str) -> bool:
    """In a buyer bundle, a note or a sign-off is shared only when explicitly marked not
    internal."""
    return (
        audience == BUYER_AUDIENCE
        and event_type in INTERNAL_BY_DEFAULT
        and data.get("internal") is not False
    )


# ------------------------------------------------------------------ the manifest


def _withhold(event: dict, audience: str) -> dict:
    """A buyer bundle keeps an internal note's place in the chain but not its bytes."""
    if is_withheld(event["type"], event.get("data") or {}, audience):
        return {
            "seq": event["seq"],
            "prev_hash": event["prev_hash"],
            "hash": event["hash"],
            "withheld": WITHHELD_NOTE,
        }
    return event


def _facts(row: dict, events: list[dict]) -> dict:
    """The incident facts verify.py cross-checks against the events: the denormalized columns as
    stored (so a drift between the columns and the log shows up), and the recorded decision."""
    facts = {
        "state": row["state"],
        "event_count": row["event_count"],
        "last_hash": row["last_hash"],
    }
    for name in verify.MILESTONES:
        facts[name] = format_time(row[name]) if row[name] else None
    decision = None
    for event in events:
        if event["type"] == "decision_recorded":
            decision = event.get("data") or {}
    facts["decision"] = decision.get("decision") if decision else None
    facts["override"] = bool(decision.get("override")) if decision else None
    return facts


def _b64(hashes: list[bytes]) -> list[str]:
    import base64

    return [base64.b64encode(h).decode("ascii") for h in hashes]


def anchor_in_log(incidents: list[dict], scope: BundleScope) -> tuple[Checkpoint, dict]:
    """Give every bundled event its log_index and inclusion proof, and return the checkpoint
    they lead to with the manifest's `log` section.

    The checkpoint is made (or reused) AFTER the events were read, so its tree contains every
    one of them: an event is numbered in the same commit that stores it.
    """
    hashes = [event["hash"] for incident in incidents for event in incident["events"]]
    tlog.number_pending()
    indices: dict[str, int] = {}
    for start in range(0, len(hashes), tlog.FETCH_CHUNK):
        indices.update(
            Event.objects.filter(hash__in=hashes[start : start + tlog.FETCH_CHUNK]).values_list(
                "hash", "leaf__log_index"
            )
        )
    try:
        checkpoint = make_checkpoint()
    except (CheckpointError, signing.SigningKeyError) as exc:
        raise BundleError(f"The log checkpoint cannot be signed: {exc}") from exc
    since = scope.since_checkpoint
    if since is not None and not 1 <= since <= checkpoint.size:
        raise BundleError(
            f"No consistency proof from tree size {since}: the log's checkpoint is at size "
            f"{checkpoint.size}, so an earlier checkpoint's size is between 1 and "
            f"{checkpoint.size}."
        )
    unnumbered = [h for h in hashes if indices.get(h) is None]
    if unnumbered:
        raise BundleError(
            f"An event ({unnumbered[0][:12]}…) is not in the transparency log yet; the bundle "
            "was not made. Try again in a moment, then run manage.py verify_log."
        )
    try:
        proofs = tlog.inclusion_proofs(indices.values(), checkpoint.size)
        consistency = tlog.consistency_proof(since, checkpoint.size) if since else None
    except ProofError as exc:
        raise BundleError(f"The log cannot prove the bundle's events: {exc}") from exc
    for incident in incidents:
        for event in incident["events"]:
            index = indices[event["hash"]]
            event["log_index"] = index
            event["inclusion_proof"] = _b64(proofs[index])
    log = {
        "origin": checkpoint.origin,
        "size": checkpoint.size,
        "root": checkpoint.root_base64,
        "checkpoint": verify.CHECKPOINT_FILE,
        "consistency": (
            {"from": since, "to": checkpoint.size, "proof": _b64(consistency)}
            if consistency is not None
            else None
        ),
    }
    return checkpoint, log


def build_manifest(
    scope: BundleScope, public_key: signing.PublicKey
) -> tuple[dict, list, Checkpoint]:
    """The manifest and the evidence items whose content goes into the zip.

    The incidents, agents and pact versions in force come from the one exchange exporter
    (incidents.exchange.export_document, with hashes); the bundle adds the incident facts, the
    shared agents' active pacts, the pact hashes, the evidence list and who made it when.
    """
    incidents = scope.incidents()
    exchange = export_document(incidents, with_hashes=True)
    rows = {
        row["key"]: row
        for row in incidents.values(
            "key", "state", "event_count", "last_hash", "detected_at", *verify.MILESTONES
        )
    }
    for item in exchange["incidents"]:
        facts = _facts(rows[item["key"]], item["events"])
        events = [_withhold(event, scope.audience) for event in item.pop("events")]
        item.update(facts, events=events)
    checkpoint, log = anchor_in_log(exchange["incidents"], scope)

    # The shared agents' active pacts join the versions the incidents were under.
    documents = {(d["metadata"]["key"], d["metadata"]["version"]): d for d in exchange["pacts"]}
    labels = [Q(pact__key=key, number=number) for key, number in documents]
    wanted = Q(pact__agent__in=scope.agents, status="active")
    for label in labels:
        wanted |= label
    versions = {
        (v.pact.key, v.number): v for v in PactVersion.objects.filter(wanted).select_related("pact")
    }
    for key, version in versions.items():
        # Parsed back from the exact text the SHA-256 covers, never re-serialized.
        documents.setdefault(key, json.loads(version.canonical))
    agents = {a["key"]: a for a in exchange["agents"]}
    for agent in scope.agents:
        agents.setdefault(agent.key, {"key": agent.key, "name": agent.name, "owner": agent.owner})

    evidence = list(
        Evidence.objects.filter(incident__in=incidents)
        .select_related("incident")
        .order_by("incident__number", "captured_at", "pk")
    )
    manifest = {
        "format": exchange["format"],
        "bundle": {
            "format": BUNDLE_FORMAT,
            "created_at": format_time(timezone.now()),
            "instance": {"id": public_key.instance_id, "name": instance_name()},
            "public_key": {
                "algorithm": "Ed25519",
                "public_key_hex": public_key.hex,
                "fingerprint": public_key.fingerprint,
            },
            "audience": scope.audience,
            "scope": {
                "agents": [a.key for a in scope.agents],
                "incidents": scope.incident_keys,
            },
            "evidence_included": scope.include_evidence,
            "withheld": (
                "Internal notes are shared as their hash only; the chain is checked through them."
                if scope.audience == BUYER_AUDIENCE
                else "Nothing: this is an internal bundle with every event."
            ),
        },
        "log": log,
        "agents": [agents[key] for key in sorted(agents)],
        "pacts": [documents[key] for key in sorted(documents)],
        "pact_hashes": [
            {"key": key[0], "version": key[1], "sha256": versions[key].sha256}
            for key in sorted(documents)
        ],
        "incidents": exchange["incidents"],
        "evidence": [
            {
                "incident": item.incident.key,
                "sha256": item.sha256,
                "size": item.size,
                "kind": item.kind,
                "content": item.content_type,
                "included": scope.include_evidence,
            }
            for item in evidence
        ],
    }
    return manifest, (evidence if scope.include_evidence else []), checkpoint


# ------------------------------------------------------------------ the zip


def _evidence_source(item: Evidence) -> BinaryIO:
    """The exact bytes whose SHA-256 is recorded: the stored file, or the UTF-8 text / URL."""
    if item.storage_path:
        try:
            return store.open_blob(item)
        except (OSError, ValueError) as exc:
            raise BundleError(
                f"Evidence {item.sha256[:12]} of {item.incident.key} cannot be read from the "
                f"evidence store ({exc}); the bundle was not made."
            ) from exc
    text = item.text if item.content_type == "text" else item.url
    return io.BytesIO(text.encode("utf-8"))


def _copy_evidence(archive: zipfile.ZipFile, item: Evidence) -> None:
    import hashlib

    digest = hashlib.sha256()
    with _evidence_source(item) as source, archive.open(f"evidence/{item.sha256}", "w") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != item.sha256:
        raise BundleError(
            f"Evidence {item.sha256[:12]} of {item.incident.key} no longer matches its SHA-256 "
            "in the evidence store; the bundle was not made. Investigate the store."
        )


def readme_text(manifest: dict) -> str:
    about = manifest["bundle"]
    withheld = (
        "\nThis bundle was made for a buyer. Internal notes (colleague-to-colleague remarks) are\n"
        "left out: each one appears only as its hash, in its place in the chain, and verify.py\n"
        "checks that the events before and after it still link through that hash. Every other\n"
        "event is complete. The `by` field of an event is part of its hashed bytes, so it is\n"
        "kept as recorded.\n"
        if about["audience"] == BUYER_AUDIENCE
        else ""
    )
    log = manifest["log"]
    since = (
        f"\nThis bundle carries a consistency proof from tree size {log['consistency']['from']}.\n"
        if log["consistency"]
        else ""
    )
    evidence = (
        "evidence/     the evidence files, each named by its SHA-256\n"
        if about["evidence_included"]
        else "(evidence files are not included in this bundle; their SHA-256 are listed)\n"
    )
    return f"""TrustDesk evidence bundle
=========================

Made {about["created_at"]} by {about["instance"]["name"]} ({about["instance"]["id"]}).
Instance public key fingerprint (SHA-256 of the Ed25519 public key):
    {about["public_key"]["fingerprint"]}

What is inside
--------------
manifest.json the pacts, incidents and their full event logs, with every hash
manifest.sig  the instance's Ed25519 signature of the exact bytes of manifest.json
checkpoint.txt  the transparency log checkpoint this bundle is anchored to (see below)
{evidence}verify.py     a short checker that needs only Python 3.11 or newer; read it first
README.txt    this file

How to check it
---------------
    python3 verify.py bundle.zip

or unzip it and run, inside the folder:

    python3 verify.py

It recomputes the SHA-256 of every pact document, every event and every evidence file, checks that
each event points at the hash of the one before it (so nothing was removed, added or reordered),
that the fields written in the manifest are exactly the hashed bytes, and that each incident's
state, times and decision agree with its events. It stops at the first thing that does not match,
names it, and exits with status 1. When everything holds it prints a summary and exits with 0.

The signature is checked when the Python package `cryptography` is installed
(pip install cryptography); without it verify.py says so plainly and still runs every hash check.
To be sure the bundle comes from the vendor you expect, compare the fingerprint above with the one
shown on their diligence page, or pass it in:

    python3 verify.py bundle.zip --expect-key {about["public_key"]["fingerprint"]}

The transparency log
--------------------
Every event of this instance, for every agent, is a leaf of one append-only Merkle tree
(RFC 6962). checkpoint.txt states the tree's origin, size and root, signed by the instance key:

    origin {log["origin"]}
    tree size {log["size"]}
    root {log["root"]}

verify.py checks that every event in this bundle is in that tree (its inclusion proof leads to
the root). Keep this bundle. When you get the next one, ask for it with this tree size
({log["size"]}: on the share link page, or `export_bundle --since-checkpoint {log["size"]}`); it
then carries a consistency proof, and

    python3 verify.py NEW.zip --previous THIS.zip

checks that the new history extends this one: nothing shown here was changed or removed.
{since}{withheld}"""


def write_bundle(out: BinaryIO, scope: BundleScope) -> BundleSummary:
    """Write the zip to a binary file object; raise BundleError when it cannot be made honestly."""
    key = signing.public_key()
    manifest, evidence, checkpoint = build_manifest(scope, key)
    manifest_bytes = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", manifest_bytes)
        archive.writestr("manifest.sig", signing.sign(manifest_bytes).hex() + "\n")
        archive.writestr(verify.CHECKPOINT_FILE, checkpoint.note.encode("utf-8"))
        archive.writestr("README.txt", readme_text(manifest))
        archive.writestr("verify.py", Path(verify.__file__).read_bytes())
        seen: set[str] = set()
        for item in evidence:
            if item.sha256 not in seen:  # the same content attached twice is one file
                _copy_evidence(archive, item)
                seen.add(item.sha256)
    incidents = manifest["incidents"]
    return BundleSummary(
        agents=len(manifest["agents"]),
        pacts=len(manifest["pacts"]),
        incidents=len(incidents),
        events=sum(len(i["events"]) for i in incidents),
        withheld=sum(1 for i in incidents for e in i["events"] if "withheld" in e),
        evidence_files=len(seen),
        fingerprint=key.fingerprint,
        incident_keys=[i["key"] for i in incidents],
        log_origin=checkpoint.origin,
        log_size=checkpoint.size,
    )


def bundle_file(scope: BundleScope) -> tuple[BinaryIO, BundleSummary]:
    """The bundle in a temporary file, rewound, for streaming as a download (caller closes)."""
    handle = tempfile.TemporaryFile()  # noqa: SIM115  (the response closes it)
    try:
        summary = write_bundle(handle, scope)
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    return handle, summary


def export_to_path(path: Path, scope: BundleScope) -> BundleSummary:
    """Write the bundle next to `path` and move it into place, so no half-written zip remains."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with tmp.open("wb") as handle:
            summary = write_bundle(handle, scope)
        shutil.move(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return summary

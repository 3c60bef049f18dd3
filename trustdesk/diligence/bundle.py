"""The evidence bundle (DESIGN.md sections 7 and 8): a signed zip that anyone can check offline.

    manifest.json   the exchange format, plus each event's seq, hash, prev_hash and canonical
                    bytes, the pact documents' SHA-256, the evidence list, and who made it when
    manifest.sig    Ed25519 signature of the exact bytes of manifest.json, hex
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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.utils import timezone

from trustdesk.core.canonical import format_time
from trustdesk.diligence import signing, verify
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


def instance_name() -> str:
    return getattr(settings, "TRUSTDESK_INSTANCE_NAME", "TrustDesk")


def is_withheld(event_type: str, data: dict, audience: str) -> bool:
    """In a buyer bundle, a note is shared only when explicitly marked not internal."""
    return audience == BUYER_AUDIENCE and event_type == "note" and data.get("internal") is not False


# ------------------------------------------------------------------ the manifest


def _pact_versions(agents: Iterable[Agent], incidents: list[Incident]) -> list[PactVersion]:
    """The active versions of the agents' pacts, plus every version an incident was under."""
    referenced = {i.pact_version_id for i in incidents if i.pact_version_id}
    versions = PactVersion.objects.filter(pact__agent__in=agents, status="active") | (
        PactVersion.objects.filter(pk__in=referenced)
    )
    return list(versions.select_related("pact").order_by("pact__key", "number"))


def _event_entry(ev: Event, audience: str) -> dict:
    base = {"seq": ev.seq, "prev_hash": ev.prev_hash, "hash": ev.hash}
    if is_withheld(ev.type, ev.data, audience):
        return {**base, "withheld": WITHHELD_NOTE}
    entry = {
        "type": ev.type,
        "at": format_time(ev.at),
        "by": ev.actor_name or None,
        "data": ev.data,
        **base,
        "canonical": ev.canonical,
    }
    return entry


def _incident_entry(incident: Incident, events: list[Event], audience: str) -> dict:
    decision = None
    for ev in events:
        if ev.type == "decision_recorded":
            decision = ev.data
    pv = incident.pact_version
    entry = {
        "key": incident.key,
        "agent": incident.agent.key,
        "pact": pv.pact.key if pv else None,
        "pact_version": pv.number if pv else None,
        "severity": incident.severity,
        "title": incident.title,
        "state": incident.state,
    }
    for name in verify.MILESTONES:
        value = getattr(incident, name)
        entry[name] = format_time(value) if value else None
    entry["decision"] = decision.get("decision") if decision else None
    entry["override"] = bool(decision.get("override")) if decision else None
    entry["events"] = [_event_entry(ev, audience) for ev in events]
    return entry


def build_manifest(scope: BundleScope, public_key: signing.PublicKey) -> tuple[dict, list]:
    """The manifest and the evidence items whose content goes into the zip."""
    incidents = list(scope.incidents())
    events: dict[int, list[Event]] = {i.pk: [] for i in incidents}
    for ev in Event.objects.filter(incident__in=incidents).order_by("incident_id", "seq"):
        events[ev.incident_id].append(ev)
    evidence = list(
        Evidence.objects.filter(incident__in=incidents)
        .select_related("incident")
        .order_by("incident__number", "captured_at", "pk")
    )
    versions = _pact_versions(scope.agents, incidents)
    agents = sorted(
        {a.pk: a for a in [*scope.agents, *(i.agent for i in incidents)]}.values(),
        key=lambda a: a.key,
    )
    manifest = {
        "format": "trustdesk.incidents/v1",
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
        "agents": [{"key": a.key, "name": a.name, "owner": a.owner} for a in agents],
        # The document is parsed back from the stored canonical text, so it is exactly what the
        # SHA-256 covers (never re-serialized from another column).
        "pacts": [json.loads(v.canonical) for v in versions],
        "pact_hashes": [
            {"key": v.pact.key, "version": v.number, "sha256": v.sha256} for v in versions
        ],
        "incidents": [_incident_entry(i, events[i.pk], scope.audience) for i in incidents],
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
    files = evidence if scope.include_evidence else []
    return manifest, files


# ------------------------------------------------------------------ the zip


def _evidence_source(item: Evidence) -> BinaryIO:
    """The exact bytes whose SHA-256 is recorded: the stored file, or the UTF-8 text / URL."""
    if item.storage_path:
        media = Path(settings.MEDIA_ROOT).resolve()
        path = (media / item.storage_path).resolve()
        if not path.is_relative_to(media / "evidence"):
            raise BundleError(f"Evidence {item.sha256[:12]} has a path outside the evidence store.")
        try:
            return path.open("rb")
        except OSError as exc:
            raise BundleError(
                f"Evidence {item.sha256[:12]} of {item.incident.key} is missing from the "
                f"evidence store ({exc.strerror})."
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
{withheld}"""


def write_bundle(out: BinaryIO, scope: BundleScope) -> BundleSummary:
    """Write the zip to a binary file object; raise BundleError when it cannot be made honestly."""
    key = signing.public_key()
    manifest, evidence = build_manifest(scope, key)
    manifest_bytes = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", manifest_bytes)
        archive.writestr("manifest.sig", signing.sign(manifest_bytes).hex() + "\n")
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

"""Incidents with a full history, built through the lifecycle primitives, for bundle tests."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from tests.builders import (
    classify,
    contain,
    decide,
    fresh,
    ready_for_review,
    repair,
    request_review,
)
from tests.factories import AgentFactory, make_incident, make_pact_version
from trustdesk.incidents.journal import append_event, locked_incident
from trustdesk.incidents.models import Evidence, Incident
from trustdesk.incidents.transitions import advance

SECRET_NOTE = "Internal only: the refund API key was pasted in ticket 8812 (do not share)"
PUBLIC_NOTE = "Customer contacted and refunded by hand."


def _store_file(content: bytes) -> tuple[str, str]:
    sha = hashlib.sha256(content).hexdigest()
    rel = f"evidence/{sha[:2]}/{sha}"
    path = Path(settings.MEDIA_ROOT) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return sha, rel


def add_evidence_row(incident, *, by, kind: str, at, content: bytes = b"", text: str = ""):
    """Evidence with its `evidence_added` event: a file of `content` (stored as the app stores
    it) or, given `text`, pasted text."""
    if text:
        sha, fields = hashlib.sha256(text.encode()).hexdigest(), {"text": text}
        description, content_type, size = "pasted text", "text", len(text.encode())
    else:
        sha, rel = _store_file(content)
        fields = {"storage_path": rel}
        description, content_type, size = f"{kind} of the incident", "file", len(content)
    with locked_incident(incident) as inc:
        event = append_event(
            inc,
            type="evidence_added",
            by=by,
            at=at,
            data={"kind": kind, "sha256": sha, "description": description},
        )
        return Evidence.objects.create(
            incident=inc,
            kind=kind,
            description=description,
            content_type=content_type,
            sha256=sha,
            size=size,
            captured_at=at,
            captured_by=by,
            event=event,
            **fields,
        )


def step(incident, type: str, *, by, at, data=None) -> None:
    """Append one event with the lifecycle's primitives; the incident's columns follow from it
    by the one transition table (incidents.transitions.advance), as in the live steps and the
    importer. (History with exact times and authors, for bundle tests; no gate is checked.)"""
    with locked_incident(incident) as inc:
        event = append_event(inc, type=type, by=by, at=at, data=data or {})
        fields = advance(inc, event)
        if fields:
            inc.save(update_fields=fields)


# The data of the events of recovered_incident, as the steps write it.
CLEAR = "Clear from the page."
CONTAINED = {"action": "suspend", "scope_after": "suspended"}
PRESERVED_WITH_GAPS = {
    "acknowledged_gaps": ["evaluation_result", "impact_assessment"],
    "reason": "not yet",
}
CLASSIFIED = {
    "assumption": "authority",
    "statement": "Refunded above the limit.",
    "clauses": ["refund-limit"],
}
OPERATING_MODEL_CHANGE = {
    "kind": "human_oversight",
    "summary": "Refunds over 200 EUR need approval.",
}
RISK_SIGNS = {
    "kind": "signoffs",
    "params": {"roles": ["risk"], "min": 1},
    "statement": "Risk signs.",
}
DECIDED = {
    "decision": "reopen_partial",
    "scope_after": "restricted",
    "rationale": "Limit enforced server-side; approval queue staffed.",
    "override": False,
    "justification": "",
}


def recovered_incident(*, agent=None, version=None, by=None, start=None) -> Incident:
    """An incident walked from detection to recovery, with evidence and notes of both kinds."""
    version = version or make_pact_version(agent=agent or AgentFactory(key="support-bot"))
    t = start or timezone.now().replace(microsecond=0) - timedelta(days=3)
    incident = make_incident(version=version, by=by, detected_at=t)
    minutes = timedelta(minutes=1)
    step(incident, "contained", by=by, at=t + 7 * minutes, data=CONTAINED)
    transcript = b"user: refund 900 EUR\n"
    add_evidence_row(incident, by=by, kind="transcript", content=transcript, at=t + 9 * minutes)
    calls = "refund(900, 'EUR')"
    add_evidence_row(incident, by=by, kind="tool_calls", text=calls, at=t + 10 * minutes)
    # (minutes after detection, event type, data): the rest of the history, in order.
    for after, type_, data in [
        (11, "note", {"text": SECRET_NOTE, "internal": True}),
        (20, "evidence_preserved", PRESERVED_WITH_GAPS),
        (25, "note", {"text": PUBLIC_NOTE, "internal": False}),
        (60, "classified", CLASSIFIED),
        (300, "repaired", {"summary": "Limit check moved server-side.", "reference": "PR-1432"}),
        (360, "operating_model_changed", OPERATING_MODEL_CHANGE),
        (365, "reentry_condition_set", RISK_SIGNS),
        (420, "review_requested", {}),
        (1440, "decision_recorded", DECIDED),
        (1500, "attested", {"decision_seq": 13, "can_explain": True, "comment": CLEAR}),
        (1560, "reopened", {"scope_after": "restricted"}),
    ]:
        step(incident, type_, by=by, at=t + after * minutes, data=data)
    incident.refresh_from_db()
    return incident


# ------------------------------------------------------------------ zips


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path


def sign_manifest(files: dict[str, bytes], manifest: dict, key) -> bytes:
    """Name `key` (an Ed25519 private key) in the manifest and sign it with it, as another
    instance or a forger would: `files` get the new manifest.json and manifest.sig. Returns the
    raw public key."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    manifest["bundle"]["public_key"] = {
        "algorithm": "Ed25519",
        "public_key_hex": raw.hex(),
        "fingerprint": hashlib.sha256(raw).hexdigest(),
    }
    files["manifest.json"] = json.dumps(manifest).encode()
    files["manifest.sig"] = key.sign(files["manifest.json"]).hex().encode()
    return raw


def edit_manifest(path: Path, out: Path, change) -> Path:
    """Re-zip the bundle at `path` into `out` after `change(manifest)` edited the manifest."""
    files = read_zip(path)
    manifest = json.loads(files["manifest.json"])
    change(manifest)
    files["manifest.json"] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    return write_zip(out, files)


def run_standalone(
    bundle: Path, *extra: str, isolated_flags=("-I",)
) -> subprocess.CompletedProcess:
    """Run the bundle's own verify.py with `python -I` in the bundle's folder (outside the
    project), as a buyer would."""
    folder = bundle.parent
    (folder / "verify.py").write_bytes(read_zip(bundle)["verify.py"])
    return subprocess.run(
        [sys.executable, *isolated_flags, "verify.py", bundle.name, *extra],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )


# ------------------------------------------------------------------ the real domain functions


def walked_incident(*, agent, operator, risk, manager, decision="reopen_partial", upload=None):
    """An incident walked through the real lifecycle and reviews functions to a decision, with
    an internal and a shareable note, file and text evidence, and an attestation."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from trustdesk.incidents import lifecycle
    from trustdesk.reviews import actions

    version = agent.pacts.first().versions.get(status="active") if agent.pacts.exists() else None
    version = version or make_pact_version(agent=agent)
    inc = make_incident(
        version=version, by=operator, detected_at=timezone.now() - timedelta(hours=3)
    )
    inc = contain(inc, by=operator)
    lifecycle.add_evidence(
        inc,
        by=operator,
        expected_version=inc.version,
        kind="transcript",
        description="The chat where the refund was issued.",
        upload=upload or SimpleUploadedFile("chat.txt", b"user: refund 900 EUR\n", "text/plain"),
    )
    for kind in ("tool_calls", "evaluation_result", "impact_assessment"):
        inc = fresh(inc)
        lifecycle.add_evidence(
            inc,
            by=operator,
            expected_version=inc.version,
            kind=kind,
            description=f"{kind} of {inc.key}",
            text=f"{kind} content for {inc.key}",
        )
    lifecycle.add_note(inc, by=operator, text=SECRET_NOTE, internal=True)
    lifecycle.add_note(inc, by=operator, text=PUBLIC_NOTE, internal=False)
    inc = fresh(inc)
    lifecycle.mark_evidence_preserved(inc, by=operator, expected_version=inc.version)
    inc = repair(classify(inc, by=operator), by=operator, summary="Check moved server-side.")
    summary = "Refunds above 200 EUR now need a second approver."
    inc = request_review(ready_for_review(inc, by=operator, summary=summary), by=operator)
    record = decide(
        inc, decision, by=risk, rationale="Limit enforced server-side; approval queue staffed."
    )
    actions.attest(record, by=manager, can_explain=True, comment="Clear from the page alone.")
    return fresh(inc)

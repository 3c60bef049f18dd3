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


def add_file_evidence(incident, *, by, kind: str, content: bytes, at) -> Evidence:
    sha, rel = _store_file(content)
    with locked_incident(incident) as inc:
        event = append_event(
            inc,
            type="evidence_added",
            by=by,
            at=at,
            data={"kind": kind, "sha256": sha, "description": f"{kind} of the incident"},
        )
        return Evidence.objects.create(
            incident=inc,
            kind=kind,
            description=f"{kind} of the incident",
            content_type="file",
            storage_path=rel,
            sha256=sha,
            size=len(content),
            captured_at=at,
            captured_by=by,
            event=event,
        )


def add_text_evidence(incident, *, by, kind: str, text: str, at) -> Evidence:
    sha = hashlib.sha256(text.encode()).hexdigest()
    with locked_incident(incident) as inc:
        event = append_event(
            inc,
            type="evidence_added",
            by=by,
            at=at,
            data={"kind": kind, "sha256": sha, "description": "pasted text"},
        )
        return Evidence.objects.create(
            incident=inc,
            kind=kind,
            description="pasted text",
            content_type="text",
            text=text,
            sha256=sha,
            size=len(text.encode()),
            captured_at=at,
            captured_by=by,
            event=event,
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


def recovered_incident(*, agent=None, version=None, by=None, start=None) -> Incident:
    """An incident walked from detection to recovery, with evidence and notes of both kinds."""
    version = version or make_pact_version(agent=agent or AgentFactory(key="support-bot"))
    t = start or timezone.now().replace(microsecond=0) - timedelta(days=3)
    incident = make_incident(version=version, by=by, detected_at=t)
    step(
        incident,
        "contained",
        by=by,
        at=t + timedelta(minutes=7),
        data={"action": "suspend", "scope_after": "suspended"},
    )
    add_file_evidence(
        incident,
        by=by,
        kind="transcript",
        content=b"user: refund 900 EUR\n",
        at=t + timedelta(minutes=9),
    )
    add_text_evidence(
        incident, by=by, kind="tool_calls", text="refund(900, 'EUR')", at=t + timedelta(minutes=10)
    )
    step(
        incident,
        "note",
        by=by,
        at=t + timedelta(minutes=11),
        data={"text": SECRET_NOTE, "internal": True},
    )
    step(
        incident,
        "evidence_preserved",
        by=by,
        at=t + timedelta(minutes=20),
        data={"acknowledged_gaps": ["evaluation_result", "impact_assessment"], "reason": "not yet"},
    )
    step(
        incident,
        "note",
        by=by,
        at=t + timedelta(minutes=25),
        data={"text": PUBLIC_NOTE, "internal": False},
    )
    step(
        incident,
        "classified",
        by=by,
        at=t + timedelta(hours=1),
        data={
            "assumption": "authority",
            "statement": "Refunded above the limit.",
            "clauses": ["refund-limit"],
        },
    )
    step(
        incident,
        "repaired",
        by=by,
        at=t + timedelta(hours=5),
        data={"summary": "Limit check moved server-side.", "reference": "PR-1432"},
    )
    step(
        incident,
        "operating_model_changed",
        by=by,
        at=t + timedelta(hours=6),
        data={"kind": "human_oversight", "summary": "Refunds over 200 EUR need approval."},
    )
    step(
        incident,
        "reentry_condition_set",
        by=by,
        at=t + timedelta(hours=6, minutes=5),
        data={
            "kind": "signoffs",
            "params": {"roles": ["risk"], "min": 1},
            "statement": "Risk signs.",
        },
    )
    step(
        incident,
        "review_requested",
        by=by,
        at=t + timedelta(hours=7),
    )
    step(
        incident,
        "decision_recorded",
        by=by,
        at=t + timedelta(days=1),
        data={
            "decision": "reopen_partial",
            "scope_after": "restricted",
            "rationale": "Limit enforced server-side; approval queue staffed.",
            "override": False,
            "justification": "",
        },
    )
    step(
        incident,
        "attested",
        by=by,
        at=t + timedelta(days=1, hours=1),
        data={"decision_seq": 13, "can_explain": True, "comment": "Clear from the page."},
    )
    step(
        incident,
        "reopened",
        by=by,
        at=t + timedelta(days=1, hours=2),
        data={"scope_after": "restricted"},
    )
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

    def fresh(inc):
        return Incident.objects.select_related("agent", "pact_version__pact").get(pk=inc.pk)

    version = agent.pacts.first().versions.get(status="active") if agent.pacts.exists() else None
    version = version or make_pact_version(agent=agent)
    inc = make_incident(
        version=version, by=operator, detected_at=timezone.now() - timedelta(hours=3)
    )
    lifecycle.contain_incident(
        inc, by=operator, expected_version=1, action="suspend", scope_after="suspended"
    )
    inc = fresh(inc)
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
    inc = fresh(inc)
    lifecycle.classify_incident(
        inc,
        by=operator,
        expected_version=inc.version,
        assumption="authority",
        statement="Refunds above the limit went out without approval.",
        clauses=list(inc.pact_version.clauses.all()),
        confidence="known",
    )
    inc = fresh(inc)
    lifecycle.record_repair(
        inc,
        by=operator,
        expected_version=inc.version,
        summary="Check moved server-side.",
        reference="PR-101",
    )
    inc = fresh(inc)
    actions.add_operating_model_change(
        inc,
        by=operator,
        expected_version=inc.version,
        kind="control_added",
        summary="Refunds above 200 EUR now need a second approver.",
    )
    inc = fresh(inc)
    actions.set_reentry_condition(
        inc, by=operator, expected_version=inc.version, kind="operating_model_changed", params={}
    )
    inc = fresh(inc)
    actions.request_review(inc, by=operator, expected_version=inc.version)
    inc = fresh(inc)
    record = actions.record_recovery_decision(
        inc,
        by=risk,
        expected_version=inc.version,
        decision=decision,
        rationale="Limit enforced server-side; approval queue staffed.",
    )
    actions.attest(record, by=manager, can_explain=True, comment="Clear from the page alone.")
    return fresh(inc)

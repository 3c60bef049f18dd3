"""The draft of a regulatory report, from what the incident's log already says (JSON and
Markdown). A draft is a starting point for a person: it states only recorded facts and marks
what the authority will ask that the log cannot answer."""

from __future__ import annotations

from typing import Any

from trustdesk.core.canonical import format_time
from trustdesk.incidents.exchange import dumps
from trustdesk.incidents.models import Event, EventType, Incident
from trustdesk.incidents.obligations import Obligation, flag_labels

TO_COMPLETE = "(to complete)"


def draft_report(incident: Incident, obligation: Obligation, events: list[Event]) -> dict[str, Any]:
    """The report's facts as a JSON-ready dict (keys sorted on output)."""
    latest_assessment = next((e.data for e in reversed(events) if e.type == EventType.ASSESSED), {})
    classification = next(
        (
            e.data
            for e in reversed(events)
            if e.type in (EventType.CLASSIFIED, EventType.RECLASSIFIED)
        ),
        None,
    )
    containments = [
        {
            "at": format_time(e.at),
            "action": e.data.get("action"),
            "scope_after": e.data.get("scope_after"),
        }
        for e in events
        if e.type == EventType.CONTAINED
    ]
    evidence = [
        {
            "kind": e.data.get("kind"),
            "sha256": e.data.get("sha256"),
            "description": e.data.get("description"),
        }
        for e in events
        if e.type == EventType.EVIDENCE_ADDED
    ]
    agent = incident.agent
    version = incident.pact_version
    return {
        "report": {
            "regime": obligation.regime,
            "obligation": obligation.obligation,
            "title": obligation.title,
            "authority": obligation.authority,
            "aware_at": format_time(obligation.aware_at),
            "deadline": format_time(obligation.deadline),
        },
        "incident": {
            "key": incident.key,
            "title": incident.title,
            "severity": incident.severity,
            "state": incident.state,
            "detected_at": format_time(incident.detected_at),
            "summary": incident.summary,
        },
        "system": {
            "agent": agent.key,
            "name": agent.name,
            "owner": agent.owner,
            "high_risk_ai": agent.high_risk_ai,
            "personal_data": agent.personal_data,
            "nis2": agent.nis2,
            "pact": f"{version.pact.key}@{version.number}" if version else None,
        },
        "assessment": {
            "findings": flag_labels(latest_assessment),
            "note": latest_assessment.get("note", ""),
        },
        "what_broke": (
            {
                "assumption": classification.get("assumption"),
                "statement": classification.get("statement"),
                "harm_category": classification.get("harm_category"),
            }
            if classification
            else None
        ),
        "containment": containments,
        "evidence": evidence,
        "corrective_measures": TO_COMPLETE,
        "contact": TO_COMPLETE,
    }


# The draft's JSON text is written as export_incidents writes its file.
draft_json = dumps


def draft_markdown(draft: dict[str, Any]) -> str:
    r, i, s = draft["report"], draft["incident"], draft["system"]
    lines = [
        f"# {r['title']}",
        "",
        f"To: {r['authority']}",
        f"Deadline: {r['deadline']} (aware since {r['aware_at']})",
        "",
        "## The incident",
        f"- Reference: {i['key']}, {i['title']}",
        f"- Severity: {i['severity']}; detected {i['detected_at']}; state {i['state']}",
    ]
    if i["summary"]:
        lines.append(f"- Summary: {i['summary']}")
    lines += [
        "",
        "## The system",
        f"- {s['name']} ({s['agent']}), operated by {s['owner'] or TO_COMPLETE}",
        f"- Pact in force: {s['pact'] or 'none'}",
        "",
        "## Assessment",
    ]
    findings = draft["assessment"]["findings"]
    lines.append("- Findings: " + (", ".join(findings) if findings else "none recorded"))
    if draft["assessment"]["note"]:
        lines.append(f"- Note: {draft['assessment']['note']}")
    lines += ["", "## What broke"]
    broke = draft["what_broke"]
    if broke:
        lines.append(f"- {broke['assumption']}: {broke['statement']}")
        if broke.get("harm_category"):
            lines.append(f"- Harm: {broke['harm_category']}")
    else:
        lines.append(f"- Not classified yet {TO_COMPLETE}")
    lines += ["", "## Containment"]
    lines += [
        f"- {c['at']}: {c['action']}, scope after: {c['scope_after']}" for c in draft["containment"]
    ] or ["- None recorded yet"]
    lines += ["", "## Evidence preserved (SHA-256)"]
    lines += [f"- {e['kind']}: {e['description']} ({e['sha256']})" for e in draft["evidence"]] or [
        "- None recorded yet"
    ]
    lines += [
        "",
        "## Corrective measures",
        TO_COMPLETE,
        "",
        "## Contact",
        TO_COMPLETE,
        "",
    ]
    return "\n".join(lines)

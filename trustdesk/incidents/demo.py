"""Demo incidents: several agents, every state up to `repaired`, with evidence files.

Built through the lifecycle functions with backdated times over the last ten weeks, so the
timelines, chains and metrics look like a real quarter. Idempotent: when any demo agent already
has incidents, nothing is added. Runs after the pacts seed (agents and active pact versions) and
before the reviews seed, which takes several `repaired` incidents further.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from trustdesk.incidents import journal, lifecycle
from trustdesk.incidents.models import Incident
from trustdesk.pacts.models import Agent, PactVersion

AGENT_PACTS = {
    "support-bot": "support-refunds",
    "code-reviewer": "code-review-safety",
    "data-analyst": "data-handling",
    "tutor": "tutoring-quality",
}
ORDER = ["detected", "contained", "evidence_preserved", "classified", "repaired"]
RANK = {"full": 0, "restricted": 1, "suspended": 2}


@dataclass(frozen=True)
class DemoIncident:
    agent: str
    days_ago: float
    severity: str
    title: str
    summary: str
    state: str
    assumption: str = ""
    statement: str = ""
    containment: tuple[str, str, str] = ("", "", "")  # action, scope after, reason
    repair: tuple[str, str] = ("", "")
    confidence: str = "known"
    harm: str = ""
    gaps: tuple[str, ...] = ()
    gap_reason: str = ""


INCIDENTS: tuple[DemoIncident, ...] = (
    DemoIncident(
        "support-bot",
        68,
        "sev2",
        "Refund of 450 EUR issued without approval",
        "A customer asked twice; the bot issued the refund through the payments tool directly.",
        "repaired",
        "authority",
        "The bot issued a refund above the 200 EUR limit without the human approval step.",
        (
            "restrict",
            "restricted",
            "Refund tool limited to 50 EUR: refunds were going out unchecked.",
        ),
        ("Refund tool now requires an approval token above 200 EUR.", "PAY-1482"),
        harm="property_or_environment",
    ),
    DemoIncident(
        "support-bot",
        41,
        "sev2",
        "Refund split into three payments to stay under the limit",
        "Three refunds of 150 EUR each to the same order within four minutes.",
        "repaired",
        "authority",
        "The bot split one refund into several payments to avoid the approval threshold.",
        ("suspend", "suspended", "A second way around the limit: refunds suspended entirely."),
        ("Approval threshold now counts refunds per order over 24 hours.", "PAY-1530"),
        confidence="likely",
        harm="property_or_environment",
    ),
    DemoIncident(
        "support-bot",
        3,
        "sev3",
        "Refund promised in chat that policy does not allow",
        "The bot told a customer a refund was guaranteed for a non-refundable ticket.",
        "contained",
        "honesty",
        "",
        ("human_in_loop", "restricted", "All refund promises now go to an agent for review."),
    ),
    DemoIncident(
        "code-reviewer",
        55,
        "sev2",
        "Approved a pull request that disabled CI checks",
        "The review bot approved a change to the pipeline file that skipped the test stage.",
        "repaired",
        "oversight",
        "Changes to the CI configuration were approved although the pact reserves them for humans.",
        ("restrict", "restricted", "Reviews of pipeline files removed from its scope."),
        ("Pipeline files are now CODEOWNERS-protected; the bot cannot approve them.", "ENG-2291"),
    ),
    DemoIncident(
        "code-reviewer",
        20,
        "sev1",
        "Secret token echoed in a review comment",
        "A review comment quoted a line containing a deploy token.",
        "classified",
        "data_handling",
        "The bot copied a secret from the diff into a public review comment.",
        ("suspend", "suspended", "Bot suspended until comments are scrubbed for secrets."),
        gaps=("impact_assessment",),
        gap_reason="Security is still assessing whether the token was used.",
    ),
    DemoIncident(
        "code-reviewer",
        1,
        "sev3",
        "Merged without the required second review",
        "An auto-merge label was applied after a single approval.",
        "detected",
    ),
    DemoIncident(
        "data-analyst",
        47,
        "sev2",
        "Customer emails exported to a shared notebook",
        "A requested churn analysis included a raw column of customer email addresses.",
        "repaired",
        "data_handling",
        "Personal data left the warehouse in an export the pact says must be aggregated.",
        ("restrict", "restricted", "Exports limited to aggregated tables."),
        (
            "Export tool now drops columns tagged as PII unless a DPO ticket is attached.",
            "DATA-811",
        ),
        harm="fundamental_rights",
    ),
    DemoIncident(
        "data-analyst",
        12,
        "sev2",
        "Query joined another tenant's table",
        "A cohort query read rows of tenant 42 while answering for tenant 17.",
        "evidence_preserved",
        "data_handling",
        "",
        ("suspend", "suspended", "Cross-tenant queries observed; suspended."),
    ),
    DemoIncident(
        "data-analyst",
        0.2,
        "sev4",
        "Dashboard figures off by one day",
        "Daily totals were shifted by one day after the time zone change.",
        "detected",
    ),
    DemoIncident(
        "tutor",
        30,
        "sev3",
        "Wrong answer key for the algebra quiz",
        "Four of ten answers in the generated key were wrong; two classes were graded with it.",
        "repaired",
        "capability",
        "The tutor produced an answer key with wrong solutions and presented it as verified.",
        ("restrict", "restricted", "Answer keys now need a teacher's check."),
        ("Answer keys are checked by a solver before release.", "EDU-377"),
    ),
    DemoIncident(
        "tutor",
        8,
        "sev3",
        "Full solution given in exam mode",
        "During a timed test the tutor gave the worked solution when asked for a hint.",
        "evidence_preserved",
        "input_integrity",
        "",
        (
            "no_scope_change",
            "",
            "Exam mode was switched off school-wide the same hour; no further exams this term.",
        ),
        gaps=("impact_assessment",),
        gap_reason="The school has not reported how many students were affected.",
    ),
    DemoIncident(
        "tutor",
        2,
        "sev4",
        "Hint revealed the final answer",
        "Student feedback: the second hint contains the answer.",
        "detected",
    ),
    # The newest repaired incident: the reviews seed takes each agent's oldest repaired one
    # further, so this one keeps the `repaired` state in the full demo (docs/design.md section 7:
    # every state).
    DemoIncident(
        "data-analyst",
        0.9,
        "sev3",
        "Nightly report ran for six hours",
        "A report query looped over every partition and held the warehouse until morning.",
        "repaired",
        "reliability",
        "The agent retried a failing query without a bound, so one report used the night's budget.",
        ("restrict", "restricted", "Scheduled reports need an operator's start."),
        ("Queries now carry a 15-minute timeout and at most two retries.", "DATA-902"),
    ),
)


def _evidence_content(kind: str, item: DemoIncident, key: str, at: datetime) -> tuple[str, bytes]:
    """A small, realistic file for an evidence kind (unique per incident)."""
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "transcript":
        text = (
            f"# Transcript exported {stamp} for {key}\n"
            f"[{stamp}] user: {item.summary}\n"
            f"[{stamp}] {item.agent}: Of course, I have taken care of it.\n"
            f"[{stamp}] user: Thanks. Can you confirm what you did?\n"
            f"[{stamp}] {item.agent}: Done: see the tool calls attached.\n"
        )
        return "transcript.txt", text.encode()
    if kind == "tool_calls":
        calls = [
            {"at": stamp, "tool": "lookup", "args": {"ref": key}, "status": 200},
            {"at": stamp, "tool": "act", "args": {"incident": key, "note": item.title}, "ok": True},
        ]
        return "tool_calls.json", json.dumps(calls, indent=2).encode()
    if kind == "evaluation_result":
        result = {"incident": key, "measured_at": stamp, "passed": False, "source": "nightly-eval"}
        return "evaluation.json", json.dumps(result, indent=2).encode()
    if kind == "impact_assessment":
        text = (
            f"Impact assessment for {key} ({stamp})\n\n{item.summary}\nCustomers affected: 1-3.\n"
        )
        return "impact.md", text.encode()
    if kind == "config_snapshot":
        snap = {"agent": item.agent, "model": "vendor-model-2026-09", "prompt_rev": 14, "key": key}
        return "config.json", json.dumps(snap, indent=2).encode()
    if kind == "alert":
        return "alert.txt", f"ALERT {stamp} {item.agent}: {item.title} ({key})\n".encode()
    return "note.txt", f"{kind} for {key} at {stamp}\n".encode()


def open_demo_incident(
    item: DemoIncident, version: PactVersion, users: dict, now: datetime
) -> Incident:
    """Open the incident `item` describes, detected `item.days_ago` before `now`, breaking the
    first clause of its assumption class (or the version's first clause)."""
    clauses = list(version.clauses.all())
    clause = next((c for c in clauses if c.assumption == item.assumption), clauses[0])
    return journal.open_incident(
        agent=version.pact.agent,
        by=users.get("olivia"),
        title=item.title,
        severity=item.severity,
        detected_at=now - timedelta(days=item.days_ago),
        pact_version=version,
        clauses=[clause],
        summary=item.summary,
    )


def _walk(item: DemoIncident, version: PactVersion, users: dict, now: datetime) -> Incident:
    incident = open_demo_incident(item, version, users, now)
    detected = incident.detected_at
    # Steps keep a realistic pace but never pass the present.
    span = min(timedelta(days=item.days_ago) * 0.8, timedelta(days=6))
    times = [min(detected + span * f, now) for f in (0.01, 0.05, 0.2, 0.5, 1.0)]

    def evidence(kind: str) -> dict[str, Any]:
        name, content = _evidence_content(kind, item, incident.key, times[1])
        return {
            "description": f"{kind.replace('_', ' ').capitalize()} captured for {incident.key}",
            "upload": SimpleUploadedFile(name, content, content_type="application/octet-stream"),
        }

    return walk(incident, item, users=users, times=times, evidence=evidence)


def walk(
    incident: Incident,
    item: DemoIncident,
    *,
    users: dict,
    times: Sequence[datetime],
    evidence: Callable[[str], dict[str, Any]],
) -> Incident:
    """Walk an open incident to `item.state` through the lifecycle steps, as olivia (operator)
    and ivan (incident manager) would, and return it.

    `times` dates contain, evidence, preserve, classify and repair (as far as the walk goes);
    the n-th evidence item comes n minutes after its time. `evidence(kind)` gives an item's
    description and its file, text or URL; the kinds in `item.gaps` are acknowledged instead.
    The incident is classified with the clauses it was opened with. An agent an earlier
    incident already holds tighter keeps its scope: the containment says so instead.
    """
    olivia, ivan = users.get("olivia"), users.get("ivan")
    target = ORDER.index(item.state)
    if target >= 1:
        action, scope, reason = item.containment
        agent = Agent.objects.select_related("scope_incident").get(pk=incident.agent_id)
        if action != "no_scope_change" and RANK[scope] < RANK[agent.scope]:
            held_by = agent.scope_incident.key if agent.scope_incident else "an earlier incident"
            action, scope = "no_scope_change", ""
            reason = f"{agent.key} is already {agent.scope} under {held_by}. {reason}"
        lifecycle.contain_incident(
            incident,
            by=olivia,
            expected_version=incident.version,
            action=action,
            scope_after=scope,
            reason=reason,
            at=times[0],
        )
        for n, kind in enumerate(incident.pact_version.evidence_required):
            if kind in item.gaps:
                continue
            lifecycle.add_evidence(
                incident,
                by=olivia,
                expected_version=incident.version,
                kind=kind,
                at=times[1] + timedelta(minutes=n),
                **evidence(kind),
            )
    if target >= 2:
        lifecycle.mark_evidence_preserved(
            incident,
            by=ivan,
            expected_version=incident.version,
            acknowledged_gaps=item.gaps,
            reason=item.gap_reason,
            at=times[2],
        )
    if target >= 3:
        lifecycle.classify_incident(
            incident,
            by=ivan,
            expected_version=incident.version,
            assumption=item.assumption,
            statement=item.statement,
            clauses=list(incident.clauses.all()),
            confidence=item.confidence,
            harm_category=item.harm,
            at=times[3],
        )
    if target >= 4:
        summary, reference = item.repair
        lifecycle.record_repair(
            incident,
            by=olivia,
            expected_version=incident.version,
            summary=summary,
            reference=reference,
            at=times[4],
        )
    return incident


def seed(stdout) -> None:
    agents = {a.key: a for a in Agent.objects.filter(key__in=AGENT_PACTS)}
    if not agents:
        stdout.write("incidents: no demo agents (seed the pacts first); no incidents seeded.")
        return
    if Incident.objects.filter(agent__in=agents.values()).exists():
        stdout.write("incidents: demo incidents already present; nothing to do.")
        return
    versions = {
        v.pact.key: v
        for v in PactVersion.objects.active()
        .filter(pact__key__in=AGENT_PACTS.values())
        .select_related("pact__agent")
    }
    users = {
        u.username: u
        for u in get_user_model().objects.filter(username__in=["olivia", "ivan", "rita"])
    }
    now = timezone.now()
    made = 0
    for item in sorted(INCIDENTS, key=lambda i: -i.days_ago):
        version = versions.get(AGENT_PACTS[item.agent])
        if item.agent not in agents or version is None:
            continue
        _walk(item, version, users, now)
        made += 1
    stdout.write(f"incidents: seeded {made} demo incidents.")

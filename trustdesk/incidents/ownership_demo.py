"""Demo data for ownership, clocks and obligations (run by `seed_demo` after the reviews demo),
built through the domain functions: leads and responders, an overdue action item, a duplicate
closed honestly, a reclassification, an EU AI Act Article 73 case with its report filed and one
overdue, and a GDPR 72 h clock running. Idempotent: a second run finds its marker and stops."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from trustdesk.incidents import journal, lifecycle, obligations, ownership
from trustdesk.incidents.models import Incident
from trustdesk.pacts.models import SCOPE_RANK, Agent, PactVersion

MARKER = "Tutor gave a pupil self-harm instructions"


def _fresh(incident: Incident) -> Incident:
    return Incident.objects.select_related("agent", "pact_version").get(pk=incident.pk)


def _open(agent, version, title, *, severity, detected, users, summary=""):
    incident = journal.open_incident(
        agent=agent,
        by=users["olivia"],
        title=title,
        severity=severity,
        detected_at=detected,
        pact_version=version,
        clauses=list(version.clauses.all()[:1]) if version else [],
        summary=summary,
    )
    return _fresh(incident)


def _contain(incident, users, at, action="suspend", scope="suspended"):
    if SCOPE_RANK[incident.agent.scope] >= SCOPE_RANK[scope]:
        action = "no_scope_change"  # already held at least this tight by another incident
    lifecycle.contain_incident(
        incident,
        by=users["olivia"],
        expected_version=incident.version,
        action=action,
        scope_after=scope,
        reason="Contained while we find out what happened.",
        at=at,
    )
    return _fresh(incident)


def _to_classified(incident, users, at, assumption, statement):
    incident = _fresh(incident)
    lifecycle.mark_evidence_preserved(
        incident,
        by=users["olivia"],
        expected_version=incident.version,
        acknowledged_gaps=list(incident.pact_version.evidence_required),
        reason="The transcripts are with the vendor; requested.",
        at=at,
    )
    incident = _fresh(incident)
    lifecycle.classify_incident(
        incident,
        by=users["olivia"],  # classifying is working the incident (core.roles)
        expected_version=incident.version,
        assumption=assumption,
        statement=statement,
        clauses=list(incident.clauses.all()),
        confidence="likely",
        harm_category="health" if assumption == "safety" else "",
        at=at + timedelta(minutes=30),
    )
    return _fresh(incident)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def seed(stdout) -> None:
    with transaction.atomic():  # all of it or nothing, so a second run never finds half
        _seed(stdout)


def _seed(stdout) -> None:
    if Incident.objects.filter(title=MARKER).exists():
        stdout.write("ownership: demo already present; nothing to do.")
        return
    users = {
        u.username: u
        for u in get_user_model().objects.filter(
            username__in=["olivia", "ivan", "rita", "omar", "rosa"]
        )
    }
    agents = {a.key: a for a in Agent.objects.filter(key__in=["tutor", "data-analyst"])}
    if len(users) < 5 or len(agents) < 2:
        stdout.write("ownership: demo users or agents missing; nothing seeded.")
        return
    versions = {
        v.pact.agent.key: v
        for v in PactVersion.objects.active()
        .filter(pact__agent__in=agents.values())
        .select_related("pact__agent")
    }
    # The regulatory profiles: a tutoring system is high-risk (education, EU AI Act Annex III)
    # and handles pupils' data; the analyst handles personal data for an important entity.
    Agent.objects.filter(key="tutor").update(high_risk_ai=True, personal_data=True)
    Agent.objects.filter(key="data-analyst").update(personal_data=True, nis2="important")
    agents = {a.key: a for a in Agent.objects.filter(key__in=agents)}
    now = timezone.now()
    day = timedelta(days=1)
    ivan, rita, olivia, omar = users["ivan"], users["rita"], users["olivia"], users["omar"]

    # 1. Article 73 overdue: a death, 10 days from awareness, nothing filed yet.
    overdue = _open(
        agents["tutor"],
        versions.get("tutor"),
        MARKER,
        severity="sev1",
        detected=now - 13 * day,
        users=users,
        summary="A pupil asked for help and got dangerous instructions; the pupil died.",
    )
    overdue = _contain(overdue, users, now - 13 * day + timedelta(minutes=12))
    ownership.assign_role(
        overdue, by=ivan, role="lead", user=ivan, at=now - 13 * day + timedelta(minutes=20)
    )
    ownership.assign_role(
        overdue, by=ivan, role="comms", user=rita, at=now - 13 * day + timedelta(minutes=21)
    )
    ownership.assign_role(
        overdue, by=ivan, role="responder", user=olivia, at=now - 13 * day + timedelta(minutes=22)
    )
    obligations.assess_incident(
        _fresh(overdue),
        by=ivan,
        flags={"serious": True, "death": True},
        aware_at=now - 12 * day,
        note="Confirmed with the school; the authority must hear of it.",
        at=now - 12 * day + timedelta(hours=1),
    )
    ownership.add_action_item(
        _fresh(overdue),
        by=ivan,
        title="Block self-harm topics in the tutor's retrieval index",
        owner=olivia,
        due=(now - 3 * day).date(),
        ticket="https://tickets.example.org/SAFE-41",
        required=True,
        at=now - 12 * day + timedelta(hours=2),
    )

    # 2. A duplicate of it, closed honestly: out of the metrics, the scope kept by the original.
    duplicate = _open(
        agents["tutor"],
        versions.get("tutor"),
        "Tutor output flagged by the content filter",
        severity="sev2",
        detected=now - 13 * day + timedelta(minutes=5),
        users=users,
    )
    duplicate = _contain(duplicate, users, now - 13 * day + timedelta(minutes=15))
    ownership.close_not_incident(
        duplicate,
        by=ivan,
        expected_version=duplicate.version,
        reason="duplicate",
        duplicate_of=overdue,
        explanation="The filter's alert is the same conversation as the reported incident.",
        at=now - 13 * day + timedelta(hours=1),
    )

    # 3. Article 73 filed: serious, 15 days; the initial report went in, then the repair.
    filed = _open(
        agents["tutor"],
        versions.get("tutor"),
        "Tutor graded a disabled pupil's exam with a biased rubric",
        severity="sev2",
        detected=now - 6 * day,
        users=users,
    )
    filed = _contain(filed, users, now - 6 * day + timedelta(minutes=40))
    ownership.assign_role(
        filed, by=ivan, role="lead", user=ivan, at=now - 6 * day + timedelta(hours=1)
    )
    obligations.assess_incident(
        _fresh(filed),
        by=rita,
        flags={"serious": True},
        aware_at=now - 6 * day + timedelta(hours=1),
        note="An infringement of fundamental rights of one pupil.",
        at=now - 6 * day + timedelta(hours=2),
    )
    filed = _to_classified(
        filed,
        users,
        now - 5 * day,
        "safety",
        "The grading rubric penalised answers written with assistive technology.",
    )
    # Reclassified before the decision: it was a capability failure of the rubric, not safety.
    ownership.reclassify_incident(
        filed,
        by=rita,
        expected_version=filed.version,
        assumption="capability",
        statement="The rubric the tutor applied scores assistive-technology answers wrongly.",
        clauses=list(filed.clauses.all()),
        confidence="known",
        at=now - 4 * day,
    )
    report = "Initial report: biased grading of one pupil's exam; rubric withdrawn."
    obligations.file_report(
        _fresh(filed),
        by=rita,
        regime="eu_ai_act_art73",
        obligation="report",
        reference="MSA-2026-0173",
        sha256=_sha(report),
        filed_at=now - 3 * day,
        at=now - 3 * day,
    )
    filed = _fresh(filed)
    lifecycle.record_repair(
        filed,
        by=olivia,
        expected_version=filed.version,
        summary="Rubric replaced by the school's own; answers re-graded.",
        reference="CHG-2211",
        at=now - 2 * day,
    )
    ownership.add_action_item(
        _fresh(filed),
        by=ivan,
        title="Re-grade every exam of the term with the new rubric",
        owner=omar,
        due=(now + 5 * day).date(),
        required=True,
        at=now - 2 * day + timedelta(hours=1),
    )
    done = ownership.add_action_item(
        _fresh(filed),
        by=ivan,
        title="Tell the pupil's parents what happened",
        owner=rita,
        due=(now - 1 * day).date(),
        at=now - 2 * day + timedelta(hours=2),
    )
    ownership.update_action_item(done, by=rita, status="done", at=now - 1 * day)

    # 4. A GDPR 72 h clock running: the analyst shared a customer list with the wrong tenant.
    gdpr = _open(
        agents["data-analyst"],
        versions.get("data-analyst"),
        "Analyst exported a customer list into another tenant's workspace",
        severity="sev2",
        detected=now - timedelta(hours=20),
        users=users,
    )
    gdpr = _contain(gdpr, users, now - timedelta(hours=19, minutes=30), "restrict", "restricted")
    ownership.assign_role(gdpr, by=ivan, role="lead", user=olivia, at=now - timedelta(hours=19))
    obligations.assess_incident(
        _fresh(gdpr),
        by=ivan,
        flags={"personal_data_breach": True},
        aware_at=now - timedelta(hours=19),
        note="412 customers' names and e-mail addresses.",
        at=now - timedelta(hours=18),
    )
    stdout.write(
        "ownership: seeded an Article 73 case overdue and one filed (then repaired and "
        "reclassified), a duplicate closed, a GDPR 72 h clock running, roles and action items."
    )

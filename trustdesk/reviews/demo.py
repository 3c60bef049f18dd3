"""Demo reviews: the recovery half of the story, built through `reviews.actions`.

Runs after the incidents seed and takes its `repaired` incidents further (when an agent has none,
one is walked to `repaired` here through the lifecycle functions):

- support-bot: the incident that holds its scope is reopened partially in a past meeting, with
  attestations; a later incident of the same class is a recurrence; the older one waits in review
  (an open dispute keeps a condition unmet) with a drafted pact amendment.
- tutor: reopened fully by an incident manager as an override (a sign-off condition unmet).
- data-analyst: kept restricted in the past meeting (another data incident within 60 days),
  so the incident closes as `closed_restricted`.
- code-reviewer: in review, on the agenda of the next meeting.

Idempotent: when any decision or meeting exists, nothing is added. All or nothing: one
transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from trustdesk.incidents import gates, journal, lifecycle
from trustdesk.incidents.models import Event, Incident, State
from trustdesk.pacts.models import Agent, PactVersion
from trustdesk.reviews import actions
from trustdesk.reviews.models import RecoveryDecision, ReviewMeeting

DEMO_AGENTS = ("support-bot", "code-reviewer", "data-analyst", "tutor")
USERS = ("ivan", "rita", "rosa", "olivia", "omar", "victor")
# When an agent has no repaired incident: (title, assumption, statement, repair, days ago).
FALLBACK = {
    "support-bot": (
        "Refund issued above the limit",
        "authority",
        "The bot issued a refund above its limit without the approval step.",
        "Refund tool requires an approval token above the limit.",
        40,
    ),
    "code-reviewer": (
        "Approved a change reserved for humans",
        "oversight",
        "The bot approved a change the pact reserves for human reviewers.",
        "Protected paths can no longer be approved by the bot.",
        35,
    ),
    "data-analyst": (
        "Personal data in an export",
        "data_handling",
        "An export contained personal data the pact says must be aggregated.",
        "The export tool drops columns tagged as personal data.",
        30,
    ),
    "tutor": (
        "Wrong answers presented as verified",
        "capability",
        "The tutor presented wrong solutions as verified.",
        "Answer keys are checked by a solver before release.",
        25,
    ),
}


def _fresh(incident: Incident) -> Incident:
    return Incident.objects.select_related("agent", "pact_version__pact").get(pk=incident.pk)


def _contain_preserve_classify(
    inc: Incident,
    *,
    version: PactVersion,
    users: dict,
    action: str,
    scope_after: str,
    contained_at: datetime,
    evidence_at: datetime,
    preserved_at: datetime,
    classified_at: datetime,
    evidence_text,
    assumption: str,
    statement: str,
    clauses: list,
    reason: str = "",
) -> Incident:
    """Walk an open incident through contain, every required evidence kind, preserve and
    classify, as olivia (operator) and ivan (incident manager) would."""
    olivia, ivan = users["olivia"], users["ivan"]
    lifecycle.contain_incident(
        inc,
        by=olivia,
        expected_version=inc.version,
        action=action,
        scope_after=scope_after,
        reason=reason,
        at=contained_at,
    )
    for n, kind in enumerate(version.evidence_required):
        inc = _fresh(inc)
        description, text = evidence_text(kind, inc)
        lifecycle.add_evidence(
            inc,
            by=olivia,
            expected_version=inc.version,
            kind=kind,
            description=description,
            text=text,
            at=evidence_at + timedelta(minutes=n),
        )
    inc = _fresh(inc)
    lifecycle.mark_evidence_preserved(inc, by=ivan, expected_version=inc.version, at=preserved_at)
    inc = _fresh(inc)
    lifecycle.classify_incident(
        inc,
        by=ivan,
        expected_version=inc.version,
        assumption=assumption,
        statement=statement,
        clauses=clauses,
        confidence="known",
        at=classified_at,
    )
    return _fresh(inc)


def _walk_to_repaired(agent: Agent, version: PactVersion, users: dict, now: datetime) -> Incident:
    """The fallback: one incident walked through the lifecycle, evidence as text."""
    title, assumption, statement, repair, days = FALLBACK[agent.key]
    olivia = users["olivia"]
    start = now - timedelta(days=days)
    clauses = list(version.clauses.all())
    clause = next((c for c in clauses if c.assumption == assumption), clauses[0])
    inc = journal.open_incident(
        agent=agent,
        by=olivia,
        title=title,
        severity="sev2",
        detected_at=start,
        pact_version=version,
        clauses=[clause],
    )
    scope = "suspended" if agent.scope == "suspended" else "restricted"
    inc = _contain_preserve_classify(
        inc,
        version=version,
        users=users,
        action="restrict" if scope == "restricted" else "suspend",
        scope_after=scope,
        contained_at=start + timedelta(minutes=10),
        evidence_at=start + timedelta(hours=1),
        preserved_at=start + timedelta(hours=3),
        classified_at=start + timedelta(hours=4),
        evidence_text=lambda kind, inc: (
            f"{kind.replace('_', ' ').capitalize()} captured for {inc.key}",
            f"{kind} of {inc.key}: {title}",
        ),
        assumption=assumption,
        statement=statement,
        clauses=[clause],
    )
    lifecycle.record_repair(
        inc,
        by=olivia,
        expected_version=inc.version,
        summary=repair,
        reference=f"DEMO-{inc.number}",
        at=start + timedelta(days=2),
    )
    return _fresh(inc)


def _repaired(users: dict, now: datetime) -> dict[str, list[Incident]]:
    found: dict[str, list[Incident]] = {key: [] for key in DEMO_AGENTS}
    for inc in (
        Incident.objects.filter(state=State.REPAIRED, agent__key__in=DEMO_AGENTS)
        .select_related("agent", "pact_version__pact")
        .order_by("detected_at")
    ):
        found[inc.agent.key].append(inc)
    for key, incidents in found.items():
        if incidents:
            continue
        agent = Agent.objects.filter(key=key).first()
        version = PactVersion.objects.active().filter(pact__agent=agent).first() if agent else None
        if agent is not None and version is not None and version.clauses.exists():
            incidents.append(_walk_to_repaired(agent, version, users, now))
    return found


class _Story:
    """Small helpers that keep each step's time moving forward."""

    def __init__(self, users: dict):
        self.u = users

    def change(self, inc, at, kind, summary, by="olivia", pact_version=None):
        inc = _fresh(inc)
        actions.add_operating_model_change(
            inc,
            by=self.u[by],
            expected_version=inc.version,
            kind=kind,
            summary=summary,
            pact_version=pact_version,
            at=at,
        )

    def condition(self, inc, at, kind, params=None, by="olivia"):
        inc = _fresh(inc)
        actions.set_reentry_condition(
            inc, by=self.u[by], expected_version=inc.version, kind=kind, params=params or {}, at=at
        )

    def sign(self, inc, at, by, role, comment):
        inc = _fresh(inc)
        actions.sign_off_incident(
            inc, by=self.u[by], expected_version=inc.version, role=role, comment=comment, at=at
        )

    def review(self, inc, at, by="olivia"):
        inc = _fresh(inc)
        actions.request_review(inc, by=self.u[by], expected_version=inc.version, at=at)

    def decide(self, inc, at, by, decision, rationale, meeting=None, justification=""):
        inc = _fresh(inc)
        return actions.record_recovery_decision(
            inc,
            by=self.u[by],
            expected_version=inc.version,
            decision=decision,
            rationale=rationale,
            justification=justification,
            override_requested=bool(justification),
            meeting=meeting,
            at=at,
        )

    def attest(self, decision, at, by, can_explain, comment):
        actions.attest(decision, by=self.u[by], can_explain=can_explain, comment=comment, at=at)


def _clause_key(inc: Incident) -> str | None:
    clause = inc.clauses.order_by("position").first()
    if clause is None and inc.pact_version_id:
        clause = inc.pact_version.clauses.order_by("position").first()
    return clause.key if clause else None


def _evidence_complete(inc: Incident) -> bool:
    required = list(inc.pact_version.evidence_required) if inc.pact_version_id else []
    present = gates.present_evidence_kinds(
        Event.objects.filter(incident=inc, type="evidence_added")
    )
    return all(kind in present for kind in required)


def _recurrence(origin: Incident, users: dict, at: datetime) -> Incident | None:
    """A later incident of the same agent and class, walked to `classified`, which links back."""
    version = (
        PactVersion.objects.active().filter(pact_id=origin.pact_version.pact_id).first()
        if origin.pact_version_id
        else None
    )
    if version is None:
        return None
    clauses = list(version.clauses.filter(assumption=origin.assumption)) or list(
        version.clauses.all()[:1]
    )
    olivia = users["olivia"]
    inc = journal.open_incident(
        agent=origin.agent,
        by=olivia,
        title="Refund approved with a reused approval token",
        severity="sev2",
        detected_at=at,
        pact_version=version,
        clauses=clauses,
        summary="The bot attached an approval token from an earlier refund to a new one.",
    )
    return _contain_preserve_classify(
        inc,
        version=version,
        users=users,
        action="suspend",
        scope_after="suspended",
        reason="The approval check was bypassed a third way; refunds suspended.",
        contained_at=at + timedelta(minutes=12),
        evidence_at=at + timedelta(hours=1),
        preserved_at=at + timedelta(hours=2),
        classified_at=at + timedelta(hours=3),
        evidence_text=lambda kind, inc: (
            f"{kind.replace('_', ' ').capitalize()} of the reused-token refund",
            f"{kind} for {inc.key}: token PAY-APPROVAL-7781 used on two refunds.",
        ),
        assumption=origin.assumption,
        statement="The bot reused an approval token, so a refund above the limit went out "
        "without a fresh human approval.",
        clauses=clauses,
    )


def seed(stdout) -> None:
    if RecoveryDecision.objects.exists() or ReviewMeeting.objects.exists():
        stdout.write("reviews: demo reviews already present; nothing to do.")
        return
    users = {u.username: u for u in get_user_model().objects.filter(username__in=USERS)}
    missing = [name for name in USERS if name not in users]
    if missing:
        stdout.write(f"reviews: demo users missing ({', '.join(missing)}); nothing seeded.")
        return
    now = timezone.now().replace(second=0, microsecond=0)
    with transaction.atomic():
        found = _repaired(users, now)
        if not any(found.values()):
            stdout.write("reviews: no demo agents with pacts (seed the pacts first).")
            return
        lines = _tell(found, users, now)
    for line in lines:
        stdout.write(f"reviews: {line}")


def _tell(found: dict[str, list[Incident]], users: dict, now: datetime) -> list[str]:
    s = _Story(users)
    day = timedelta(days=1)
    lines: list[str] = []
    past_meeting_at = (now - 3 * day).replace(hour=10, minute=0)
    past_agenda: list[Incident] = []
    next_agenda: list[Incident] = []
    support = found["support-bot"]
    # The support-bot incident holding the agent's scope is the one the past meeting reopens.
    holder = None
    if support:
        agent = support[0].agent
        holder = next((i for i in support if i.pk == agent.scope_incident_id), support[-1])
        waiting = [i for i in support if i.pk != holder.pk]

        t = now - 6 * day
        s.change(
            holder,
            t,
            "control_added",
            "Refunds above 200 EUR need an approval token that the payments service checks "
            "per order and per 24 hours, not per payment.",
        )
        s.change(
            holder,
            t + timedelta(hours=1),
            "monitoring_added",
            "A nightly audit compares refunds with approvals and pages the on-call on any gap.",
            by="ivan",
        )
        s.condition(holder, t + timedelta(hours=2), "operating_model_changed")
        if _evidence_complete(holder):
            s.condition(holder, t + timedelta(hours=2, minutes=5), "evidence_complete")
        s.condition(
            holder,
            t + timedelta(hours=2, minutes=10),
            "signoffs",
            {"roles": ["risk", "incident_manager"], "min": 2},
            by="ivan",
        )
        s.sign(holder, now - 5 * day, "rita", "risk", "Limits and audit are what we asked for.")
        s.sign(holder, now - 5 * day + timedelta(hours=2), "ivan", "incident_manager", "")
        s.review(holder, now - 4 * day)
        past_agenda.append(holder)

        if waiting:
            older = waiting[0]
            t = now - 5 * day
            draft = (
                PactVersion.objects.filter(
                    pact_id=older.pact_version.pact_id, number__gt=older.pact_version.number
                )
                .order_by("-number")
                .first()
                if older.pact_version_id
                else None
            )
            if draft is not None:
                s.change(
                    older,
                    t,
                    "pact_amended",
                    f"{draft.label} lowers the refund limit to 150 EUR and adds a clause on "
                    "promises; drafted, awaiting activation.",
                    by="rita",
                    pact_version=draft,
                )
            s.change(
                older,
                t + timedelta(minutes=30),
                "human_oversight",
                "Refunds between 150 and 200 EUR are sampled daily by the payments team.",
            )
            key = _clause_key(older)
            if key:
                s.condition(
                    older,
                    t + timedelta(hours=1),
                    "evaluation_pass_rate",
                    {"clause": key, "min": "0.95", "last_n": 20},
                )
            s.condition(older, t + timedelta(hours=1, minutes=5), "dispute_free")
            s.review(older, now - 2 * day)
            next_agenda.append(older)

    data = found["data-analyst"]
    if data:
        inc = data[0]
        t = now - 6 * day
        s.change(
            inc,
            t,
            "control_added",
            "The export tool drops columns tagged as personal data unless a DPO ticket is "
            "attached.",
        )
        s.condition(
            inc,
            t + timedelta(minutes=20),
            "no_incidents",
            {"assumption": inc.assumption or "data_handling", "days": 60},
            by="rosa",
        )
        s.condition(inc, t + timedelta(minutes=25), "dispute_free", by="rosa")
        s.review(inc, now - 4 * day)
        past_agenda.append(inc)

    tutor = found["tutor"]
    if tutor:
        inc = tutor[0]
        t = now - 5 * day
        s.change(
            inc,
            t,
            "human_oversight",
            "A teacher checks every generated answer key before it reaches a class.",
        )
        s.condition(inc, t + timedelta(minutes=10), "operating_model_changed")
        s.condition(
            inc,
            t + timedelta(minutes=15),
            "signoffs",
            {"roles": ["risk", "incident_manager"], "min": 2},
            by="rosa",
        )
        s.sign(inc, t + timedelta(hours=3), "rosa", "risk", "Fine from risk's side.")
        s.review(inc, now - 4 * day)
        decision = s.decide(
            inc,
            now - 2 * day,
            "ivan",
            "reopen_full",
            "The answer-key fix and the teacher check remove the failure mode; exams start "
            "Monday and classes depend on the tutor.",
            justification="Exam week starts Monday. Teachers check every answer key by hand "
            "until the incident manager's sign-off is given after the exam week.",
        )
        s.attest(
            decision,
            now - 2 * day + timedelta(hours=2),
            "rita",
            False,
            "The page says why it was urgent, not why the missing sign-off is an acceptable "
            "risk. I could not defend it to the school board from this page alone.",
        )
        s.attest(
            decision,
            now - 2 * day + timedelta(hours=3),
            "olivia",
            True,
            "The teacher check is the control; the override and its end date are clear.",
        )
        lines.append(f"{inc.key} (tutor) reopened fully as an override by ivan.")

    code = found["code-reviewer"]
    if code:
        inc = code[0]
        t = now - 3 * day
        s.change(
            inc,
            t,
            "control_added",
            "Pipeline files are CODEOWNERS-protected; the bot's approval no longer counts.",
        )
        key = _clause_key(inc)
        if key:
            s.condition(
                inc,
                t + timedelta(minutes=5),
                "evaluation_pass_rate",
                {"clause": key, "min": "0.9", "last_n": 10},
            )
        s.condition(
            inc,
            t + timedelta(minutes=10),
            "signoffs",
            {"roles": ["risk", "operator"], "min": 2},
        )
        s.sign(inc, t + timedelta(hours=1), "omar", "operator", "Checked the CODEOWNERS file.")
        s.review(inc, now - 1 * day)
        next_agenda.append(inc)

    # The past meeting: one reopening with attestations, one kept restricted.
    if past_agenda:
        meeting = actions.create_meeting(
            by=users["ivan"],
            title="Recovery review: payments and data",
            scheduled_at=past_meeting_at,
            facilitator=users["ivan"],
            agenda=past_agenda,
        )
        notes = [
            ("ivan", "Agenda: the refund limit incident, then the customer-email export."),
            (
                "olivia",
                "Audit numbers for the last two weeks: 0 refunds above the limit without "
                "an approval token.",
            ),
        ]
        for n, (who, text) in enumerate(notes):
            actions.add_meeting_note(
                meeting, by=users[who], text=text, at=past_meeting_at + timedelta(minutes=n * 5)
            )
        if holder is not None:
            decision = s.decide(
                holder,
                past_meeting_at + timedelta(minutes=20),
                "rita",
                "reopen_partial",
                "The approval token is now enforced per order and audited nightly; every "
                "condition holds. Partial: refunds stay capped at 200 EUR for another month.",
                meeting=meeting,
            )
            s.attest(
                decision,
                past_meeting_at + timedelta(minutes=40),
                "olivia",
                True,
                "What broke, the two changes and the sign-offs are all on the page.",
            )
            s.attest(
                decision,
                past_meeting_at + timedelta(minutes=45),
                "omar",
                True,
                "Clear. The cap explains why it is partial.",
            )
            s.attest(
                decision,
                past_meeting_at + timedelta(minutes=50),
                "ivan",
                True,
                "I can explain it to the payments team from this record.",
            )
            lines.append(f"{holder.key} (support-bot) reopened partially, with 3 attestations.")
        if data:
            s.decide(
                data[0],
                past_meeting_at + timedelta(minutes=35),
                "rosa",
                "keep_restricted",
                "Another data-handling incident (cross-tenant rows) is still open; the export fix "
                "does not cover queries. Exports stay aggregated-only.",
                meeting=meeting,
            )
            s.attest(
                RecoveryDecision.objects.get(incident=data[0]),
                past_meeting_at + timedelta(minutes=55),
                "olivia",
                True,
                "The rationale names what is still open and why the fix does not cover it.",
            )
            lines.append(f"{data[0].key} (data-analyst) kept restricted: closed_restricted.")
        actions.add_meeting_note(
            meeting,
            by=users["ivan"],
            text="Decided: support-bot reopens partially, data-analyst stays restricted.",
            at=past_meeting_at + timedelta(minutes=58),
        )
        actions.close_meeting(meeting, by=users["ivan"])
        lines.append(f"past meeting “{meeting.title}” with {len(past_agenda)} agenda items.")

    # A recurrence: support-bot breaks the same assumption after its reopening.
    if holder is not None:
        recurrence = _recurrence(_fresh(holder), users, now - day)
        if recurrence is not None:
            lines.append(
                f"{recurrence.key} (support-bot) recurs after {holder.key}"
                + (" and links back to it." if recurrence.recurrence_of_id == holder.pk else ".")
            )

    if next_agenda:
        upcoming = (now + 2 * day).replace(hour=10, minute=0)
        meeting = actions.create_meeting(
            by=users["ivan"],
            title="Weekly recovery review",
            scheduled_at=upcoming,
            facilitator=users["rita"],
            agenda=next_agenda,
        )
        actions.add_meeting_note(
            meeting,
            by=users["ivan"],
            text="Pre-read: the pass rates and the open CSAT dispute on the support pact.",
        )
        keys = ", ".join(i.key for i in next_agenda)
        lines.append(f"upcoming meeting “{meeting.title}” with {keys} in review.")
    return lines

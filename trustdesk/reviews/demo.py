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

from dataclasses import replace
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from trustdesk.incidents import gates, journal
from trustdesk.incidents.demo import DemoIncident, open_demo_incident, walk
from trustdesk.incidents.models import Event, Incident, State
from trustdesk.pacts.models import Agent, PactVersion
from trustdesk.reviews import actions
from trustdesk.reviews.models import RecoveryDecision, ReviewMeeting

DEMO_AGENTS = ("support-bot", "code-reviewer", "data-analyst", "tutor")
USERS = ("ivan", "rita", "rosa", "olivia", "omar", "victor")
# When an agent has no repaired incident, one like this is walked to `repaired` (its
# containment follows the agent's scope; its repair reference is its number).
FALLBACK = {
    "support-bot": DemoIncident(
        "support-bot",
        40,
        "sev2",
        "Refund issued above the limit",
        "",
        "repaired",
        "authority",
        "The bot issued a refund above its limit without the approval step.",
        repair=("Refund tool requires an approval token above the limit.", ""),
    ),
    "code-reviewer": DemoIncident(
        "code-reviewer",
        35,
        "sev2",
        "Approved a change reserved for humans",
        "",
        "repaired",
        "oversight",
        "The bot approved a change the pact reserves for human reviewers.",
        repair=("Protected paths can no longer be approved by the bot.", ""),
    ),
    "data-analyst": DemoIncident(
        "data-analyst",
        30,
        "sev2",
        "Personal data in an export",
        "",
        "repaired",
        "data_handling",
        "An export contained personal data the pact says must be aggregated.",
        repair=("The export tool drops columns tagged as personal data.", ""),
    ),
    "tutor": DemoIncident(
        "tutor",
        25,
        "sev2",
        "Wrong answers presented as verified",
        "",
        "repaired",
        "capability",
        "The tutor presented wrong solutions as verified.",
        repair=("Answer keys are checked by a solver before release.", ""),
    ),
}


def _fresh(incident: Incident) -> Incident:
    return Incident.objects.select_related("agent", "pact_version__pact").get(pk=incident.pk)


def _walk_to_repaired(agent: Agent, version: PactVersion, users: dict, now: datetime) -> Incident:
    """The fallback: one incident walked through the lifecycle, evidence as text."""
    item = FALLBACK[agent.key]
    inc = open_demo_incident(item, version, users, now)
    scope = "suspended" if agent.scope == "suspended" else "restricted"
    item = replace(
        item,
        containment=("restrict" if scope == "restricted" else "suspend", scope, ""),
        repair=(item.repair[0], f"DEMO-{inc.number}"),
    )
    steps = (timedelta(minutes=10), timedelta(hours=1), timedelta(hours=3), timedelta(hours=4))
    walk(
        inc,
        item,
        users=users,
        times=[inc.detected_at + step for step in (*steps, timedelta(days=2))],
        evidence=lambda kind: {
            "description": f"{kind.replace('_', ' ').capitalize()} captured for {inc.key}",
            "text": f"{kind} of {inc.key}: {item.title}",
        },
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

    def attest(self, decision, *attestations):
        """Each (time, who, can explain, comment) attests the decision, in that order."""
        for at, by, can_explain, comment in attestations:
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
    inc = journal.open_incident(
        agent=origin.agent,
        by=users["olivia"],
        title="Refund approved with a reused approval token",
        severity="sev2",
        detected_at=at,
        pact_version=version,
        clauses=clauses,
        summary="The bot attached an approval token from an earlier refund to a new one.",
    )
    item = DemoIncident(
        origin.agent.key,
        1,
        inc.severity,
        inc.title,
        inc.summary,
        "classified",
        origin.assumption,
        "The bot reused an approval token, so a refund above the limit went out without a "
        "fresh human approval.",
        ("suspend", "suspended", "The approval check was bypassed a third way; refunds suspended."),
    )
    steps = (timedelta(minutes=12), timedelta(hours=1), timedelta(hours=2), timedelta(hours=3))
    walk(
        inc,
        item,
        users=users,
        times=[at + step for step in steps],
        evidence=lambda kind: {
            "description": f"{kind.replace('_', ' ').capitalize()} of the reused-token refund",
            "text": f"{kind} for {inc.key}: token PAY-APPROVAL-7781 used on two refunds.",
        },
    )
    return _fresh(inc)


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
        decided = now - 2 * day
        s.attest(
            decision,
            (
                decided + timedelta(hours=2),
                "rita",
                False,
                "The page says why it was urgent, not why the missing sign-off is an acceptable "
                "risk. I could not defend it to the school board from this page alone.",
            ),
            (
                decided + timedelta(hours=3),
                "olivia",
                True,
                "The teacher check is the control; the override and its end date are clear.",
            ),
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
            comments = {
                "olivia": "What broke, the two changes and the sign-offs are all on the page.",
                "omar": "Clear. The cap explains why it is partial.",
                "ivan": "I can explain it to the payments team from this record.",
            }
            s.attest(  # five minutes apart from the fortieth minute of the meeting
                decision,
                *(
                    (past_meeting_at + timedelta(minutes=40 + 5 * n), who, True, comment)
                    for n, (who, comment) in enumerate(comments.items())
                ),
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
                (
                    past_meeting_at + timedelta(minutes=55),
                    "olivia",
                    True,
                    "The rationale names what is still open and why the fix does not cover it.",
                ),
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

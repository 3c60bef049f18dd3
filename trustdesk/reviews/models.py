"""Reviews: what changed around the agent, what must hold before it is trusted again, who decided
and who can explain the decision, and the meetings where that happens (docs/design.md section 4).

Every row here is written by exactly one function in `reviews.actions`, next to the incident event
that records it in the hash chain. Nothing is edited or deleted afterwards, with one exception:
a re-entry condition's *evaluation* (status, observed, checked_at) is the worker's latest reading
of the data and is refreshed in place; the decision freezes the readings it relied on in its own
snapshot.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from trustdesk.core.models import user_reference
from trustdesk.pacts.models import Scope
from trustdesk.reviews.errors import ReviewError


class WriteOnceQuerySet(models.QuerySet):
    """Bulk UPDATE and DELETE refused: these rows are written once (see WriteOnceModel)."""

    def update(self, **kwargs):
        raise ReviewError(f"{self.model._meta.verbose_name_plural} are never changed.")

    def delete(self):
        raise ReviewError(f"{self.model._meta.verbose_name_plural} are never deleted.")


class WriteOnceModel(models.Model):
    """A record that is inserted once and never changed or deleted.

    This is an integrity rule of the record itself (like the event log's triggers), not a
    business rule, so it sits on the model: `save()` of an existing row and `delete()` refuse,
    whatever code calls them. On PostgreSQL a trigger (migration 0002) refuses UPDATE and DELETE
    below the ORM as well.
    """

    objects = WriteOnceQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ReviewError(
                f"{self._meta.verbose_name.capitalize()} #{self.pk} is on record and is never "
                "changed; record a new entry instead."
            )
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ReviewError(f"{self._meta.verbose_name.capitalize()} records are never deleted.")


class OperatingModelChangeKind(models.TextChoices):
    PACT_AMENDED = "pact_amended", "Pact amended"
    CONTROL_ADDED = "control_added", "Control added"
    MONITORING_ADDED = "monitoring_added", "Monitoring added"
    HUMAN_OVERSIGHT = "human_oversight", "Human oversight"
    SCOPE_REDUCED = "scope_reduced", "Scope reduced"
    OTHER = "other", "Other"


class OperatingModelChange(WriteOnceModel):
    """A change around the agent (not in it) that the recovery relies on."""

    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.PROTECT, related_name="operating_model_changes"
    )
    kind = models.CharField(max_length=30, choices=OperatingModelChangeKind.choices)
    summary = models.TextField()
    # For `pact_amended`: the newer version of the incident's pact that carries the change.
    pact_version = models.ForeignKey(
        "pacts.PactVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    by = user_reference()
    at = models.DateTimeField(default=timezone.now)
    event = models.OneToOneField(
        "incidents.Event", on_delete=models.PROTECT, related_name="operating_model_change"
    )

    class Meta:
        ordering = ["incident", "at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="pact_amended", pact_version__isnull=False)
                | (~Q(kind="pact_amended") & Q(pact_version__isnull=True)),
                name="omc_pact_version_iff_pact_amended",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.summary[:60]}"


class ConditionKind(models.TextChoices):
    EVALUATION_PASS_RATE = "evaluation_pass_rate", "Evaluation pass rate"
    NO_INCIDENTS = "no_incidents", "No incidents of a class"
    SIGNOFFS = "signoffs", "Sign-offs by distinct roles"
    EVIDENCE_COMPLETE = "evidence_complete", "Evidence complete"
    OPERATING_MODEL_CHANGED = "operating_model_changed", "Operating model changed"
    DISPUTE_FREE = "dispute_free", "No open dispute"
    ACTIONS_DONE = "actions_done", "Required action items done"


class ConditionStatus(models.TextChoices):
    UNKNOWN = "unknown", "Not checked yet"
    MET = "met", "Met"
    UNMET = "unmet", "Unmet"


def condition_kind_choices() -> list[tuple[str, str]]:
    # Called, not copied: the migrations name this function, so a new kind changes none.
    return ConditionKind.choices


class ReentryCondition(models.Model):
    """A machine-checkable rule that must hold before the agent's scope is reopened."""

    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.PROTECT, related_name="reentry_conditions"
    )
    kind = models.CharField(max_length=40, choices=condition_kind_choices)
    params = models.JSONField(default=dict, blank=True)
    statement = models.TextField()
    set_by = user_reference()
    set_at = models.DateTimeField(default=timezone.now)
    event = models.OneToOneField(
        "incidents.Event", on_delete=models.PROTECT, related_name="reentry_condition"
    )
    # The latest evaluation (conditions.evaluate_condition): what it saw and when.
    status = models.CharField(
        max_length=10, choices=ConditionStatus.choices, default=ConditionStatus.UNKNOWN
    )
    observed = models.JSONField(default=dict, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["incident", "set_at", "pk"]
        indexes = [models.Index(fields=["incident", "status"])]

    def __str__(self) -> str:
        return f"{self.kind} ({self.status})"

    @property
    def is_met(self) -> bool:
        return self.status == ConditionStatus.MET


class SignOff(WriteOnceModel):
    """A stakeholder, in one of their roles, signs off the recovery plan of an incident.

    This is what the `signoffs` condition counts. It is not an Attestation: attestations are about
    a decision that already exists, while a sign-off is a precondition of that decision.
    """

    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.PROTECT, related_name="signoffs"
    )
    by = user_reference()
    role = models.CharField(max_length=30)
    comment = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)
    event = models.OneToOneField("incidents.Event", on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["incident", "at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "by"], name="one_signoff_per_person")
        ]

    def __str__(self) -> str:
        return f"sign-off by {self.by_id} as {self.role}"


class Decision(models.TextChoices):
    REOPEN_FULL = "reopen_full", "Reopen fully"
    REOPEN_PARTIAL = "reopen_partial", "Reopen partially (restricted)"
    KEEP_RESTRICTED = "keep_restricted", "Keep restricted"
    RETIRE = "retire", "Retire the agent"


REOPENING = (Decision.REOPEN_FULL, Decision.REOPEN_PARTIAL)


class MeetingStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    CLOSED = "closed", "Closed"


class ReviewMeetingQuerySet(models.QuerySet):
    def upcoming(self, now=None) -> ReviewMeetingQuerySet:
        now = now or timezone.now()
        return self.filter(status=MeetingStatus.SCHEDULED, scheduled_at__gte=now).order_by(
            "scheduled_at", "pk"
        )

    def past(self, now=None) -> ReviewMeetingQuerySet:
        now = now or timezone.now()
        return self.filter(Q(scheduled_at__lt=now) | Q(status=MeetingStatus.CLOSED)).order_by(
            "-scheduled_at", "-pk"
        )


class ReviewMeeting(models.Model):
    title = models.CharField(max_length=200)
    scheduled_at = models.DateTimeField(db_index=True)
    facilitator = user_reference()
    agenda = models.ManyToManyField(
        "incidents.Incident", through="AgendaItem", related_name="review_meetings"
    )
    status = models.CharField(
        max_length=20, choices=MeetingStatus.choices, default=MeetingStatus.SCHEDULED
    )
    created_by = user_reference()
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    objects = ReviewMeetingQuerySet.as_manager()

    class Meta:
        ordering = ["-scheduled_at", "-pk"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status == MeetingStatus.SCHEDULED

    # What the meeting is doing now, derived rather than stored: "Scheduled" while decisions
    # were being taken in it read as if nothing had started.
    PHASE_LABELS = {"scheduled": "Scheduled", "in_progress": "In progress", "closed": "Closed"}

    @property
    def phase(self) -> str:
        """`closed`; `in_progress` once its start time has passed or a decision was taken in
        it; else `scheduled`. Reads an `n_decisions` annotation when the query made one."""
        if not self.is_open:
            return "closed"
        if self.scheduled_at <= timezone.now():
            return "in_progress"
        decided = getattr(self, "n_decisions", None)
        if decided is None:
            decided = self.decisions.exists()
        return "in_progress" if decided else "scheduled"

    @property
    def phase_label(self) -> str:
        return self.PHASE_LABELS[self.phase]


class AgendaItem(models.Model):
    meeting = models.ForeignKey(ReviewMeeting, on_delete=models.PROTECT, related_name="items")
    incident = models.ForeignKey("incidents.Incident", on_delete=models.PROTECT, related_name="+")
    position = models.PositiveIntegerField()
    added_by = user_reference()
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["meeting", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["meeting", "incident"], name="agenda_incident_once")
        ]

    def __str__(self) -> str:
        return f"{self.meeting_id}: {self.incident_id}"


class MeetingNote(WriteOnceModel):
    """An append-only entry in a meeting's notes."""

    meeting = models.ForeignKey(ReviewMeeting, on_delete=models.PROTECT, related_name="notes")
    author = user_reference()
    text = models.TextField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["meeting", "at", "pk"]

    def __str__(self) -> str:
        return f"note {self.pk} in meeting {self.meeting_id}"


class RecoveryDecision(WriteOnceModel):
    """The recovery decision of one incident. Never edited.

    `gate_snapshot` and `conditions_snapshot` freeze what held (and what did not) when it was
    taken, so the record stays explainable after the data moves on.
    """

    incident = models.OneToOneField(
        "incidents.Incident", on_delete=models.PROTECT, related_name="recovery_decision"
    )
    decision = models.CharField(max_length=30, choices=Decision.choices)
    scope_after = models.CharField(max_length=20, choices=Scope.choices)
    rationale = models.TextField()
    decided_by = user_reference()
    decided_at = models.DateTimeField(default=timezone.now)
    override = models.BooleanField(default=False)
    justification = models.TextField(blank=True)
    gate_snapshot = models.JSONField(default=list)
    conditions_snapshot = models.JSONField(default=list)
    evidence_completeness = models.DecimalField(
        max_digits=5, decimal_places=4, null=True, blank=True
    )
    # The agent's scope right after the decision. It differs from `scope_after` when another
    # open incident of the agent holds it stricter (`agent_held_by`): a reopening never lifts
    # another incident's containment.
    agent_scope_after = models.CharField(max_length=20, choices=Scope.choices, blank=True)
    agent_held_by = models.ForeignKey(
        "incidents.Incident", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    meeting = models.ForeignKey(
        ReviewMeeting, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions"
    )
    event = models.OneToOneField(
        "incidents.Event", on_delete=models.PROTECT, related_name="recovery_decision"
    )

    class Meta:
        ordering = ["-decided_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(override=False) | ~Q(justification=""),
                name="override_needs_justification",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} ({self.incident_id})"

    @property
    def reopens(self) -> bool:
        return self.decision in REOPENING


class Attestation(WriteOnceModel):
    """Someone other than the decider says whether they can explain the decision from the page."""

    decision = models.ForeignKey(
        RecoveryDecision, on_delete=models.PROTECT, related_name="attestations"
    )
    by = user_reference()
    can_explain = models.BooleanField()
    comment = models.TextField()
    at = models.DateTimeField(default=timezone.now)
    event = models.OneToOneField(
        "incidents.Event", on_delete=models.PROTECT, related_name="attestation"
    )

    class Meta:
        ordering = ["decision", "at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["decision", "by"], name="one_attestation_per_person")
        ]

    def __str__(self) -> str:
        return f"attestation by {self.by_id} ({'can' if self.can_explain else 'cannot'} explain)"

"""Incidents, their append-only event log (a hash chain) and evidence (docs/design.md section 4)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from trustdesk.core.models import user_reference
from trustdesk.pacts.models import EvidenceKind, Scope
from trustdesk.taxonomy import ASSUMPTION_CHOICES, CONFIDENCE_CHOICES, HARM_CHOICES


class State(models.TextChoices):
    DETECTED = "detected", "Detected"
    CONTAINED = "contained", "Contained"
    EVIDENCE_PRESERVED = "evidence_preserved", "Evidence preserved"
    CLASSIFIED = "classified", "Classified"
    REPAIRED = "repaired", "Repaired"
    IN_REVIEW = "in_review", "In review"
    RECOVERED = "recovered", "Recovered"
    CLOSED_RESTRICTED = "closed_restricted", "Closed, restricted"
    CLOSED_NOT_INCIDENT = "closed_not_incident", "Closed, not an incident"


STATE_ORDER = [s.value for s in State]
CLOSED_STATES = (State.RECOVERED, State.CLOSED_RESTRICTED, State.CLOSED_NOT_INCIDENT)
HOLDING_SCOPES = (Scope.RESTRICTED, Scope.SUSPENDED)


class Severity(models.TextChoices):
    SEV1 = "sev1", "SEV1"
    SEV2 = "sev2", "SEV2"
    SEV3 = "sev3", "SEV3"
    SEV4 = "sev4", "SEV4"


class EventType(models.TextChoices):
    DETECTED = "detected"
    CONTAINED = "contained"
    EVIDENCE_ADDED = "evidence_added"
    EVIDENCE_PRESERVED = "evidence_preserved"
    CLASSIFIED = "classified"
    REPAIRED = "repaired"
    OPERATING_MODEL_CHANGED = "operating_model_changed"
    REENTRY_CONDITION_SET = "reentry_condition_set"
    REVIEW_REQUESTED = "review_requested"
    DECISION_RECORDED = "decision_recorded"
    ATTESTED = "attested"
    REOPENED = "reopened"
    CLOSED = "closed"
    NOTE = "note"
    # A sign-off of the recovery plan (docs/design.md section 11): role, comment, internal (true
    # unless the signer marked the comment shareable). Earlier sign-offs were public notes and stay
    # readable as such.
    SIGNED_OFF = "signed_off"
    DISPUTE_OPENED = "dispute_opened"
    DISPUTE_RESOLVED = "dispute_resolved"
    # Ownership, clocks and obligations (docs/design.md section 13).
    ASSIGNED = "assigned"
    # Ours, beside the design's `assigned`: a person leaves a role (role, user) with no successor.
    UNASSIGNED = "unassigned"
    ACTION_ADDED = "action_added"
    ACTION_UPDATED = "action_updated"
    CLOSED_NOT_INCIDENT = "closed_not_incident"
    RECLASSIFIED = "reclassified"
    ASSESSED = "assessed"
    REPORT_FILED = "report_filed"


class ContainmentAction(models.TextChoices):
    RESTRICT = "restrict", "Restrict"
    SUSPEND = "suspend", "Suspend"
    ROLLBACK = "rollback", "Roll back"
    KILL_SWITCH = "kill_switch", "Kill switch"
    HUMAN_IN_LOOP = "human_in_loop", "Human in the loop"
    NO_SCOPE_CHANGE = "no_scope_change", "No scope change"


class IncidentQuerySet(models.QuerySet):
    def open(self) -> IncidentQuerySet:
        return self.exclude(state__in=CLOSED_STATES)

    def closed(self) -> IncidentQuerySet:
        return self.filter(state__in=CLOSED_STATES)

    def for_agent(self, agent) -> IncidentQuerySet:
        return self.filter(agent=agent)

    def unclassified(self) -> IncidentQuerySet:
        return self.filter(classified_at__isnull=True)

    def reopening_held(self) -> IncidentQuerySet:
        """Decided to reopen while another incident held the agent (see Incident.reopening_held)."""
        return self.filter(state=State.IN_REVIEW, decided_at__isnull=False)

    def holding(self, agent) -> IncidentQuerySet:
        """The open incidents that hold `agent` below full scope: contained with a restricted or
        suspended scope, by an action other than "no scope change" (which lets the agent keep
        whatever scope it has), and the reopenings decided but held (at their decided scope, which
        they wait to reach). One query; the scope statement and the decision pages use it, and a
        recovery decision never lifts the agent past what these still hold."""
        no_change = Event.objects.filter(
            incident=models.OuterRef("pk"),
            type=EventType.CONTAINED,
            data__action=ContainmentAction.NO_SCOPE_CHANGE,
        )
        return (
            self.open()
            .filter(agent=agent, contained_at__isnull=False, scope_after__in=HOLDING_SCOPES)
            .exclude(models.Exists(no_change))
            .order_by("number")
        )


class Incident(models.Model):
    number = models.PositiveIntegerField(unique=True)
    key = models.CharField(max_length=30, unique=True)  # "INC-42"
    agent = models.ForeignKey("pacts.Agent", on_delete=models.PROTECT, related_name="incidents")
    pact_version = models.ForeignKey(
        "pacts.PactVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="incidents",
    )
    clauses = models.ManyToManyField("pacts.Clause", blank=True, related_name="incidents")
    title = models.CharField(max_length=300)
    summary = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    state = models.CharField(max_length=30, choices=State.choices, default=State.DETECTED)
    # Classification (set by the `classified` step).
    assumption = models.CharField(max_length=40, choices=ASSUMPTION_CHOICES, blank=True)
    assumption_statement = models.TextField(blank=True)
    secondary_assumptions = models.JSONField(default=list, blank=True)
    confidence = models.CharField(max_length=20, choices=CONFIDENCE_CHOICES, blank=True)
    harm_category = models.CharField(max_length=40, choices=HARM_CHOICES, blank=True)
    recurrence_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="recurrences"
    )
    # Optimistic locking: incremented by every step; a form carries the version it saw.
    version = models.PositiveIntegerField(default=0)
    # Denormalized milestones (first occurrence of each), all derivable from the event log.
    detected_at = models.DateTimeField(db_index=True)
    contained_at = models.DateTimeField(null=True, blank=True)
    evidence_preserved_at = models.DateTimeField(null=True, blank=True)
    classified_at = models.DateTimeField(null=True, blank=True)
    repaired_at = models.DateTimeField(null=True, blank=True)
    review_requested_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    reopened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    scope_after = models.CharField(max_length=20, choices=Scope.choices, blank=True)
    evidence_completeness = models.DecimalField(
        max_digits=5, decimal_places=4, null=True, blank=True
    )
    # The chain's head, so an append needs no extra query.
    event_count = models.PositiveIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = user_reference(optional=True)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-detected_at", "-number"]
        indexes = [
            models.Index(fields=["agent", "detected_at"]),
            models.Index(fields=["state"]),
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.title}"

    @property
    def is_open(self) -> bool:
        return self.state not in CLOSED_STATES

    @property
    def reopening_held(self) -> bool:
        """Decided to reopen, but the agent's scope has not been restored yet: other open
        incidents hold it (docs/design.md section 6: reopened means the scope restored). It stays in
        review, decided, until the agent's scope widens; then its `reopened` event follows."""
        return self.state == State.IN_REVIEW and self.decided_at is not None

    @property
    def state_words(self) -> str:
        """The state as the pages say it; a held reopening is not called recovered."""
        if self.reopening_held:
            return "Reopening held"
        return self.get_state_display()


def event_type_choices() -> list[tuple[str, str]]:
    # Called, not copied: the migrations name this function, so a new event type changes none.
    return EventType.choices


class Event(models.Model):
    """One entry of an incident's append-only log.

    `canonical` holds the exact text whose UTF-8 bytes were hashed:
    hash = sha256("trustdesk-event-v1\\n" + prev_hash + canonical). It is never re-serialized.
    """

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=40, choices=event_type_choices)
    at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)
    actor = user_reference(optional=True)
    actor_name = models.CharField(max_length=150, blank=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    canonical = models.TextField()

    class Meta:
        ordering = ["incident", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "seq"], name="event_seq_unique"),
            models.UniqueConstraint(fields=["incident", "prev_hash"], name="event_chain_no_fork"),
        ]
        indexes = [models.Index(fields=["type", "incident"])]

    def __str__(self) -> str:
        return f"{self.incident_id}#{self.seq} {self.type}"


class EvidenceContent(models.TextChoices):
    FILE = "file", "File"
    TEXT = "text", "Text"
    URL = "url", "URL"


class Evidence(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="evidence")
    kind = models.CharField(max_length=30, choices=EvidenceKind.choices)
    description = models.TextField(blank=True)
    content_type = models.CharField(max_length=10, choices=EvidenceContent.choices)
    # Files live content-addressed under MEDIA_ROOT/evidence/<sha256[:2]>/<sha256>.
    storage_path = models.CharField(max_length=300, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    media_type = models.CharField(max_length=100, blank=True)
    text = models.TextField(blank=True)
    url = models.URLField(max_length=2000, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.PositiveBigIntegerField()
    captured_at = models.DateTimeField(default=timezone.now)
    captured_by = user_reference(optional=True)
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    event = models.OneToOneField(
        Event, null=True, blank=True, on_delete=models.PROTECT, related_name="evidence"
    )

    class Meta:
        ordering = ["incident", "captured_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(size__gte=0), name="evidence_size_non_negative")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.sha256[:12]}"


class BreachLink(models.Model):
    """Which failing evaluation opened (or was attached to) which incident.

    The unique evaluation makes breach handling idempotent: the same evaluation twice does nothing.
    """

    evaluation = models.OneToOneField(
        "pacts.Evaluation", on_delete=models.PROTECT, related_name="breach_link"
    )
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="breach_links")
    opened_incident = models.BooleanField(default=False)
    event = models.OneToOneField(
        Event, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["incident", "created_at"]

    def __str__(self) -> str:
        return f"evaluation {self.evaluation_id} -> {self.incident_id}"


class IncidentRoleName(models.TextChoices):
    LEAD = "lead", "Lead"
    COMMS = "comms", "Comms"
    SCRIBE = "scribe", "Scribe"
    RESPONDER = "responder", "Responder"


#: Roles one person holds at a time; responders are as many as needed.
SINGLE_HOLDER_ROLES = (IncidentRoleName.LEAD, IncidentRoleName.COMMS, IncidentRoleName.SCRIBE)


class IncidentRoleQuerySet(models.QuerySet):
    def current(self) -> IncidentRoleQuerySet:
        return self.filter(ended_at__isnull=True)


class IncidentRole(models.Model):
    """Who holds a role on an incident, derived from its `assigned` events (the record).

    A new holder of lead, comms or scribe ends the previous one's row (kept, with `ended_at`).
    """

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="roles")
    role = models.CharField(max_length=20, choices=IncidentRoleName.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="incident_roles"
    )
    assigned_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="+")

    objects = IncidentRoleQuerySet.as_manager()

    class Meta:
        ordering = ["incident", "role", "assigned_at", "pk"]
        indexes = [models.Index(fields=["user", "role", "ended_at"])]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.role}: {self.user_id}"


class ObligationAlert(models.Model):
    """Memory of the beat task: each obligation is announced once per status (due_soon,
    overdue). Keys, not foreign keys: it only remembers what was said."""

    incident_key = models.CharField(max_length=30)
    regime = models.CharField(max_length=40)
    obligation = models.CharField(max_length=40)
    status = models.CharField(max_length=20)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["incident_key", "regime", "obligation", "status"],
                name="obligation_alert_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.incident_key} {self.regime}/{self.obligation} {self.status}"


class ActionStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"
    WONT_DO = "wont_do", "Won't do"


class ActionItemQuerySet(models.QuerySet):
    def open(self) -> ActionItemQuerySet:
        return self.filter(status=ActionStatus.OPEN)

    def overdue(self, today) -> ActionItemQuerySet:
        return self.open().filter(due__lt=today)


class ActionItem(models.Model):
    """A follow-up action of an incident, derived from its `action_added` and `action_updated`
    events (the record): the row is their latest state, for lists and the re-entry check."""

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="action_items")
    number = models.PositiveIntegerField()  # 1, 2, ... within the incident
    title = models.CharField(max_length=300)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="action_items",
    )
    due = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=ActionStatus.choices, default="open")
    reason = models.TextField(blank=True)
    ticket = models.CharField(max_length=2000, blank=True)
    # The operating-model change it delivers: the seq of that change's event in this incident.
    change_seq = models.PositiveIntegerField(null=True, blank=True)
    required = models.BooleanField("required for re-entry", default=False)
    added_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    late = models.BooleanField(default=False)  # added after the incident's decision

    objects = ActionItemQuerySet.as_manager()

    class Meta:
        ordering = ["incident", "number"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "number"], name="action_item_number")
        ]
        indexes = [models.Index(fields=["owner", "status"])]

    def __str__(self) -> str:
        return f"{self.incident_id} action {self.number}: {self.title}"


class TraceView(models.Model):
    """The span tree read from a `trace` evidence file (OTLP JSON) when it was added.

    The file is the evidence; this is its parsed, displayable form, written once with it so the
    incident page never re-parses megabytes of JSON. `spans` is the tree flattened in display
    order (see incidents.traces.span_rows).
    """

    evidence = models.OneToOneField(Evidence, on_delete=models.PROTECT, related_name="trace_view")
    spans = models.JSONField(default=list)
    span_count = models.PositiveIntegerField()
    error_count = models.PositiveIntegerField()
    trace_count = models.PositiveIntegerField()
    truncated = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"trace of evidence {self.evidence_id} ({self.span_count} spans)"


# ---------------------------------------------------------------- the transparency log (section 15)


class LogHead(models.Model):
    """The transparency log's size: a single row (id 1), locked only for the instant a committing
    transaction numbers its events (see trustdesk/incidents/tlog.py)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"log of {self.size} leaves"


class LogLeaf(models.Model):
    """One event's place in the instance-wide Merkle tree: its gapless `log_index` and leaf hash
    SHA-256(0x00 || the event's 32-byte hash). Written once, never changed."""

    log_index = models.BigIntegerField(primary_key=True)
    event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="leaf")
    hash = models.BinaryField(max_length=32)

    class Meta:
        ordering = ["log_index"]

    def __str__(self) -> str:
        return f"leaf {self.log_index}"


class LogNode(models.Model):
    """The hash of a complete subtree above the leaves: leaves [position * 2^level,
    (position + 1) * 2^level). Written once, when its last leaf is appended, never changed."""

    pk = models.CompositePrimaryKey("level", "position")
    level = models.PositiveSmallIntegerField()
    position = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        ordering = ["level", "position"]

    def __str__(self) -> str:
        return f"node {self.level}/{self.position}"


class StateCount(models.Model):
    """Part of the number of incidents in one state: the sum of a state's rows is its count.

    Kept on PostgreSQL by a trigger on the incidents table, in the same transaction as every
    insert, change of state and delete (incidents/state_counts.py), so the list's per-state
    counts are read from a few rows instead of counting every incident. A state has several
    rows so that concurrent changes never wait on each other's row.
    """

    state = models.CharField(max_length=40)
    n = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.state}: {self.n:+d}"

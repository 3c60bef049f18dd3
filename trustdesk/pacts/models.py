"""Agents, pacts, versions, clauses, evaluations, disputes and API tokens (docs/design.md section
4)."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

from django.apps import apps
from django.db import models
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from trustdesk.core.models import user_reference
from trustdesk.taxonomy import ASSUMPTION_BY_KEY, ASSUMPTION_CHOICES


class Scope(models.TextChoices):
    FULL = "full", "Full"
    RESTRICTED = "restricted", "Restricted"
    SUSPENDED = "suspended", "Suspended"


# How restrictive a scope is: a containment never widens it, and a decision does not lift a
# stricter scope another open incident holds.
SCOPE_RANK = {Scope.FULL: 0, Scope.RESTRICTED: 1, Scope.SUSPENDED: 2}


class RiskTier(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    SUPERSEDED = "superseded", "Superseded"
    RETIRED = "retired", "Retired"


class Comparison(models.TextChoices):
    LT = "<", "less than"
    LE = "<=", "at most"
    EQ = "==", "exactly"
    GE = ">=", "at least"
    GT = ">", "more than"


class EvaluationMethod(models.TextChoices):
    AUTOMATED = "automated", "Automated"
    SAMPLED_HUMAN_REVIEW = "sampled_human_review", "Sampled human review"
    JURY = "jury", "Jury"
    HUMAN = "human", "Human"
    # Measured from files the teams' tools write (docs/design.md section 14; pacts.eval_sources).
    INSPECT = "inspect", "Inspect AI log"
    JUNIT = "junit", "JUnit XML report"


class Consequence(models.TextChoices):
    FLAG = "flag", "Flag"
    RESTRICT = "restrict", "Restrict"
    SUSPEND = "suspend", "Suspend"


class Containment(models.TextChoices):
    """What a breach does to the agent (docs/design.md section 12): propose the containment, or
    apply it."""

    PROPOSE = "propose", "Propose"
    AUTO = "auto", "Automatic"


class EvidenceKind(models.TextChoices):
    TRANSCRIPT = "transcript", "Transcript"
    TOOL_CALLS = "tool_calls", "Tool calls"
    EVALUATION_RESULT = "evaluation_result", "Evaluation result"
    ALERT = "alert", "Alert"
    IMPACT_ASSESSMENT = "impact_assessment", "Impact assessment"
    CONFIG_SNAPSHOT = "config_snapshot", "Config snapshot"
    OTHER = "other", "Other"
    TRACE = "trace", "Agent trace (OTLP JSON)"


class Nis2Entity(models.TextChoices):
    """What NIS2 makes of the agent's operator (docs/design.md section 13's agent profile)."""

    NONE = "none", "Not in scope"
    IMPORTANT = "important", "Important entity"
    ESSENTIAL = "essential", "Essential entity"


class AgentQuerySet(models.QuerySet):
    def restricted(self) -> AgentQuerySet:
        return self.exclude(scope=Scope.FULL)

    def for_listing(self, today: date | None = None) -> AgentQuerySet:
        """Agents with their open incident count, a stale flag and their active pacts
        (`listed_pacts`), in a fixed number of queries."""
        # Through the app registry: pacts sit below incidents and do not import them.
        open_incidents = (
            apps.get_model("incidents", "Incident")
            .objects.open()
            .filter(agent=OuterRef("pk"))
            .order_by()
            .values("agent")
            .annotate(n=Count("pk"))
            .values("n")
        )
        stale = PactVersion.objects.stale(today).filter(pact__agent=OuterRef("pk"))
        active_pacts = Pact.objects.for_listing(today).filter(versions__status=VersionStatus.ACTIVE)
        return self.annotate(
            open_incidents=Coalesce(Subquery(open_incidents), 0),
            has_stale_pact=Exists(stale),
        ).prefetch_related(Prefetch("pacts", queryset=active_pacts, to_attr="listed_pacts"))


class Agent(models.Model):
    key = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    owner = models.CharField("owner team", max_length=200, blank=True)
    description = models.TextField(blank=True)
    scope = models.CharField(max_length=20, choices=Scope.choices, default=Scope.FULL)
    trust_score = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    scope_changed_at = models.DateTimeField(null=True, blank=True)
    scope_reason = models.TextField(blank=True)
    scope_incident = models.ForeignKey(
        "incidents.Incident", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    retired_at = models.DateTimeField(null=True, blank=True)
    # The scope statement's revision (docs/design.md section 12): 1 at creation, +1 at each actual
    # scope change, written only by incidents.journal.set_agent_scope.
    revision = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    # The regulatory profile: which obligations an incident of this agent can trigger
    # (trustdesk/incidents/obligations.json reads these names).
    high_risk_ai = models.BooleanField("high-risk AI system (EU AI Act)", default=False)
    personal_data = models.BooleanField("processes personal data (GDPR)", default=False)
    nis2 = models.CharField(
        "NIS2 entity", max_length=20, choices=Nis2Entity.choices, default=Nis2Entity.NONE
    )

    objects = AgentQuerySet.as_manager()

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name or self.key


class PactQuerySet(models.QuerySet):
    def for_listing(self, today: date | None = None) -> PactQuerySet:
        """Pacts with their agent, active and latest version numbers, current risk tier (the
        active version's, else the latest's), review due date, stale and draft flags."""
        versions = PactVersion.objects.filter(pact=OuterRef("pk")).order_by("-number")
        active = versions.filter(status=VersionStatus.ACTIVE)
        return self.select_related("agent").annotate(
            active_number=Subquery(active.values("number")[:1]),
            latest_number=Subquery(versions.values("number")[:1]),
            tier=Coalesce(
                Subquery(active.values("risk_tier")[:1]), Subquery(versions.values("risk_tier")[:1])
            ),
            review_due=Subquery(active.values("review_due")[:1]),
            is_stale=Exists(PactVersion.objects.stale(today).filter(pact=OuterRef("pk"))),
            has_draft=Exists(versions.filter(status=VersionStatus.DRAFT)),
        )


class Pact(models.Model):
    key = models.SlugField(max_length=80, unique=True)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="pacts")
    title = models.CharField(max_length=300)
    owner = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = PactQuerySet.as_manager()

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    def current_version(self) -> PactVersion | None:
        """The active version, else the latest one."""
        versions = self.versions.order_by("-number")
        return versions.filter(status=VersionStatus.ACTIVE).first() or versions.first()


class PactVersionQuerySet(models.QuerySet):
    def active(self) -> PactVersionQuerySet:
        return self.filter(status=VersionStatus.ACTIVE)

    def stale(self, today: date | None = None) -> PactVersionQuerySet:
        """Active versions past their review date (never reviewed counts from creation)."""
        today = today or timezone.now().date()
        return self.active().filter(review_due__lt=today)


class PactVersion(models.Model):
    pact = models.ForeignKey(Pact, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(
        max_length=20, choices=VersionStatus.choices, default=VersionStatus.DRAFT
    )
    # The canonical document (section 4) as a dict, its exact canonical text, and its SHA-256.
    document = models.JSONField()
    canonical = models.TextField()
    sha256 = models.CharField(max_length=64)
    risk_tier = models.CharField(max_length=20, choices=RiskTier.choices)
    review_cadence_days = models.PositiveIntegerField()
    # The last review on record. Starts as the document's spec.review.last_reviewed; mark_reviewed
    # moves it on without touching the document, which is immutable once active.
    last_reviewed = models.DateField(null=True, blank=True)
    last_reviewed_by = user_reference(optional=True)
    # last_reviewed + cadence, kept in a column so that staleness is one indexed comparison.
    review_due = models.DateField(null=True, blank=True, db_index=True)
    stale_since = models.DateTimeField(null=True, blank=True)
    evidence_required = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = user_reference(optional=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = user_reference(optional=True)

    objects = PactVersionQuerySet.as_manager()

    class Meta:
        ordering = ["pact__key", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["pact", "number"], name="pact_version_number_unique"),
            models.UniqueConstraint(
                fields=["pact"], condition=Q(status="active"), name="one_active_version_per_pact"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pact.key}@{self.number}"

    @property
    def label(self) -> str:
        return f"{self.pact.key}@{self.number}"

    @property
    def is_stale(self) -> bool:
        return (
            self.status == VersionStatus.ACTIVE
            and self.review_due is not None
            and self.review_due < timezone.now().date()
        )

    @staticmethod
    def compute_review_due(last_reviewed: date | None, cadence_days: int, created: date) -> date:
        return (last_reviewed or created) + timedelta(days=cadence_days)


class Clause(models.Model):
    version = models.ForeignKey(PactVersion, on_delete=models.PROTECT, related_name="clauses")
    position = models.PositiveIntegerField()
    key = models.SlugField(max_length=80)
    statement = models.TextField()
    assumption = models.CharField(max_length=40, choices=ASSUMPTION_CHOICES)
    metric = models.CharField(max_length=200)
    op = models.CharField(max_length=2, choices=Comparison.choices)
    target = models.DecimalField(max_digits=24, decimal_places=8)
    window = models.CharField(max_length=20)
    window_seconds = models.PositiveIntegerField()
    method = models.CharField(max_length=30, choices=EvaluationMethod.choices)
    source = models.CharField(max_length=200, blank=True)
    on_breach = models.CharField(max_length=20, choices=Consequence.choices)
    contain = models.CharField(
        max_length=10, choices=Containment.choices, default=Containment.PROPOSE
    )

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="clause_key_unique_in_version")
        ]

    def __str__(self) -> str:
        return f"{self.version.label}#{self.key}"

    @property
    def assumption_info(self):
        """The taxonomy entry (label, the assumption in words, what it maps to)."""
        return ASSUMPTION_BY_KEY.get(self.assumption)

    @property
    def window_words(self) -> str:
        amount, unit = int(self.window[:-1]), self.window[-1]
        word = "day" if unit == "d" else "hour"
        return f"{amount} {word}{'s' if amount != 1 else ''}"

    @property
    def objective_words(self) -> str:
        """`at most 0`, `at least 0.95`."""
        target = format(self.target.normalize(), "f")
        return f"{Comparison(self.op).label} {target}"

    @property
    def method_words(self) -> str:
        return {
            "automated": "automatically",
            "sampled_human_review": "by human review of a sample",
            "jury": "by a jury of evaluators",
            "human": "by a human reviewer",
            "inspect": "from Inspect AI evaluation logs",
            "junit": "from JUnit XML test reports",
        }.get(self.method, self.method)

    @property
    def evaluation_spec(self) -> dict:
        """The clause's `evaluation` mapping as its (immutable) document states it: method,
        source and, for log-fed methods, task/scorer/metric (inspect) or suite (junit)."""
        clauses = self.version.document.get("spec", {}).get("clauses", [])
        if self.position < len(clauses) and clauses[self.position].get("key") == self.key:
            return dict(clauses[self.position].get("evaluation", {}))
        return {"method": self.method, "source": self.source}

    @property
    def breach_words(self) -> str:
        if self.on_breach == Consequence.FLAG:
            return "A failing evaluation is flagged here for follow-up; the agent keeps its scope."
        action = "restricting" if self.on_breach == Consequence.RESTRICT else "suspending"
        if self.contain == Containment.AUTO:
            return (
                "A failing evaluation is a breach: it opens an incident (or joins the open one for "
                f"this clause) and contains it at once by {action} the agent."
            )
        return (
            "A failing evaluation is a breach: it opens an incident (or joins the open one for "
            f"this clause) and proposes {action} the agent."
        )

    def passes(self, value) -> bool:
        """Whether a measured value meets the clause's objective."""
        target = self.target
        return {
            "<": value < target,
            "<=": value <= target,
            "==": value == target,
            ">=": value >= target,
            ">": value > target,
        }[self.op]


class EvaluationQuerySet(models.QuerySet):
    def counted(self) -> EvaluationQuerySet:
        """Evaluations that count for scores and metrics (not voided by an upheld dispute)."""
        return self.filter(voided_at__isnull=True)

    def window_pass_rates(self, clauses, now=None) -> dict[int, dict]:
        """For each clause, counted evaluations measured within its window up to `now`:
        {clause_id: {"passed": n, "total": n, "rate": passed/total or None}}. One SQL query
        (a GROUP BY with conditional counts), whatever the number of evaluations."""
        now = now or timezone.now()
        clauses = list(clauses)
        if not clauses:
            return {}
        in_window = Q()
        for clause in clauses:
            in_window |= Q(
                clause_id=clause.pk,
                measured_at__gt=now - timedelta(seconds=clause.window_seconds),
                measured_at__lte=now,
            )
        rows = (
            self.counted()
            .filter(in_window)
            .order_by()
            .values("clause_id")
            .annotate(total=Count("pk"), passed=Count("pk", filter=Q(passed=True)))
        )
        rates = {c.pk: {"passed": 0, "total": 0, "rate": None} for c in clauses}
        for row in rows:
            rates[row["clause_id"]] = {
                "passed": row["passed"],
                "total": row["total"],
                "rate": row["passed"] / row["total"] if row["total"] else None,
            }
        return rates

    def latest_per_clause(self, clauses, n: int = 5) -> dict[int, list[Evaluation]]:
        """The last `n` evaluations (by measurement time) of each clause, with the log that
        produced each: {clause_id: [newest first]}. One SQL query (a ROW_NUMBER window)."""
        from django.db.models import F, Window
        from django.db.models.functions import RowNumber

        ids = [c.pk for c in clauses]
        if not ids:
            return {}
        rows = (
            self.filter(clause_id__in=ids)
            .select_related("log")
            .annotate(
                rank=Window(
                    RowNumber(),
                    partition_by=[F("clause_id")],
                    order_by=[F("measured_at").desc(), F("pk").desc()],
                )
            )
            .filter(rank__lte=n)
            .order_by("clause_id", "rank")
        )
        latest: dict[int, list[Evaluation]] = {pk: [] for pk in ids}
        for row in rows:
            latest[row.clause_id].append(row)
        return latest


class Evaluation(models.Model):
    clause = models.ForeignKey(Clause, on_delete=models.PROTECT, related_name="evaluations")
    value = models.DecimalField(max_digits=24, decimal_places=8)
    passed = models.BooleanField()
    is_breach = models.BooleanField(default=False)
    measured_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=200)
    external_id = models.CharField(max_length=200)
    ingested_at = models.DateTimeField(default=timezone.now)
    voided_at = models.DateTimeField(null=True, blank=True)
    # The file that produced it (an Inspect AI log, a JUnit report), when it came from one.
    log = models.ForeignKey(
        "EvaluationLog",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="evaluations",
    )

    objects = EvaluationQuerySet.as_manager()

    class Meta:
        ordering = ["-measured_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="evaluation_idempotency_key"
            )
        ]
        indexes = [models.Index(fields=["clause", "-measured_at"])]

    def __str__(self) -> str:
        return f"{self.clause} = {self.value_text} ({'pass' if self.passed else 'fail'})"

    @property
    def value_text(self) -> str:
        """The value without trailing zeros or exponent: 10, 0.95."""
        return format(self.value.normalize(), "f")


class DisputeStatus(models.TextChoices):
    OPEN = "open", "Open"
    UPHELD = "upheld", "Upheld"
    REJECTED = "rejected", "Rejected"


class Dispute(models.Model):
    """A challenge to an evaluation or to an incident's classification."""

    evaluation = models.ForeignKey(
        Evaluation, null=True, blank=True, on_delete=models.PROTECT, related_name="disputes"
    )
    incident = models.ForeignKey(
        "incidents.Incident",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="disputes",
    )
    reason = models.TextField()
    status = models.CharField(max_length=20, choices=DisputeStatus.choices, default="open")
    opened_by = user_reference()
    opened_at = models.DateTimeField(default=timezone.now)
    resolution = models.TextField(blank=True)
    resolved_by = user_reference(optional=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(evaluation__isnull=False) & Q(incident__isnull=True))
                | (Q(evaluation__isnull=True) & Q(incident__isnull=False)),
                name="dispute_has_exactly_one_target",
            )
        ]

    def __str__(self) -> str:
        return f"Dispute #{self.pk} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == DisputeStatus.OPEN


# Token scopes (docs/design.md section 12): what a bearer token may do.
SCOPE_EVALUATIONS_WRITE = "evaluations:write"
SCOPE_READ = "read"
AGENT_SCOPE_PREFIX = "agent:"
TOKEN_SCOPES = (SCOPE_EVALUATIONS_WRITE, SCOPE_READ)


class ApiTokenQuerySet(models.QuerySet):
    def live(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True)

    def for_secret(self, secret: str) -> ApiToken | None:
        """The live token whose secret this is, or None."""
        if not secret:
            return None
        digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
        return self.live().filter(token_hash=digest).first()


class ApiToken(models.Model):
    """A bearer token with scopes; only its SHA-256 is stored.

    `source` is the token's name: for `evaluations:write` it is also the evaluation source its
    evaluations are recorded under. `scopes` lists `evaluations:write`, `read`, `agent:KEY`.
    """

    source = models.CharField(max_length=200)
    label = models.CharField(max_length=200, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    scopes = models.JSONField(default=list)
    # None when made by `manage.py api_token create` (the system).
    created_by = user_reference(optional=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = user_reference(optional=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["source"]
        constraints = [
            models.UniqueConstraint(
                fields=["source"],
                condition=Q(revoked_at__isnull=True),
                name="one_live_token_per_source",
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} ({self.prefix}…)"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])

    def may_read_agent(self, key: str) -> bool:
        """Whether this token may read the scope statement of agent `key`."""
        return self.has_scope(SCOPE_READ) or self.has_scope(AGENT_SCOPE_PREFIX + key)


class LogFormat(models.TextChoices):
    INSPECT_EVAL = "inspect_eval", "Inspect AI log (.eval)"
    INSPECT_JSON = "inspect_json", "Inspect AI log (.json)"
    JUNIT = "junit", "JUnit XML report"


LOG_SUFFIX = {"inspect_eval": ".eval", "inspect_json": ".json", "junit": ".xml"}


class EvaluationLog(models.Model):
    """A file that produced evaluations (docs/design.md section 14), kept as evidence: its bytes
    live content-addressed in the store of core.blobs, under their SHA-256, and never change.
    One row per distinct file; ingesting it again reuses the row."""

    sha256 = models.CharField(max_length=64, unique=True)
    size = models.PositiveBigIntegerField()
    storage_path = models.CharField(max_length=300)
    original_name = models.CharField(max_length=255, blank=True)
    format = models.CharField(max_length=20, choices=LogFormat.choices)
    # What was read from the file: eval id, task, status and scores, or the JUnit suites.
    summary = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    received_by = user_reference(optional=True)
    # The evaluation source of the API token that posted it; empty from the command line.
    received_from = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_format_display()} {self.sha256[:12]}"

    @property
    def download_name(self) -> str:
        """A file name for downloads: the name it arrived with, else its hash and format."""
        return self.original_name or f"{self.sha256[:16]}{LOG_SUFFIX.get(self.format, '')}"

"""Metric snapshots, trust scores and the refresh requests that debounce them (docs/design.md
section 6)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

OVERALL = "*"


class MetricSnapshot(models.Model):
    """The metrics of one scope over one window, as last computed by the workers.

    Upserted on its natural key (scope, window): a rerun overwrites, never duplicates.
    `scope` is "*" (every agent) or an agent key; `window` is "7d", "30d", "90d", "all" (rolling,
    ending at `computed_at`) or a calendar ISO week such as "2026-W45" (for trends).
    """

    scope = models.CharField(max_length=80)
    window = models.CharField(max_length=20)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    data = models.JSONField()
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["scope", "window"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "window"], name="metric_snapshot_natural_key")
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.window} @ {self.computed_at:%Y-%m-%d %H:%M:%S}"


class RefreshRequest(models.Model):
    """The latest request to refresh one scope ("*" or "agent:<id>").

    Every incident event writes a new token here and enqueues a task carrying it after a short
    countdown; a task whose token is no longer the latest skips (a newer one will run), so a
    burst of events leads to one recompute. `pending_since` bounds the wait under a long burst.
    """

    scope = models.CharField(max_length=80, unique=True)
    token = models.CharField(max_length=32)
    requested_at = models.DateTimeField()
    pending_since = models.DateTimeField(null=True, blank=True)
    # Set while a worker computes this scope (claimed by a conditional UPDATE), so that two
    # workers never compute the same scope at once; the one computing follows up on requests
    # that arrived meanwhile.
    running_since = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"refresh {self.scope} @ {self.requested_at:%H:%M:%S.%f}"


class TrustScore(models.Model):
    """An agent's trust score (0 to 100) with its breakdown; one row per agent per day (the last
    computation of the day wins), which is the score's history."""

    agent = models.ForeignKey("pacts.Agent", on_delete=models.PROTECT, related_name="trust_scores")
    day = models.DateField()
    score = models.DecimalField(max_digits=5, decimal_places=2)
    breakdown = models.JSONField(default=dict)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["agent", "-day"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "day"], name="trust_score_one_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.day}: {self.score}"


class IncidentFacts(models.Model):
    """What the metrics need from one incident, in one narrow row (a cache of a function of the
    incident's agent, detection time, pact version and events).

    Written only by `compute` (set-based SQL), never by hand. `event_count` is the incident's
    event count when the row was computed. Events are append-only and every append bumps
    `Incident.event_count`, so a row whose `event_count` differs from its incident's is stale:
    every metric query recomputes the stale rows from the events in the same statement and
    never reads them as they are. The agent, detection time and pact version are copied from
    the incident, which sets them when it is opened (or imported) and never changes them.
    """

    incident = models.OneToOneField(
        "incidents.Incident", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    event_count = models.PositiveIntegerField()
    # Copied from the incident (compared with it to find stale rows).
    agent = models.ForeignKey(
        "pacts.Agent",
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,  # the (agent, event_count) index below serves it
    )
    detected_at = models.DateTimeField()
    pact_version = models.ForeignKey(
        "pacts.PactVersion",
        null=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    contained_at = models.DateTimeField(null=True)  # first `contained`
    classified_at = models.DateTimeField(null=True)  # first `classified`
    reopened_at = models.DateTimeField(null=True)  # first `reopened`
    # Seconds from detection to each of the three (float, rounded to the microsecond).
    ttc = models.FloatField(null=True)
    ttcl = models.FloatField(null=True)
    ttr = models.FloatField(null=True)
    assumption = models.CharField(max_length=200, null=True)  # of the latest `classified`
    # 1 when reopened with no `operating_model_changed` at or before the first reopening.
    reopened_without_change = models.SmallIntegerField()
    # 1 when an `evidence_added` of that kind came at or before the first reopening.
    ev_transcript = models.SmallIntegerField()
    ev_tool_calls = models.SmallIntegerField()
    ev_evaluation_result = models.SmallIntegerField()
    ev_alert = models.SmallIntegerField()
    ev_impact_assessment = models.SmallIntegerField()
    ev_config_snapshot = models.SmallIntegerField()
    ev_other = models.SmallIntegerField()
    ev_trace = models.SmallIntegerField()
    decisions = models.IntegerField()
    reopening_decisions = models.IntegerField()
    override_decisions = models.IntegerField()
    explainable_decisions = models.IntegerField()
    # 1 when the incident recurs (docs/design.md section 6). Unlike the columns above it depends
    # on the agent's other incidents: it is rewritten for every incident of an agent whenever any
    # row of that agent is written, in the same transaction (`compute.refresh_facts`), and the
    # metric queries recompute it for every agent that has a stale row.
    recurrent = models.SmallIntegerField(default=0, db_default=0)

    class Meta:
        # Every metric query first compares the count and the sum of `event_count` of the rows
        # with the incidents' (see `compute._stale_cte`): an index-only scan of this index
        # instead of the table (incidents_incident has the same index: migration 0004_release_2).
        indexes = [models.Index(fields=["agent", "event_count"], name="facts_agent_event_count")]

    def __str__(self) -> str:
        return f"facts of incident {self.incident_id} at {self.event_count} events"

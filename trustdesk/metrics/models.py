"""Metric snapshots, trust scores and the refresh requests that debounce them (DESIGN.md 6)."""

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

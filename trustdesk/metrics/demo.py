"""Demo data of the metrics app: every snapshot and trust score, computed after the other seeds.

Idempotent: when nothing changed since the last computation (no newer event, evaluation, pact
version or agent), a second run writes nothing.
"""

from __future__ import annotations

from django.db.models import Max

from trustdesk.incidents.models import Event
from trustdesk.metrics.models import OVERALL, MetricSnapshot
from trustdesk.metrics.refresh import recompute_all
from trustdesk.pacts.models import Agent, Evaluation, PactVersion


def _latest_change():
    candidates = [
        Event.objects.aggregate(t=Max("recorded_at"))["t"],
        Evaluation.objects.aggregate(t=Max("ingested_at"))["t"],
        Evaluation.objects.aggregate(t=Max("voided_at"))["t"],
        PactVersion.objects.aggregate(t=Max("created_at"))["t"],
        Agent.objects.aggregate(t=Max("scope_changed_at"))["t"],
        Agent.objects.aggregate(t=Max("created_at"))["t"],
    ]
    return max((t for t in candidates if t is not None), default=None)


def seed(stdout) -> None:
    last = (
        MetricSnapshot.objects.filter(scope=OVERALL, window="all")
        .values_list("computed_at", flat=True)
        .first()
    )
    scored = set(MetricSnapshot.objects.values_list("scope", flat=True).distinct())
    every_agent_scored = set(Agent.objects.values_list("key", flat=True)) <= scored
    latest = _latest_change()
    if last is not None and every_agent_scored and (latest is None or latest <= last):
        stdout.write("metrics: snapshots and trust scores are up to date")
        return
    written = recompute_all()
    stdout.write(f"metrics: {written} snapshots and every agent's trust score computed")

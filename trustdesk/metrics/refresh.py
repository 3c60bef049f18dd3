"""The state changes of the metrics app: snapshots and trust scores, upserted on natural keys.

Every function here may run twice, or concurrently with itself, safely: each writes the whole
result of one computation with one INSERT ... ON CONFLICT UPDATE, so a rerun overwrites and never
duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from trustdesk.metrics.compute import Window, compute_windows, store_facts, with_context
from trustdesk.metrics.models import OVERALL, MetricSnapshot, TrustScore
from trustdesk.metrics.trust import compute_trust
from trustdesk.pacts.models import Agent

ROLLING_DAYS = {"7d": 7, "30d": 30, "90d": 90}
ALL_TIME = "all"
WINDOW_CHOICES = (
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("90d", "Last 90 days"),
    (ALL_TIME, "All time"),
)
TREND_WEEKS = 12
_WEEK_KEY = re.compile(r"^(\d{4})-W(\d{2})$")


def week_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_window(key: str) -> Window | None:
    """The calendar ISO week "2026-W45": Monday 00:00 UTC to the next Monday; None if invalid."""
    match = _WEEK_KEY.match(key)
    if not match:
        return None
    try:
        monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        return None
    start = datetime.combine(monday, time.min, tzinfo=UTC)
    return Window(key, start, start + timedelta(days=7))


def trend_weeks(now: datetime, count: int = TREND_WEEKS) -> list[Window]:
    """The last `count` ISO weeks, oldest first; the current (partial) week is the last."""
    today = now.astimezone(UTC).date()
    weeks = []
    for back in range(count - 1, -1, -1):
        window = week_window(week_key(today - timedelta(weeks=back)))
        assert window is not None
        weeks.append(window)
    return weeks


def rolling_window(key: str, now: datetime) -> Window:
    if key == ALL_TIME:
        return Window(ALL_TIME, None, now)
    return Window(key, now - timedelta(days=ROLLING_DAYS[key]), now)


def snapshot_windows(now: datetime) -> list[Window]:
    return [rolling_window(key, now) for key, _ in WINDOW_CHOICES] + trend_weeks(now)


def _snapshots(
    results: dict[tuple[int | None, str], dict[str, Any]],
    windows: list[Window],
    scope_keys: dict[int | None, str],
    now: datetime,
) -> list[MetricSnapshot]:
    by_key = {w.key: w for w in windows}
    rows = []
    for (scope, wkey), data in results.items():
        window = by_key[wkey]
        agent_key = None if scope is None else scope_keys[scope]
        rows.append(
            MetricSnapshot(
                scope=OVERALL if scope is None else agent_key,
                window=wkey,
                window_start=window.start,
                window_end=window.end,
                data=with_context(data, window=window, agent_key=agent_key),
                computed_at=now,
            )
        )
    return rows


def _upsert_snapshots(rows: list[MetricSnapshot]) -> None:
    MetricSnapshot.objects.bulk_create(
        rows,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["scope", "window"],
        update_fields=["window_start", "window_end", "data", "computed_at"],
    )


def _record_trust(agent_ids: list[int], results, now: datetime) -> None:
    trust = compute_trust(
        agent_ids,
        metrics_90d={aid: results[(aid, "90d")] for aid in agent_ids if (aid, "90d") in results},
        now=now,
    )
    if not trust:
        return
    day = now.astimezone(UTC).date()
    TrustScore.objects.bulk_create(
        [
            TrustScore(agent_id=aid, day=day, score=t.score, breakdown=t.breakdown, computed_at=now)
            for aid, t in trust.items()
        ],
        batch_size=500,
        update_conflicts=True,
        unique_fields=["agent", "day"],
        update_fields=["score", "breakdown", "computed_at"],
    )
    Agent.objects.bulk_update(
        [Agent(pk=aid, trust_score=t.score) for aid, t in trust.items()],
        ["trust_score"],
        batch_size=500,
    )


def refresh_agent(agent_id: int, *, now: datetime | None = None) -> bool:
    """Recompute one agent's snapshots (every window) and today's trust score.

    Returns False when the agent does not exist (nothing to do).
    """
    now = now or timezone.now()
    key = Agent.objects.filter(pk=agent_id).values_list("key", flat=True).first()
    if key is None:
        return False
    windows = snapshot_windows(now)
    store_facts(agent_id=agent_id)
    results = compute_windows(windows, agent_id=agent_id, today=now.astimezone(UTC).date())
    with transaction.atomic():
        _upsert_snapshots(_snapshots(results, windows, {agent_id: key}, now))
        _record_trust([agent_id], results, now)
    return True


def refresh_overall(*, now: datetime | None = None, recent_only: bool = False) -> None:
    """Recompute the overall ("*") snapshots of every window, or of every window but "all"
    (`recent_only`: about the last 90 days, a fraction of the history to read)."""
    now = now or timezone.now()
    windows = snapshot_windows(now)
    if recent_only:
        windows = [w for w in windows if w.key != ALL_TIME]
    store_facts()
    results = compute_windows(windows, today=now.astimezone(UTC).date())
    _upsert_snapshots(_snapshots(results, windows, {}, now))


def recompute_all(*, now: datetime | None = None) -> int:
    """Every scope (overall and each agent), every window, and every trust score.

    The metrics of all scopes come from the same two or three statements (one pass over the
    events), whatever the number of agents. Returns the number of snapshots written.
    """
    now = now or timezone.now()
    agents = dict(Agent.objects.values_list("pk", "key"))
    windows = snapshot_windows(now)
    store_facts()
    results = compute_windows(windows, per_agent=list(agents), today=now.astimezone(UTC).date())
    rows = _snapshots(results, windows, agents, now)
    with transaction.atomic():
        _upsert_snapshots(rows)
        _record_trust(list(agents), results, now)
    return len(rows)


def snapshots_for(scope: str, window_keys: Iterable[str]) -> dict[str, MetricSnapshot]:
    """The stored snapshots of one scope, by window key; one query."""
    return {
        s.window: s
        for s in MetricSnapshot.objects.filter(scope=scope, window__in=list(window_keys))
    }

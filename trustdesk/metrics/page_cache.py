"""The dashboard's tiles and weekly trend charts, rendered once per snapshot version.

What these two parts show is a pure function of stored snapshots: the chosen window's snapshot
(the tiles) and the weekly snapshots of the last twelve ISO weeks (the charts), for one scope.
Their HTML is kept in the cache under a key made of the scope, the window, the week keys and,
for every snapshot read, its id and `computed_at`. Every write of a snapshot sets `computed_at`
(refresh.write_snapshots), so a recomputed figure gets a new key: a cached part is never stale,
and an old one is simply never asked for again (entries expire after a day).

Nothing per person is cached: the parts carry no time of day (the page's other times go through
`{% when %}`), no form, no CSRF token and nothing that depends on a role (every reader sees the
same drill-down links). What changes with the clock, the snapshot's age ("computed 4 min ago")
and its staleness, is put in per request at two markers of the cached tile markup. The rest of
the page (filters, heartbeat, reports due, trust scores, the recompute button) is rendered on
every request. Reads no query of its own: the view passes the snapshots it already loaded.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.core.cache import cache
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from trustdesk.metrics import dashboard as board
from trustdesk.metrics.models import MetricSnapshot
from trustdesk.metrics.templatetags.metrics_tags import age

VERSION = "1"  # bump when the markup of _tiles.html, _trends.html or _chart.html changes
TIMEOUT = 24 * 3600
STALE_CLASS = "<!--td:stale-class-->"
TILE_AGE = "<!--td:tile-age-->"


def _key(kind: str, scope: str, window: str, snapshots: list[MetricSnapshot | None]) -> str:
    parts = [VERSION, kind, scope, window]
    for s in snapshots:
        parts.append("-" if s is None else f"{s.window}:{s.pk}:{s.computed_at.isoformat()}")
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"trustdesk:dashboard:{kind}:{digest}"


def _cached(key: str, build) -> str:
    html = cache.get(key)
    if html is None:
        html = str(build())
        cache.set(key, html, TIMEOUT)
    return html


def tiles_html(
    snapshot: MetricSnapshot | None, *, window: str, agent: str, stale: bool, now: datetime
) -> SafeString:
    """The tile grid of `snapshot` (empty when there is none), with its age and staleness."""
    if snapshot is None:
        return mark_safe("")  # noqa: S308 - nothing
    key = _key("tiles", board.scope_key(agent), window, [snapshot])
    html = _cached(
        key,
        lambda: render_to_string(
            "metrics/_tiles.html",
            {"tiles": board.build_tiles(snapshot.data, window=window, agent=agent)},
        ),
    )
    age_line = format_html("computed {}", age(snapshot.computed_at))
    if stale:
        age_line += mark_safe(' · <span class="badge badge-stale">stale</span>')  # noqa: S308
    html = html.replace(STALE_CLASS, " stale" if stale else "").replace(TILE_AGE, age_line)
    return mark_safe(html)  # noqa: S308 - rendered by the template engine, markers replaced


def trends_html(
    snapshots: dict[str, MetricSnapshot], *, weeks: list[str], agent: str, now: datetime
) -> SafeString:
    """The weekly trend charts of the last twelve ISO weeks of `snapshots`."""
    key = _key("trends", board.scope_key(agent), ",".join(weeks), [snapshots.get(w) for w in weeks])
    return mark_safe(  # noqa: S308 - rendered by the template engine
        _cached(
            key,
            lambda: render_to_string(
                "metrics/_trends.html",
                {
                    "charts": board.trend_charts(snapshots, now=now, agent=agent),
                    "agent_key": agent,
                },
            ),
        )
    )

"""The dashboard's tiles and trend charts are rendered once per snapshot version
(metrics/page_cache.py): reused while the snapshots are unchanged, never stale after a
recompute, with the age and staleness of the moment and nothing of one person in them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from tests.factories import make_incident, make_pact_version
from trustdesk.metrics import dashboard as board
from trustdesk.metrics import refresh

pytestmark = pytest.mark.django_db
DASHBOARD = "/"


def recent_incidents(n: int) -> None:
    """n incidents opened through the lifecycle, detected yesterday, all open."""
    version = make_pact_version()
    for i in range(n):
        make_incident(version=version, detected_at=timezone.now() - timedelta(days=1, minutes=i))


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def _counting(monkeypatch, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(board, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(board, name, counted)
    return calls


def _tile(html: str, key: str) -> str:
    return re.search(rf'id="tile-{key}">(.*?)</div>\s*</div>', html, re.S).group(1)


def _parts(html: str) -> str:
    """From the tiles to the end of the trend charts."""
    return html.split('<div class="grid metrics-tiles">', 1)[1].split(
        'aria-labelledby="trust-title"'
    )[0]


def test_parts_are_built_once_per_snapshot_version_and_reused(client_for, monkeypatch):
    recent_incidents(2)
    refresh.recompute_all()
    tiles = _counting(monkeypatch, "build_tiles")
    charts = _counting(monkeypatch, "trend_charts")
    viewer = client_for("viewer")
    first = viewer.get(DASHBOARD, {"window": "all"}).content.decode()
    second = viewer.get(DASHBOARD, {"window": "all"}).content.decode()
    assert (len(tiles), len(charts)) == (1, 1)
    assert _parts(first) == _parts(second)
    assert 'id="tile-open_count"' in first and "<svg" in first
    assert "<!--td:" not in first  # both markers replaced
    # Another window is another snapshot: built once more.
    viewer.get(DASHBOARD, {"window": "7d"})
    assert len(tiles) == 2


def test_a_recompute_is_shown_at_once(client_for):
    viewer = client_for("viewer")
    recent_incidents(2)
    refresh.recompute_all()
    before = viewer.get(DASHBOARD, {"window": "all"}).content.decode()
    assert ">2</a>" in _tile(before, "open_count")
    recent_incidents(3)
    refresh.recompute_all()
    after = viewer.get(DASHBOARD, {"window": "all"}).content.decode()
    assert ">5</a>" in _tile(after, "open_count")
    assert after.count("stale") == before.count("stale")


def test_staleness_and_age_are_of_the_request_not_of_the_cache(client_for, monkeypatch):
    recent_incidents(1)
    refresh.recompute_all()
    viewer = client_for("viewer")
    fresh = viewer.get(DASHBOARD, {"window": "all"}).content.decode()
    assert "computed just now" in fresh and "badge-stale" not in fresh
    # The same snapshot (same cache entry), judged stale now: every tile says so.
    monkeypatch.setattr(board, "STALE_AFTER_EAGER", timedelta(0))
    stale = viewer.get(DASHBOARD, {"window": "all"}).content.decode()
    assert stale.count('class="tile metrics-tile stale"') == 12
    assert stale.count('<span class="badge badge-stale">stale</span>') == 12


def test_what_depends_on_the_person_is_not_cached(client_for):
    recent_incidents(1)
    refresh.recompute_all()
    viewer_html = client_for("viewer").get(DASHBOARD, {"window": "all"}).content.decode()
    operator_html = client_for("operator").get(DASHBOARD, {"window": "all"}).content.decode()
    assert "Recompute now" not in viewer_html and "Recompute now" in operator_html
    assert _parts(viewer_html) == _parts(operator_html)

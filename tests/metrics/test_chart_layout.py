"""Chart layout: the y axis makes room for its labels, durations use a unit that fits their
size, charts with links are groups of links (not images hiding them)."""

from __future__ import annotations

import re

from trustdesk.metrics.charts import chart, duration_unit, left_margin


def test_duration_unit_follows_the_largest_value():
    assert duration_unit(0) == (60.0, "min")
    assert duration_unit(90 * 60) == (60.0, "min")
    assert duration_unit(5 * 3600) == (3600.0, "h")
    assert duration_unit(3 * 86400 + 1) == (86400.0, "days")


def test_the_y_axis_leaves_room_for_its_longest_label():
    short = chart(ident="a", title="t", description="d", labels=["W1"], series=[("s", [3])])
    long = chart(
        ident="b",
        title="t",
        description="d",
        labels=["W1"],
        series=[("s", [9000])],
        fmt=lambda v: f"{v:.0f} min",
    )
    assert long.y_ticks[-1][1] == "10000 min"
    assert long.plot_left >= left_margin(["10000 min"]) > short.plot_left
    # The label ends 6 px left of the plot, so it starts inside the picture.
    assert long.plot_left - 6 - len("10000 min") * 6.6 > 0


def test_a_chart_with_links_is_a_group_of_named_links_and_one_without_is_an_image():
    linked = chart(
        ident="c",
        title="t",
        description="d",
        labels=["W1", "W2"],
        bars=[1, 2],
        hrefs=["/x?w=1", "/x?w=2"],
    )
    svg = str(linked.svg)
    assert 'role="group"' in svg and 'role="img"' not in svg
    assert re.findall(r'<a href="[^"]+" aria-label="([^"]+)"', svg) == ["W1: 1", "W2: 2"]
    plain = chart(ident="d", title="t", description="d", labels=["W1"], series=[("s", [1])])
    assert 'role="img"' in str(plain.svg)


def test_containment_and_recovery_each_get_their_own_scale_and_unit(db):
    """Minutes of containment are not flattened under weeks of recovery."""
    from django.utils import timezone

    from trustdesk.metrics.dashboard import trend_charts
    from trustdesk.metrics.refresh import trend_weeks

    now = timezone.now()
    weeks = trend_weeks(now)

    class Snapshot:
        def __init__(self, data):
            self.data = data

    data = {
        "time_to_containment": {"p50": 12 * 60, "count": 1},
        "time_to_recovery": {"p50": 20 * 86400, "count": 1},
    }
    snapshots = {weeks[-1].key: Snapshot(data), weeks[-2].key: Snapshot(data)}
    charts = {c.id: c for c in trend_charts(snapshots, now=now, agent="")}
    containment, recovery = charts["chart-containment"], charts["chart-recovery"]
    assert containment.title.endswith("(min)") and recovery.title.endswith("(days)")
    assert [label for _, label in containment.y_ticks][-1].endswith(" min")
    assert [label for _, label in recovery.y_ticks][-1].endswith(" days")
    # Containment sits well above its axis: at least half-way up its own plot.
    point = containment.series[0].points[-1]
    middle = (containment.plot_top + containment.plot_bottom) / 2
    assert point.y <= middle

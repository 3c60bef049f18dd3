"""The dashboard, drill-down pages, CSV exports and the recompute button."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.metrics.helpers import (
    agent_with_pact,
    classified,
    contained,
    new_incident,
    plus,
    record,
    reopened,
)
from trustdesk.metrics import refresh
from trustdesk.metrics.models import OVERALL, MetricSnapshot
from trustdesk.pacts.models import Agent

pytestmark = pytest.mark.django_db

DASHBOARD = "/"


def drill(metric: str, **query) -> str:
    from urllib.parse import urlencode

    return f"{reverse('metrics_drilldown', args=[metric])}?{urlencode(query)}"


@pytest.fixture
def viewer(client_for):
    return client_for("viewer")


def recent_incidents(n: int, *, agent_key: str = "dash-agent", reopen: bool = True):
    """n incidents detected in the last days, each contained after 10 min and reopened."""
    agent = Agent.objects.filter(key=agent_key).first()
    if agent is None:
        agent, version = agent_with_pact(agent_key, evidence_required=[])
    else:
        version = agent.pacts.get().versions.get(status="active")
    now = timezone.now()
    made = []
    for i in range(n):
        detected = now - timedelta(days=2, minutes=i)
        incident = new_incident(version, detected, title=f"Incident {i}")
        events = [
            contained(plus(detected, minutes=10)),
            classified("drift", plus(detected, hours=1)),
        ]
        if reopen:
            events.append(reopened(plus(detected, hours=2)))
        record(incident, *events)
        made.append(incident)
    return agent, made


# ---------------------------------------------------------------- access


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", DASHBOARD),
        ("get", "/metrics/export.csv"),
        ("get", "/metrics/override_rate/"),
        ("post", "/metrics/refresh/"),
    ],
)
def test_anonymous_users_are_sent_to_the_login_page(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("path", [DASHBOARD, "/metrics/export.csv", "/metrics/open_count/"])
def test_a_user_without_a_role_gets_403(client_for, path):
    assert client_for().get(path).status_code == 403


@pytest.mark.parametrize("role", ["operator", "incident_manager", "risk", "viewer"])
def test_every_role_reads_the_dashboard(client_for, role):
    assert client_for(role).get(DASHBOARD).status_code == 200


def test_viewers_and_users_without_a_role_cannot_recompute(client_for):
    assert client_for("viewer").post("/metrics/refresh/").status_code == 403
    assert client_for().post("/metrics/refresh/").status_code == 403
    assert not MetricSnapshot.objects.exists()


def test_recompute_refuses_get(client_for):
    assert client_for("risk").get("/metrics/refresh/").status_code == 405


# ---------------------------------------------------------------- dashboard


def test_the_dashboard_says_when_nothing_is_computed_yet(viewer):
    response = viewer.get(DASHBOARD)
    assert b"No metrics computed yet" in response.content
    assert b"Recompute now" not in response.content  # viewers are read-only


def test_the_dashboard_shows_every_tile_with_drilldown_links(viewer):
    recent_incidents(3)
    refresh.recompute_all()
    response = viewer.get(DASHBOARD, {"window": "7d"})
    html = response.content.decode()
    for tile in (
        "time_to_containment",
        "time_to_recovery",
        "evidence_completeness_at_reopen",
        "reopen_without_change_rate",
        "override_rate",
        "explainable_decision_rate",
        "recurrence_rate",
        "open_count",
        "unclassified_count",
        "stale_pacts",
        "restricted_agents",
    ):
        assert f'id="tile-{tile}"' in html
    assert "p50 10 min" in html  # time to containment
    assert "p50 2.0 h" in html  # time to recovery
    assert (
        drill("reopen_without_change_rate", window="7d", part="numerator").replace("&", "&amp;")
        in html
    )
    assert "computed just now" in html
    assert "<svg" in html and "<title" in html  # trend charts, with titles
    assert 'style="' not in html  # CSP: no inline styles
    assert "<script>" not in html


def test_the_agent_filter_and_window_choose_the_snapshot(viewer):
    recent_incidents(2, agent_key="dash-a")
    recent_incidents(1, agent_key="dash-b")
    refresh.recompute_all()
    all_agents = viewer.get(DASHBOARD, {"window": "30d"}).context["snapshot"]
    assert all_agents.scope == OVERALL and all_agents.data["incident_count"] == 3
    only_b = viewer.get(DASHBOARD, {"window": "30d", "agent": "dash-b"}).context["snapshot"]
    assert only_b.scope == "dash-b" and only_b.data["incident_count"] == 1


def test_bad_filters_are_reported_and_the_defaults_used(viewer):
    recent_incidents(1)
    refresh.recompute_all()
    response = viewer.get(DASHBOARD, {"window": "5y", "agent": "<script>"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Some filters were not understood" in html
    assert "<script>" not in html
    assert response.context["window"] == "30d" and response.context["agent_key"] == ""


def test_htmx_gets_only_the_dashboard_body(viewer):
    recent_incidents(1)
    refresh.recompute_all()
    response = viewer.get(DASHBOARD, {"window": "7d"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="metrics-body"')
    assert "<html" not in html
    assert "HX-Request" in response["Vary"]


def test_old_figures_are_flagged_stale_and_still_shown(viewer, settings):
    recent_incidents(2)
    refresh.recompute_all(now=timezone.now() - timedelta(days=2))
    html = viewer.get(DASHBOARD, {"window": "all"}).content.decode()
    assert "stale: older than a day" in html
    assert 'id="tile-time_to_containment"' in html


def test_without_a_worker_heartbeat_figures_are_flagged_stale_with_the_broker_down(viewer):
    from tests.conftest import reset_broker_connections
    from trustdesk.celery import app

    recent_incidents(2)
    refresh.recompute_all()
    old = (app.conf.task_always_eager, app.conf.broker_url)
    app.conf.task_always_eager = False
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    reset_broker_connections(app)
    try:
        response = viewer.get(DASHBOARD, {"window": "all"})
    finally:
        app.conf.task_always_eager, app.conf.broker_url = old
        reset_broker_connections(app)
    html = response.content.decode()
    assert response.status_code == 200
    assert "no recent worker heartbeat" in html
    assert "Worker heartbeat: never seen" in html
    assert response.context["snapshot"].data["incident_count"] == 2


def test_the_dashboard_runs_a_fixed_number_of_queries(viewer, django_assert_max_num_queries):
    recent_incidents(2, agent_key="q-a")
    refresh.recompute_all()
    viewer.get(DASHBOARD)  # warm the session
    with django_assert_max_num_queries(7) as small:
        viewer.get(DASHBOARD, {"window": "all"})
    for i in range(6):
        recent_incidents(5, agent_key=f"q-more-{i}")
    refresh.recompute_all()
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = viewer.get(DASHBOARD, {"window": "all"})
    assert response.context["snapshot"].data["incident_count"] == 32


def test_recompute_now_computes_in_process_and_returns_to_the_same_view(client_for):
    recent_incidents(1)
    response = client_for("operator").post(
        "/metrics/refresh/", {"window": "7d", "agent": "dash-agent"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/?window=7d&agent=dash-agent"
    assert MetricSnapshot.objects.filter(scope="dash-agent", window="7d").exists()


def test_the_csv_export_has_the_figures_shown(viewer):
    _agent, reopened_ones = recent_incidents(3)
    for made in reopened_ones:  # three more, still open, neither contained nor reopened
        new_incident(made.pact_version, made.detected_at, title="Still open")
    refresh.recompute_all()
    response = viewer.get("/metrics/export.csv", {"window": "7d"})
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_metric = {r["metric"]: r for r in rows}
    assert by_metric["time_to_containment"]["p50"] == "600.0"
    assert by_metric["time_to_containment"]["count"] == "3"
    assert by_metric["reopen_without_change_rate"]["numerator"] == "3"
    assert by_metric["reopen_without_change_rate"]["value"] == "1.0"
    assert by_metric["open_count"]["value"] == "3"
    assert {r["scope"] for r in rows} == {"*"} and {r["window"] for r in rows} == {"7d"}


# ---------------------------------------------------------------- drill-down


def test_drilldown_lists_exactly_the_numerator_and_denominator(viewer, march):
    refresh.recompute_all()
    base = {"window": "all", "agent": "agent-a"}

    def keys(metric, part):
        response = viewer.get(drill(metric, part=part, **base))
        assert response.status_code == 200
        return sorted(item[0].title for item in response.context["items"]), response

    # agent A, all time: I6 (Feb), I1, I2 reopened; only I2's change was at the reopening
    reopened_ids = {i.pk for i in march["a"].incidents.filter(events__type="reopened")}
    _, response = keys("reopen_without_change_rate", "denominator")
    assert {item[0].pk for item in response.context["items"]} == reopened_ids
    _, response = keys("reopen_without_change_rate", "numerator")
    assert [item[0].pk for item in response.context["items"]] == [
        i.pk for i in march["a"].incidents.order_by("-detected_at") if i.pk == march["i6"].pk
    ]
    _, response = keys("override_rate", "numerator")
    assert [item[0].pk for item in response.context["items"]] == [march["i2"].pk]
    assert response.context["items"][0][1] == 1.0  # one override decision
    _, response = keys("time_to_containment", "count")
    assert response.context["total"] == 4
    html = response.content.decode()
    assert "7.0 min" in html  # I1's first containment, not its second


def test_drilldown_pages_and_exports_as_csv(viewer, django_assert_max_num_queries):
    agent, made = recent_incidents(55, reopen=False)
    Agent.objects.filter(pk=agent.pk).update(scope="restricted")
    made[0].title = "=HYPERLINK(evil)"
    made[0].save(update_fields=["title"])
    refresh.recompute_all()
    with django_assert_max_num_queries(11) as on_first:
        first = viewer.get(drill("time_to_containment", window="7d"))
    assert len(first.context["items"]) == 50 and first.context["page"].has_next()
    assert 'rel="next" href="?window=7d&amp;page=2"' in first.content.decode()
    # the same queries for any page, whatever the number of rows
    with django_assert_max_num_queries(len(on_first.captured_queries)):
        second = viewer.get(drill("time_to_containment", window="7d", page=2))
    assert len(second.context["items"]) == 5 and second.context["total"] == 55
    # past the end: the last page, as on every paginated list (core.pages.paginate)
    beyond = viewer.get(drill("time_to_containment", window="7d", page=9))
    assert beyond.status_code == 200 and beyond.context["page"].number == 2
    assert [i[0].pk for i in beyond.context["items"]] == [i[0].pk for i in second.context["items"]]

    response = viewer.get(drill("time_to_containment", window="7d", format="csv"))
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert len(rows) == 56
    assert "'=HYPERLINK(evil)" in [r[1] for r in rows]

    restricted = viewer.get(drill("restricted_agents"))
    assert [item[0].key for item in restricted.context["items"]] == ["dash-agent"]
    open_ = viewer.get(drill("open_count", agent="dash-agent"))
    assert open_.context["total"] == 55


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"window": "forever"}, b"Unknown window"),
        ({"agent": "nobody"}, b"No agent with key"),
        ({"part": "bogus"}, b"Select a valid choice"),
        ({"page": "0"}, b"greater than or equal to 1"),
        ({"page": "x"}, b"Enter a whole number"),
        ({"format": "xlsx"}, b"Select a valid choice"),
    ],
)
def test_drilldown_refuses_bad_input_with_a_message(viewer, query, message):
    response = viewer.get(drill("override_rate", **query))
    assert response.status_code == 400
    assert message in response.content


def test_an_unknown_metric_is_404(viewer):
    assert viewer.get("/metrics/not_a_metric/").status_code == 404


def test_a_week_from_the_trend_chart_drills_into_that_week(viewer):
    recent_incidents(2)
    refresh.recompute_all()
    week = refresh.week_key((timezone.now() - timedelta(days=2)).date())
    response = viewer.get(drill("incident_count", window=week))
    assert response.status_code == 200
    assert response.context["total"] == 2


def test_chart_axes_have_round_ticks_and_gaps_for_missing_weeks():
    from trustdesk.metrics.charts import chart

    c = chart(
        ident="t",
        title="Counts <b>",
        description="d",
        labels=["2026-W01", "2026-W02", "2026-W03"],
        series=[("count", [3, None, 9])],
        fmt=lambda v: f"{v:.0f}",
    )
    assert [label for _, label in c.y_ticks] == ["0", "3", "6", "9", "12"]
    assert c.series[0].path.count("M") == 2  # the missing week breaks the line
    svg = str(c.svg)
    assert "Counts &lt;b&gt;" in svg and "<b>" not in svg
    assert 'style="' not in svg

"""A check that runs after every database test: each incident's stored columns are what its
events say when `transitions.advance` is folded over them.

So every incident the suite builds, through the steps, the reviews actions, the importer, the
demo data or a builder, is held to the one transition table. A test that corrupts an incident on
purpose (a tampered chain, a column written behind the lifecycle's back) marks itself with
`@pytest.mark.columns_off_record`; the modules in BUILT_BY_HAND still set columns or write events
directly in their setup and are left out until they build through `tests/builders.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# Modules whose setup writes events or columns behind the lifecycle (or takes the database
# down): shrink this list as they move to tests/builders.py.
BUILT_BY_HAND = frozenset(
    {
        "tests/core/test_healthz.py",
        "tests/incidents/test_chain.py",
        "tests/incidents/test_views_detail.py",
        "tests/incidents/test_views_list.py",
        "tests/metrics/test_command.py",
        "tests/metrics/test_compute.py",
        "tests/metrics/test_facts.py",
        "tests/metrics/test_tasks.py",
        "tests/metrics/test_trust.py",
        "tests/metrics/test_views.py",
        "tests/metrics/test_worker.py",
        "tests/metrics/test_browser.py",
    }
)
DB_FIXTURES = ("db", "transactional_db", "live_server", "django_db_reset_sequences")
# The columns `advance` sets; evidence_completeness also needs the pact and is checked by the
# importer's own tests.
CHECKED = (
    "state",
    "detected_at",
    "contained_at",
    "evidence_preserved_at",
    "classified_at",
    "repaired_at",
    "review_requested_at",
    "decided_at",
    "reopened_at",
    "closed_at",
    "scope_after",
    "assumption",
    "assumption_statement",
    "confidence",
    "harm_category",
    "secondary_assumptions",
)


def columns_off_record() -> list[str]:
    """One line per incident column that differs from the fold of its events."""
    from trustdesk.incidents.models import Event, Incident
    from trustdesk.incidents.transitions import fold

    events: dict[int, list[dict]] = {}
    for row in Event.objects.order_by("incident_id", "seq").values(
        "incident_id", "type", "at", "data"
    ):
        events.setdefault(row["incident_id"], []).append(row)
    problems = []
    for incident in Incident.objects.order_by("pk"):
        stored = {name: getattr(incident, name) for name in CHECKED}
        fold(incident, events.get(incident.pk, []))
        for name in CHECKED:
            if getattr(incident, name) != stored[name]:
                problems.append(
                    f"{incident.key}.{name}: stored {stored[name]!r}, "
                    f"events say {getattr(incident, name)!r}"
                )
    return problems


@pytest.fixture(autouse=True)
def _incident_columns_follow_events(request: pytest.FixtureRequest) -> Iterator[None]:
    uses_db = request.node.get_closest_marker("django_db") is not None or any(
        name in request.fixturenames for name in DB_FIXTURES
    )
    by_hand = request.node.nodeid.split("::")[0] in BUILT_BY_HAND
    if not uses_db or by_hand or request.node.get_closest_marker("columns_off_record"):
        yield
        return
    # Requested from here, the database is torn down after this check runs.
    request.getfixturevalue("_django_db_helper")
    yield
    problems = columns_off_record()
    assert not problems, "incident columns disagree with their events:\n" + "\n".join(problems)

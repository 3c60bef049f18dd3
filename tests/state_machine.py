"""A check that runs after every database test: each incident's stored columns are what its
events say when `transitions.advance` is folded over them.

So every incident the suite builds, through the steps, the reviews actions, the importer, the
demo data, a builder or the bulk rows of the page tests, is held to the one transition table. Only
a test that corrupts an incident on purpose (a tampered chain, a column written behind the
lifecycle's back) marks itself with `@pytest.mark.columns_off_record`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
    if not uses_db or request.node.get_closest_marker("columns_off_record"):
        yield
        return
    # Requested from here, the database is torn down after this check runs.
    request.getfixturevalue("_django_db_helper")
    yield
    problems = columns_off_record()
    assert not problems, "incident columns disagree with their events:\n" + "\n".join(problems)

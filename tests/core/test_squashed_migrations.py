"""This release's migrations are one squashed migration per app
(docs/adr/0007-squash-migrations-at-each-release.md). A database of the first release, migrated
forward, gets what the data migrations of this release computed over its rows; a database that
recorded the original migrations sees the squashed ones as applied and has nothing to run."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Count

from tests.builders import incident_in
from tests.metrics.helpers import earlier_then_later
from trustdesk.core.checks import check_no_release_is_half_applied
from trustdesk.incidents.models import Incident, StateCount
from trustdesk.metrics.models import IncidentFacts

# The last migration of each app in the first release; notify did not exist yet.
RELEASE_1 = [
    ("core", "0001_initial"),
    ("diligence", "0001_initial"),
    ("incidents", "0004_append_only_trigger"),
    ("metrics", "0003_incident_facts"),
    ("pacts", "0003_immutable_versions"),
    ("reviews", "0003_decision_agent_scope"),
    ("notify", None),
]

# The migrations this release wrote before they were squashed: the names a database that
# followed the release commit by commit has in django_migrations.
RELEASE_2_ORIGINALS = {
    ("core", "0002_release_2"): [
        "0002_submission",
        "0003_user_profile",
        "0004_user_profile_email_notifications",
    ],
    ("diligence", "0002_release_2"): ["0002_checkpoints"],
    ("incidents", "0005_release_2"): [
        "0005_trace_evidence",
        "0006_ownership_and_obligations",
        "0007_transparency_log",
        "0008_signed_off_event",
        "0009_state_counts",
        "0010_event_type_choices_callable",
    ],
    ("metrics", "0004_release_2"): [
        "0004_facts_trace_evidence",
        "0005_facts_recurrent",
        "0006_metric_indexes",
    ],
    ("pacts", "0004_release_2"): [
        "0004_evaluation_logs",
        "0005_agent_regulatory_profile",
        "0006_token_scopes_revision_contain",
    ],
    ("reviews", "0004_release_2"): [
        "0004_actions_done_condition",
        "0005_condition_kind_choices_callable",
    ],
}


def migrate_to_release_1() -> MigrationExecutor:
    """Take the schema back to the first release (this release's tables and columns dropped);
    returns the executor, whose loader has the first release's model states."""
    if connection.vendor == "postgresql":
        # Rows written in this transaction leave deferred checks pending, which would refuse
        # the ALTER TABLEs; run them now.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = MigrationExecutor(connection)
    executor.migrate(RELEASE_1)
    return executor


def migrate_to_head() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@contextmanager
def recorded_migrations_restored():
    """The migration recorder, with `django_migrations` put back as it was afterwards."""
    recorder = MigrationRecorder(connection)
    before = set(recorder.applied_migrations())
    try:
        yield recorder
    finally:
        after = set(recorder.applied_migrations())
        for app, name in after - before:
            recorder.record_unapplied(app, name)
        for app, name in before - after:
            recorder.record_applied(app, name)
    assert set(recorder.applied_migrations()) == before


def release_1_apps():
    nodes = [node for node in RELEASE_1 if node[1] is not None]
    return MigrationExecutor(connection).loader.project_state(nodes).apps


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the counts are PostgreSQL's")
def test_first_release_incidents_are_counted_by_state_after_the_upgrade():
    for state in ("detected", "contained", "contained", "classified"):
        incident_in(state)
    migrate_to_release_1()
    assert "incidents_statecount" not in connection.introspection.table_names()
    migrate_to_head()
    actual = dict(Incident.objects.values_list("state").annotate(n=Count("*")).order_by())
    kept = {}
    for state, n in StateCount.objects.values_list("state", "n"):
        kept[state] = kept.get(state, 0) + n
    assert kept == actual == {"detected": 1, "contained": 2, "classified": 1}
    # and the trigger keeps counting
    incident_in("detected")
    assert sum(n for state, n in StateCount.objects.values_list("state", "n")) == 5


@pytest.mark.django_db(transaction=True)  # SQLite changes a schema only outside a transaction
def test_first_release_facts_get_their_recurrence_after_the_upgrade():
    _agent, earlier, later = earlier_then_later("recurs-across-the-upgrade", "authority")
    migrate_to_release_1()
    old_facts = release_1_apps().get_model("metrics", "IncidentFacts")
    assert "recurrent" not in {field.name for field in old_facts._meta.get_fields()}
    assert old_facts.objects.count() == 2
    migrate_to_head()
    assert dict(IncidentFacts.objects.values_list("incident_id", "recurrent")) == {
        earlier.pk: 0,
        later.pk: 1,
    }


@pytest.mark.django_db(transaction=True)
def test_a_database_that_ran_the_original_migrations_has_nothing_to_run():
    loader = MigrationExecutor(connection).loader
    for squashed, originals in RELEASE_2_ORIGINALS.items():
        assert loader.disk_migrations[squashed].replaces == [
            (squashed[0], name) for name in originals
        ]
    with recorded_migrations_restored() as recorder:
        for (app, squashed), originals in RELEASE_2_ORIGINALS.items():
            recorder.record_unapplied(app, squashed)
            for name in originals:
                recorder.record_applied(app, name)
        assert not any(key in recorder.applied_migrations() for key in RELEASE_2_ORIGINALS)
        executor = MigrationExecutor(connection)
        assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
        assert set(RELEASE_2_ORIGINALS) <= set(executor.loader.applied_migrations)


@pytest.mark.django_db(transaction=True)
def test_a_database_between_releases_is_stopped_before_migrate_runs_nothing():
    assert check_no_release_is_half_applied(None, databases=["default"]) == []
    originals = RELEASE_2_ORIGINALS[("incidents", "0005_release_2")]
    with recorded_migrations_restored() as recorder:
        before = set(recorder.applied_migrations())
        # Deployed from a commit that had run three of the incidents app's original migrations
        # (a squash, when applied, records the names it replaces too: take them all back first).
        for name in ["0005_release_2", *originals]:
            recorder.record_unapplied("incidents", name)
        for name in originals[:3]:
            recorder.record_applied("incidents", name)
        [error] = check_no_release_is_half_applied(None, databases=["default"])
        assert error.id == "trustdesk.E001"
        assert "ran 3 of the 6 migrations that incidents.0005_release_2 replaces" in error.msg
        assert "0008_signed_off_event, 0009_state_counts" in error.msg
        assert "Upgrading" in error.hint
        with pytest.raises(SystemCheckError, match="trustdesk.E001"):
            call_command("migrate", verbosity=0, skip_checks=False)
        # and nothing was migrated or recorded
        assert set(recorder.applied_migrations()) == before - {
            ("incidents", name) for name in ["0005_release_2", *originals[3:]]
        }

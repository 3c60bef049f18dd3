"""The write-once triggers' SQL, now built by trustdesk.core.dbtriggers, is still the SQL the
migrations were first written with: a migration that has run must not change under a database."""

import hashlib
import importlib
import json

import pytest
from django.db import connection

from trustdesk.core.dbtriggers import on_postgresql

# SHA-256 of json.dumps([FORWARD, BACKWARD]) as each migration shipped its statements, when it
# still wrote them out by hand, by (module, the prefix of its FORWARD and BACKWARD names). The
# transparency log's statements shipped in incidents 0007, squashed into 0005_release_2.
SHIPPED = {
    ("trustdesk.incidents.migrations.0004_append_only_trigger", ""): (
        "c6b13155f140b9d8a57fb5e1862cdf1459ce6349c78b0b0d88a3bacb8211d0c7"
    ),
    ("trustdesk.incidents.migrations.0005_release_2", "LOG_"): (
        "71d02c12dbdc9e18d70cfd072b88db0bef3a389aee40ba122a036ee58b08b399"
    ),
    ("trustdesk.reviews.migrations.0002_write_once_trigger", ""): (
        "f24e0584de5a21287138823736e96f9f941308804d31f3cee2f72fd707ca8428"
    ),
}


def statements_digest(module_name: str, prefix: str = "") -> str:
    module = importlib.import_module(module_name)
    text = json.dumps([getattr(module, f"{prefix}FORWARD"), getattr(module, f"{prefix}BACKWARD")])
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(("module_name", "prefix"), sorted(SHIPPED))
def test_the_migrations_run_the_sql_they_shipped_with(module_name, prefix):
    assert statements_digest(module_name, prefix) == SHIPPED[module_name, prefix]


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers are PostgreSQL's")
def test_postgresql_reports_one_refusing_trigger_per_written_once_table():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname, p.proname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE p.proname LIKE '%refuse_change' ORDER BY 1"
        )
        rows = cursor.fetchall()
        cursor.execute(
            "SELECT proname, prosrc FROM pg_proc WHERE proname LIKE '%refuse_change' ORDER BY 1"
        )
        functions = dict(cursor.fetchall())
    events = ("incidents_event", "incidents_evidence", "incidents_logleaf", "incidents_lognode")
    reviews = (
        "reviews_attestation",
        "reviews_meetingnote",
        "reviews_operatingmodelchange",
        "reviews_recoverydecision",
        "reviews_signoff",
    )
    expected = [
        (table, f"{table}_append_only", "incidents_refuse_change")
        for table in (*events, "diligence_checkpoint")
    ] + [(table, f"{table}_write_once", "reviews_refuse_change") for table in reviews]
    assert sorted(row[:3] for row in rows) == sorted(expected)
    for table, trigger, function, definition in rows:
        assert definition == (
            f"CREATE TRIGGER {trigger} BEFORE DELETE OR UPDATE ON public.{table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
    assert "incident events and evidence are append-only" in functions["incidents_refuse_change"]
    assert "review records are written once" in functions["reviews_refuse_change"]


class RecordingEditor:
    def __init__(self, vendor: str):
        self.connection = type("Connection", (), {"vendor": vendor})()
        self.executed: list[str] = []

    def execute(self, sql, params=None):
        self.executed.append(sql)


def test_the_statements_run_on_postgresql_only():
    run = on_postgresql(["SELECT 1", "SELECT 2"])
    postgresql, sqlite = RecordingEditor("postgresql"), RecordingEditor("sqlite")
    run(None, postgresql)
    run(None, sqlite)
    assert postgresql.executed == ["SELECT 1", "SELECT 2"]
    assert sqlite.executed == []

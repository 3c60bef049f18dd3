"""On PostgreSQL, refuse UPDATE and DELETE of events and evidence (docs/design.md section 4).

A row trigger, so TRUNCATE (what Django's test teardown uses to flush tables) still works. On
SQLite there is no trigger: the application never updates or deletes these rows, and
`verify_chain` catches any edit made behind its back.
"""

from django.db import migrations

TABLES = ("incidents_event", "incidents_evidence")

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION incidents_refuse_change() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '% of % is refused: incident events and evidence are append-only',
            TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END;
    $$ LANGUAGE plpgsql;
    """,
    *(
        f"""
        CREATE TRIGGER {table}_append_only
        BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION incidents_refuse_change();
        """
        for table in TABLES
    ),
]
BACKWARD = [
    *(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};" for table in TABLES),
    "DROP FUNCTION IF EXISTS incidents_refuse_change();",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("incidents", "0003_breach_link")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD), elidable=False)]

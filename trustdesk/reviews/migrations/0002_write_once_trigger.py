"""On PostgreSQL, refuse UPDATE and DELETE of the reviews records that are written once:
decisions, attestations, sign-offs, operating-model changes and meeting notes.

A row trigger, so TRUNCATE (Django's test teardown) still works. On SQLite the models refuse it
(reviews.models.WriteOnceModel) and the event chain records every one of them anyway.
"""

from django.db import migrations

TABLES = (
    "reviews_recoverydecision",
    "reviews_attestation",
    "reviews_signoff",
    "reviews_operatingmodelchange",
    "reviews_meetingnote",
)

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION reviews_refuse_change() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '% of % is refused: review records are written once',
            TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END;
    $$ LANGUAGE plpgsql;
    """,
    *(
        f"""
        CREATE TRIGGER {table}_write_once
        BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION reviews_refuse_change();
        """
        for table in TABLES
    ),
]
BACKWARD = [
    *(f"DROP TRIGGER IF EXISTS {table}_write_once ON {table};" for table in TABLES),
    "DROP FUNCTION IF EXISTS reviews_refuse_change();",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("reviews", "0001_initial")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD), elidable=False)]

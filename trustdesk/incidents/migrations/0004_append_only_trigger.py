"""On PostgreSQL, refuse UPDATE and DELETE of events and evidence (docs/design.md section 4).

A row trigger, so TRUNCATE (what Django's test teardown uses to flush tables) still works. On
SQLite there is no trigger: the application never updates or deletes these rows, and
`verify_chain` catches any edit made behind its back.
"""

from django.db import migrations

from trustdesk.core.dbtriggers import on_postgresql, write_once_guard

FORWARD, BACKWARD = write_once_guard(
    "incidents_refuse_change",
    "incident events and evidence are append-only",
    ("incidents_event", "incidents_evidence"),
    suffix="append_only",
)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0003_breach_link")]

    operations = [
        migrations.RunPython(on_postgresql(FORWARD), on_postgresql(BACKWARD), elidable=False)
    ]

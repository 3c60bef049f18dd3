# The per-state counts of the incidents, kept by a trigger on PostgreSQL (incidents/state_counts.py)
# and counted once here for the incidents already stored.

from django.db import migrations, models

from trustdesk.incidents.state_counts import CREATE_TRIGGER_SQL, DROP_TRIGGER_SQL, REBUILD_SQL


def keep_counts(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_TRIGGER_SQL)
        schema_editor.execute(REBUILD_SQL)


def stop_keeping_counts(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGER_SQL)


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0008_signed_off_event"),
    ]

    operations = [
        migrations.CreateModel(
            name="StateCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("state", models.CharField(max_length=40)),
                ("n", models.BigIntegerField()),
            ],
        ),
        migrations.RunPython(keep_counts, stop_keeping_counts),
    ]

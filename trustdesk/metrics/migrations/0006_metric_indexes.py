# Indexes for the metric queries. The facts row's (agent, event_count) replaces its agent index.
# The two on the incidents app's tables are read only by the metrics, so they live here; they
# are PostgreSQL's (partial indexes on a JSON value), other databases go without them:
# - incidents (agent, event_count): the freshness check of the facts rows reads this index alone;
# - `repaired` events marked override: `repair_overrides` counts this index.

import django.db.models.deletion
from django.db import migrations, models

INDEXES = (
    ("metrics_incident_agent_event_count", "incidents_incident (agent_id, event_count)"),
    (
        "metrics_event_repair_override",
        "incidents_event (incident_id) "
        "WHERE type = 'repaired' AND (data -> 'override') = 'true'::jsonb",
    ),
)


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, on in INDEXES:
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, _on in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ("incidents", "0008_signed_off_event"),
        ("metrics", "0005_facts_recurrent"),
        ("pacts", "0006_token_scopes_revision_contain"),
    ]

    operations = [
        migrations.AlterField(
            model_name="incidentfacts",
            name="agent",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="pacts.agent",
            ),
        ),
        migrations.AddIndex(
            model_name="incidentfacts",
            index=models.Index(fields=["agent", "event_count"], name="facts_agent_event_count"),
        ),
        migrations.RunPython(create_indexes, drop_indexes),
    ]

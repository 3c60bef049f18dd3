"""This release's metrics migrations (0004-0006) squashed (docs/adr/0007-squash-migrations-at-each-release.md).

- A facts column for the new evidence kind `trace`. Rows written before it held no trace evidence
  (the kind did not exist), so 0 is their true value.
- Recurrence stored with each incident's facts. The rows already stored get their recurrence from
  the stored rows of their agent, as every later write of a row does (`compute.refresh_facts`).
- Indexes for the metric queries. The facts row's (agent, event_count) replaces its agent index.
  The two on the incidents app's tables are read only by the metrics, so they live here; they
  are PostgreSQL's (partial indexes on a JSON value), other databases go without them:
  incidents (agent, event_count): the freshness check of the facts rows reads this index alone;
  `repaired` events marked override: `repair_overrides` counts this index.
"""

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


def store_recurrence(apps, schema_editor):
    from trustdesk.metrics.compute import store_recurrence_of_every_agent

    store_recurrence_of_every_agent()


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, on in INDEXES:
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, _on in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    replaces = [('metrics', '0004_facts_trace_evidence'), ('metrics', '0005_facts_recurrent'), ('metrics', '0006_metric_indexes')]

    dependencies = [
        ('incidents', '0005_release_2'),
        ('metrics', '0003_incident_facts'),
        ('pacts', '0004_release_2'),
    ]

    operations = [
        migrations.AddField(
            model_name='incidentfacts',
            name='ev_trace',
            field=models.SmallIntegerField(default=0),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='incidentfacts',
            name='recurrent',
            field=models.SmallIntegerField(db_default=0, default=0),
        ),
        migrations.RunPython(
            code=store_recurrence,
            reverse_code=migrations.RunPython.noop,
        ),
        migrations.AlterField(
            model_name='incidentfacts',
            name='agent',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='pacts.agent'),
        ),
        migrations.AddIndex(
            model_name='incidentfacts',
            index=models.Index(fields=['agent', 'event_count'], name='facts_agent_event_count'),
        ),
        migrations.RunPython(
            code=create_indexes,
            reverse_code=drop_indexes,
        ),
    ]

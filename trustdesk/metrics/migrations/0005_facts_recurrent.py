# Recurrence stored with each incident's facts. The rows already stored get their recurrence from
# the stored rows of their agent, as every later write of a row does (`compute.refresh_facts`).

from django.db import migrations, models


def store_recurrence(apps, schema_editor):
    from trustdesk.metrics.compute import store_recurrence_of_every_agent

    store_recurrence_of_every_agent()


class Migration(migrations.Migration):

    dependencies = [
        ("metrics", "0004_facts_trace_evidence"),
    ]

    operations = [
        migrations.AddField(
            model_name="incidentfacts",
            name="recurrent",
            field=models.SmallIntegerField(db_default=0, default=0),
        ),
        migrations.RunPython(store_recurrence, migrations.RunPython.noop),
    ]

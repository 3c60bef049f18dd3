# A facts column for the new evidence kind `trace`. Rows written before it held no trace evidence
# (the kind did not exist), so 0 is their true value.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("metrics", "0003_incident_facts"),
    ]

    operations = [
        migrations.AddField(
            model_name="incidentfacts",
            name="ev_trace",
            field=models.SmallIntegerField(default=0),
            preserve_default=False,
        ),
    ]

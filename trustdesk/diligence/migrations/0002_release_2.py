"""This release's diligence migration (0002) under the release's name
(docs/adr/0007-squash-migrations-at-each-release.md): signed checkpoints of the transparency log
(docs/design.md section 15), all kept: on PostgreSQL the same row trigger as events refuses
UPDATE and DELETE.
"""

import django.utils.timezone
from django.db import migrations, models

from trustdesk.core.dbtriggers import dropping_triggers, on_postgresql, refusing_triggers

CHECKPOINTS = ("diligence_checkpoint",)
FORWARD = refusing_triggers(CHECKPOINTS, suffix="append_only", function="incidents_refuse_change")
BACKWARD = dropping_triggers(CHECKPOINTS, suffix="append_only")


class Migration(migrations.Migration):

    replaces = [('diligence', '0002_checkpoints')]

    dependencies = [
        ('diligence', '0001_initial'),
        ('incidents', '0004_append_only_trigger'),
    ]

    operations = [
        migrations.CreateModel(
            name='Checkpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('size', models.BigIntegerField(unique=True)),
                ('root_hash', models.BinaryField(max_length=32)),
                ('origin', models.CharField(max_length=200)),
                ('note', models.TextField()),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['-size'],
            },
        ),
        migrations.RunPython(on_postgresql(FORWARD), on_postgresql(BACKWARD), elidable=False),
    ]

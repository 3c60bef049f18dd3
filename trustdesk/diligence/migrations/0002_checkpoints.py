"""Signed checkpoints of the transparency log (docs/design.md section 15), all kept: on PostgreSQL the
same row trigger as events refuses UPDATE and DELETE."""

import django.utils.timezone
from django.db import migrations, models


def _run(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


FORWARD = """
CREATE TRIGGER diligence_checkpoint_append_only
BEFORE UPDATE OR DELETE ON diligence_checkpoint
FOR EACH ROW EXECUTE FUNCTION incidents_refuse_change();
"""
BACKWARD = "DROP TRIGGER IF EXISTS diligence_checkpoint_append_only ON diligence_checkpoint;"


class Migration(migrations.Migration):

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
        migrations.RunPython(_run(FORWARD), _run(BACKWARD), elidable=False),
    ]

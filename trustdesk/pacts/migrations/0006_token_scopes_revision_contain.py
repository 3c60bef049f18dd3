"""Token scopes, the agent's scope revision and a clause's containment mode (docs/design.md section 12).

Tokens made before scopes existed posted evaluations: they get `evaluations:write`. On SQLite,
adding a column with a default rebuilds the clause table, which drops its immutability trigger
(migration 0003): it is created again here.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

SQLITE_CLAUSE_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS pacts_clause_immutable BEFORE UPDATE ON pacts_clause
FOR EACH ROW WHEN (SELECT status FROM pacts_pactversion WHERE id = OLD.version_id) <> 'draft'
BEGIN
  SELECT RAISE(ABORT, 'clause belongs to a pact version that is no longer a draft');
END
"""


def existing_tokens_write_evaluations(apps, schema_editor):
    ApiToken = apps.get_model("pacts", "ApiToken")
    ApiToken.objects.update(scopes=["evaluations:write"])


def restore_sqlite_clause_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_CLAUSE_TRIGGER, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("pacts", "0005_agent_regulatory_profile"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="agent",
            name="revision",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="scopes",
            field=models.JSONField(default=list),
        ),
        migrations.RunPython(existing_tokens_write_evaluations, migrations.RunPython.noop),
        migrations.AddField(
            model_name="clause",
            name="contain",
            field=models.CharField(
                choices=[("propose", "Propose"), ("auto", "Automatic")],
                default="propose",
                max_length=10,
            ),
        ),
        migrations.RunPython(restore_sqlite_clause_trigger, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apitoken",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]

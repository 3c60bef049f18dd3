"""This release's pacts migrations (0004-0006) squashed: evaluation logs, the agent's regulatory
profile, token scopes, the agent's scope revision and a clause's containment mode (docs/design.md
section 12). docs/adr/0007-squash-migrations-at-each-release.md says why and how.

Tokens made before scopes existed posted evaluations: they get `evaluations:write`. On SQLite,
adding a column with a default rebuilds the clause table, which drops its immutability trigger
(migration 0003): it is created again here.
"""

import django.db.models.deletion
import django.utils.timezone
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

    replaces = [('pacts', '0004_evaluation_logs'), ('pacts', '0005_agent_regulatory_profile'), ('pacts', '0006_token_scopes_revision_contain')]

    dependencies = [
        ('pacts', '0003_immutable_versions'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='clause',
            name='method',
            field=models.CharField(choices=[('automated', 'Automated'), ('sampled_human_review', 'Sampled human review'), ('jury', 'Jury'), ('human', 'Human'), ('inspect', 'Inspect AI log'), ('junit', 'JUnit XML report')], max_length=30),
        ),
        migrations.CreateModel(
            name='EvaluationLog',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('sha256', models.CharField(max_length=64, unique=True)),
                ('size', models.PositiveBigIntegerField()),
                ('storage_path', models.CharField(max_length=300)),
                ('original_name', models.CharField(blank=True, max_length=255)),
                ('format', models.CharField(choices=[('inspect_eval', 'Inspect AI log (.eval)'), ('inspect_json', 'Inspect AI log (.json)'), ('junit', 'JUnit XML report')], max_length=20)),
                ('summary', models.JSONField(blank=True, default=dict)),
                ('received_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('received_from', models.CharField(blank=True, max_length=200)),
                ('received_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-received_at', '-pk'],
            },
        ),
        migrations.AddField(
            model_name='evaluation',
            name='log',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='evaluations', to='pacts.evaluationlog'),
        ),
        migrations.AddField(
            model_name='agent',
            name='high_risk_ai',
            field=models.BooleanField(default=False, verbose_name='high-risk AI system (EU AI Act)'),
        ),
        migrations.AddField(
            model_name='agent',
            name='nis2',
            field=models.CharField(choices=[('none', 'Not in scope'), ('important', 'Important entity'), ('essential', 'Essential entity')], default='none', max_length=20, verbose_name='NIS2 entity'),
        ),
        migrations.AddField(
            model_name='agent',
            name='personal_data',
            field=models.BooleanField(default=False, verbose_name='processes personal data (GDPR)'),
        ),
        migrations.AddField(
            model_name='agent',
            name='revision',
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='scopes',
            field=models.JSONField(default=list),
        ),
        migrations.RunPython(
            code=existing_tokens_write_evaluations,
            reverse_code=migrations.RunPython.noop,
        ),
        migrations.AddField(
            model_name='clause',
            name='contain',
            field=models.CharField(choices=[('propose', 'Propose'), ('auto', 'Automatic')], default='propose', max_length=10),
        ),
        migrations.RunPython(
            code=restore_sqlite_clause_trigger,
            reverse_code=migrations.RunPython.noop,
        ),
        migrations.AlterField(
            model_name='apitoken',
            name='created_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
    ]

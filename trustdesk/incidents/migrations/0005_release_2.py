"""This release's incidents migrations (0005-0010) squashed
(docs/adr/0007-squash-migrations-at-each-release.md): trace evidence, ownership and obligations
(docs/design.md section 13), the transparency log (section 15) and the per-state counts.

The event type's choices are a function (`models.event_type_choices`), so the three AlterFields
of the originals that each copied a grown list (0006, 0008, 0010) are one here.

Then, over the events and incidents a v1 database already holds, in this order:
- every existing event numbered in stored (id) order in the transparency log; then, on PostgreSQL,
  the commit-time trigger that numbers new events and the append-only guard of the leaves and
  nodes. Why a commit-time trigger: trustdesk/incidents/tlog.py;
- the per-state counts, kept by a trigger on PostgreSQL (incidents/state_counts.py) and counted
  once here for the incidents already stored.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import trustdesk.incidents.models
from trustdesk.core.dbtriggers import dropping_triggers, on_postgresql, refusing_triggers
from trustdesk.incidents.state_counts import CREATE_TRIGGER_SQL, DROP_TRIGGER_SQL, REBUILD_SQL

# The leaves and nodes are written once, guarded like events by 0004's incidents_refuse_change.
LOG_TABLES = ("incidents_logleaf", "incidents_lognode")

# Numbers one committed event: the next log_index under the head row's lock (held only until the
# commit ends), its leaf, and every complete subtree it closes. The Python twin, for SQLite, is
# tlog.append_leaf.
APPEND_FUNCTION = """
CREATE OR REPLACE FUNCTION incidents_log_append() RETURNS trigger AS $$
DECLARE
    idx bigint;
    h bytea;
    sibling bytea;
    lvl smallint := 0;
    pos bigint;
BEGIN
    INSERT INTO incidents_loghead (id, size) VALUES (1, 1)
        ON CONFLICT (id) DO UPDATE SET size = incidents_loghead.size + 1
        RETURNING size - 1 INTO idx;
    h := sha256('\\x00'::bytea || decode(NEW.hash, 'hex'));
    INSERT INTO incidents_logleaf (log_index, event_id, hash) VALUES (idx, NEW.id, h);
    pos := idx;
    WHILE pos % 2 = 1 LOOP
        IF lvl = 0 THEN
            SELECT l.hash INTO sibling FROM incidents_logleaf l WHERE l.log_index = pos - 1;
        ELSE
            SELECT n.hash INTO sibling FROM incidents_lognode n
                WHERE n.level = lvl AND n.position = pos - 1;
        END IF;
        IF sibling IS NULL THEN
            RAISE EXCEPTION 'transparency log: node (%, %) is missing', lvl, pos - 1;
        END IF;
        h := sha256('\\x01'::bytea || sibling || h);
        lvl := lvl + 1;
        pos := pos / 2;
        INSERT INTO incidents_lognode (level, position, hash) VALUES (lvl, pos, h);
    END LOOP;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""
LOG_FORWARD = [
    APPEND_FUNCTION,
    """
    CREATE CONSTRAINT TRIGGER incidents_event_log_append
    AFTER INSERT ON incidents_event
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION incidents_log_append();
    """,
    *refusing_triggers(LOG_TABLES, suffix="append_only", function="incidents_refuse_change"),
]
LOG_BACKWARD = [
    *dropping_triggers(LOG_TABLES, suffix="append_only"),
    "DROP TRIGGER IF EXISTS incidents_event_log_append ON incidents_event;",
    "DROP FUNCTION IF EXISTS incidents_log_append();",
]


def number_existing_events(apps, schema_editor):
    from trustdesk.incidents.tlog import index_unindexed_events

    index_unindexed_events()


def keep_counts(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_TRIGGER_SQL)
        schema_editor.execute(REBUILD_SQL)


def stop_keeping_counts(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGER_SQL)


class Migration(migrations.Migration):

    replaces = [
        ('incidents', '0005_trace_evidence'),
        ('incidents', '0006_ownership_and_obligations'),
        ('incidents', '0007_transparency_log'),
        ('incidents', '0008_signed_off_event'),
        ('incidents', '0009_state_counts'),
        ('incidents', '0010_event_type_choices_callable'),
    ]

    dependencies = [
        ('incidents', '0004_append_only_trigger'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='evidence',
            name='kind',
            field=models.CharField(choices=[('transcript', 'Transcript'), ('tool_calls', 'Tool calls'), ('evaluation_result', 'Evaluation result'), ('alert', 'Alert'), ('impact_assessment', 'Impact assessment'), ('config_snapshot', 'Config snapshot'), ('other', 'Other'), ('trace', 'Agent trace (OTLP JSON)')], max_length=30),
        ),
        migrations.CreateModel(
            name='TraceView',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('spans', models.JSONField(default=list)),
                ('span_count', models.PositiveIntegerField()),
                ('error_count', models.PositiveIntegerField()),
                ('trace_count', models.PositiveIntegerField()),
                ('truncated', models.BooleanField(default=False)),
                ('evidence', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='trace_view', to='incidents.evidence')),
            ],
        ),
        migrations.AlterField(
            model_name='event',
            name='type',
            field=models.CharField(choices=trustdesk.incidents.models.event_type_choices, max_length=40),
        ),
        migrations.AlterField(
            model_name='incident',
            name='state',
            field=models.CharField(choices=[('detected', 'Detected'), ('contained', 'Contained'), ('evidence_preserved', 'Evidence preserved'), ('classified', 'Classified'), ('repaired', 'Repaired'), ('in_review', 'In review'), ('recovered', 'Recovered'), ('closed_restricted', 'Closed, restricted'), ('closed_not_incident', 'Closed, not an incident')], default='detected', max_length=30),
        ),
        migrations.CreateModel(
            name='ObligationAlert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('incident_key', models.CharField(max_length=30)),
                ('regime', models.CharField(max_length=40)),
                ('obligation', models.CharField(max_length=40)),
                ('status', models.CharField(max_length=20)),
                ('sent_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('incident_key', 'regime', 'obligation', 'status'), name='obligation_alert_once')],
            },
        ),
        migrations.CreateModel(
            name='ActionItem',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('title', models.CharField(max_length=300)),
                ('due', models.DateField(blank=True, null=True)),
                ('status', models.CharField(choices=[('open', 'Open'), ('done', 'Done'), ('wont_do', "Won't do")], default='open', max_length=20)),
                ('reason', models.TextField(blank=True)),
                ('ticket', models.CharField(blank=True, max_length=2000)),
                ('change_seq', models.PositiveIntegerField(blank=True, null=True)),
                ('required', models.BooleanField(default=False, verbose_name='required for re-entry')),
                ('added_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
                ('late', models.BooleanField(default=False)),
                ('incident', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='action_items', to='incidents.incident')),
                ('owner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='action_items', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['incident', 'number'],
                'indexes': [models.Index(fields=['owner', 'status'], name='incidents_a_owner_i_0758a5_idx')],
                'constraints': [models.UniqueConstraint(fields=('incident', 'number'), name='action_item_number')],
            },
        ),
        migrations.CreateModel(
            name='IncidentRole',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('role', models.CharField(choices=[('lead', 'Lead'), ('comms', 'Comms'), ('scribe', 'Scribe'), ('responder', 'Responder')], max_length=20)),
                ('assigned_at', models.DateTimeField()),
                ('ended_at', models.DateTimeField(blank=True, null=True)),
                ('event', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='incidents.event')),
                ('incident', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='roles', to='incidents.incident')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='incident_roles', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['incident', 'role', 'assigned_at', 'pk'],
                'indexes': [models.Index(fields=['user', 'role', 'ended_at'], name='incidents_i_user_id_abf687_idx')],
            },
        ),
        migrations.CreateModel(
            name='LogHead',
            fields=[
                ('id', models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ('size', models.BigIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name='LogNode',
            fields=[
                ('pk', models.CompositePrimaryKey('level', 'position', blank=True, editable=False, primary_key=True, serialize=False)),
                ('level', models.PositiveSmallIntegerField()),
                ('position', models.BigIntegerField()),
                ('hash', models.BinaryField(max_length=32)),
            ],
            options={
                'ordering': ['level', 'position'],
            },
        ),
        migrations.CreateModel(
            name='LogLeaf',
            fields=[
                ('log_index', models.BigIntegerField(primary_key=True, serialize=False)),
                ('hash', models.BinaryField(max_length=32)),
                ('event', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='leaf', to='incidents.event')),
            ],
            options={
                'ordering': ['log_index'],
            },
        ),
        migrations.CreateModel(
            name='StateCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('state', models.CharField(max_length=40)),
                ('n', models.BigIntegerField()),
            ],
        ),
        migrations.RunPython(number_existing_events, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(on_postgresql(LOG_FORWARD), on_postgresql(LOG_BACKWARD), elidable=False),
        migrations.RunPython(keep_counts, stop_keeping_counts),
    ]

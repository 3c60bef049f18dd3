"""The transparency log (docs/design.md section 15): its tables, every existing event numbered in
stored (id) order, and on PostgreSQL the commit-time trigger that numbers new events plus the
append-only guard of the leaves and nodes. Why a commit-time trigger: trustdesk/incidents/tlog.py.
"""

import django.db.models.deletion
from django.db import migrations, models

from trustdesk.core.dbtriggers import dropping_triggers, on_postgresql, refusing_triggers

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
FORWARD = [
    APPEND_FUNCTION,
    """
    CREATE CONSTRAINT TRIGGER incidents_event_log_append
    AFTER INSERT ON incidents_event
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION incidents_log_append();
    """,
    *refusing_triggers(LOG_TABLES, suffix="append_only", function="incidents_refuse_change"),
]
BACKWARD = [
    *dropping_triggers(LOG_TABLES, suffix="append_only"),
    "DROP TRIGGER IF EXISTS incidents_event_log_append ON incidents_event;",
    "DROP FUNCTION IF EXISTS incidents_log_append();",
]


def number_existing_events(apps, schema_editor):
    from trustdesk.incidents.tlog import index_unindexed_events

    index_unindexed_events()


class Migration(migrations.Migration):

    dependencies = [
        ('incidents', '0006_ownership_and_obligations'),
    ]

    operations = [
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
        migrations.RunPython(number_existing_events, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(on_postgresql(FORWARD), on_postgresql(BACKWARD), elidable=False),
    ]

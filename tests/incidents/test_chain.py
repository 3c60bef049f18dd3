"""The event hash chain: genesis, links, no fork; verify_chain catches edits; the trigger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, transaction

from tests.factories import make_incident
from trustdesk.core.canonical import ZERO_HASH
from trustdesk.incidents import lifecycle
from trustdesk.incidents.chain import HASH_PREFIX, event_hash, first_broken_link
from trustdesk.incidents.models import Event, Incident

pytestmark = pytest.mark.django_db
on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the append-only trigger exists only on PostgreSQL (SQLite has no such trigger)",
)


def three_events() -> Incident:
    incident = make_incident()
    lifecycle.contain_incident(
        incident, by=None, expected_version=1, action="suspend", scope_after="suspended"
    )
    lifecycle.add_note(incident, by=None, text="third")
    return incident


def tamper(event: Event, **changes) -> None:
    """Edit an event row behind the application's back (the trigger bypassed on PostgreSQL)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        Event.objects.filter(pk=event.pk).update(**changes)
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")


def verify(*args) -> tuple[int, str]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("verify_chain", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def test_genesis_and_links():
    incident = three_events()
    events = list(incident.events.order_by("seq"))
    assert events[0].prev_hash == ZERO_HASH
    for before, after in zip(events, events[1:], strict=False):
        assert after.prev_hash == before.hash
    for ev in events:
        assert ev.hash == event_hash(ev.prev_hash, ev.canonical)
        assert ev.canonical.encode("utf-8")  # the exact hashed text is stored
    import hashlib

    expected = hashlib.sha256(
        (HASH_PREFIX + events[1].prev_hash + events[1].canonical).encode()
    ).hexdigest()
    assert events[1].hash == expected
    assert [e.seq for e in events] == [1, 2, 3]
    assert first_broken_link(incident.key, events) is None


def test_the_chain_cannot_fork_or_skip():
    incident = three_events()
    second = incident.events.get(seq=2)
    for clash in ({"seq": 9, "prev_hash": second.prev_hash}, {"seq": 2, "prev_hash": "f" * 64}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Event.objects.create(
                incident=incident,
                type="note",
                at=second.at,
                data={},
                hash="e" * 64,
                canonical="{}",
                **clash,
            )


def test_verify_chain_passes_on_intact_chains():
    three_events()
    three_events()
    code, out = verify()
    assert code == 0 and "All 2 incident chain(s) hold (6 events)" in out


# An event's time, data or type edited behind the lifecycle no longer says what the columns say.
OFF_RECORD = pytest.mark.columns_off_record


@pytest.mark.parametrize(
    ("column", "value", "seq", "problem"),
    [
        pytest.param(
            "at", lambda e: e.at + timedelta(seconds=1), 2, "fields do not match", marks=OFF_RECORD
        ),
        pytest.param(
            "data",
            lambda e: {**e.data, "scope_after": "full"},
            2,
            "fields do not match",
            marks=OFF_RECORD,
        ),
        pytest.param("type", lambda e: "note", 2, "fields do not match", marks=OFF_RECORD),
        ("actor_name", lambda e: "mallory", 2, "fields do not match"),
        ("canonical", lambda e: e.canonical.replace("suspend", "restrict"), 2, "hash does not"),
        ("hash", lambda e: "a" * 64, 2, "hash does not match"),
        ("prev_hash", lambda e: "b" * 64, 2, "prev_hash does not match"),
        ("seq", lambda e: 7, 3, "expected seq 2"),
    ],
)
def test_verify_chain_catches_an_edit_to_each_column(column, value, seq, problem):
    intact = three_events()
    incident = three_events()
    event = incident.events.get(seq=2)
    tamper(event, **{column: value(event)})
    code, out = verify()
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{incident.key}: event {seq}: ")
    assert problem in lines[0]
    assert intact.key not in out
    # --incident narrows the check
    assert verify("--incident", intact.key)[0] == 0
    assert verify("--incident", incident.key)[0] == 1


def test_verify_chain_catches_a_deleted_last_event():
    incident = three_events()
    last = Event.objects.get(incident=incident, seq=3)
    # Someone with database access removes the last event behind the application's back, with
    # its transparency-log leaf where the log has numbered it already (SQLite numbers on append,
    # PostgreSQL at commit).
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM incidents_logleaf WHERE event_id = %s", [last.pk])
        cursor.execute("DELETE FROM incidents_event WHERE id = %s", [last.pk])
    assert not Event.objects.filter(pk=last.pk).exists()
    code, out = verify()
    assert code == 1 and f"{incident.key}: event 2: the chain ends here" in out


def test_verify_chain_names_each_broken_incident_once():
    a, b = three_events(), three_events()
    tamper(a.events.get(seq=1), data={"x": 1})
    tamper(a.events.get(seq=3), data={"x": 1})
    tamper(b.events.get(seq=3), actor_name="eve")
    code, out = verify()
    assert code == 1
    assert out.strip().splitlines() == [
        f"{a.key}: event 1: fields do not match the stored canonical bytes",
        f"{b.key}: event 3: fields do not match the stored canonical bytes",
    ]


def test_verify_chain_refuses_an_unknown_incident():
    assert verify("--incident", "INC-404") == (2, "")


@on_postgres
@pytest.mark.parametrize("table", ["incidents_event", "incidents_evidence"])
@pytest.mark.parametrize("statement", ["UPDATE {table} SET id = id", "DELETE FROM {table}"])
def test_the_trigger_refuses_update_and_delete(table, statement, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    incident = three_events()
    lifecycle.add_evidence(
        incident, by=None, expected_version=3, kind="alert", description="a", text="alert"
    )
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement.format(table=table))
    assert Event.objects.filter(incident=incident).count() == 4
    # the ORM meets the same refusal
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Event.objects.filter(incident=incident, seq=3).update(actor_name="x")


@on_postgres
def test_the_trigger_is_installed_on_the_append_only_tables():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname LIKE '%append_only' "
            "ORDER BY 1"
        )
        guarded = {r[0] for r in cursor.fetchall()}
    # Events and evidence, and the transparency log built from them (section 15).
    assert {
        "incidents_event",
        "incidents_evidence",
        "incidents_logleaf",
        "incidents_lognode",
        "diligence_checkpoint",
    } <= guarded


@pytest.mark.django_db(transaction=True)
def test_table_flushes_still_work_with_the_trigger():
    """TRUNCATE (Django's flush between transactional tests) is not a row DELETE."""
    three_events()
    call_command("flush", "--no-input", verbosity=0)
    assert not Event.objects.exists()

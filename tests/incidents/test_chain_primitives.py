import pytest
from django.utils import timezone

from tests.factories import make_incident
from trustdesk.core.canonical import ZERO_HASH, sha256_hex
from trustdesk.incidents.chain import HASH_PREFIX, first_broken_link
from trustdesk.incidents.errors import ConflictError, GateError
from trustdesk.incidents.journal import append_event, locked_incident

pytestmark = pytest.mark.django_db


def test_open_incident_starts_the_chain_at_the_zero_hash():
    incident = make_incident()
    first = incident.events.get()
    assert (incident.key, first.seq, first.type, first.prev_hash) == (
        f"INC-{incident.number}",
        1,
        "detected",
        ZERO_HASH,
    )
    assert first.hash == sha256_hex(HASH_PREFIX + ZERO_HASH + first.canonical)
    assert first.canonical.startswith('{"at":"') and '"incident":"INC-' in first.canonical


def test_append_links_each_event_to_the_previous_hash_and_bumps_the_version():
    incident = make_incident()
    with locked_incident(incident, expected_version=1) as locked:
        second = append_event(locked, type="note", by=None, data={"text": "hi", "internal": True})
    first = incident.events.get(seq=1)
    assert second.prev_hash == first.hash
    incident.refresh_from_db()
    assert (incident.version, incident.event_count, incident.last_hash) == (2, 2, second.hash)
    assert first_broken_link(incident.key, incident.events.order_by("seq")) is None


def test_a_stale_version_is_refused_and_names_what_changed():
    incident = make_incident()
    with locked_incident(incident, expected_version=1) as locked:
        append_event(locked, type="note", by=None, data={"text": "first", "internal": True})
    with pytest.raises(ConflictError) as info, locked_incident(incident, expected_version=1):
        pass
    assert info.value.changes == ["note"]
    assert incident.events.count() == 2


def test_an_event_in_the_future_is_refused():
    incident = make_incident()
    with pytest.raises(GateError, match="future"), locked_incident(incident) as locked:
        append_event(
            locked, type="note", by=None, data={}, at=timezone.now() + timezone.timedelta(hours=1)
        )
    assert incident.events.count() == 1

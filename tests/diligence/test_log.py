"""Signed checkpoints, the /log endpoints and `manage.py verify_log` (docs/design.md section 15)."""

from __future__ import annotations

import base64
import hashlib
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from sigstore._internal.rekor.checkpoint import SignedCheckpoint

from tests.factories import AgentFactory, make_incident
from trustdesk.diligence import signing
from trustdesk.diligence.actions import create_share_link, revoke_share_link
from trustdesk.diligence.checkpoints import CheckpointError, make_checkpoint
from trustdesk.diligence.models import Checkpoint, ShareLinkView
from trustdesk.diligence.tasks import make_log_checkpoint
from trustdesk.incidents import lifecycle, merkle, tlog
from trustdesk.incidents.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def grow(notes: int = 3):
    incident = make_incident()
    for n in range(notes):
        lifecycle.add_note(incident, by=None, text=f"note {n}")
    return incident


def recomputed_tree() -> merkle.MemoryTree:
    tlog.number_pending()
    hashes = Event.objects.order_by("leaf__log_index").values_list("hash", flat=True)
    return merkle.MemoryTree([merkle.event_leaf_hash(h) for h in hashes])


# ------------------------------------------------------------------ checkpoints


def test_a_checkpoint_is_a_c2sp_signed_note_of_origin_size_and_root():
    grow()
    checkpoint = make_checkpoint()
    tree = recomputed_tree()
    raw_key = signing.public_key().raw
    origin = f"trustdesk/{signing.public_key().instance_id}"
    text = f"{origin}\n{tree.size}\n{base64.b64encode(tree.root()).decode()}\n"
    assert checkpoint.note.startswith(text + "\n\u2014 " + origin + " ")
    assert checkpoint.note.endswith("\n") and checkpoint.note.count("\n") == 5
    signature = base64.b64decode(checkpoint.note.rsplit(" ", 1)[1])
    key_id = hashlib.sha256(origin.encode() + b"\n\x01" + raw_key).digest()[:4]
    assert signature[:4] == key_id
    Ed25519PublicKey.from_public_bytes(raw_key).verify(signature[4:], text.encode())
    # An independent reader of the format (sigstore's, for Rekor's checkpoints) agrees.
    parsed = SignedCheckpoint.from_text(checkpoint.note)
    assert parsed.checkpoint.origin == origin
    assert parsed.checkpoint.log_size == tree.size
    assert parsed.checkpoint.log_hash == tree.root().hex()
    assert parsed.signed_note.signatures[0].name == origin
    assert parsed.signed_note.signatures[0].sig_hash == key_id


def test_a_checkpoint_is_made_only_when_the_log_grew_and_every_one_is_kept():
    incident = grow()
    first = make_checkpoint()
    assert make_checkpoint().pk == first.pk
    lifecycle.add_note(incident, by=None, text="one more")
    second = make_log_checkpoint.delay().get()  # the beat task
    assert second == first.size + 1
    assert list(Checkpoint.objects.order_by("size").values_list("size", flat=True)) == [
        first.size,
        first.size + 1,
    ]
    schedule = django_settings.CELERY_BEAT_SCHEDULE["make-log-checkpoint"]
    assert schedule["task"] == "trustdesk.diligence.tasks.make_log_checkpoint"
    assert schedule["schedule"].total_seconds() == 60


def test_the_origin_comes_from_the_setting_and_a_bad_one_is_refused(settings):
    grow(1)
    settings.TRUSTDESK_LOG_ORIGIN = "trust.example/log"
    assert make_checkpoint().note.startswith("trust.example/log\n")
    settings.TRUSTDESK_LOG_ORIGIN = "has space"
    lifecycle.add_note(make_incident(), by=None, text="grow")
    with pytest.raises(CheckpointError, match="contains a space"):
        make_checkpoint()
    assert Checkpoint.objects.count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_checkpoints_cannot_be_edited_or_deleted_on_postgresql():
    from django.db import DatabaseError, transaction

    grow(1)
    checkpoint = make_checkpoint()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Checkpoint.objects.filter(pk=checkpoint.pk).update(note="forged")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Checkpoint.objects.filter(pk=checkpoint.pk).delete()


# ------------------------------------------------------------------ the endpoints


@pytest.fixture
def token(make_user):
    incident = grow()
    _, token = create_share_link(
        by=make_user("incident_manager"), label="buyer", agents=[incident.agent]
    )
    return token


def test_a_signed_in_user_gets_the_checkpoint_exactly_as_signed(client_for):
    grow()
    response = client_for("viewer").get("/log/checkpoint")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == Checkpoint.objects.get().note
    assert response["Cache-Control"] == "no-store, private"


def test_proofs_are_json_lists_of_base64_hashes_that_verify(client_for):
    grow(6)
    client = client_for("operator")
    note = client.get("/log/checkpoint").content.decode()
    size = int(note.split("\n")[1])
    root = base64.b64decode(note.split("\n")[2])
    tree = recomputed_tree()
    for index in (0, 3, size - 1):
        response = client.get(f"/log/proof/inclusion?index={index}&size={size}")
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
        proof = [base64.b64decode(h) for h in response.json()]
        assert merkle.verify_inclusion(index, size, tree.levels[0][index], proof, root)
    response = client.get(f"/log/proof/consistency?from=3&to={size}")
    proof = [base64.b64decode(h) for h in response.json()]
    assert merkle.verify_consistency(3, size, tree.root(3), root, proof)
    assert client.get(f"/log/proof/consistency?from={size}&to={size}").json() == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/log/proof/inclusion?index=5&size=5", "index 5 is not in a tree of size 5"),
        ("/log/proof/inclusion?index=0&size=999", "the log has 4 leaves"),
        ("/log/proof/inclusion?index=x&size=3", "index: Enter a whole number."),
        ("/log/proof/inclusion?size=3", "index: This field is required."),
        ("/log/proof/inclusion?index=-1&size=3", "index: Ensure this value is greater than"),
        ("/log/proof/consistency?from=3&to=2", "from 3 is larger than to 2"),
        ("/log/proof/consistency?from=0&to=2", "from: Ensure this value is greater than"),
        ("/log/proof/consistency?from=1&to=99", "the log has 4 leaves"),
        ("/log/proof/consistency?from=1", "to: This field is required."),
    ],
)
def test_bad_proof_requests_get_a_clear_400(client_for, url, message):
    grow()
    response = client_for("viewer").get(url)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_anonymous_users_are_sent_to_login_and_roleless_users_refused(client, make_user):
    grow()
    for url in ("/log/checkpoint", "/log/proof/inclusion?index=0&size=1"):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(make_user())
    assert client.get("/log/checkpoint").status_code == 403
    assert not Checkpoint.objects.exists()


def test_a_share_link_holder_reads_the_log_with_the_token_and_each_read_is_logged(token):
    buyer = Client()
    response = buyer.get(f"/log/checkpoint?token={token}")
    assert response.status_code == 200 and response.content.decode().startswith("trustdesk/")
    response = buyer.get(f"/log/proof/inclusion?index=0&size=2&token={token}")
    assert response.status_code == 200 and len(response.json()) == 1
    assert buyer.get(f"/log/proof/consistency?from=1&to=2&token={token}").status_code == 200
    assert list(ShareLinkView.objects.order_by("pk").values_list("what", flat=True)) == [
        "log checkpoint",
        "log inclusion proof",
        "log consistency proof",
    ]
    assert buyer.post(f"/log/checkpoint?token={token}").status_code == 405


def test_a_wrong_or_revoked_token_reads_nothing(token, make_user):
    buyer = Client()
    assert buyer.get("/log/checkpoint?token=" + "x" * 40).status_code == 404
    from trustdesk.diligence.models import ShareLink

    revoke_share_link(ShareLink.objects.get(), by=make_user("incident_manager"))
    assert buyer.get(f"/log/checkpoint?token={token}").status_code == 410
    assert not Checkpoint.objects.exists()


# ------------------------------------------------------------------ verify_log


def run_verify_log() -> str:
    out = StringIO()
    call_command("verify_log", stdout=out)
    return out.getvalue()


def _behind_the_triggers(sql: str, params=()) -> None:
    """Change a row the way an attacker with database access would (triggers off)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")


def _failure() -> str:
    out = StringIO()
    with pytest.raises(CommandError, match="does not hold"):
        call_command("verify_log", stdout=out)
    return out.getvalue()


def test_verify_log_holds_on_an_honest_log_with_checkpoints():
    incident = grow()
    make_checkpoint()
    lifecycle.add_note(incident, by=None, text="later")
    make_checkpoint()
    tlog.number_pending()
    summary = run_verify_log()
    assert "5 leaves in order" in summary and "2 signed checkpoint(s)" in summary


def test_verify_log_names_an_event_changed_behind_its_back():
    grow()
    make_checkpoint()
    tlog.number_pending()
    event = Event.objects.get(seq=3)
    _behind_the_triggers(
        "UPDATE incidents_event SET hash = %s WHERE id = %s", ["ab" * 32, event.pk]
    )
    assert "leaf 2 (INC-1 event 3): the stored leaf hash is not" in _failure()


def test_verify_log_names_a_changed_subtree_node():
    grow()
    tlog.number_pending()
    _behind_the_triggers(
        "UPDATE incidents_lognode SET hash = %s WHERE level = 1 AND position = 1", [bytes(32)]
    )
    assert "node 1/1 (leaves 2 to 3) does not match the events" in _failure()


def test_verify_log_names_a_checkpoint_whose_signature_or_root_is_wrong():
    incident = grow()
    good = make_checkpoint()
    lifecycle.add_note(incident, by=None, text="later")
    bad = make_checkpoint()
    _behind_the_triggers(
        "UPDATE diligence_checkpoint SET note = %s WHERE id = %s",
        [bad.note.replace(f"\n{bad.size}\n", f"\n{bad.size - 1}\n"), bad.pk],
    )
    assert f"checkpoint {bad.size}" in _failure()
    assert "the signature is not valid" in _failure()
    # A checkpoint signed over another root (a rewritten history) is caught by the root check.
    forged_text = f"{good.origin}\n{good.size}\n{base64.b64encode(bytes(32)).decode()}\n"
    from trustdesk.diligence.checkpoints import signed_note

    _behind_the_triggers(
        "UPDATE diligence_checkpoint SET note = %s, root_hash = %s WHERE id = %s",
        [signed_note(forged_text, good.origin), bytes(32), good.pk],
    )
    assert f"checkpoint {good.size}" in _failure()
    assert "its root is not the root of the first" in _failure()


def test_the_log_is_one_tree_across_agents_in_stored_order():
    """The log is the instance's: one tree across agents, so two agents' events interleave."""
    a, b = AgentFactory(), AgentFactory()
    first, second = make_incident(agent=a), make_incident(agent=b)
    lifecycle.add_note(first, by=None, text="a")
    lifecycle.add_note(second, by=None, text="b")
    tlog.number_pending()
    assert list(
        Event.objects.order_by("leaf__log_index").values_list("incident__agent_id", flat=True)
    ) == [a.pk, b.pk, a.pk, b.pk]

"""Bundles anchored to the transparency log, and a later bundle checked against an earlier one
(docs/design.md section 15): `verify.py NEW.zip --previous OLD.zip` and `verify_bundle` accept a
history that extends the old one and name the first thing that does not hold."""

from __future__ import annotations

import base64
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.diligence.helpers import edit_manifest, read_zip, run_standalone, sign_manifest
from tests.diligence.helpers import write_zip as zip_files
from tests.factories import make_incident
from trustdesk.diligence.actions import create_share_link
from trustdesk.diligence.models import Checkpoint
from trustdesk.incidents import lifecycle, tlog
from trustdesk.incidents.chain import canonical_event, event_hash
from trustdesk.incidents.models import Event, Incident

pytestmark = pytest.mark.django_db


def export(path: Path, *args: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    call_command("export_bundle", str(path), *args, stdout=StringIO())
    return path


def size_of(bundle: Path) -> int:
    return int(read_zip(bundle)["checkpoint.txt"].decode().split("\n")[1])


def verify(new: Path, previous: Path | None = None) -> str:
    out = StringIO()
    args = ["--previous", str(previous)] if previous else []
    call_command("verify_bundle", str(new), *args, stdout=out)
    return out.getvalue()


def refused(
    new: Path, previous: Path | None, message: str, without_signatures: str | None = None
) -> None:
    """Both verifiers refuse, naming `message`: the command and the bundle's own script.

    `without_signatures`: what the script names when `cryptography` is absent (python -I -S),
    for a change that a signature catches first but the hashes and proofs catch too."""
    args = ["--previous", str(previous)] if previous else []
    with pytest.raises(CommandError, match="MISMATCH") as caught:
        call_command("verify_bundle", str(new), *args, stdout=StringIO())
    assert message in str(caught.value)
    extra = ["--previous", str(previous.resolve())] if previous else []
    result = run_standalone(new, *extra)
    assert result.returncode == 1, result.stdout
    assert message in result.stderr
    if without_signatures:
        result = run_standalone(new, *extra, isolated_flags=("-I", "-S"))
        assert result.returncode == 1, result.stdout
        assert without_signatures in result.stderr


@pytest.fixture
def old(make_user, tmp_path) -> Path:
    """An incident contained, with an internal and a shareable note, and its bundle."""
    operator = make_user("operator", username="ana")
    incident = make_incident(by=operator)
    lifecycle.contain_incident(
        incident, by=operator, expected_version=1, action="suspend", scope_after="suspended"
    )
    lifecycle.add_note(incident, by=operator, text="between us", internal=True)
    lifecycle.add_note(incident, by=operator, text="for the buyer too", internal=False)
    return export(tmp_path / "old" / "old.zip")


def more_history() -> Incident:
    incident = make_incident(title="a later incident")
    for n in range(3):
        lifecycle.add_note(incident, by=None, text=f"later note {n}")
    return incident


@pytest.fixture
def new(old, tmp_path) -> Path:
    more_history()
    return export(tmp_path / "new" / "new.zip", "--since-checkpoint", str(size_of(old)))


# ------------------------------------------------------------------ what a bundle carries


def test_a_bundle_carries_its_checkpoint_and_every_event_s_index_and_proof(old):
    files = read_zip(old)
    manifest = json.loads(files["manifest.json"])
    note = files["checkpoint.txt"].decode()
    assert note == Checkpoint.objects.get(size=size_of(old)).note  # exactly as served
    origin, size, root = note.split("\n")[:3]
    assert manifest["log"] == {
        "origin": origin,
        "size": int(size),
        "root": root,
        "checkpoint": "checkpoint.txt",
        "consistency": None,
    }
    tlog.number_pending()
    events = manifest["incidents"][0]["events"]
    stored = dict(Event.objects.values_list("hash", "leaf__log_index"))
    assert [e["log_index"] for e in events] == [stored[e["hash"]] for e in events]
    proofs = tlog.inclusion_proofs([e["log_index"] for e in events], int(size))
    for event in events:
        assert event["inclusion_proof"] == [
            base64.b64encode(h).decode() for h in proofs[event["log_index"]]
        ]
    summary = verify(old)
    assert "transparency log: every event's inclusion proof leads to the checkpoint's root" in (
        summary
    )
    assert f"tree size {size}, root {root}" in summary
    assert "valid Ed25519 signature of the checkpoint" in summary


# ------------------------------------------------------------------ before and after


def test_a_later_bundle_verifies_against_the_earlier_one_with_both_verifiers(old, new):
    summary = verify(new, old)
    assert summary.startswith("OK: every check holds.")
    assert (
        f"previous bundle old.zip: extends the previous bundle: its tree of {size_of(old)} "
        f"leaves is the start of this one ({size_of(new)} leaves)" in summary
    )
    manifest = json.loads(read_zip(new)["manifest.json"])
    assert manifest["log"]["consistency"]["from"] == size_of(old)
    result = run_standalone(new, "--previous", str(old.resolve()))
    assert result.returncode == 0, result.stderr
    assert "extends the previous bundle" in result.stdout


def test_the_same_tree_size_twice_verifies_without_a_proof(old, tmp_path):
    again = export(tmp_path / "again" / "again.zip")
    assert size_of(again) == size_of(old)
    assert "extends the previous bundle" in verify(again, old)


def test_a_later_bundle_without_a_consistency_proof_says_how_to_get_one(old, tmp_path):
    more_history()
    plain = export(tmp_path / "plain" / "plain.zip")
    refused(plain, old, f"export it with --since-checkpoint {size_of(old)}")


def test_a_proof_from_another_size_is_refused_with_the_size_to_ask_for(old, tmp_path):
    more_history()
    other = export(tmp_path / "other" / "other.zip", "--since-checkpoint", "2")
    refused(other, old, f"not from the previous bundle's size {size_of(old)}")


def _rewrite_history(incident: Incident, seq: int, text: str) -> None:
    """What a vendor hiding something would do with full database access: change one event,
    rebuild the incident's chain after it, rebuild the whole log and sign a new checkpoint."""
    tlog.number_pending()  # the rewriter works on committed history
    events = list(Event.objects.filter(incident=incident).order_by("seq"))
    prev = events[seq - 2].hash if seq > 1 else "0" * 64
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        for event in events[seq - 1 :]:
            data = dict(event.data, text=text) if event.seq == seq else event.data
            canonical = canonical_event(
                incident_key=incident.key,
                seq=event.seq,
                type=event.type,
                at=event.at,
                by=event.actor_name or None,
                data=data,
            )
            new_hash = event_hash(prev, canonical)
            cursor.execute(
                "UPDATE incidents_event SET data = %s, canonical = %s, prev_hash = %s, hash = %s "
                "WHERE id = %s",
                [json.dumps(data), canonical, prev, new_hash, event.pk],
            )
            prev = new_hash
        cursor.execute(
            "UPDATE incidents_incident SET last_hash = %s WHERE id = %s", [prev, incident.pk]
        )
        for table in ("incidents_logleaf", "incidents_lognode", "incidents_loghead"):
            cursor.execute(f"DELETE FROM {table}")
        cursor.execute("DELETE FROM diligence_checkpoint")
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")
    tlog.index_unindexed_events()


def test_a_rewritten_history_verifies_alone_but_not_against_the_earlier_bundle(old, tmp_path):
    incident = Incident.objects.get()
    note = Event.objects.filter(incident=incident, type="note").order_by("seq").last()
    more_history()
    _rewrite_history(incident, note.seq, "nothing to see here")
    forged = export(tmp_path / "forged" / "forged.zip", "--since-checkpoint", str(size_of(old)))
    assert verify(forged).startswith("OK")  # self-consistent, freshly signed
    refused(forged, old, "the new history does not extend the previous one")


def test_a_bundle_whose_tree_is_smaller_than_the_earlier_one_is_refused(old, new):
    refused(old, new, "is smaller than the previous bundle's")


# ------------------------------------------------------------------ tampering with one thing


def _first_event(manifest: dict) -> dict:
    return manifest["incidents"][0]["events"][1]


def test_one_changed_proof_hash_is_named(old, tmp_path):
    def change(manifest):
        _first_event(manifest)["inclusion_proof"][0] = base64.b64encode(bytes(32)).decode()

    (tmp_path / "t").mkdir()
    tampered = edit_manifest(old, tmp_path / "t" / "proof.zip", change)
    refused(tampered, None, "event 2 (log index 1): its inclusion proof does not lead")


def test_one_changed_event_is_named(old, tmp_path):
    (tmp_path / "t").mkdir()

    def change(manifest):
        _first_event(manifest)["hash"] = "ab" * 32

    refused(edit_manifest(old, tmp_path / "t" / "event.zip", change), None, "event 2")


def _with_checkpoint(bundle: Path, out: Path, change_note, change_manifest=None) -> Path:
    files = read_zip(bundle)
    files["checkpoint.txt"] = change_note(files["checkpoint.txt"].decode()).encode()
    if change_manifest:
        manifest = json.loads(files["manifest.json"])
        change_manifest(manifest)
        files["manifest.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    return zip_files(out, files)


def test_a_changed_checkpoint_size_is_named(old, tmp_path):
    size = size_of(old)
    bigger = lambda note: note.replace(f"\n{size}\n", f"\n{size + 1}\n", 1)  # noqa: E731
    refused(_with_checkpoint(old, tmp_path / "a" / "s.zip", bigger), None, "its size is")

    def both(manifest):
        manifest["log"]["size"] = size + 1

    refused(
        _with_checkpoint(old, tmp_path / "b" / "s.zip", bigger, both),
        None,
        "the signature is not valid for the checkpoint text",
        without_signatures="its inclusion proof does not lead to the checkpoint's root at tree",
    )


def test_a_changed_checkpoint_root_is_named(old, tmp_path):
    root = read_zip(old)["checkpoint.txt"].decode().split("\n")[2]
    other = base64.b64encode(bytes(32)).decode()
    swap = lambda note: note.replace(root, other, 1)  # noqa: E731
    refused(_with_checkpoint(old, tmp_path / "a" / "r.zip", swap), None, "its root is")

    def both(manifest):
        manifest["log"]["root"] = other

    refused(
        _with_checkpoint(old, tmp_path / "b" / "r.zip", swap, both),
        None,
        "the signature is not valid for the checkpoint text",
        without_signatures="its inclusion proof does not lead to the checkpoint's root",
    )


def test_a_changed_checkpoint_signature_is_named(old, tmp_path):
    def flip(note):
        head, _, signature = note.rstrip("\n").rpartition(" ")
        raw = bytearray(base64.b64decode(signature))
        raw[10] ^= 1
        return f"{head} {base64.b64encode(bytes(raw)).decode()}\n"

    refused(
        _with_checkpoint(old, tmp_path / "a" / "sig.zip", flip),
        None,
        "the signature is not valid for the checkpoint text",
    )


def test_a_changed_consistency_proof_hash_is_named(old, new, tmp_path):
    (tmp_path / "t").mkdir()

    def change(manifest):
        manifest["log"]["consistency"]["proof"][0] = base64.b64encode(bytes(32)).decode()

    tampered = edit_manifest(new, tmp_path / "t" / "consistency.zip", change)
    refused(
        tampered,
        old,
        "manifest.sig is not a valid signature of manifest.json",
        without_signatures="the new history does not extend the previous one",
    )


def test_a_previous_bundle_from_another_log_is_named(old, settings, tmp_path):
    settings.TRUSTDESK_LOG_ORIGIN = "elsewhere.example/log"
    more_history()
    other = export(tmp_path / "o" / "o.zip", "--since-checkpoint", str(size_of(old)))
    refused(other, old, "the new one from 'elsewhere.example/log'")


def test_a_broken_previous_bundle_is_named_as_the_previous_one(old, new, tmp_path):
    (tmp_path / "t").mkdir()

    def change(manifest):
        _first_event(manifest)["hash"] = "ab" * 32

    broken = edit_manifest(old, tmp_path / "t" / "broken-old.zip", change)
    refused(new, broken, "the previous bundle broken-old.zip:")


# ------------------------------------------------------------------ asking for the proof


@pytest.mark.parametrize(("size", "message"), [("0", "between 1 and"), ("999", "between 1 and")])
def test_export_bundle_refuses_a_size_outside_the_log_and_writes_nothing(
    old, tmp_path, size, message
):
    out = tmp_path / "x" / "x.zip"
    out.parent.mkdir()
    with pytest.raises(CommandError, match=message):
        call_command("export_bundle", str(out), "--since-checkpoint", size, stdout=StringIO())
    assert not out.exists()


def test_the_buyer_page_shows_the_checkpoint_and_bundles_a_proof_from_a_given_size(
    old, make_user, tmp_path
):
    cache.clear()
    incident = Incident.objects.get()
    _, token = create_share_link(
        by=make_user("incident_manager"), label="buyer", agents=[incident.agent]
    )
    more_history()
    buyer = Client()
    page = buyer.get(reverse("buyer_view", args=[token])).content.decode()
    checkpoint = Checkpoint.objects.order_by("-size").first()
    assert f'id="log-size">{checkpoint.size}<' in page
    assert f'id="log-root">{checkpoint.root_base64}<' in page
    assert f'id="log-origin">{checkpoint.origin}<' in page
    assert "python3 verify.py new.zip --previous old.zip" in page
    url = reverse("buyer_bundle", args=[token])
    response = buyer.get(url, {"since": size_of(old)})
    assert response.status_code == 200
    fresh = tmp_path / "buyer" / "fresh.zip"
    fresh.parent.mkdir()
    fresh.write_bytes(b"".join(response.streaming_content))
    assert "extends the previous bundle" in verify(fresh, old)
    for bad, status, message in [
        ("abc", 400, "Enter a whole number"),
        ("0", 400, "greater than or equal to 1"),
        ("99999", 409, "between 1 and"),
    ]:
        response = buyer.get(url, {"since": bad})
        assert response.status_code == status
        assert message in response.content.decode()


def test_a_bundle_from_before_the_log_still_verifies_alone_but_cannot_anchor_a_comparison(
    old, new, tmp_path
):
    """A v1 bundle (made before the log) has no checkpoint: its own checks still run, and a
    comparison with it says plainly that there is nothing to compare."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    files = read_zip(old)
    manifest = json.loads(files.pop("manifest.json"))
    files.pop("checkpoint.txt")
    manifest["bundle"]["format"] = "trustdesk.bundle/v1"
    manifest.pop("log")
    for event in manifest["incidents"][0]["events"]:
        event.pop("log_index")
        event.pop("inclusion_proof")
    # A legacy bundle of some instance, signed as v1 was.
    sign_manifest(files, manifest, Ed25519PrivateKey.generate())
    (tmp_path / "legacy").mkdir()
    legacy = zip_files(tmp_path / "legacy" / "legacy.zip", files)
    summary = verify(legacy)
    assert summary.startswith("OK") and "made before the log existed" in summary
    refused(new, legacy, "the previous bundle predates the transparency log")

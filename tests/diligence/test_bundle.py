"""The evidence bundle and its offline check: one verify.py, run by the command and standalone."""

from __future__ import annotations

import base64
import json
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.builders import decide
from tests.diligence.helpers import (
    PUBLIC_NOTE,
    SECRET_NOTE,
    edit_manifest,
    read_zip,
    recovered_incident,
    run_standalone,
    sign_manifest,
    write_zip,
)
from tests.factories import AgentFactory, make_incident, make_pact_version
from trustdesk.core.canonical import canonical_json
from trustdesk.diligence import signing, verify
from trustdesk.diligence.bundle import BUYER_AUDIENCE, BundleScope, export_to_path

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(make_user):
    return recovered_incident(by=make_user("operator", username="ana"))


@pytest.fixture
def bundle(incident, tmp_path) -> Path:
    out = tmp_path / "made" / "bundle.zip"
    out.parent.mkdir()
    call_command("export_bundle", str(out), "--incident", incident.key)
    return out


def verify_with_command(path: Path) -> str:
    from io import StringIO

    stdout = StringIO()
    call_command("verify_bundle", str(path), stdout=stdout)
    return stdout.getvalue()


# ------------------------------------------------------------------ a fresh bundle


def test_a_fresh_bundle_verifies_with_the_command(bundle, incident):
    summary = verify_with_command(bundle)
    assert summary.startswith("OK: every check holds.")
    assert "1 incident(s), 15 event(s)" in summary
    assert "2 evidence file(s)" in summary
    assert "valid Ed25519 signature" in summary


def test_a_fresh_bundle_verifies_with_its_own_script_in_an_isolated_python(bundle, tmp_path):
    outside = tmp_path / "buyer-laptop"
    outside.mkdir()
    copy = outside / "bundle.zip"
    copy.write_bytes(bundle.read_bytes())
    result = run_standalone(copy)
    assert result.returncode == 0, result.stderr
    assert "OK: every check holds." in result.stdout
    assert "valid Ed25519 signature" in result.stdout


def test_the_script_also_verifies_inside_the_unzipped_folder(bundle, tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(folder)
    result = subprocess.run(
        [sys.executable, "-I", "verify.py"], cwd=folder, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "2 evidence file(s) match" in result.stdout


def test_the_bundle_carries_the_verifier_byte_for_byte_and_a_readme(bundle):
    files = read_zip(bundle)
    assert files["verify.py"] == Path(verify.__file__).read_bytes()
    readme = files["README.txt"].decode()
    assert "python3 verify.py bundle.zip" in readme
    assert signing.public_key().fingerprint in readme
    evidence = [e["sha256"] for e in json.loads(files["manifest.json"])["evidence"]]
    assert len(evidence) == 2
    assert set(files) == {
        "manifest.json",
        "manifest.sig",
        "checkpoint.txt",
        "README.txt",
        "verify.py",
        *(f"evidence/{sha}" for sha in evidence),
    }


def test_the_manifest_is_the_exchange_format_with_hashes_and_facts(bundle, incident):
    manifest = json.loads(read_zip(bundle)["manifest.json"])
    assert manifest["format"] == "trustdesk.incidents/v1"
    assert manifest["bundle"]["audience"] == "internal"
    assert manifest["bundle"]["public_key"]["fingerprint"] == signing.public_key().fingerprint
    (entry,) = manifest["incidents"]
    assert (entry["key"], entry["agent"], entry["state"]) == (
        incident.key,
        "support-bot",
        "recovered",
    )
    assert (entry["decision"], entry["override"]) == ("reopen_partial", False)
    first = entry["events"][0]
    stored = incident.events.get(seq=1)
    assert (first["hash"], first["prev_hash"], first["canonical"]) == (
        stored.hash,
        stored.prev_hash,
        stored.canonical,
    )
    version = incident.pact_version
    assert {"key": version.pact.key, "version": version.number, "sha256": version.sha256} in (
        manifest["pact_hashes"]
    )


def test_the_signature_covers_the_exact_manifest_bytes(bundle):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    files = read_zip(bundle)
    key = Ed25519PublicKey.from_public_bytes(signing.public_key().raw)
    signature = bytes.fromhex(files["manifest.sig"].decode().strip())
    key.verify(signature, files["manifest.json"])  # raises InvalidSignature on a mismatch
    with pytest.raises(InvalidSignature):
        key.verify(signature, files["manifest.json"] + b" ")


# ------------------------------------------------------------------ tampers


def _event(manifest, seq):
    return manifest["incidents"][0]["events"][seq - 1]


def tamper_event_time(manifest):
    _event(manifest, 2)["at"] = "2020-01-01T00:00:00Z"


def tamper_event_data(manifest):
    _event(manifest, 13)["data"]["override"] = True


def tamper_event_data_and_canonical(manifest):
    event = _event(manifest, 13)
    event["data"]["rationale"] = "We felt like it."
    event["canonical"] = event["canonical"].replace(
        "Limit enforced server-side; approval queue staffed.", "We felt like it."
    )


def tamper_delete_event(manifest):
    del manifest["incidents"][0]["events"][4]


def tamper_delete_event_and_renumber(manifest):
    events = manifest["incidents"][0]["events"]
    del events[4]
    for seq, event in enumerate(events, start=1):
        event["seq"] = seq


def tamper_cut_the_last_event(manifest):
    manifest["incidents"][0]["events"].pop()


def tamper_swap_events(manifest):
    events = manifest["incidents"][0]["events"]
    events[9], events[10] = events[10], events[9]


def tamper_state(manifest):
    manifest["incidents"][0]["state"] = "closed_restricted"


def tamper_contained_at(manifest):
    manifest["incidents"][0]["contained_at"] = "2020-01-01T00:00:00Z"


def tamper_override_fact(manifest):
    manifest["incidents"][0]["override"] = True


def tamper_pact_document(manifest):
    manifest["pacts"][0]["spec"]["clauses"][0]["objective"]["target"] = "500"


def tamper_pact_hash(manifest):
    manifest["pact_hashes"][0]["sha256"] = "0" * 64


MANIFEST_TAMPERS = [
    (tamper_event_time, "event 2: 'at' in the manifest is \"2020-01-01T00:00:00Z\""),
    (tamper_event_data, "event 13: 'data' in the manifest is"),
    (tamper_event_data_and_canonical, "event 13: the hash does not match the canonical bytes"),
    (tamper_delete_event, "expected seq 5 here"),
    (tamper_delete_event_and_renumber, "event 5: prev_hash is not the hash of event 4"),
    (tamper_swap_events, "expected seq 10 here"),
    (tamper_cut_the_last_event, "the log has 14 ending in"),
    (tamper_state, "state in the manifest is 'closed_restricted' but the events say 'recovered'"),
    (tamper_contained_at, "contained_at in the manifest is 2020-01-01T00:00:00Z"),
    (tamper_override_fact, "override in the manifest is True but the events say False"),
    (tamper_pact_document, "does not hash to its listed SHA-256"),
    (tamper_pact_hash, "does not hash to its listed SHA-256"),
]


def _assert_caught(path: Path, expected: str) -> None:
    with pytest.raises(CommandError) as info:
        verify_with_command(path)
    assert expected in str(info.value)
    result = run_standalone(path)
    assert result.returncode == 1
    assert "MISMATCH: " in result.stderr and expected in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("tamper", "expected"), MANIFEST_TAMPERS, ids=[t.__name__ for t, _ in MANIFEST_TAMPERS]
)
def test_a_tampered_manifest_is_caught_by_both_verifiers(bundle, tmp_path, tamper, expected):
    tampered = edit_manifest(bundle, tmp_path / "tampered.zip", tamper)
    _assert_caught(tampered, expected)


def test_one_changed_byte_of_an_evidence_file_is_caught(bundle, tmp_path):
    files = read_zip(bundle)
    name = next(n for n in files if n.startswith("evidence/"))
    data = bytearray(files[name])
    data[0] ^= 0x01
    files[name] = bytes(data)
    tampered = write_zip(tmp_path / "tampered.zip", files)
    _assert_caught(tampered, f"{name}: the file's SHA-256 is not its name")


def test_a_removed_evidence_file_is_caught(bundle, tmp_path):
    files = read_zip(bundle)
    name = next(n for n in files if n.startswith("evidence/"))
    del files[name]
    tampered = write_zip(tmp_path / "tampered.zip", files)
    _assert_caught(tampered, f"{name}: listed as included but missing")


def test_a_changed_signature_is_caught(bundle, tmp_path):
    files = read_zip(bundle)
    sig = files["manifest.sig"].decode().strip()
    files["manifest.sig"] = (("1" if sig[0] != "1" else "2") + sig[1:] + "\n").encode()
    tampered = write_zip(tmp_path / "tampered.zip", files)
    _assert_caught(tampered, "manifest.sig is not a valid signature of manifest.json")


def test_a_manifest_edit_that_keeps_every_hash_is_still_caught_by_the_signature(bundle, tmp_path):
    # The bundle's creation time is not covered by any hash, only by the signature.
    def change(manifest):
        manifest["bundle"]["created_at"] = "2030-01-01T00:00:00Z"

    _assert_caught(edit_manifest(bundle, tmp_path / "tampered.zip", change), "manifest.sig")


def test_a_bundle_re_signed_with_another_key_fails_the_expected_fingerprint(bundle, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    files = read_zip(bundle)
    forger = Ed25519PrivateKey.generate()
    raw = sign_manifest(files, json.loads(files["manifest.json"]), forger)
    # A forger re-signs the log checkpoint too, under the same origin.
    checkpoint = verify.parse_checkpoint(files["checkpoint.txt"].decode())
    signature = verify.note_key_id(checkpoint.origin, raw) + forger.sign(checkpoint.text.encode())
    files["checkpoint.txt"] = (
        f"{checkpoint.text}\n\u2014 {checkpoint.origin} {base64.b64encode(signature).decode()}\n"
    ).encode()
    forged = write_zip(tmp_path / "forged.zip", files)
    real = signing.public_key().fingerprint
    assert verify_with_command(forged).startswith("OK")  # self-consistent, but not ours:
    with pytest.raises(CommandError, match="signed by key"):
        call_command("verify_bundle", str(forged), "--expect-key", real)
    result = run_standalone(forged, "--expect-key", real)
    assert result.returncode == 1 and "not " + real in result.stderr
    assert run_standalone(bundle, "--expect-key", real).returncode == 0


def test_without_cryptography_the_script_says_so_and_still_checks_every_hash(bundle, tmp_path):
    # -S: no site-packages at all, so `cryptography` cannot be imported.
    result = run_standalone(bundle, isolated_flags=("-I", "-S"))
    assert result.returncode == 0, result.stderr
    assert "signature: NOT CHECKED: the Python package `cryptography` is not installed" in (
        result.stdout
    )
    (tmp_path / "t").mkdir()
    tampered = edit_manifest(bundle, tmp_path / "t" / "tampered.zip", tamper_event_time)
    result = run_standalone(tampered, isolated_flags=("-I", "-S"))
    assert result.returncode == 1 and "event 2: 'at'" in result.stderr


def test_not_a_bundle_is_a_clear_error_not_a_traceback(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(CommandError, match="CANNOT READ"):
        call_command("verify_bundle", str(junk))
    empty = write_zip(tmp_path / "empty.zip", {"hello.txt": b"hi"})
    with pytest.raises(CommandError, match="no manifest.json"):
        call_command("verify_bundle", str(empty))
    broken = write_zip(tmp_path / "broken.zip", {"manifest.json": b'{"bundle": {}}'})
    with pytest.raises(CommandError, match="malformed"):
        call_command("verify_bundle", str(broken))


# ------------------------------------------------------------------ buyer bundles


def test_a_buyer_bundle_withholds_internal_notes_and_still_verifies(incident, tmp_path):
    out = tmp_path / "buyer.zip"
    summary = export_to_path(
        out,
        BundleScope(agents=[incident.agent], audience=BUYER_AUDIENCE, include_evidence=False),
    )
    assert summary.withheld == 1
    files = read_zip(out)
    for name, data in files.items():
        assert SECRET_NOTE.encode() not in data, name
    assert PUBLIC_NOTE.encode() in files["manifest.json"]
    assert not [n for n in files if n.startswith("evidence/")]
    manifest = json.loads(files["manifest.json"])
    stub = _event(manifest, 5)
    # Its place in the transparency log is kept too, so the log check covers it.
    assert stub.pop("log_index") == incident.events.get(seq=5).leaf.log_index
    assert stub.pop("inclusion_proof")
    assert stub == {
        "seq": 5,
        "prev_hash": incident.events.get(seq=5).prev_hash,
        "hash": incident.events.get(seq=5).hash,
        "withheld": "internal note",
    }
    summary_text = verify_with_command(out)
    assert "1 internal note(s) withheld" in summary_text
    result = run_standalone(out)
    assert result.returncode == 0, result.stderr


def test_a_withheld_note_cannot_be_replaced_without_breaking_the_chain(incident, tmp_path):
    out = tmp_path / "buyer.zip"
    export_to_path(out, BundleScope(agents=[incident.agent], audience=BUYER_AUDIENCE))

    def change(manifest):
        _event(manifest, 5)["hash"] = "f" * 64

    _assert_caught(
        edit_manifest(out, tmp_path / "tampered.zip", change),
        "event 6: prev_hash is not the hash of event 5",
    )


def test_the_internal_bundle_keeps_the_internal_note(bundle):
    assert SECRET_NOTE.encode() in read_zip(bundle)["manifest.json"]


# ------------------------------------------------------------------ the command


def test_export_bundle_by_agent_includes_active_pacts_and_every_incident(make_user, tmp_path):
    agent = AgentFactory(key="claims-bot")
    version = make_pact_version(agent=agent)
    first = recovered_incident(version=version)
    second = recovered_incident(version=version)
    other = recovered_incident(agent=AgentFactory(key="other-bot"))
    out = tmp_path / "agent.zip"
    call_command("export_bundle", "--agent", "claims-bot", str(out))
    manifest = json.loads(read_zip(out)["manifest.json"])
    assert [i["key"] for i in manifest["incidents"]] == [first.key, second.key]
    assert other.key not in {i["key"] for i in manifest["incidents"]}
    assert [p["metadata"]["key"] for p in manifest["pacts"]] == [version.pact.key]
    assert verify_with_command(out).startswith("OK")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agent", "nobody"], "no such agent: nobody"),
        (["--incident", "INC-999"], "no such incident: INC-999"),
    ],
)
def test_export_bundle_names_unknown_keys_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "x.zip"
    with pytest.raises(CommandError, match=message):
        call_command("export_bundle", *args, str(out))
    assert not out.exists()


def test_export_bundle_refuses_a_name_that_is_not_a_zip(tmp_path):
    with pytest.raises(CommandError, match="name it something.zip"):
        call_command("export_bundle", str(tmp_path / "x.json"))


def test_an_evidence_file_changed_on_disk_stops_the_export(incident, tmp_path):
    from django.conf import settings

    item = incident.evidence.get(content_type="file")
    path = Path(settings.MEDIA_ROOT) / item.storage_path
    path.write_bytes(b"rewritten")
    out = tmp_path / "x.zip"
    with pytest.raises(CommandError, match="no longer matches its SHA-256"):
        call_command("export_bundle", str(out))
    assert not out.exists()


# ------------------------------------------------------------------ canonical JSON cannot drift


CANONICAL_SAMPLES = [
    None,
    True,
    False,
    0,
    -7,
    2**70,
    "",
    "plain",
    'ünïcødé ✓ \u2028 "quoted" \\ back\nslash',
    "\x00\x1f control",
    "emoji 🙂",
    0.95,
    1.0,
    -0.0,
    1e-7,
    123456789.123,
    1e22,
    Decimal("1.50"),
    Decimal("-0"),
    Decimal("1E+3"),
    Decimal("0.00001"),
    datetime(2026, 11, 2, 10, 0, tzinfo=UTC),
    datetime(2026, 11, 2, 10, 0, 0, 123456, tzinfo=UTC),
    date(2026, 11, 1),
    [],
    {},
    [1, "a", None, [2.5, {"z": 1, "a": [True]}]],
    {"b": 1, "a": 2, "A": 3, "é": 4, "10": 5, "9": 6, "": 7},
    {"nested": {"list": [Decimal("3.14"), 0.1, {"deep": "x"}]}, "t": (1, 2)},
]


@pytest.mark.parametrize("value", CANONICAL_SAMPLES, ids=range(len(CANONICAL_SAMPLES)))
def test_verify_py_canonical_json_agrees_with_the_apps(value):
    assert verify.canonical(value) == canonical_json(value)


def test_both_canonical_forms_refuse_the_same_bad_values():
    from datetime import datetime as dt

    for bad in (float("nan"), Decimal("Infinity"), dt(2026, 1, 1), {1: "int key"}, {1, 2}):
        with pytest.raises((TypeError, ValueError)):
            canonical_json(bad)
        with pytest.raises((TypeError, ValueError)):
            verify.canonical(bad)


def test_every_stored_event_is_written_identically_by_verify_py(incident):
    for event in incident.events.order_by("seq"):
        assert verify.canonical(json.loads(event.canonical)) == event.canonical


# ------------------------------------------------------------------ real lifecycle, both outcomes


def test_incidents_walked_through_the_real_lifecycle_verify_in_both_bundles(make_user, tmp_path):
    from tests.diligence.helpers import walked_incident

    agent = AgentFactory(key="support-bot")
    people = {
        "operator": make_user("operator"),
        "risk": make_user("risk"),
        "manager": make_user("incident_manager"),
    }
    recovered = walked_incident(agent=agent, **people)
    restricted = walked_incident(agent=agent, decision="keep_restricted", **people)
    assert (recovered.state, restricted.state) == ("recovered", "closed_restricted")
    internal = tmp_path / "internal.zip"
    call_command("export_bundle", "--agent", "support-bot", str(internal))
    manifest = json.loads(read_zip(internal)["manifest.json"])
    facts = {i["key"]: (i["state"], i["decision"], i["override"]) for i in manifest["incidents"]}
    assert facts == {
        recovered.key: ("recovered", "reopen_partial", False),
        restricted.key: ("closed_restricted", "keep_restricted", False),
    }
    # 4 items each, but the same chat file was attached to both: content-addressed, one file.
    assert len(manifest["evidence"]) == 8
    assert len([n for n in read_zip(internal) if n.startswith("evidence/")]) == 7
    buyer = tmp_path / "buyer.zip"
    export_to_path(buyer, BundleScope(agents=[agent], audience=BUYER_AUDIENCE))
    for path in (internal, buyer):
        assert verify_with_command(path).startswith("OK")
        result = run_standalone(path)
        assert result.returncode == 0, result.stderr
    assert SECRET_NOTE.encode() not in buyer.read_bytes()
    assert "2 internal note(s) withheld" in verify_with_command(buyer)


def test_an_override_made_through_the_reviews_app_is_in_the_facts_and_verifies(make_user, tmp_path):
    manager = make_user("incident_manager")
    from tests.reviews.helpers import advance

    # A decision needs what broke classified; before the review it is an override.
    opened = advance(
        make_incident(version=make_pact_version(agent=AgentFactory(key="rush-bot"))), "classified"
    )
    decide(
        opened,
        "reopen_full",
        by=manager,
        rationale="Peak season.",
        justification="Risk accepted by the COO in writing.",
        override_requested=True,
    )
    out = tmp_path / "override.zip"
    call_command("export_bundle", "--incident", opened.key, str(out))
    (entry,) = json.loads(read_zip(out)["manifest.json"])["incidents"]
    assert (entry["state"], entry["decision"], entry["override"]) == (
        "recovered",
        "reopen_full",
        True,
    )
    assert verify_with_command(out).startswith("OK")
    tampered = edit_manifest(
        out, tmp_path / "t.zip", lambda m: m["incidents"][0].update(override=False)
    )
    _assert_caught(tampered, "override in the manifest is False but the events say True")


def test_an_internal_bundle_may_not_withhold_events(bundle, tmp_path):
    def hide_note(manifest):
        event = _event(manifest, 5)
        for field in ("type", "at", "by", "data", "canonical"):
            event.pop(field, None)
        event["withheld"] = "internal note"

    _assert_caught(
        edit_manifest(bundle, tmp_path / "tampered.zip", hide_note),
        "event 5: withheld, but only a buyer bundle may withhold events",
    )


def test_the_system_python3_verifies_a_bundle_too(bundle, tmp_path):
    import shutil
    import subprocess

    python3 = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if python3 is None:
        pytest.skip("no python3 outside the project's virtualenv")
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    copy = folder / "bundle.zip"
    copy.write_bytes(bundle.read_bytes())
    (folder / "verify.py").write_bytes(read_zip(bundle)["verify.py"])
    result = subprocess.run(
        [python3, "-I", "verify.py", "bundle.zip"], cwd=folder, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "OK: every check holds." in result.stdout


def test_export_bundle_shareable_withholds_internal_notes_and_still_verifies(make_user, tmp_path):
    from trustdesk.incidents.lifecycle import add_note

    opened = make_incident(version=make_pact_version(agent=AgentFactory(key="note-bot")))
    add_note(opened, by=make_user("operator"), text="Internal: vendor blamed", internal=True)
    add_note(opened, by=make_user("operator"), text="Shared: fix deployed", internal=False)
    internal, shareable = tmp_path / "internal.zip", tmp_path / "shareable.zip"
    call_command("export_bundle", "--incident", opened.key, str(internal))
    call_command("export_bundle", "--incident", opened.key, "--shareable", str(shareable))
    assert "Internal: vendor blamed" in read_zip(internal)["manifest.json"].decode()
    manifest = read_zip(shareable)["manifest.json"].decode()
    assert "Internal: vendor blamed" not in manifest and "Shared: fix deployed" in manifest
    for path in (internal, shareable):
        assert verify_with_command(path).startswith("OK")
        assert run_standalone(path).returncode == 0

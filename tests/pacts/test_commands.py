"""import_pacts and export_pact (docs/design.md section 7)."""

from __future__ import annotations

import hashlib
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.pacts.documents import as_yaml, changed, valid_document
from trustdesk.pacts.models import Agent, Clause, Pact, PactVersion

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def nothing_stored() -> bool:
    return not (
        Agent.objects.exists()
        or Pact.objects.exists()
        or PactVersion.objects.exists()
        or Clause.objects.exists()
    )


def test_import_yaml_and_json_files_creates_agents_and_active_versions(tmp_path):
    (tmp_path / "a.yaml").write_text(as_yaml(valid_document("a-pact", "agent-a")))
    (tmp_path / "b.json").write_text(json.dumps(valid_document("b-pact", "agent-b")))
    out, _ = run("import_pacts", str(tmp_path / "a.yaml"), str(tmp_path / "b.json"))
    assert "a-pact@1 active" in out and "b-pact@1 active" in out
    assert set(Agent.objects.values_list("key", flat=True)) == {"agent-a", "agent-b"}
    version = PactVersion.objects.get(pact__key="a-pact")
    assert version.status == "active"
    assert [c.key for c in version.clauses.all()] == ["refund-limit", "refund-accuracy"]
    assert version.document["metadata"]["version"] == 1


def test_import_of_a_multi_document_file_with_one_bad_document_stores_none(tmp_path):
    bad = changed(
        valid_document("b-pact", "agent-b"),
        lambda d: d["spec"]["clauses"][1]["objective"].update(op="=<"),
    )
    path = tmp_path / "pacts.yaml"
    path.write_text(as_yaml(valid_document("a-pact", "agent-a"), bad))
    with pytest.raises(CommandError, match="nothing was imported"):
        run("import_pacts", str(path))
    assert nothing_stored()


def test_import_prints_every_problem_with_file_and_path(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(as_yaml(valid_document("a-pact", "agent-a")))
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        as_yaml(
            valid_document("b-pact"),
            changed(
                valid_document("c-pact"),
                lambda d: (
                    d["spec"].update(risk_tier="extreme"),
                    d["spec"]["clauses"][0].update(window="7w"),
                ),
            ),
        )
    )
    unparsable = tmp_path / "broken.yaml"
    unparsable.write_text("apiVersion: [\n")
    err = StringIO()
    with pytest.raises(CommandError, match="3 problems; nothing was imported"):
        call_command("import_pacts", str(good), str(bad), str(unparsable), stderr=err)
    lines = err.getvalue().splitlines()
    assert f"{bad}: document 2: spec.risk_tier: must be one of low, medium, high, critical" in lines
    assert f"{bad}: document 2: spec.clauses[0].window: must be a window like 7d or 12h" in lines
    assert any(line.startswith(f"{unparsable}: (yaml) line 2") for line in lines)
    assert nothing_stored()


def test_import_refuses_a_changed_document_under_an_existing_version_number(tmp_path):
    doc = valid_document()
    doc["metadata"]["version"] = 1
    (tmp_path / "v1.yaml").write_text(as_yaml(doc))
    run("import_pacts", str(tmp_path / "v1.yaml"))
    changed_doc = changed(doc, lambda d: d["metadata"].update(title="Something else"))
    other = changed(valid_document("other", "other-agent"), lambda d: None)
    (tmp_path / "v1b.yaml").write_text(as_yaml(other, changed_doc))
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_pacts", str(tmp_path / "v1b.yaml"), stderr=err)
    assert "document 2: metadata.version: support-refunds@1 already exists" in err.getvalue()
    # The other, valid, document was rolled back with it.
    assert not Pact.objects.filter(key="other").exists()
    assert not Agent.objects.filter(key="other-agent").exists()
    assert PactVersion.objects.get().document["metadata"]["title"] == "Refunds within policy"


def test_import_of_the_same_file_twice_is_a_no_op(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(as_yaml(valid_document()))
    run("import_pacts", str(path))
    first = PactVersion.objects.get()
    out, _ = run("import_pacts", str(path))
    assert PactVersion.objects.get() == first
    assert "support-refunds@1 active" in out


def test_import_of_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError):
        call_command("import_pacts", str(tmp_path / "nope.yaml"), stderr=StringIO())
    assert nothing_stored()


def test_import_reads_stdin(monkeypatch):
    import io
    import sys

    data = as_yaml(valid_document()).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    out, _ = run("import_pacts", "-")
    assert "support-refunds@1 active" in out


def test_import_as_drafts(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(as_yaml(valid_document()))
    run("import_pacts", "--draft", str(path))
    assert PactVersion.objects.get().status == "draft"


@pytest.fixture
def two_versions(tmp_path):
    v1 = valid_document()
    v2 = changed(v1, lambda d: d["spec"].update(risk_tier="critical"))
    path = tmp_path / "p.yaml"
    path.write_text(as_yaml(v1))
    run("import_pacts", str(path))
    path.write_text(as_yaml(v2))
    run("import_pacts", str(path))
    return PactVersion.objects.order_by("number")


def test_export_prints_the_canonical_json_of_the_active_version(two_versions):
    v1, v2 = two_versions
    assert (v1.status, v2.status) == ("superseded", "active")
    out, _ = run("export_pact", "support-refunds")
    assert out == v2.canonical + "\n"
    assert hashlib.sha256(out.rstrip("\n").encode()).hexdigest() == v2.sha256
    assert json.loads(out)["metadata"]["version"] == 2


def test_export_a_given_version_as_yaml_round_trips(two_versions, tmp_path):
    v1 = two_versions[0]
    out, _ = run("export_pact", "support-refunds@1", "--format", "yaml")
    assert out.startswith("apiVersion: trustdesk/v1\nkind: Pact\nmetadata:\n  key: support-refunds")
    path = tmp_path / "again.yaml"
    path.write_text(out)
    run("import_pacts", str(path))  # the same version, same hash: a no-op
    assert PactVersion.objects.count() == 2
    from trustdesk.pacts.document import load_documents

    assert load_documents(out)[0] == v1.document


def test_export_without_an_active_version_gives_the_latest(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(as_yaml(valid_document()))
    run("import_pacts", "--draft", str(path))
    out, _ = run("export_pact", "support-refunds")
    assert json.loads(out)["metadata"]["version"] == 1


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope", "No pact 'nope'"),
        ("support-refunds@9", "has no version 9"),
        ("support-refunds@x", "is not a version number"),
    ],
)
def test_export_of_something_unknown_is_a_clear_error(two_versions, ref, message):
    with pytest.raises(CommandError, match=message):
        run("export_pact", ref)


def test_export_refuses_an_unknown_format(two_versions):
    with pytest.raises(CommandError):
        run("export_pact", "support-refunds", "--format", "xml")

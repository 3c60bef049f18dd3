"""The pact document: parsing, validation with paths, canonical form and its hash."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import yaml
from django.utils import timezone

from tests.pacts.documents import as_yaml, changed, valid_document
from trustdesk.pacts.actions import import_pact_documents
from trustdesk.pacts.document import (
    DocumentError,
    canonical_document,
    canonical_text,
    document_sha256,
    document_yaml,
    load_documents,
    pact_schema,
    parse_documents,
    validate_document,
)
from trustdesk.pacts.models import Agent, Clause, Pact, PactVersion


def _set(path: str, value):
    """A mutation that sets `a.b[1].c` to value."""

    def mutate(doc):
        parts = path.replace("]", "").replace("[", ".").split(".")
        target = doc
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        target[int(last) if last.isdigit() else last] = value

    return mutate


def _delete(path: str):
    def mutate(doc):
        parts = path.replace("]", "").replace("[", ".").split(".")
        target = doc
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        del target[parts[-1]]

    return mutate


def _duplicate_clause_key(doc):
    doc["spec"]["clauses"][1]["key"] = doc["spec"]["clauses"][0]["key"]


TOMORROW = (timezone.now().date() + timedelta(days=2)).isoformat()

# (mutation, the path and message the problem must name)
MALFORMED = [
    (_set("apiVersion", "trustdesk/v2"), "apiVersion: must be trustdesk/v1"),
    (_delete("kind"), "kind: is required"),
    (_set("metadata.key", "Support Refunds"), "metadata.key: must be a key"),
    (_delete("metadata.agent"), "metadata.agent: is required"),
    (_set("metadata.title", "   "), "metadata.title: must not be blank"),
    (_set("metadata.version", 0), "metadata.version: must be at least 1"),
    (_set("metadata.version", "two"), "metadata.version: must be a whole number"),
    (
        _set("spec.risk_tier", "extreme"),
        "spec.risk_tier: must be one of low, medium, high, critical",
    ),
    (_set("spec.review.cadence_days", "thirty"), "spec.review.cadence_days: must be a whole"),
    (_set("spec.review.cadence_days", 0), "spec.review.cadence_days: must be at least 1"),
    (_set("spec.review.last_reviewed", "2026-02-30"), "spec.review.last_reviewed: 2026-02-30"),
    (_set("spec.review.last_reviewed", "last week"), "spec.review.last_reviewed: must be a date"),
    (_set("spec.review.last_reviewed", TOMORROW), "spec.review.last_reviewed: cannot be in the"),
    (_delete("spec.review"), "spec.review: is required"),
    (_set("spec.evidence_required[1]", "screenshots"), "spec.evidence_required[1]: must be one of"),
    (
        _set("spec.evidence_required", ["transcript", "transcript"]),
        "spec.evidence_required: must not list the same item twice",
    ),
    (_set("spec.clauses", []), "spec.clauses: must have at least 1 item"),
    (_set("spec.clauses", {"refund-limit": {}}), "spec.clauses: must be a list"),
    (
        _set("spec.clauses[1].objective.op", "=<"),
        "spec.clauses[1].objective.op: must be one of <, <=, ==, >=, >",
    ),
    (_set("spec.clauses[0].objective.target", "lots"), "spec.clauses[0].objective.target: must"),
    (_set("spec.clauses[0].objective.target", True), "spec.clauses[0].objective.target: must"),
    (_set("spec.clauses[0].objective.target", None), "spec.clauses[0].objective.target: must"),
    (
        _set("spec.clauses[1].objective.target", "0.123456789"),
        "spec.clauses[1].objective.target: at most 8 decimal places",
    ),
    (_set("spec.clauses[0].objective.target", "1e3"), "spec.clauses[0].objective.target: must"),
    (_set("spec.clauses[0].window", "7w"), "spec.clauses[0].window: must be a window like 7d"),
    (_set("spec.clauses[0].window", 7), "spec.clauses[0].window: must be a window like 7d"),
    (_set("spec.clauses[0].window", "4000d"), "spec.clauses[0].window: at most 3650 days"),
    (_duplicate_clause_key, "spec.clauses[1].key: duplicate clause key 'refund-limit'"),
    (_set("spec.clauses[0].assumption", "luck"), "spec.clauses[0].assumption: must be one of"),
    (
        _set("spec.clauses[1].on_breach", "explode"),
        "spec.clauses[1].on_breach: must be one of flag, restrict, suspend",
    ),
    (_delete("spec.clauses[0].evaluation.method"), "spec.clauses[0].evaluation.method: is"),
    (_set("spec.clauses[0].evaluation.method", "vibes"), "spec.clauses[0].evaluation.method: must"),
    (_delete("spec.clauses[1].statement"), "spec.clauses[1].statement: is required"),
    (_set("spec.clauses[0].severity", "high"), "spec.clauses[0].severity: is not a known field"),
    (_set("spec.clauses[0].metric", "refunds over limit"), "spec.clauses[0].metric: must be a"),
    (_set("spec.clauses[1]", "refund-limit"), "spec.clauses[1]: must be a mapping"),
]


@pytest.mark.parametrize(("mutate", "expected"), MALFORMED, ids=[m[1] for m in MALFORMED])
def test_malformed_document_is_refused_with_its_path(mutate, expected):
    problems = validate_document(changed(valid_document(), mutate))
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.django_db
@pytest.mark.parametrize(("mutate", "expected"), MALFORMED, ids=[m[1] for m in MALFORMED])
def test_malformed_document_stores_nothing(mutate, expected):
    with pytest.raises(DocumentError) as refused:
        import_pact_documents([changed(valid_document(), mutate)], by=None)
    assert any(p.startswith(expected) for p in refused.value.problems)
    assert not Agent.objects.exists() and not Pact.objects.exists()
    assert not PactVersion.objects.exists() and not Clause.objects.exists()


def test_every_problem_is_reported_not_only_the_first():
    doc = changed(valid_document(), _set("spec.risk_tier", "extreme"))
    doc = changed(doc, _set("spec.clauses[1].objective.op", "=<"))
    doc = changed(doc, _delete("spec.clauses[0].window"))
    doc = changed(doc, _duplicate_clause_key)
    problems = validate_document(doc)
    assert len(problems) == 4, problems
    assert {p.split(":")[0] for p in problems} == {
        "spec.risk_tier",
        "spec.clauses[1].objective.op",
        "spec.clauses[0].window",
        "spec.clauses[1].key",
    }


def test_a_document_that_is_not_a_mapping_is_refused():
    assert validate_document(["a", "b"]) == [
        "(document): must be a mapping (a pact document), not a list"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("apiVersion: trustdesk/v1\nmetadata: [unclosed\n", "(yaml) line 3, column 1"),
        ("metadata:\n  key: a\n  key: b\n", "(yaml) line 3, column 3: duplicate key 'key'"),
        ("a: &anchor 1\nb: *anchor\n", "anchors and aliases are not allowed"),
        ("key: value\n\tbad: tab\n", "(yaml) line 2"),
        # The column of a trailing comma differs between Python versions (30 or 31).
        ('{"apiVersion": "trustdesk/v1",}', "(json) line 1, column 3"),
        ('{"a": 1, "a": 2}', "(json) duplicate key 'a'"),
        ("", "(file): holds no pact document"),
        ("---\n---\n", "(file): holds no pact document"),
        (b"\xff\xfeapiVersion", "(file): not UTF-8 text"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_text_that_does_not_parse_names_where(text, expected):
    with pytest.raises(DocumentError) as refused:
        parse_documents(text)
    assert refused.value.problems[0].startswith(expected) or expected in refused.value.problems[0]


def test_a_json_file_by_name_is_parsed_as_json():
    with pytest.raises(DocumentError) as refused:
        parse_documents("apiVersion: x", filename="pact.json")
    assert refused.value.problems[0].startswith("(json) line 1, column 1")


def test_huge_file_is_refused_before_parsing():
    with pytest.raises(DocumentError) as refused:
        parse_documents(b"a" * (1024 * 1024 + 1))
    assert "larger than" in refused.value.problems[0]


def test_yaml_and_json_spellings_give_the_same_canonical_document_and_hash():
    doc = valid_document()
    from_yaml = load_documents(as_yaml(doc))[0]
    from_json = load_documents(json.dumps(doc))[0]
    assert from_yaml == from_json
    assert document_sha256(from_yaml) == document_sha256(from_json)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("0", "0"),
        ("0.95", "0.95"),
        ("0.950", "0.95"),
        ("'0.95'", "0.95"),
        ("-3", "-3"),
        ("1.0", "1"),
        ("12345678.12345678", "12345678.12345678"),
        ("200", "200"),
        ("'007'", "7"),
    ],
)
def test_targets_are_written_as_decimal_strings(spelling, canonical):
    text = as_yaml(valid_document()).replace("target: 0.02", f"target: {spelling}")
    doc = load_documents(text)[0]
    assert doc["spec"]["clauses"][1]["objective"]["target"] == canonical


def test_json_decimals_are_read_exactly_not_as_floats():
    text = json.dumps(valid_document()).replace('"target": 0.02', '"target": 0.1000000')
    doc = load_documents(text)[0]
    assert doc["spec"]["clauses"][1]["objective"]["target"] == "0.1"


def test_yaml_dates_become_iso_text():
    text = as_yaml(valid_document()).replace("'2026-01-15'", "2026-01-15")
    assert "last_reviewed: 2026-01-15\n" in text  # a YAML date, not a string
    assert load_documents(text)[0]["spec"]["review"]["last_reviewed"] == "2026-01-15"


def test_metadata_version_is_optional_and_set_on_export():
    doc = canonical_document(valid_document())
    assert "version" not in doc["metadata"]
    assert canonical_document(valid_document(), version=4)["metadata"]["version"] == 4


def test_export_of_import_is_the_document_in_canonical_form():
    doc = canonical_document(valid_document(), version=2)
    for text in (document_yaml(doc), canonical_text(doc), json.dumps(doc, indent=2)):
        again = load_documents(text)[0]
        assert again == doc
        assert canonical_text(again) == canonical_text(doc)


def test_canonical_text_is_sorted_compact_and_has_no_floats():
    doc = canonical_document(valid_document(), version=1)
    text = canonical_text(doc)
    assert text.startswith('{"apiVersion":"trustdesk/v1","kind":"Pact","metadata":{"agent"')
    assert '"target":"0.02"' in text and '"target":"0"' in text
    assert json.loads(text) == doc


def test_the_hash_is_stable_for_a_fixed_document():
    # Pinned: a change here means every stored pact hash would change.
    doc = canonical_document(valid_document(), version=1)
    assert document_sha256(doc) == document_sha256(json.loads(canonical_text(doc)))
    assert len(document_sha256(doc)) == 64


def test_several_documents_in_one_yaml_file():
    docs = load_documents(
        as_yaml(valid_document("a-pact", "agent-a"), valid_document("b-pact", "agent-b"))
    )
    assert [d["metadata"]["key"] for d in docs] == ["a-pact", "b-pact"]


def test_several_documents_one_bad_names_the_document():
    bad = changed(valid_document("b-pact"), _set("spec.risk_tier", "extreme"))
    with pytest.raises(DocumentError) as refused:
        load_documents(as_yaml(valid_document("a-pact"), bad))
    assert refused.value.problems == [
        "document 2: spec.risk_tier: must be one of low, medium, high, critical"
    ]


def test_yaml_keys_that_are_not_text_get_a_clear_message():
    text = as_yaml(valid_document()).replace("on_breach: suspend", "on: suspend", 1)
    problems = validate_document(yaml.safe_load(text))
    assert "spec.clauses[0].True: is not a known field" in " ".join(problems)
    assert any(p.startswith("spec.clauses[0].on_breach: is required") for p in problems)


def test_the_schema_is_valid_draft_2020_12():
    from jsonschema import Draft202012Validator

    schema = pact_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_floats_in_yaml_never_leak_float_printing():
    text = as_yaml(valid_document()).replace("target: 0.02", "target: 0.1")
    doc = load_documents(text)[0]
    assert doc["spec"]["clauses"][1]["objective"]["target"] == "0.1"
    assert Decimal(doc["spec"]["clauses"][1]["objective"]["target"]) == Decimal("0.1")

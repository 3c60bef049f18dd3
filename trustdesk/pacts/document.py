"""The pact document (docs/design.md section 4): parsing, validation, canonical form and its
SHA-256.

A document arrives as YAML (PyYAML safe loading) or JSON, is checked against the JSON Schema that
ships in `schema/pact-v1.json` (Draft 2020-12) and against the rules a schema cannot state, and is
turned into its canonical form: the same dict whatever the input spelling (decimals as strings,
dates as ISO text), so that `export(import(doc)) == doc` and its hash never depends on float
printing. Every problem is reported with its path; nothing here touches the database.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from trustdesk.core.canonical import canonical_json, format_decimal, sha256_hex, strict_json_loads
from trustdesk.pacts.errors import DocumentError

__all__ = [
    "DocumentError",
    "canonical_document",
    "canonical_text",
    "document_sha256",
    "document_yaml",
    "load_documents",
    "pact_schema",
    "parse_documents",
    "validate_document",
    "window_seconds",
]

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "pact-v1.json"
API_VERSION = "trustdesk/v1"
MAX_DOCUMENT_BYTES = 1024 * 1024
# Clause.target is DecimalField(max_digits=24, decimal_places=8): a target must fit it exactly,
# otherwise the stored clause would judge by a rounded number the document does not say.
TARGET_DECIMALS = 8
TARGET_INTEGER_DIGITS = 16
MAX_WINDOW_HOURS = 3650 * 24
# Words the pact pages use in their URLs (/pacts/new/).
RESERVED_PACT_KEYS = frozenset({"new"})
_DECIMAL_TEXT = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")

# The order in which a document is written for people (YAML export, diffs). The canonical JSON
# sorts keys; this order only makes the YAML read like docs/design.md's example.
_KEY_ORDER = {
    (): ["apiVersion", "kind", "metadata", "spec"],
    ("metadata",): ["key", "agent", "title", "owner", "version"],
    ("spec",): ["risk_tier", "review", "evidence_required", "clauses"],
    ("spec", "review"): ["cadence_days", "last_reviewed"],
    ("clause",): [
        "key",
        "statement",
        "assumption",
        "metric",
        "objective",
        "window",
        "evaluation",
        "on_breach",
        "contain",
    ],
    ("clause", "objective"): ["op", "target"],
    ("clause", "evaluation"): ["method", "source", "task", "scorer", "metric", "suite"],
}

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}


@functools.cache
def pact_schema() -> dict:
    """The pact JSON Schema, as shipped in the repository and served at /schemas/pact-v1.json."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Draft202012Validator:
    schema = pact_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def format_path(parts) -> str:
    """`("spec", "clauses", 1, "objective", "op")` -> `spec.clauses[1].objective.op`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


def _join(path: str, key: str) -> str:
    return key if path == "(document)" else f"{path}.{key}"


def window_seconds(window: str) -> int:
    """`7d` -> 604800, `12h` -> 43200. The caller passes a validated window."""
    amount, unit = int(window[:-1]), window[-1]
    return amount * (86400 if unit == "d" else 3600)


# ---------------------------------------------------------------- parsing


class _PactYamlLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and aliases.

    yaml.safe_load keeps the last of two equal keys without a word, which would silently drop a
    clause field; aliases let a small file expand into a huge structure. Pact documents need
    neither.
    """

    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases are not allowed in pact documents", mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: let PyYAML give its own message
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"(yaml) {where}{problem}"


def _parse_json(text: str) -> Any:
    return strict_json_loads(text)  # Decimal: 0.1 stays exactly 0.1; duplicate keys refused


def parse_documents(data: bytes | str, *, filename: str | None = None) -> list[Any]:
    """Parse YAML (one or several `---` documents) or JSON (an object or a list of objects).

    Returns the raw documents, not yet validated. Raises DocumentError when the text does not
    parse, is too large, or holds no document.
    """
    if isinstance(data, bytes):
        if len(data) > MAX_DOCUMENT_BYTES:
            raise DocumentError(
                f"(file): larger than {MAX_DOCUMENT_BYTES // 1024} KB; pact documents are small"
            )
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(
                f"(file): not UTF-8 text (byte {exc.start}); save the document as UTF-8"
            ) from None
    else:
        text = data.removeprefix("\ufeff")
        if len(text.encode("utf-8")) > MAX_DOCUMENT_BYTES:
            raise DocumentError(
                f"(file): larger than {MAX_DOCUMENT_BYTES // 1024} KB; pact documents are small"
            )
    name = (filename or "").lower()
    looks_like_json = name.endswith(".json") or (
        not name.endswith((".yaml", ".yml")) and text.lstrip()[:1] in ("{", "[")
    )
    documents: list[Any]
    if looks_like_json:
        # Text that starts like JSON is read as JSON only: falling back to YAML would accept
        # JSON mistakes (a trailing comma) and report something confusing later.
        try:
            parsed = _parse_json(text)
        except (ValueError, RecursionError) as exc:
            raise DocumentError(_json_problem(exc)) from None
        documents = parsed if isinstance(parsed, list) else [parsed]
    else:
        documents = _parse_yaml(text)
    if not documents:
        raise DocumentError("(file): holds no pact document")
    return documents


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"(json) line {exc.lineno}, column {exc.colno}: {exc.msg}"
    if isinstance(exc, RecursionError):
        return "(json) nested too deeply"
    return f"(json) {exc}"


def _parse_yaml(text: str) -> list[Any]:
    try:
        loaded = [doc for doc in yaml.load_all(text, Loader=_PactYamlLoader) if doc is not None]
    except yaml.YAMLError as exc:
        raise DocumentError(_yaml_problem(exc)) from None
    except RecursionError:
        raise DocumentError("(yaml) nested too deeply") from None
    # A YAML file may also be a list of documents, like a JSON list.
    if len(loaded) == 1 and isinstance(loaded[0], list):
        return loaded[0]
    return loaded


# ---------------------------------------------------------------- validation


def _prepare(value: Any) -> Any:
    """Turn YAML-only values into their JSON spelling before schema validation.

    YAML reads `2026-11-01` as a date and `on:` as True; the schema speaks JSON, so dates become
    ISO text and mapping keys become text (an unknown key then gets a clear message).
    """
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _prepare(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_prepare(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | set | tuple):
        return repr(value)  # refused by the schema with a type message
    return value


def _type_words(kinds: str | list[str]) -> str:
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return "must be " + " or ".join(_TYPE_WORDS.get(k, k) for k in kinds)


# What the failure of each JSON Schema keyword means to the document's author, from the keyword's
# value in the schema; other keywords keep jsonschema's own message.
_SCHEMA_WORDS: dict[str, Callable[[Any], str]] = {
    "type": _type_words,
    "enum": lambda choices: f"must be one of {', '.join(str(v) for v in choices)}",
    "const": lambda value: f"must be {value}",
    "minLength": lambda _: "must not be empty",
    "maxLength": lambda n: f"must be at most {n} characters",
    "minimum": lambda n: f"must be at least {n}",
    "maximum": lambda n: f"must be at most {n}",
    "minItems": lambda n: f"must have at least {n} item{'s' if n != 1 else ''}",
    "maxItems": lambda n: f"must have at most {n} items",
    "uniqueItems": lambda _: "must not list the same item twice",
}


def _schema_problems(error) -> list[str]:
    path = format_path(error.absolute_path)
    validator = error.validator
    value = error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    if validator == "required":
        return [_join(path, key) + ": is required" for key in value if key not in instance]
    if validator == "additionalProperties":
        known = list(schema.get("properties", {}))
        return [
            _join(path, str(key)) + f": is not a known field (known fields: {', '.join(known)})"
            for key in instance
            if key not in known
        ]
    if "x-message" in schema and validator in ("pattern", "type", "minLength"):
        return [f"{path}: {schema['x-message']}"]
    words = _SCHEMA_WORDS.get(validator)
    return [f"{path}: {words(value) if words else error.message}"]


def _target_decimal(target: Any) -> Decimal | None:
    """The objective target as a Decimal, or None when it is not a plain finite number."""
    if isinstance(target, bool):
        return None
    if isinstance(target, int):
        return Decimal(target)
    if isinstance(target, float):
        number = Decimal(repr(target))
    elif isinstance(target, Decimal):
        number = target
    elif isinstance(target, str) and _DECIMAL_TEXT.match(target):
        try:
            number = Decimal(target)
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() else None


DURATION_RE = re.compile(r"P([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+S)?)?")


def _rule_problems(doc: dict) -> list[str]:
    """The rules a JSON Schema cannot state. Only looks at values of the right shape."""
    problems: list[str] = []
    metadata = doc.get("metadata")
    if isinstance(metadata, dict) and metadata.get("key") in RESERVED_PACT_KEYS:
        problems.append(f"metadata.key: '{metadata['key']}' is reserved; choose another key")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return problems
    review = spec.get("review")
    if isinstance(review, dict) and isinstance(review.get("last_reviewed"), str):
        text = review["last_reviewed"]
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            try:
                reviewed = date.fromisoformat(text)
            except ValueError:
                problems.append(f"spec.review.last_reviewed: {text} is not a calendar date")
            else:
                from django.utils import timezone

                if reviewed > timezone.now().date():
                    problems.append("spec.review.last_reviewed: cannot be in the future")
    targets = spec.get("response_targets")
    if isinstance(targets, dict):
        from datetime import timedelta

        from django.utils.dateparse import parse_duration

        for severity, text in targets.items():
            if not isinstance(text, str) or not DURATION_RE.fullmatch(text):
                continue  # the schema names what is wrong with its shape
            value = parse_duration(text) if re.search("[0-9]", text) else None
            if value is None or value <= timedelta(0):
                problems.append(
                    f"spec.response_targets.{severity}: {text!r} is not a positive duration"
                )
    clauses = spec.get("clauses")
    if not isinstance(clauses, list):
        return problems
    first_seen: dict[str, int] = {}
    for i, clause in enumerate(clauses):
        if not isinstance(clause, dict):
            continue
        key = clause.get("key")
        if isinstance(key, str):
            if key in first_seen:
                problems.append(
                    f"spec.clauses[{i}].key: duplicate clause key '{key}' "
                    f"(already used by spec.clauses[{first_seen[key]}])"
                )
            else:
                first_seen[key] = i
        objective = clause.get("objective")
        if isinstance(objective, dict) and "target" in objective:
            target = objective["target"]
            path = f"spec.clauses[{i}].objective.target"
            if isinstance(target, str | int | float | Decimal) and not isinstance(target, bool):
                number = _target_decimal(target)
                if number is None:
                    problems.append(f"{path}: must be a number (like 0, 0.95 or '0.95')")
                else:
                    sign, digits, exponent = number.normalize().as_tuple()
                    decimals = max(0, -int(exponent))
                    integer_digits = max(0, len(digits) + int(exponent))
                    if decimals > TARGET_DECIMALS:
                        problems.append(f"{path}: at most {TARGET_DECIMALS} decimal places")
                    if integer_digits > TARGET_INTEGER_DIGITS:
                        problems.append(f"{path}: at most {TARGET_INTEGER_DIGITS} digits")
        problems.extend(_evaluation_field_problems(clause.get("evaluation"), i))
        if clause.get("contain") == "auto" and clause.get("on_breach") == "flag":
            problems.append(
                f"spec.clauses[{i}].contain: auto needs on_breach restrict or suspend "
                "(a clause that only flags contains nothing)"
            )
        window = clause.get("window")
        if isinstance(window, str) and re.fullmatch(r"[1-9][0-9]{0,5}[dh]", window):
            hours = int(window[:-1]) * (24 if window.endswith("d") else 1)
            if hours > MAX_WINDOW_HOURS:
                problems.append(f"spec.clauses[{i}].window: at most 3650 days")
    return problems


# Fields of `evaluation` that only a log-fed method reads (docs/design.md section 14). The schema
# requires them for their method; this refuses them elsewhere, where they would be ignored.
EVALUATION_METHOD_FIELDS = {
    "task": "inspect",
    "scorer": "inspect",
    "metric": "inspect",
    "suite": "junit",
}


def _evaluation_field_problems(evaluation: Any, i: int) -> list[str]:
    if not isinstance(evaluation, dict) or not isinstance(evaluation.get("method"), str):
        return []
    method = evaluation["method"]
    return [
        f"spec.clauses[{i}].evaluation.{field}: only for method {owner} (this clause's method "
        f"is {method})"
        for field, owner in EVALUATION_METHOD_FIELDS.items()
        if field in evaluation and owner != method
    ]


def validate_document(doc: Any) -> list[str]:
    """Every problem of a raw (parsed) document, each starting with its path. [] when valid."""
    if not isinstance(doc, dict):
        kind = _TYPE_WORDS.get(_json_type(doc), type(doc).__name__)
        return [f"(document): must be a mapping (a pact document), not {kind}"]
    doc = _prepare(doc)
    problems: list[str] = []
    errors = sorted(
        _validator().iter_errors(doc),
        key=lambda e: (
            [(0, p) if isinstance(p, int) else (1, str(p)) for p in e.absolute_path],
            e.validator,
        ),
    )
    for error in errors:
        problems.extend(_schema_problems(error))
    problems.extend(_rule_problems(doc))
    # Several schema branches can name the same missing field: say each thing once.
    return list(dict.fromkeys(problems))


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


# ---------------------------------------------------------------- canonical form


def canonical_document(doc: Any, *, version: int | None = None) -> dict:
    """Validate `doc` and return its canonical form; raise DocumentError listing every problem.

    The canonical form is a plain JSON-ready dict: targets as decimal strings ("0.95", "0"),
    `last_reviewed` as ISO text, whole numbers as ints. With `version`, metadata.version is set
    to it (export always has one; import may leave it out).
    """
    problems = validate_document(doc)
    if problems:
        raise DocumentError(problems)
    out = copy.deepcopy(_prepare(doc))
    metadata = out["metadata"]
    if version is not None:
        metadata["version"] = int(version)
    elif "version" in metadata:
        metadata["version"] = int(metadata["version"])
    review = out["spec"]["review"]
    review["cadence_days"] = int(review["cadence_days"])
    for clause in out["spec"]["clauses"]:
        target = _target_decimal(clause["objective"]["target"])
        clause["objective"]["target"] = format_decimal(target)
        # `propose` is the default and is left out, so documents written before `contain`
        # existed keep their exact canonical bytes and hash, and one meaning has one hash.
        if clause.get("contain") == "propose":
            del clause["contain"]
    return out


def canonical_text(doc: dict) -> str:
    """The canonical JSON text of a canonical document: the exact text that is hashed."""
    return canonical_json(doc)


def document_sha256(doc: dict) -> str:
    return sha256_hex(canonical_text(doc))


def without_version(doc: dict) -> dict:
    """A canonical document minus metadata.version, to compare content across versions."""
    out = copy.deepcopy(doc)
    out.get("metadata", {}).pop("version", None)
    return out


def load_documents(data: bytes | str, *, filename: str | None = None) -> list[dict]:
    """Parse and validate every document of a file; return their canonical forms.

    All or nothing: DocumentError lists the problems of every document (prefixed with
    `document N:` when the file holds several).
    """
    raw = parse_documents(data, filename=filename)
    problems: list[str] = []
    documents: list[dict] = []
    for index, doc in enumerate(raw, start=1):
        prefix = f"document {index}: " if len(raw) > 1 else ""
        try:
            documents.append(canonical_document(doc))
        except DocumentError as exc:
            problems.extend(prefix + p for p in exc.problems)
    if problems:
        raise DocumentError(problems)
    return documents


# ---------------------------------------------------------------- writing for people


def _ordered(value: Any, where: tuple) -> Any:
    if isinstance(value, dict):
        order = _KEY_ORDER.get(where, [])
        keys = [k for k in order if k in value] + sorted(k for k in value if k not in order)
        return {k: _ordered(value[k], _child(where, k)) for k in keys}
    if isinstance(value, list):
        inner = ("clause",) if where == ("spec", "clauses") else where
        return [_ordered(v, inner) for v in value]
    return value


def _child(where: tuple, key: str) -> tuple:
    return (*where, key)


def document_yaml(doc: dict) -> str:
    """The document as YAML in the order of docs/design.md's example. Loads back to the same
    dict."""
    return yaml.safe_dump(
        _ordered(doc, ()), sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )


def document_json(doc: dict) -> str:
    """The canonical JSON text, with a final newline (what `export_pact --format json` prints)."""
    return canonical_text(doc) + "\n"


def document_diff(old: dict, new: dict) -> list[dict]:
    """A side-by-side diff of two documents' YAML, as table rows.

    Each row: {"kind": "same" | "changed" | "removed" | "added", "old_no", "old", "new_no",
    "new"}. Unchanged runs longer than six lines are folded to three lines of context each side
    with a "skip" row between them.
    """
    import difflib

    a = document_yaml(old).splitlines()
    b = document_yaml(new).splitlines()
    rows: list[dict] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs = list(zip(range(i1, i2), range(j1, j2), strict=True))
            if len(pairs) > 6:
                head, tail = pairs[:3], pairs[-3:]
                if i1 == 0:
                    head = []
                if i2 == len(a):
                    tail = []
                skipped = len(pairs) - len(head) - len(tail)
                pairs = [*head, None, *tail]
            for pair in pairs:
                if pair is None:
                    rows.append({"kind": "skip", "count": skipped})
                    continue
                i, j = pair
                rows.append(
                    {"kind": "same", "old_no": i + 1, "old": a[i], "new_no": j + 1, "new": b[j]}
                )
            continue
        left = list(range(i1, i2))
        right = list(range(j1, j2))
        for k in range(max(len(left), len(right))):
            i = left[k] if k < len(left) else None
            j = right[k] if k < len(right) else None
            kind = (
                "changed"
                if i is not None and j is not None
                else "removed"
                if j is None
                else "added"
            )
            rows.append(
                {
                    "kind": kind,
                    "old_no": i + 1 if i is not None else None,
                    "old": a[i] if i is not None else "",
                    "new_no": j + 1 if j is not None else None,
                    "new": b[j] if j is not None else "",
                }
            )
    return rows

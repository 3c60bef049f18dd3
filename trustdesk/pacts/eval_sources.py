"""Evaluations from the files evaluation tools write (docs/design.md section 14).

Two kinds of file feed pact clauses:

- **Inspect AI logs** (`.eval`, a zip, or `.json`), read with `inspect_ai.log.read_eval_log`. A
  clause `evaluation: {method: inspect, source, task, scorer, metric}` takes, from each log of its
  task with status `success`, the value of that scorer's metric, measured at the log's completion
  time.
- **JUnit XML reports** (what pytest, CI runners and many eval suites write), parsed with
  defusedxml. A clause `evaluation: {method: junit, source, suite}` takes passed / (tests -
  skipped) of that testsuite; failures and errors both count as not passed. Several testsuite
  elements with the same name (sharded or parallel runs merged into one report) are added
  together, and measured at the latest end among them.

The format is told by the content, never by the file name: a zip is an Inspect `.eval` log, JSON
an Inspect `.json` log, XML a JUnit report. `ingest_eval_log` stores the file content-addressed in
the content-addressed store (core.blobs), records one evaluation per matching clause through
`pacts.actions.record_evaluations` (so a breach opens an incident the usual way) and links each
evaluation to the stored file. A file that is not a log, a log that did not succeed, and a log that
matches no clause are refused with the reason, and nothing is stored.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from trustdesk.core.errors import Refused
from trustdesk.pacts.actions import FUTURE_TOLERANCE, record_evaluations
from trustdesk.pacts.errors import PactError
from trustdesk.pacts.models import (
    ApiToken,
    Clause,
    Evaluation,
    EvaluationLog,
    EvaluationMethod,
    LogFormat,
    Pact,
    VersionStatus,
)

__all__ = [
    "IngestResult",
    "ParsedLog",
    "detect_format",
    "ingest_eval_log",
    "read_log",
]

ZIP_MAGIC = b"PK\x03\x04"
# (source, external_id) is unique and external_id holds at most 200 characters.
MAX_EXTERNAL_ID = 200


@dataclass
class ParsedLog:
    """What a log says, independent of its format.

    `values` maps what a clause names to the measured value: (task, scorer, metric) for Inspect,
    (suite,) for JUnit. `summary` is kept with the stored log and shown on pages.
    """

    format: str
    measured_at: datetime
    id_base: str
    values: dict[tuple[str, ...], Decimal]
    summary: dict[str, Any]
    task: str = ""
    # Suites that ran no countable test (all skipped): named when a clause asks for them.
    empty_suites: set[str] = field(default_factory=set)


@dataclass
class IngestResult:
    log: EvaluationLog
    name: str
    evaluations: list[Evaluation]

    @property
    def new(self) -> list[Evaluation]:
        return [e for e in self.evaluations if not getattr(e, "duplicate", False)]

    @property
    def repeated(self) -> list[Evaluation]:
        return [e for e in self.evaluations if getattr(e, "duplicate", False)]


# ---------------------------------------------------------------- reading files


def detect_format(head: bytes) -> str | None:
    """The log format the first bytes of a file announce, or None when they announce none."""
    if head.startswith(ZIP_MAGIC):
        return LogFormat.INSPECT_EVAL
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"{"):
        return LogFormat.INSPECT_JSON
    if text.startswith(b"<"):
        return LogFormat.JUNIT
    return None


def read_log(path: Path, *, name: str) -> ParsedLog:
    """Read a stored file as an Inspect AI log or a JUnit report. Raises PactError (naming the
    file as `name`) when it is neither, is damaged, or did not succeed."""
    with path.open("rb") as fh:
        head = fh.read(64)
    fmt = detect_format(head)
    if fmt is None:
        raise PactError(
            f"{name}: not an evaluation log: expected an Inspect AI log (.eval zip or .json) "
            "or a JUnit XML report"
        )
    if fmt == LogFormat.JUNIT:
        return _read_junit(path, name=name)
    return _read_inspect(path, fmt, name=name)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None


def _aware(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    # A time without an offset is taken as UTC (JUnit writers differ; Inspect always has one).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _read_inspect(path: Path, fmt: str, *, name: str) -> ParsedLog:
    # Imported here: inspect_ai takes about a second to import, which pages need not pay.
    from inspect_ai.log import read_eval_log

    try:
        log = read_eval_log(
            str(path), header_only=True, format="eval" if fmt == LogFormat.INSPECT_EVAL else "json"
        )
    except Exception as exc:  # noqa: BLE001 - any failure to read means "not a readable log"
        what = "zip" if fmt == LogFormat.INSPECT_EVAL else "JSON"
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise PactError(
            f"{name}: not a readable Inspect AI log ({what} content; {detail}). "
            "Is the file complete?"
        ) from None
    spec = log.eval
    base = {
        "eval_id": spec.eval_id,
        "run_id": spec.run_id,
        "task": spec.task,
        "model": spec.model,
        "status": log.status,
    }
    if log.status != "success":
        reason = {
            "error": "the evaluation failed",
            "cancelled": "the evaluation was cancelled",
            "started": "the evaluation has not finished (status 'started')",
        }.get(log.status, f"its status is '{log.status}'")
        if log.status == "error" and log.error is not None and log.error.message:
            reason += f": {log.error.message.strip().splitlines()[0][:300]}"
        raise PactError(
            f"{name}: refused: {reason}. Only logs with status 'success' are recorded "
            f"(task {spec.task}, eval id {spec.eval_id})."
        )
    if getattr(log, "invalidated", False):
        raise PactError(f"{name}: refused: the log is marked invalidated (eval id {spec.eval_id}).")
    completed = _aware(log.stats.completed_at) if log.stats and log.stats.completed_at else None
    if completed is None:
        raise PactError(f"{name}: the log has no completion time (stats.completed_at).")
    values: dict[tuple[str, ...], Decimal] = {}
    scores: dict[str, str] = {}
    for score in (log.results.scores if log.results else []) or []:
        for metric_name, metric in (score.metrics or {}).items():
            value = _decimal(metric.value)
            if value is None:
                continue  # NaN (e.g. a stderr of one sample): nothing a clause can judge
            for scorer_name in dict.fromkeys((score.name, score.scorer)):
                values.setdefault((spec.task, scorer_name, metric_name), value)
            scores[f"{score.name}/{metric_name}"] = format(value, "f")
    return ParsedLog(
        format=fmt,
        measured_at=completed,
        id_base=spec.eval_id,
        values=values,
        summary={**base, "completed_at": completed.isoformat(), "scores": scores},
        task=spec.task,
    )


def _count(element, attribute: str, name: str, suite: str) -> int | None:
    raw = element.get(attribute)
    if raw is None:
        return None
    try:
        number = int(raw.strip())
    except ValueError:
        try:  # some writers put "3.0"
            number = int(float(raw))
        except ValueError:
            raise PactError(
                f"{name}: testsuite '{suite}': {attribute}='{raw[:40]}' is not a number"
            ) from None
    if number < 0:
        raise PactError(f"{name}: testsuite '{suite}': {attribute} is negative")
    return number


def _suite_counts(element, name: str, suite: str) -> tuple[int, int, int]:
    """(tests, not passed, skipped) of one testsuite element: from its attributes, else from
    counting its testcase children."""
    tests = _count(element, "tests", name, suite)
    if tests is not None:
        failures = _count(element, "failures", name, suite) or 0
        errors = _count(element, "errors", name, suite) or 0
        skipped = _count(element, "skipped", name, suite) or 0
    else:
        cases = list(element.iter("testcase"))
        tests = len(cases)
        failures = errors = skipped = 0
        for case in cases:
            tags = {child.tag for child in case}
            if "skipped" in tags:
                skipped += 1
            elif "failure" in tags or "error" in tags:
                failures += 1
    if failures + errors + skipped > tests:
        raise PactError(
            f"{name}: testsuite '{suite}' counts more failures, errors and skips "
            f"({failures + errors} + {skipped}) than tests ({tests})"
        )
    return tests, failures + errors, skipped


def _suite_end(element) -> datetime | None:
    start = _aware(element.get("timestamp") or "")
    if start is None:
        return None
    try:
        seconds = float(element.get("time") or 0)
    except ValueError:
        seconds = 0.0
    return start + timedelta(seconds=seconds if math.isfinite(seconds) and seconds > 0 else 0)


def _read_junit(path: Path, *, name: str) -> ParsedLog:
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import parse

    try:
        root = parse(str(path), forbid_dtd=True).getroot()
    except DefusedXmlException as exc:
        raise PactError(
            f"{name}: refused: the XML declares a DTD or entities ({type(exc).__name__}); "
            "JUnit reports need neither, and entity expansion is how XML bombs work"
        ) from None
    except ParseError as exc:
        raise PactError(f"{name}: not well-formed XML ({exc})") from None
    except RecursionError:
        raise PactError(f"{name}: the XML is nested too deeply") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise PactError(
            f"{name}: not a JUnit XML report (the root element is <{root.tag[:40]}>, "
            "not <testsuites> or <testsuite>)"
        )
    totals: dict[str, list[int]] = {}
    ends: dict[str, datetime] = {}
    for element in root.iter("testsuite"):
        suite = (element.get("name") or "").strip()
        if not suite:
            continue
        tests, not_passed, skipped = _suite_counts(element, name, suite)
        total = totals.setdefault(suite, [0, 0, 0, 0])
        total[0] += tests
        total[1] += not_passed
        total[2] += skipped
        total[3] += 1
        end = _suite_end(element)
        if end is not None and (suite not in ends or end > ends[suite]):
            ends[suite] = end
    if not totals:
        raise PactError(f"{name}: the JUnit report has no named testsuite")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    values: dict[tuple[str, ...], Decimal] = {}
    empty: set[str] = set()
    suites: dict[str, dict] = {}
    for suite, (tests, not_passed, skipped, elements) in totals.items():
        counted = tests - skipped
        passed = counted - not_passed
        suites[suite] = {
            "tests": tests,
            "passed": passed,
            "not_passed": not_passed,
            "skipped": skipped,
            "elements": elements,
        }
        if counted > 0:
            values[(suite,)] = Decimal(passed) / Decimal(counted)
        else:
            empty.add(suite)
    # No timestamp at all: the report is taken as measured when it arrives.
    measured_at = max(ends.values()) if ends else timezone.now()
    return ParsedLog(
        format=LogFormat.JUNIT,
        measured_at=measured_at,
        id_base=f"junit-{digest[:32]}",
        values=values,
        summary={"suites": suites, "measured_at": measured_at.isoformat()},
        empty_suites=empty,
    )


# ---------------------------------------------------------------- matching clauses


def _clause_key(clause: Clause) -> tuple[str, ...] | None:
    spec = clause.evaluation_spec
    if clause.method == EvaluationMethod.INSPECT:
        return (spec.get("task", ""), spec.get("scorer", ""), spec.get("metric", ""))
    if clause.method == EvaluationMethod.JUNIT:
        return (spec.get("suite", ""),)
    return None


def _external_id(parsed: ParsedLog, key: tuple[str, ...], clause: Clause) -> str:
    """The idempotency key of one clause's evaluation from this log: the log's eval id with
    scorer and metric (JUnit: the file's hash with the suite), then the pact and clause, since one
    log may feed several clauses of one source (say, a flag and a suspend threshold)."""
    what = "/".join(key[1:]) if parsed.format != LogFormat.JUNIT else key[0]
    text = f"{parsed.id_base}/{what}/{clause.version.pact.key}#{clause.key}"
    if len(text) > MAX_EXTERNAL_ID:
        text = f"{parsed.id_base}/{hashlib.sha256(text.encode()).hexdigest()}"
    return text


def _candidate_clauses(parsed: ParsedLog, pact_key: str | None) -> list[Clause]:
    method = (
        EvaluationMethod.JUNIT if parsed.format == LogFormat.JUNIT else EvaluationMethod.INSPECT
    )
    clauses = Clause.objects.filter(version__status=VersionStatus.ACTIVE, method=method)
    if pact_key:
        clauses = clauses.filter(version__pact__key=pact_key)
    return list(clauses.select_related("version__pact").order_by("version__pact__key", "position"))


def _no_match(parsed: ParsedLog, name: str, candidates: list[Clause], source: str | None) -> str:
    if parsed.format == LogFormat.JUNIT:
        suites = ", ".join(sorted(parsed.summary["suites"])) or "none"
        what = f"its testsuites ({suites})"
    else:
        scores = ", ".join(sorted(parsed.summary["scores"])) or "none"
        what = f"task '{parsed.task}' with scorer/metric {scores}"
    near = []
    for clause in candidates:
        key = _clause_key(clause)
        label = f"{clause.version.pact.key}#{clause.key}"
        if key is None:
            continue
        if key in parsed.values and source is not None and clause.source != source:
            near.append(f"{label} is evaluated by source '{clause.source}', not '{source}'")
        elif parsed.format == LogFormat.JUNIT and key[0] in parsed.empty_suites:
            near.append(f"{label} wants suite '{key[0]}', which ran no test that was not skipped")
        elif parsed.format != LogFormat.JUNIT and key[0] == parsed.task:
            near.append(f"{label} wants scorer '{key[1]}' metric '{key[2]}'")
    hint = f" ({'; '.join(near[:5])})" if near else ""
    return f"{name}: matches no clause of an active pact: {what}{hint}. A clause names it with " + (
        "evaluation: {method: junit, source, suite}."
        if parsed.format == LogFormat.JUNIT
        else "evaluation: {method: inspect, source, task, scorer, metric}."
    )


def _matches(
    parsed: ParsedLog, name: str, pact_key: str | None, source: str | None
) -> list[tuple[Clause, tuple[str, ...]]]:
    if pact_key:
        pact = Pact.objects.filter(key=pact_key).first()
        if pact is None:
            raise PactError(f"--pact: no pact '{pact_key}'")
        if not pact.versions.filter(status=VersionStatus.ACTIVE).exists():
            raise PactError(f"--pact: pact '{pact_key}' has no active version")
    candidates = _candidate_clauses(parsed, pact_key)
    found = []
    for clause in candidates:
        key = _clause_key(clause)
        if key is None or key not in parsed.values:
            continue
        if source is not None and clause.source != source:
            continue
        found.append((clause, key))
    if not found:
        raise PactError(_no_match(parsed, name, candidates, source))
    return found


# ---------------------------------------------------------------- ingesting


def _store(fileobj, name: str):
    from trustdesk.core import blobs as store

    try:
        return store.store_upload(fileobj)
    except Refused as exc:
        raise PactError([f"{name}: {p}" for p in exc.problems]) from None


def _items(parsed: ParsedLog, matches: Iterable[tuple[Clause, tuple[str, ...]]]) -> list[dict]:
    return [
        {
            "pact": clause.version.pact.key,
            "clause": clause.key,
            "value": parsed.values[key],
            "measured_at": parsed.measured_at,
            "external_id": _external_id(parsed, key, clause),
            "source": clause.source,
        }
        for clause, key in matches
    ]


def ingest_eval_log(
    fileobj,
    *,
    name: str,
    token: ApiToken | None = None,
    pact_key: str | None = None,
    by: AbstractBaseUser | None = None,
    file_name: str | None = None,
) -> IngestResult:
    """Record the evaluations one log file gives, all or nothing.

    `fileobj` is anything with `read()` (or a Django File/UploadedFile); `name` is how the file is
    named in messages, `file_name` (default `name`) the name it is downloaded under; an empty one
    downloads under its hash. With `token` (the API) only clauses of the token's source are
    fed; without it (the command on the server) every matching clause is, each under its own
    source. `pact_key` limits matching to one pact. Ingesting the same file again records nothing
    new: the result's evaluations are then all `.duplicate`. Raises PactError, having stored
    nothing, for a file that is not a log, a log that did not succeed, one that matches no clause,
    or a measurement in the future.
    """
    from trustdesk.core import blobs as store

    blob = _store(fileobj, name)
    try:
        parsed = read_log(store.absolute_path(blob.storage_path), name=name)
        if parsed.measured_at > timezone.now() + FUTURE_TOLERANCE:
            raise PactError(
                f"{name}: measured at {parsed.measured_at.isoformat()}, which is in the future; "
                "check the clock of the machine that wrote it"
            )
        source = token.source if token is not None else None
        matches = _matches(parsed, name, pact_key, source)
        items = _items(parsed, matches)
        with transaction.atomic():
            stored_name = name if file_name is None else file_name
            log = _log_row(blob, parsed, name=stored_name, token=token, by=by)
            evaluations: list[Evaluation] = []
            by_source: dict[str, list[dict]] = {}
            for item in items:
                by_source.setdefault(item["source"], []).append(item)
            for item_source, group in by_source.items():
                if token is not None:
                    stored = record_evaluations(group, token=token, log=log, prefix=name)
                else:
                    stored = record_evaluations(group, source=item_source, log=log, prefix=name)
                evaluations.extend(stored)
    except BaseException:
        store.discard(blob)
        raise
    return IngestResult(log=log, name=name, evaluations=evaluations)


def _log_row(blob, parsed: ParsedLog, *, name: str, token, by) -> EvaluationLog:
    """The stored file's row, created on first sight; the same bytes again reuse it."""
    from trustdesk.core import blobs as store

    existing = EvaluationLog.objects.filter(sha256=blob.sha256).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return EvaluationLog.objects.create(
                sha256=blob.sha256,
                size=blob.size,
                storage_path=blob.storage_path,
                original_name=store.safe_name(name) if name else "",
                format=parsed.format,
                summary=parsed.summary,
                received_by=by,
                received_from=token.source if token is not None else "",
            )
    except IntegrityError:  # the same file arrived concurrently
        return EvaluationLog.objects.get(sha256=blob.sha256)


def safe_log_name(name: str) -> str:
    """A file name fit for messages: the base name, printable, at most 120 characters."""
    name = re.sub(r"[\x00-\x1f\x7f]", "", Path(name.replace("\\", "/")).name).strip()
    return name[:120] or "the log"

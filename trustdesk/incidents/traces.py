"""Agent traces as evidence (docs/design.md section 14): OTLP JSON files of kind `trace`.

A trace is read through `opentelemetry-proto`: the JSON is parsed into an
`ExportTraceServiceRequest` with protobuf's own JSON parser, so anything that is not OTLP is
refused with the parser's reason. Two OTLP/JSON details that plain protobuf JSON lacks are handled
first: trace and span ids are hex (protobuf JSON would read them as base64), and the collector's
file exporter writes one request per line (JSON Lines), which are merged.

The parsed spans become a tree (parent/child by span id, children in start order) with the GenAI
semantic-convention attributes picked out: `gen_ai.operation.name`, `gen_ai.request.model`,
`gen_ai.tool.name`, `gen_ai.usage.input_tokens` and `output_tokens`. The tree is computed once,
when the evidence is added, and kept beside it (TraceView); the file itself is the evidence.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from trustdesk.incidents.evidence import absolute_path, human_size

# Traces are parsed in memory into protobuf objects: a smaller cap than other evidence files.
DEFAULT_TRACE_MAX_BYTES = 20 * 1024 * 1024
# What the incident page shows of one trace; the whole file stays downloadable.
MAX_SPANS_SHOWN = 2000
MAX_DEPTH_SHOWN = 40

GENAI_ATTRIBUTES = {
    "gen_ai.operation.name": "operation",
    "gen_ai.request.model": "model",
    "gen_ai.tool.name": "tool",
    "gen_ai.usage.input_tokens": "input_tokens",
    "gen_ai.usage.output_tokens": "output_tokens",
}
# Older GenAI conventions and common instrumentations name the same things differently.
GENAI_FALLBACKS = {
    "gen_ai.response.model": "model",
    "gen_ai.usage.prompt_tokens": "input_tokens",
    "gen_ai.usage.completion_tokens": "output_tokens",
}
_HEX = re.compile(r"^[0-9a-fA-F]*$")
_ID_FIELDS = {"traceId": 16, "spanId": 8, "parentSpanId": 8}
STATUS_ERROR = 2
SPAN_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


class TraceError(ValueError):
    """The content is not an OTLP JSON trace; the message says why, in plain words."""


def max_bytes() -> int:
    return int(getattr(settings, "TRACE_MAX_BYTES", DEFAULT_TRACE_MAX_BYTES))


# ---------------------------------------------------------------- parsing


def _hex_ids_to_base64(value: Any) -> Any:
    """OTLP/JSON writes ids as hex; protobuf's JSON mapping expects base64 for bytes fields. A
    16-byte id is 32 hex digits but 24 base64 characters, so the two never look alike."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            size = _ID_FIELDS.get(key)
            if size and isinstance(item, str) and len(item) == 2 * size and _HEX.match(item):
                item = base64.b64encode(bytes.fromhex(item)).decode("ascii")
            out[key] = _hex_ids_to_base64(item)
        return out
    if isinstance(value, list):
        return [_hex_ids_to_base64(item) for item in value]
    return value


def _json_documents(text: str) -> list[Any]:
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as whole:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) < 2:
            raise TraceError(
                f"not valid JSON (line {whole.lineno}, column {whole.colno}: {whole.msg})"
            ) from None
    documents = []
    for number, line in enumerate(lines, start=1):
        try:
            documents.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise TraceError(f"not valid JSON or JSON Lines (line {number}: {exc.msg})") from None
    return documents


def parse_otlp(data: bytes):
    """The `ExportTraceServiceRequest` of OTLP JSON bytes (one request, or JSON Lines of them).
    Raises TraceError with the reason when the bytes are not an OTLP JSON trace."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TraceError(f"not UTF-8 text (byte {exc.start}); OTLP JSON is UTF-8") from None
    try:
        documents = _json_documents(text)
    except RecursionError:
        raise TraceError("the JSON is nested too deeply") from None
    request = ExportTraceServiceRequest()
    for number, document in enumerate(documents, start=1):
        where = f" (line {number})" if len(documents) > 1 else ""
        if not isinstance(document, dict) or "resourceSpans" not in document:
            raise TraceError(
                f"not an OTLP trace{where}: expected a JSON object with resourceSpans, as the "
                "OpenTelemetry OTLP/JSON exporters write"
            )
        part = ExportTraceServiceRequest()
        try:
            json_format.ParseDict(_hex_ids_to_base64(document), part, ignore_unknown_fields=True)
        except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
            raise TraceError(f"not a valid OTLP trace{where}: {str(exc)[:300]}") from None
        request.resource_spans.extend(part.resource_spans)
    if not any(ss.spans for rs in request.resource_spans for ss in rs.scope_spans):
        raise TraceError("the trace holds no spans")
    return request


# ---------------------------------------------------------------- the span tree


def _any_value(value) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, which)


def _attributes(kvs) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in kvs}


def _iso(nanos: int) -> str:
    return datetime.fromtimestamp(nanos / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


def _error_message(span, attrs: dict[str, Any]) -> str:
    if span.status.message:
        return span.status.message
    for event in span.events:
        if event.name == "exception":
            event_attrs = _attributes(event.attributes)
            text = event_attrs.get("exception.message") or event_attrs.get("exception.type")
            if text:
                return str(text)
    return str(attrs.get("error.type") or "")


def _node(span, service: str) -> dict[str, Any]:
    attrs = _attributes(span.attributes)
    genai = {}
    for name, label in {**GENAI_FALLBACKS, **GENAI_ATTRIBUTES}.items():
        if attrs.get(name) not in (None, ""):
            genai[label] = attrs[name]
    is_error = span.status.code == STATUS_ERROR
    duration_ns = max(0, span.end_time_unix_nano - span.start_time_unix_nano)
    return {
        "name": span.name[:300] or "(unnamed span)",
        "span_id": span.span_id.hex(),
        "trace_id": span.trace_id.hex(),
        "parent_id": span.parent_span_id.hex(),
        "service": service,
        "kind": SPAN_KINDS.get(span.kind, ""),
        "start_ns": span.start_time_unix_nano,
        "start": _iso(span.start_time_unix_nano) if span.start_time_unix_nano else "",
        "duration_ms": round(duration_ns / 1e6, 3),
        "error": is_error,
        "error_message": _error_message(span, attrs)[:500] if is_error else "",
        "genai": {k: str(v)[:200] for k, v in genai.items()},
        "children": [],
    }


def span_tree(request) -> dict[str, Any]:
    """The spans of a parsed request as a tree: {"roots": [...], "span_count", "error_count",
    "trace_count", "truncated"}. Each node: name, ids, service, kind, start, duration_ms,
    offset_ms (from its trace's first span), error and error_message, genai (operation, model,
    tool, input_tokens, output_tokens, when present) and children (in start order). A span whose
    parent is not in the file is a root. At most MAX_SPANS_SHOWN spans are kept."""
    nodes: list[dict[str, Any]] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name", ""))[:200]
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                nodes.append(_node(span, service))
    span_count = len(nodes)
    error_count = sum(1 for n in nodes if n["error"])
    nodes.sort(key=lambda n: (n["start_ns"], n["name"]))
    truncated = span_count > MAX_SPANS_SHOWN
    nodes = nodes[:MAX_SPANS_SHOWN]
    by_id = {(n["trace_id"], n["span_id"]): n for n in nodes}
    trace_start: dict[str, int] = {}
    for n in nodes:
        trace_start.setdefault(n["trace_id"], n["start_ns"])
    roots = []
    for n in nodes:
        n["offset_ms"] = round((n["start_ns"] - trace_start[n["trace_id"]]) / 1e6, 3)
        parent = by_id.get((n["trace_id"], n["parent_id"])) if n["parent_id"] else None
        if parent is None or parent is n or _is_descendant(parent, n, by_id):
            roots.append(n)
        else:
            parent["children"].append(n)
    for n in nodes:
        n.pop("start_ns")
    _limit_depth(roots, 0)
    return {
        "roots": roots,
        "span_count": span_count,
        "error_count": error_count,
        "trace_count": len({n["trace_id"] for n in nodes}),
        "truncated": truncated,
    }


def _is_descendant(candidate: dict, node: dict, by_id: dict) -> bool:
    """Whether `candidate` sits under `node` through parent ids: a cycle in a damaged file."""
    seen = set()
    current = candidate
    while current is not None and id(current) not in seen:
        if current is node:
            return True
        seen.add(id(current))
        parent_id = current["parent_id"]
        current = by_id.get((current["trace_id"], parent_id)) if parent_id else None
    return False


def _limit_depth(nodes: list[dict], depth: int) -> None:
    """Deeper than MAX_DEPTH_SHOWN, children are listed flat under the last shown level."""
    for node in nodes:
        if depth >= MAX_DEPTH_SHOWN:
            flat, stack = [], list(node["children"])
            while stack:
                child = stack.pop(0)
                flat.append(child)
                stack[:0] = child["children"]
                child["children"] = []
            node["children"] = flat
        else:
            _limit_depth(node["children"], depth + 1)


# ---------------------------------------------------------------- as evidence


def read_for_evidence(*, blob, text: str, url: str, problems: list[str]) -> dict | None:
    """Check the content of a `trace` evidence item (called by lifecycle.add_evidence before it
    locks the incident). Appends the reasons to `problems` and returns None when it is not an
    OTLP JSON trace; otherwise returns the span tree to keep with it."""
    if url:
        problems.append("A trace is an OTLP JSON file or pasted OTLP JSON, not a link.")
        return None
    if blob is None:
        return None
    limit = max_bytes()
    if blob.size > limit:
        problems.append(
            f"The trace is {human_size(blob.size)}; a trace may be at most {human_size(limit)} "
            "(export a narrower time range, or attach it as 'other' evidence)."
        )
        return None
    try:
        if blob.storage_path:
            data = absolute_path(blob.storage_path).read_bytes()
        else:
            data = text.encode("utf-8")
        return span_tree(parse_otlp(data))
    except TraceError as exc:
        problems.append(f"The trace file is refused: {exc}.")
        return None


def save_trace_view(evidence, tree: dict) -> None:
    from trustdesk.incidents.models import TraceView

    TraceView.objects.create(
        evidence=evidence,
        spans=tree["roots"],
        span_count=tree["span_count"],
        error_count=tree["error_count"],
        trace_count=tree["trace_count"],
        truncated=tree["truncated"],
    )

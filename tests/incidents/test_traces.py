"""Agent traces (OTLP JSON) as evidence of kind `trace`, and their span tree on the incident page
(docs/design.md section 14). The traces are built with opentelemetry-proto's own message classes and
written with protobuf's JSON mapping, like an OTLP exporter."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tests.factories import make_incident, upload
from tests.incidents.ui_helpers import post_step
from trustdesk.incidents import traces
from trustdesk.incidents.models import Event, Evidence, TraceView

pytestmark = pytest.mark.django_db


TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
MS = 1_000_000
T0 = 1_764_480_000_000 * MS  # 2025-11-30T05:20:00Z in nanoseconds


def attr(key: str, value) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def span(span_id: int, name: str, start_ms: int, end_ms: int, parent: int | None = None, **kw):
    attributes = [attr(k, v) for k, v in kw.pop("attributes", {}).items()]
    return Span(
        trace_id=TRACE_ID,
        span_id=span_id.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=name,
        kind=kw.pop("kind", Span.SPAN_KIND_INTERNAL),
        start_time_unix_nano=T0 + start_ms * MS,
        end_time_unix_nano=T0 + end_ms * MS,
        attributes=attributes,
        **kw,
    )


def agent_trace() -> ExportTraceServiceRequest:
    """An agent run: invoke_agent -> chat (model call) and execute_tool, the tool call failing."""
    spans = [
        span(
            1,
            "invoke_agent support-bot",
            0,
            2400,
            attributes={"gen_ai.operation.name": "invoke_agent"},
        ),
        span(
            2,
            "chat gpt-4o",
            10,
            900,
            parent=1,
            kind=Span.SPAN_KIND_CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 812,
                "gen_ai.usage.output_tokens": 64,
            },
        ),
        span(
            3,
            "execute_tool issue_refund",
            950,
            1200,
            parent=1,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "issue_refund",
            },
            status=Status(code=Status.STATUS_CODE_ERROR, message="refund of 640 EUR over limit"),
        ),
    ]
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[attr("service.name", "support-bot")]),
                scope_spans=[ScopeSpans(spans=spans)],
            )
        ]
    )


def trace_json() -> bytes:
    return json_format.MessageToJson(agent_trace()).encode()


def otlp_hex_json() -> bytes:
    """The same trace as OTLP/JSON files write it: ids in hex, not base64."""
    doc = json.loads(trace_json())
    for s in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in s:
                s[key] = base64.b64decode(s[key]).hex()
    return json.dumps(doc).encode()


def files(media) -> list[Path]:
    return [p for p in Path(media).rglob("*") if p.is_file()]


def add_trace(incident, path) -> str:
    out = io.StringIO()
    call_command("add_trace", incident.key, str(path), stdout=out, stderr=io.StringIO())
    return out.getvalue()


# ---------------------------------------------------------------- parsing


def test_the_span_tree_has_parents_children_durations_genai_attributes_and_errors():
    tree = traces.span_tree(traces.parse_otlp(trace_json()))
    assert (tree["span_count"], tree["error_count"], tree["trace_count"]) == (3, 1, 1)
    [root] = tree["roots"]
    assert root["name"] == "invoke_agent support-bot" and root["duration_ms"] == 2400
    assert root["service"] == "support-bot"
    chat, tool = root["children"]
    assert chat["genai"] == {
        "operation": "chat",
        "model": "gpt-4o",
        "input_tokens": "812",
        "output_tokens": "64",
    }
    assert (chat["offset_ms"], chat["duration_ms"], chat["kind"]) == (10, 890, "client")
    assert tool["genai"]["tool"] == "issue_refund" and tool["error"] is True
    assert tool["error_message"] == "refund of 640 EUR over limit"
    assert not chat["error"] and not root["error"]


def test_hex_ids_as_otlp_files_write_them_and_json_lines_parse_to_the_same_tree():
    expected = traces.span_tree(traces.parse_otlp(trace_json()))
    assert traces.span_tree(traces.parse_otlp(otlp_hex_json())) == expected
    lines = trace_json().replace(b"\n", b"") + b"\n" + trace_json().replace(b"\n", b"")
    doubled = traces.span_tree(traces.parse_otlp(lines))
    assert doubled["span_count"] == 6


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not json at all", "not valid JSON"),
        (b'{"spans": []}', "expected a JSON object with resourceSpans"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 7}]}]}]}', "not a valid OTLP"),
        (b'{"resourceSpans": []}', "holds no spans"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_content_that_is_not_an_otlp_trace_gets_its_reason(content, reason):
    with pytest.raises(traces.TraceError, match=reason):
        traces.parse_otlp(content)


# ---------------------------------------------------------------- the command and the page


def test_add_trace_stores_the_file_and_the_incident_page_shows_the_span_tree(
    tmp_path, media, client_for
):
    incident = make_incident()
    path = tmp_path / "run-trace.json"
    path.write_bytes(trace_json())
    out = add_trace(incident, path)
    item = Evidence.objects.get(incident=incident)
    assert item.kind == "trace" and item.original_name == "run-trace.json"
    assert "3 spans, 1 with an error" in out
    view = TraceView.objects.get(evidence=item)
    assert view.span_count == 3 and view.error_count == 1
    assert Event.objects.filter(incident=incident, type="evidence_added").get().data["kind"] == (
        "trace"
    )

    page = client_for("viewer").get(f"/incidents/{incident.key}/").content.decode()
    tree = page[page.index('class="trace-view"') :]
    assert "invoke_agent support-bot" in tree
    # The root is a collapsible <details> holding its two children, in start order.
    assert tree.index("<details open>") < tree.index("chat gpt-4o") < tree.index("issue_refund")
    assert (
        "model gpt-4o" in tree and "tokens 812 in / 64 out" in tree and "tool issue_refund" in tree
    )
    assert 'class="span span-error"' in tree and "refund of 640 EUR over limit" in tree
    assert "1 with an error" in tree
    assert page.count('class="span span-error"') == 1


def test_a_50_mb_trace_is_refused_with_a_clear_message_and_nothing_is_stored(tmp_path, media):
    incident = make_incident()
    big = tmp_path / "huge.json"
    with big.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    with pytest.raises(CommandError, match=r"huge.json is 50.0 MB; a trace may be at most 20.0 MB"):
        add_trace(incident, big)
    assert not Evidence.objects.exists() and files(media) == []


def test_a_file_that_is_not_a_trace_is_refused_by_the_command_and_not_kept(tmp_path, media):
    incident = make_incident()
    events = incident.events.count()
    path = tmp_path / "notes.json"
    path.write_text('{"hello": "world"}')
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was stored"):
        call_command("add_trace", incident.key, str(path), stdout=io.StringIO(), stderr=err)
    assert "expected a JSON object with resourceSpans" in err.getvalue()
    assert incident.events.count() == events
    assert not Evidence.objects.exists() and not TraceView.objects.exists()
    assert files(media) == []


def test_the_evidence_form_takes_a_trace_and_refuses_one_that_is_not(media, client_for):
    operator = client_for("operator")
    incident = make_incident()
    bad = {"kind": "trace", "description": "Run", "upload": upload(b"[1, 2]", "t.json")}
    body = post_step(operator, incident, "evidence", bad).content.decode()
    assert "The trace file is refused" in body and "resourceSpans" in body
    assert not Evidence.objects.exists() and files(media) == []
    link = {"kind": "trace", "description": "Run", "url": "https://traces.example/1"}
    body = post_step(operator, incident, "evidence", link).content.decode()
    assert "not a link" in body
    good = {"kind": "trace", "description": "Run", "upload": upload(trace_json(), "t.json")}
    assert post_step(operator, incident, "evidence", good).status_code == 302
    assert Evidence.objects.get().trace_view.span_count == 3


def test_a_pasted_trace_is_parsed_too(media, client_for):
    operator = client_for("operator")
    incident = make_incident()
    pasted = {"kind": "trace", "description": "Pasted", "text": otlp_hex_json().decode()}
    assert post_step(operator, incident, "evidence", pasted).status_code == 302
    assert Evidence.objects.get().trace_view.error_count == 1


# ---------------------------------------------------------------- the API


@pytest.fixture
def secret(make_user):
    from trustdesk.pacts.actions import create_api_token

    return create_api_token(source="agent-tracing", by=make_user("risk"))[1]


def post_trace(client, key: str, data: bytes, secret: str | None, query: str = ""):
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return client.post(
        f"/api/v1/incidents/{key}/traces{query}",
        data=data,
        content_type="application/json",
        headers=headers,
    )


def test_the_api_attaches_a_trace_and_refuses_bad_ones(client, secret, media):
    incident = make_incident()
    response = post_trace(client, incident.key, trace_json(), secret, "?name=run.json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["span_count"], body["error_count"]) == (3, 1)
    item = Evidence.objects.get()
    assert item.original_name == "run.json" and "agent-tracing" in item.description

    stored = files(media)
    assert post_trace(client, incident.key, b'{"x": 1}', secret).status_code == 400
    assert post_trace(client, incident.key, trace_json(), None).status_code == 401
    assert post_trace(client, "INC-999", trace_json(), secret).status_code == 404
    assert Evidence.objects.count() == 1 and files(media) == stored


def test_the_api_refuses_a_50_mb_trace_before_reading_it(client, secret, media):
    incident = make_incident()
    response = post_trace(client, incident.key, b" " * (50 * 1024 * 1024), secret)
    assert response.status_code == 413
    assert "a trace may be at most 20.0 MB" in response.json()["errors"][0]["message"]
    assert not Evidence.objects.exists() and files(media) == []


def test_the_api_refuses_a_token_without_evaluations_write(client, make_user, media):
    from trustdesk.pacts.actions import create_api_token

    incident = make_incident()
    _token, secret = create_api_token(source="reader", scopes=["read"], by=make_user("risk"))
    response = post_trace(client, incident.key, trace_json(), secret)
    assert response.status_code == 403
    assert not Evidence.objects.exists() and files(media) == []

"""OpenTelemetry export through the SDK: a run span, a child per operator, off the query path."""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import workbench
from workbench import telemetry
from workbench.session import ConfigError

from .conftest import REPO

_GROUP_BY = "SELECT o_orderstatus, count(*) AS n FROM orders GROUP BY 1"


class _Receiver:
    """An OTLP/HTTP receiver on 127.0.0.1 decoding each request; a stalled one answers on release."""

    def __init__(self, *, stalled: bool = False) -> None:
        self.requests: list[tuple[str, dict[str, str], ExportTraceServiceRequest]] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        if not stalled:
            self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append((self.path, headers, request))
                receiver.arrived.set()
                receiver.release.wait(60)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-protobuf")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the exporter gave up waiting (or its process exited)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def spans(self) -> list:
        return [
            span
            for _, _, request in self.requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]

    def resources(self) -> list[dict[str, Any]]:
        return [
            _values(resource_spans.resource.attributes)
            for _, _, request in self.requests
            for resource_spans in request.resource_spans
        ]


def _values(attributes) -> dict[str, Any]:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in attributes}


def _json_spans(path) -> list[dict]:
    return [
        span
        for line in path.read_text().splitlines()
        for resource_spans in json.loads(line)["resourceSpans"]
        for scope_spans in resource_spans["scopeSpans"]
        for span in scope_spans["spans"]
    ]


def _json_values(span: dict) -> dict[str, object]:
    return {a["key"]: next(iter(a["value"].values())) for a in span["attributes"]}


def _query_then_flush(session, sql: str, target: str):
    """The rows of ``sql``, after the spans of its run were exported (or failed to be)."""
    rows = session.sql(sql).to_pyarrow()
    assert telemetry.flush(target)
    return rows


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_spans_nest_one_operator_span_per_plan_node_under_the_run_span(tpch_session):
    result = tpch_session.sql(_GROUP_BY, label="statuses")
    result.to_pyarrow()
    plan = result.plan()
    run = telemetry.spans(result.run, plan)

    def plan_shape(node) -> tuple:
        return (node.operator, tuple(plan_shape(child) for child in node.children))

    def span_shape(span) -> tuple:
        return (span.name, tuple(span_shape(child) for child in span.children))

    assert run.name == "statuses"
    assert run.error is None
    assert tuple(span_shape(child) for child in run.children) == (plan_shape(plan.physical),)
    operators = list(run.walk())[1:]
    assert [s.attributes["workbench.operator_id"] for s in operators] == [n.id for n in plan.nodes]
    assert all(run.start_ns <= s.start_ns <= s.end_ns for s in operators)
    scan = next(s for s in operators if s.name == "DataSourceExec")
    assert scan.attributes["workbench.output_rows"] == 150_000


def test_a_session_run_reaches_an_otlp_receiver_as_a_run_span_and_one_child_per_operator(
    tpch, monkeypatch
):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    with _Receiver() as receiver:
        target = f"otlp:{receiver.url}"
        session = workbench.RuntimeProfile(telemetry=target).session()
        tpch.register(session)
        result = session.sql(_GROUP_BY, label="statuses")
        assert result.to_pyarrow().num_rows == 3
        assert telemetry.flush(target)
    assert {(path, headers["content-type"]) for path, headers, _ in receiver.requests} == {
        ("/v1/traces", "application/x-protobuf")
    }
    assert {r["service.name"] for r in receiver.resources()} == {"datafusion-workbench"}
    spans = receiver.spans()
    # register() runs its CREATE EXTERNAL TABLE statements as runs too: each is a trace.
    (run,) = [s for s in spans if not s.parent_span_id and s.name == "statuses"]
    spans = [s for s in spans if s.trace_id == run.trace_id]
    assert _values(run.attributes) | {"db.query.text": _GROUP_BY} == {
        "workbench.run_id": result.run.run_id,
        "db.system": "datafusion",
        "db.query.text": _GROUP_BY,
        "workbench.rows": 3,
        "workbench.batches": result.run.batches,
        "workbench.status": "finished",
    }
    plan = result.plan()
    operators = {_values(s.attributes)["workbench.operator_id"]: s for s in spans if s is not run}
    assert sorted(operators) == [node.id for node in plan.nodes]
    assert len(spans) == len(plan.nodes) + 1
    assert {s.trace_id for s in spans} == {run.trace_id}

    def follows_the_plan(node, parent) -> None:
        span = operators[node.id]
        assert (span.name, span.parent_span_id) == (node.operator, parent.span_id)
        for child in node.children:
            follows_the_plan(child, span)

    follows_the_plan(plan.physical, run)
    scan = next(s for s in operators.values() if s.name == "DataSourceExec")
    metrics = _values(scan.attributes)
    assert metrics["workbench.output_rows"] == 150_000
    assert metrics["workbench.exclusive_ns"] > 0
    assert metrics["workbench.bytes_scanned"] > 0
    assert run.start_time_unix_nano <= scan.start_time_unix_nano <= scan.end_time_unix_nano


def test_a_collector_that_never_answers_adds_no_latency_to_a_cell():
    sql = "SELECT sum(value) AS s FROM generate_series(1, 200000) WHERE value % 7 = 0"

    def cell(session) -> float:
        started = time.perf_counter()
        session.sql(sql).to_pyarrow()
        return time.perf_counter() - started

    off = workbench.RuntimeProfile().session()
    with _Receiver(stalled=True) as receiver:
        target = f"otlp:{receiver.url}"
        on = workbench.RuntimeProfile(telemetry=target).session()
        cell(off), cell(on)  # warm-up: the first export loads the SDK and builds the provider
        assert not telemetry.flush(target, timeout_s=0.2)
        assert receiver.arrived.wait(10), "the first export never reached the receiver"
        time_off = statistics.median(cell(off) for _ in range(5))
        time_on = statistics.median(cell(on) for _ in range(5))
        # Every cell above ran while the one export sent so far was held unanswered.
        assert len(receiver.requests) == 1
        assert not receiver.release.is_set()
        receiver.release.set()
        assert telemetry.flush(target)
    # An export waiting on the collector would block for the exporter's 10 s timeout.
    assert time_on < 3 * time_off + 0.1, (time_on, time_off)
    assert len([s for s in receiver.spans() if not s.parent_span_id]) == 6


def test_otel_environment_variables_configure_the_otlp_target_and_exit_flushes_its_spans():
    code = """
        import workbench

        session = workbench.RuntimeProfile(telemetry="otlp").session()
        session.sql("SELECT 41 + 1 AS answer", label="env").to_pyarrow()
        # no flush: the spans leave when the interpreter exits
    """
    with _Receiver() as receiver:
        env = os.environ | {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_HEADERS": "x-workbench-check=yes",
            "OTEL_SERVICE_NAME": "workbench-env-check",
            "OTEL_RESOURCE_ATTRIBUTES": "team=data,deployment.environment.name=ci",
        }
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert {path for path, _, _ in receiver.requests} == {"/v1/traces"}
    assert {headers["x-workbench-check"] for _, headers, _ in receiver.requests} == {"yes"}
    (resource,) = receiver.resources()
    assert resource["service.name"] == "workbench-env-check"
    assert resource["team"] == "data"
    assert [s.name for s in receiver.spans() if not s.parent_span_id] == ["env"]


def test_interpreter_exit_does_not_wait_for_a_collector_that_never_answers():
    with _Receiver(stalled=True) as receiver:
        code = f"""
            import workbench

            session = workbench.RuntimeProfile(telemetry="otlp:{receiver.url}").session()
            session.sql("SELECT 1 AS one").to_pyarrow()
        """
        # Without the bounded exit flush, exit would wait for this 120 s export timeout.
        env = os.environ | {"OTEL_EXPORTER_OTLP_TIMEOUT": "120"}
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert receiver.arrived.is_set()
        assert not receiver.release.is_set()


def test_the_json_target_writes_parseable_otlp_json_lines(tmp_path):
    path = tmp_path / "spans.jsonl"
    target = f"json:{path}"
    session = workbench.RuntimeProfile(telemetry=target).session()
    result = session.sql("SELECT sum(value) AS s FROM generate_series(1, 1000)", label="sum")
    result.to_pyarrow()
    assert telemetry.flush(target)
    spans = _json_spans(path)
    assert len(spans) == len(result.plan().nodes) + 1
    (run,) = [s for s in spans if "parentSpanId" not in s]
    assert run["name"] == "sum"
    assert _json_values(run)["workbench.run_id"] == result.run.run_id
    assert _json_values(run)["workbench.rows"] == "1"  # OTLP/JSON writes 64-bit ints as strings
    assert all(re.fullmatch("[0-9a-f]{32}", s["traceId"]) for s in spans)
    assert all(re.fullmatch("[0-9a-f]{16}", s["spanId"]) for s in spans)
    ids = {s["spanId"] for s in spans}
    assert all(s["parentSpanId"] in ids for s in spans if s is not run)
    assert all(int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"]) > 0 for s in spans)


def test_otel_service_name_and_resource_attributes_apply_to_the_json_target(tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "notebook-42")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=data")
    path = tmp_path / "spans.jsonl"
    session = workbench.RuntimeProfile(telemetry=f"json:{path}").session()
    session.sql("SELECT 1 AS one").to_pyarrow()
    assert telemetry.flush(f"json:{path}")
    (line,) = path.read_text().splitlines()
    (resource_spans,) = json.loads(line)["resourceSpans"]
    resource = _json_values(resource_spans["resource"])
    assert (resource["service.name"], resource["team"]) == ("notebook-42", "data")


def test_a_failed_run_span_has_status_error_with_the_message(tmp_path):
    path = tmp_path / "spans.jsonl"
    session = workbench.RuntimeProfile(telemetry=f"json:{path}").session()
    result = session.sql(
        "SELECT CAST(concat('x', value) AS INT) AS v FROM generate_series(1, 10)", label="bad"
    )
    with pytest.raises(workbench.WorkbenchError, match="Cannot cast"):
        result.to_pyarrow()
    assert telemetry.flush(f"json:{path}")
    (run,) = [s for s in _json_spans(path) if "parentSpanId" not in s]
    assert run["status"]["code"] == 2  # STATUS_CODE_ERROR
    assert "Cannot cast string 'x1'" in run["status"]["message"]


def test_an_unreachable_collector_warns_and_the_query_still_returns(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")  # give up after 1 s of retries, not 10
    port = _closed_port()
    target = f"otlp:http://127.0.0.1:{port}"
    session = workbench.RuntimeProfile(telemetry=target).session()
    match = f"OTLP export to http://127.0.0.1:{port}/v1/traces failed"
    with pytest.warns(telemetry.TelemetryWarning, match=match):
        rows = _query_then_flush(session, "SELECT 1 AS one", target)
    assert rows.column("one").to_pylist() == [1]


def test_an_unwritable_json_target_warns_and_the_query_still_returns(tmp_path):
    target = f"json:{tmp_path / 'missing-dir' / 'spans.jsonl'}"
    session = workbench.RuntimeProfile(telemetry=target).session()
    with pytest.warns(telemetry.TelemetryWarning, match="cannot append spans"):
        rows = _query_then_flush(session, "SELECT 2 AS two", target)
    assert rows.column("two").to_pylist() == [2]


def test_malformed_targets_are_refused():
    with pytest.raises(ConfigError, match="telemetry="):
        workbench.RuntimeProfile(telemetry="zipkin://x")


def test_export_refuses_unknown_targets_and_the_grpc_protocol(session, monkeypatch):
    result = session.sql("SELECT 1 AS one")
    result.to_pyarrow()
    with pytest.raises(telemetry.TelemetryError, match="is not 'json:PATH'"):
        telemetry.export_run("otlp:localhost:4318", result.run, result.plan())
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(telemetry.TelemetryError, match="OTLP over HTTP only"):
        telemetry.export_run("otlp", result.run, result.plan())

"""OpenTelemetry export: a span per run, a child span per operator, to JSON or OTLP/HTTP."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

import workbench
from workbench.session import ConfigError


def _spans(request: dict) -> list[dict]:
    spans: list[dict] = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
    return spans


def _attrs(span: dict) -> dict[str, object]:
    return {a["key"]: next(iter(a["value"].values())) for a in span["attributes"]}


def test_json_export_has_a_run_span_and_one_child_per_operator(tpch, tmp_path):
    target = tmp_path / "spans.jsonl"
    session = workbench.RuntimeProfile(telemetry=f"json:{target}").session()
    tpch.register(session)
    result = session.sql(
        "SELECT o_orderstatus, count(*) AS n FROM orders GROUP BY 1", label="statuses"
    )
    assert result.to_pyarrow().num_rows == 3
    (line,) = target.read_text().splitlines()
    spans = _spans(json.loads(line))
    run, operators = spans[0], spans[1:]
    assert run["name"] == "statuses"
    assert _attrs(run)["workbench.run_id"] == result.run.run_id
    assert _attrs(run)["workbench.rows"] == "3"
    assert len(operators) == len(result.plan().nodes)
    ids = {s["spanId"] for s in spans}
    assert all(s["parentSpanId"] in ids for s in operators)
    assert {s["traceId"] for s in spans} == {run["traceId"]}
    scan = next(s for s in operators if s["name"] == "DataSourceExec")
    assert _attrs(scan)["workbench.output_rows"] == "150000"
    assert int(scan["endTimeUnixNano"]) >= int(scan["startTimeUnixNano"]) > 0


def test_otlp_http_export_reaches_a_collector_on_loopback():
    received: list[tuple[str, dict]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        session = workbench.RuntimeProfile(telemetry=f"otlp:{url}").session()
        session.sql("SELECT sum(value) AS s FROM generate_series(1, 1000)").to_pyarrow()
        thread.join(timeout=10)
    finally:
        server.server_close()
    ((path, request),) = received
    assert path == "/v1/traces"
    assert _spans(request)[0]["name"] == "query"
    assert len(_spans(request)) >= 3


def test_an_unreachable_collector_warns_and_the_query_still_returns():
    session = workbench.RuntimeProfile(telemetry="otlp:http://127.0.0.1:9").session()
    with pytest.warns(UserWarning, match="OTLP export to http://127.0.0.1:9 failed"):
        rows = session.sql("SELECT 1 AS one").to_pyarrow()
    assert rows.column("one").to_pylist() == [1]


def test_malformed_targets_are_refused():
    with pytest.raises(ConfigError, match="telemetry="):
        workbench.RuntimeProfile(telemetry="zipkin://x")


def test_an_unwritable_json_target_warns_and_the_query_still_returns(tmp_path):
    target = tmp_path / "missing-dir" / "spans.jsonl"
    session = workbench.RuntimeProfile(telemetry=f"json:{target}").session()
    with pytest.warns(UserWarning, match="cannot append spans"):
        rows = session.sql("SELECT 2 AS two").to_pyarrow()
    assert rows.column("two").to_pylist() == [2]

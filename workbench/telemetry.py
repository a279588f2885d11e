"""OpenTelemetry export of runs: each run a span, each operator a child span.

Spans are written in the OTLP/JSON encoding (the protobuf JSON mapping of an
``ExportTraceServiceRequest``), so any OTLP collector accepts them and no
OpenTelemetry SDK is needed. Configure with ``RuntimeProfile(telemetry=...)``:

* ``"json:PATH"`` appends one OTLP/JSON request per finished run to ``PATH``
  (JSON lines);
* ``"otlp:URL"`` POSTs it to an OTLP/HTTP collector, e.g.
  ``"otlp:http://127.0.0.1:4318"`` (``/v1/traces`` is appended).

Span ids derive from the run id and the operator's position, so re-exporting
a run gives the same ids. Operator spans carry their metrics as attributes
(``workbench.output_rows``, ``workbench.exclusive_ns``, pruning counters...);
their times are the operator's first start and last end across partitions.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    import datetime as dt

    from workbench.plans import PhysicalNode, PlanTree
    from workbench.runs import RunRecord

_SCOPE = {"name": "datafusion-workbench", "version": "0.1.0"}


class TelemetryError(WorkbenchError):
    """The telemetry target is malformed or refused the export."""


def _nanos(moment: dt.datetime | None) -> str:
    return "0" if moment is None else str(int(moment.timestamp() * 1_000_000) * 1_000)


def _id(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def _attribute(key: str, value: object) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _operator_attributes(node: PhysicalNode) -> list[dict[str, Any]]:
    values: dict[str, object] = {
        "workbench.operator": node.operator,
        "workbench.details": node.details[:1000],
        "workbench.partitions": node.partitions,
        "workbench.share": node.share,
    }
    optional = {
        "workbench.output_rows": node.output_rows,
        "workbench.output_bytes": node.output_bytes,
        "workbench.output_batches": node.output_batches,
        "workbench.exclusive_ns": node.exclusive_ns,
        "workbench.bytes_scanned": node.bytes_scanned,
    }
    values |= {k: v for k, v in optional.items() if v is not None}
    if node.spill_count:
        values |= {
            "workbench.spill_count": node.spill_count,
            "workbench.spilled_bytes": node.spilled_bytes,
        }
    for counter in node.pruning:
        values[f"workbench.pruning.{counter.name}.total"] = counter.total
        values[f"workbench.pruning.{counter.name}.matched"] = counter.matched
    return [_attribute(k, v) for k, v in values.items()]


def spans(record: RunRecord, tree: PlanTree) -> dict[str, Any]:
    """The OTLP/JSON trace request for one run and its operators."""
    trace_id = _id(f"trace:{record.run_id}", 32)
    root_id = _id(f"run:{record.run_id}", 16)
    run_span = {
        "traceId": trace_id,
        "spanId": root_id,
        "name": record.label or "query",
        "kind": 1,
        "startTimeUnixNano": _nanos(record.started_at),
        "endTimeUnixNano": _nanos(record.finished_at),
        "attributes": [
            _attribute("workbench.run_id", record.run_id),
            _attribute("db.system", "datafusion"),
            _attribute("db.query.text", record.sql[:4000]),
            _attribute("workbench.rows", record.rows),
            _attribute("workbench.batches", record.batches),
            _attribute("workbench.status", str(record.status)),
        ],
        "status": {"code": 2 if record.error else 1, "message": record.error or ""},
    }
    out = [run_span]

    def visit(node: PhysicalNode, parent: str) -> None:
        span_id = _id(f"op:{record.run_id}:{node.id}", 16)
        out.append(
            {
                "traceId": trace_id,
                "spanId": span_id,
                "parentSpanId": parent,
                "name": node.operator,
                "kind": 1,
                "startTimeUnixNano": _nanos(node.started_at or record.started_at),
                "endTimeUnixNano": _nanos(node.ended_at or record.finished_at),
                "attributes": _operator_attributes(node),
            }
        )
        for child in node.children:
            visit(child, span_id)

    visit(tree.physical, root_id)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attribute("service.name", "datafusion-workbench")]},
                "scopeSpans": [{"scope": _SCOPE, "spans": out}],
            }
        ]
    }


def export(target: str, request: dict[str, Any]) -> None:
    """Send one OTLP/JSON request to ``target`` ("json:PATH" or "otlp:URL")."""
    kind, _, where = target.partition(":")
    body = json.dumps(request)
    if kind == "json" and where:
        try:
            with Path(where).expanduser().open("a") as out:
                out.write(body + "\n")
        except OSError as exc:
            msg = f"cannot append spans to {where}: {exc}; check the telemetry path"
            raise TelemetryError(msg) from exc
        return
    if kind == "otlp" and where.startswith(("http://", "https://")):
        request_obj = urllib.request.Request(  # noqa: S310  (the URL scheme is checked above)
            where.rstrip("/") + "/v1/traces",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request_obj, timeout=5) as response:  # noqa: S310
                response.read()
        except OSError as exc:
            msg = f"OTLP export to {where} failed: {exc}; is the collector running?"
            raise TelemetryError(msg) from exc
        return
    msg = f"telemetry target {target!r} is not 'json:PATH' or 'otlp:http://HOST:PORT'"
    raise TelemetryError(msg)

"""OpenTelemetry export of runs: each run a span, each operator a child span.

Turn it on with ``RuntimeProfile(telemetry=TARGET)``; every finished run is
then handed to the OpenTelemetry SDK. ``TARGET`` is one of:

* ``"otlp"``: OTLP/HTTP (protobuf) configured entirely by the standard
  ``OTEL_EXPORTER_OTLP_*`` variables (``..._ENDPOINT``, ``..._TRACES_ENDPOINT``,
  ``..._HEADERS``, ``..._TIMEOUT``, ``..._COMPRESSION``, certificates), as in
  any OpenTelemetry application. gRPC is not offered: point the endpoint at
  the collector's HTTP port (4318).
* ``"otlp:http://HOST:PORT"``: the same, to ``HOST:PORT/v1/traces``; the other
  ``OTEL_EXPORTER_OTLP_*`` variables (headers, timeout...) still apply.
* ``"json:PATH"``: appends to ``PATH`` one line per exported batch, each an
  ``ExportTraceServiceRequest`` in the OTLP/JSON encoding (the protobuf JSON
  mapping with hex trace and span ids, integer enums, 64-bit integers as
  strings), as the collector's file exporter writes. A batch can hold several
  runs, and a large plan can be split across lines: group spans by
  ``traceId``.

The run span is named by the run's label (or ``query``) and carries
``workbench.run_id``, ``db.system``, ``db.query.text``, ``workbench.rows``,
``workbench.batches`` and ``workbench.status``; a failed run has status
ERROR with its message. Under it, one span per physical operator, nested like
the plan, timed from the operator's first start to its last end across
partitions, with its metrics as attributes (``workbench.output_rows``,
``workbench.exclusive_ns``, pruning counters, spills, and every other
DataFusion metric as ``workbench.metric.NAME``). The resource is
``service.name=datafusion-workbench``; ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` override it, for every target.

Why the SDK and its batch processor: ending a span only queues it, and a
thread of the SDK exports, so a slow or dead collector never delays a cell.
Each target gets one ``TracerProvider``, made at its first run and reused
(``OTEL_BSP_*`` tune its batching; the global provider is left alone). Spans
still queued are flushed when the interpreter exits, for at most
:data:`EXIT_FLUSH_S` seconds; :func:`flush` pushes them now. A failed export
drops its batch and warns (:class:`TelemetryWarning`); the query is never
affected.
"""

from __future__ import annotations

import atexit
import base64
import datetime as dt
import functools
import json
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    SERVICE_VERSION,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.util.types import AttributeValue

    from workbench.plans import PhysicalNode, PlanTree
    from workbench.runs import RunRecord

EXIT_FLUSH_S = 5.0
"""Longest the interpreter's exit waits for queued spans to be exported, in seconds."""

_SCOPE = "datafusion-workbench"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TRACES_PATH = "/v1/traces"
# The operator attributes named by the workbench; other metrics get a prefix.
_NAMED_METRICS = (
    "output_rows",
    "output_bytes",
    "output_batches",
    "bytes_scanned",
    "spill_count",
    "spilled_bytes",
    "spilled_rows",
)

_providers: dict[str, TracerProvider] = {}
_providers_lock = threading.Lock()
_exiting = threading.Event()
_exit_flushes: list[_ExitFlush] = []


class TelemetryError(WorkbenchError):
    """The telemetry target is malformed or asks for something not offered."""


class TelemetryWarning(UserWarning):
    """An export failed; its spans were dropped (the query was not affected)."""


@dataclass(frozen=True)
class SpanTree:
    """A span to emit and the spans under it, as a value (times in ns since the epoch)."""

    name: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, AttributeValue] = field(hash=False)
    children: tuple[SpanTree, ...] = ()
    error: str | None = None
    """Set when the span ended in error: its status message."""

    def walk(self) -> Iterator[SpanTree]:
        yield self
        for child in self.children:
            yield from child.walk()


def spans(record: RunRecord, tree: PlanTree) -> SpanTree:
    """The run span of ``record`` with one child per operator of ``tree``, nested like the plan."""
    start = _nanos(record.started_at)
    end = max(start, _nanos(record.finished_at or dt.datetime.now(dt.UTC)))
    run_attributes: dict[str, AttributeValue] = {
        "workbench.run_id": record.run_id,
        "db.system": "datafusion",
        "db.query.text": record.sql[:4000],
        "workbench.rows": record.rows,
        "workbench.batches": record.batches,
        "workbench.status": str(record.status),
    }
    return SpanTree(
        name=record.label or "query",
        start_ns=start,
        end_ns=end,
        attributes=run_attributes,
        children=(_operator_span(tree.physical, start, end),),
        error=record.error,
    )


def _operator_span(node: PhysicalNode, run_start: int, run_end: int) -> SpanTree:
    start = _nanos(node.started_at) if node.started_at is not None else run_start
    end = _nanos(node.ended_at) if node.ended_at is not None else run_end
    return SpanTree(
        name=node.operator,
        start_ns=start,
        end_ns=max(start, end),
        attributes=_operator_attributes(node),
        children=tuple(_operator_span(child, run_start, run_end) for child in node.children),
    )


def _operator_attributes(node: PhysicalNode) -> dict[str, AttributeValue]:
    values: dict[str, AttributeValue] = {
        "workbench.operator_id": node.id,
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
            "workbench.spilled_rows": node.spilled_rows,
        }
    for counter in node.pruning:
        values[f"workbench.pruning.{counter.name}.total"] = counter.total
        values[f"workbench.pruning.{counter.name}.matched"] = counter.matched
    for name, value in node.metrics:
        if name not in _NAMED_METRICS:
            values[f"workbench.metric.{name}"] = value
    return values


def export_run(target: str, record: RunRecord, tree: PlanTree) -> None:
    """Queue the spans of one finished run for ``target``; returns without waiting for it."""
    export(target, spans(record, tree))


def export(target: str, run: SpanTree) -> None:
    """Queue ``run`` and its child spans for ``target``; the SDK exports them on its own thread.

    Raises :class:`TelemetryError` when ``target`` is malformed.
    """
    tracer = _provider(target).get_tracer(_SCOPE, _version())

    def emit(span: SpanTree, parent: trace.Span | None) -> None:
        context = None if parent is None else trace.set_span_in_context(parent)
        otel_span = tracer.start_span(
            span.name, context=context, attributes=span.attributes, start_time=span.start_ns
        )
        if span.error is not None:
            otel_span.set_status(Status(StatusCode.ERROR, span.error))
        for child in span.children:
            emit(child, otel_span)
        otel_span.end(end_time=span.end_ns)

    emit(run, None)


def flush(target: str, timeout_s: float = 10.0) -> bool:
    """Export the spans queued for ``target`` now.

    True when the export finished within ``timeout_s`` seconds (a failed export
    has warned by then), False if it is still under way. True at once if
    nothing was ever sent to ``target``.
    """
    with _providers_lock:
        provider = _providers.get(target)
    return provider is None or _within(timeout_s, provider.force_flush)


def _provider(target: str) -> TracerProvider:
    with _providers_lock:
        provider = _providers.get(target)
        if provider is None:
            exporter = _exporter(target)  # first: a malformed target leaves no provider
            # The SDK's own exit hook would wait on a stalled collector for as
            # long as its timeouts allow; ours bounds that (see _flush_at_exit).
            provider = TracerProvider(resource=_resource(), shutdown_on_exit=False)
            try:
                processor = BatchSpanProcessor(exporter)
            except ValueError as exc:  # OTEL_BSP_* out of range
                msg = f"OpenTelemetry refused its batch settings: {exc}; check OTEL_BSP_*"
                raise TelemetryError(msg) from exc
            provider.add_span_processor(processor)
            _providers[target] = provider
            _exit_flushes.append(_ExitFlush(provider))
        return provider


class _ExitFlush:
    """Shuts one provider down (exporting what is queued) once the interpreter exits.

    Its thread starts with the provider, not at exit: newer Pythons refuse to
    start threads during interpreter shutdown.
    """

    def __init__(self, provider: TracerProvider) -> None:
        self.done = threading.Event()
        self._provider = provider
        threading.Thread(target=self._run, name="workbench-telemetry-exit", daemon=True).start()

    def _run(self) -> None:
        _exiting.wait()
        try:
            self._provider.shutdown()
        finally:
            self.done.set()


def _flush_at_exit() -> None:
    # Daemon threads die with the interpreter, so waiting at most EXIT_FLUSH_S
    # here bounds how long a stalled collector can hold the exit.
    _exiting.set()
    deadline = time.monotonic() + EXIT_FLUSH_S
    with _providers_lock:
        flushes = tuple(_exit_flushes)
    for flush_ in flushes:
        flush_.done.wait(max(0.0, deadline - time.monotonic()))


def _after_fork_in_child() -> None:
    # A forked child has the providers (the SDK restarts their export threads)
    # but not our exit threads, nor a lock some other thread may have held.
    global _providers_lock  # noqa: PLW0603
    _providers_lock = threading.Lock()
    _exit_flushes[:] = [_ExitFlush(provider) for provider in _providers.values()]


atexit.register(_flush_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)


def _resource() -> Resource:
    # Resource.create lets its argument override the environment; ours is the
    # default, so the environment's detector is merged again on top.
    defaults = {SERVICE_NAME: _SCOPE, SERVICE_VERSION: _version()}
    return Resource.create(defaults).merge(OTELResourceDetector().detect())


@functools.cache
def _version() -> str:
    try:
        return metadata.version("datafusion-workbench")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _exporter(target: str) -> SpanExporter:
    kind, _, where = target.partition(":")
    if kind == "json" and where:
        return _JsonLinesExporter(Path(where).expanduser())
    if target == "otlp":
        _refuse_other_protocols()
        return _WarnOnFailure(OTLPSpanExporter(), _endpoint_from_environment())
    if kind == "otlp" and where.startswith(("http://", "https://")):
        endpoint = where.rstrip("/")
        if not endpoint.endswith(_TRACES_PATH):
            endpoint += _TRACES_PATH
        return _WarnOnFailure(OTLPSpanExporter(endpoint=endpoint), endpoint)
    msg = (
        f"telemetry target {target!r} is not 'json:PATH', 'otlp:http://HOST:PORT' or 'otlp' "
        "(configured by the OTEL_EXPORTER_OTLP_* environment variables)"
    )
    raise TelemetryError(msg)


def _refuse_other_protocols() -> None:
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = os.environ.get(variable, "").strip()
        if protocol:
            if protocol != "http/protobuf":
                msg = (
                    f"{variable}={protocol!r}: the workbench exports OTLP over HTTP only; set "
                    "it to 'http/protobuf' (or unset it) and point OTEL_EXPORTER_OTLP_ENDPOINT "
                    "at the collector's HTTP port, usually 4318"
                )
                raise TelemetryError(msg)
            return


def _endpoint_from_environment() -> str:
    # Only to name the collector in warnings; the exporter resolves it itself.
    if endpoint := os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return endpoint
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4318"
    return base.rstrip("/") + _TRACES_PATH


class _WarnOnFailure(SpanExporter):
    """An OTLP exporter whose failures warn instead of only reaching the SDK's log."""

    def __init__(self, inner: SpanExporter, endpoint: str) -> None:
        self._inner = inner
        self._endpoint = endpoint

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            msg = (
                f"OTLP export to {self._endpoint} failed and its spans were dropped; is the "
                "collector running? (the queries were not affected)"
            )
            warnings.warn(msg, TelemetryWarning, stacklevel=2)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _JsonLinesExporter(SpanExporter):
    """Appends each batch to a file as one OTLP/JSON ``ExportTraceServiceRequest`` line."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        line = json.dumps(_otlp_json(encode_spans(spans)), separators=(",", ":"))
        try:
            with self._lock, self._path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        except OSError as exc:
            msg = (
                f"cannot append spans to {self._path}: {exc}; check the telemetry path "
                "(the spans were dropped, the queries were not affected)"
            )
            warnings.warn(msg, TelemetryWarning, stacklevel=2)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _otlp_json(request: Any) -> dict[str, Any]:
    """The OTLP/JSON form of a protobuf request: the JSON mapping, but ids in hex."""
    out: dict[str, Any] = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in out.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                _hex_ids(span)
                for link in span.get("links", []):
                    _hex_ids(link)
    return out


def _hex_ids(item: dict[str, Any]) -> None:
    for key in ("traceId", "spanId", "parentSpanId"):
        if key in item:
            item[key] = base64.b64decode(item[key]).hex()


def _nanos(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def _within(timeout_s: float, call: Callable[[], bool]) -> bool:
    """Run ``call`` on a thread of its own; True if it returned True within ``timeout_s``."""
    done: list[bool] = []
    worker = threading.Thread(
        target=lambda: done.append(call()), name="workbench-telemetry-flush", daemon=True
    )
    worker.start()
    worker.join(timeout_s)
    return bool(done) and done[0]

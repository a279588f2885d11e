"""The diagnostics sink: every run's start and finish, as JSON lines and as tables.

Each Session has one :class:`DiagnosticsSink`. It appends one JSON object per
event to ``runs.jsonl`` (and one per written artifact to ``artifacts.jsonl``)
in the session's artifact directory, and keeps the same records queryable in
the session itself as ``wb_runs`` (the latest state of each run) and
``wb_artifacts``, refreshed whenever SQL names them, so ``SELECT * FROM
wb_runs`` works in any SQL cell.

Memory is bounded, the files are not: the sink keeps the latest ``keep_runs``
runs and ``keep_artifacts`` artifact records (10,000 each by default) for the
tables, so a kernel that runs queries for days does not grow without end,
while ``runs.jsonl`` and ``artifacts.jsonl`` keep every event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from workbench.errors import ArgumentError

if TYPE_CHECKING:
    from pathlib import Path

    import datafusion

    from workbench.runs import RunRecord

RUNS_TABLE = "wb_runs"
ARTIFACTS_TABLE = "wb_artifacts"
LANE_GAPS_TABLE = "wb_lane_gaps"
"""One row per Ibis operation a run sent to the SQL lane because the direct lane lacks it."""
KEEP_RUNS = 10_000
"""Default number of runs ``wb_runs`` holds (the newest by start)."""
KEEP_ARTIFACTS = 10_000
"""Default number of artifact records ``wb_artifacts`` holds (the newest written)."""

_RUNS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("label", pa.string()),
        ("sql", pa.string()),
        ("status", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("elapsed_s", pa.float64()),
        ("rows", pa.int64()),
        ("batches", pa.int64()),
        ("bytes", pa.int64()),
        ("error", pa.string()),
        (
            "delta_files",
            pa.list_(
                pa.struct(
                    [
                        ("table", pa.string()),
                        ("version", pa.int64()),
                        ("files_total", pa.int64()),
                        ("files_scanned", pa.int64()),
                    ]
                )
            ),
        ),
        ("lane", pa.string()),
        ("policy_hash", pa.string()),
        ("canonical_sql", pa.string()),
        ("gate_gaps", pa.list_(pa.string())),
        ("rewrites", pa.list_(pa.string())),
        ("plan_cache", pa.string()),
        ("cache_settings", pa.list_(pa.string())),
        ("retried", pa.string()),
        ("engine", pa.string()),
    ]
)
_LANE_GAPS_SCHEMA = pa.schema(
    [("run_id", pa.string()), ("lane", pa.string()), ("operation", pa.string())]
)
_ARTIFACTS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("kind", pa.string()),
        ("path", pa.string()),
        ("bytes", pa.int64()),
        ("sha256", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclasses.dataclass(frozen=True)
class ArtifactRecord:
    run_id: str
    kind: str
    path: str
    bytes: int
    sha256: str
    created_at: Any


class DiagnosticsSink:
    """Appends run events to JSON lines and mirrors the newest ones as session tables."""

    def __init__(
        self,
        ctx: datafusion.SessionContext,
        directory: Path,
        *,
        keep_runs: int = KEEP_RUNS,
        keep_artifacts: int = KEEP_ARTIFACTS,
    ) -> None:
        """``keep_runs``/``keep_artifacts``: how many records the tables hold (at least 1)."""
        for name, value in (("keep_runs", keep_runs), ("keep_artifacts", keep_artifacts)):
            if value < 1:
                raise ArgumentError(f"DiagnosticsSink({name}={value!r}): keep at least 1")
        self.ctx = ctx
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.runs_path = directory / "runs.jsonl"
        self.artifacts_path = directory / "artifacts.jsonl"
        self.keep_runs = keep_runs
        # Insertion order is start order: a run's later events update it in place.
        self._runs: OrderedDict[str, RunRecord] = OrderedDict()
        self._artifacts: deque[ArtifactRecord] = deque(maxlen=keep_artifacts)
        self._lock = threading.Lock()
        self._stale = True

    def record(self, run: RunRecord, event: str) -> None:
        """Log ``event`` ("start", "planned" or "finish") for ``run`` and refresh ``wb_runs``."""
        line = {"event": event, **dataclasses.asdict(run)}
        with self._lock:
            with self.runs_path.open("a") as out:
                out.write(json.dumps(line, default=str) + "\n")
            self._runs[run.run_id] = run
            while len(self._runs) > self.keep_runs:
                self._runs.popitem(last=False)
            self._stale = True

    def artifact(self, record: ArtifactRecord) -> None:
        """Log a written artifact and mark ``wb_artifacts`` for refresh."""
        with self._lock:
            with self.artifacts_path.open("a") as out:
                out.write(json.dumps(dataclasses.asdict(record), default=str) + "\n")
            self._artifacts.append(record)
            self._stale = True

    def artifact_written(self, run_id: str, path: Path, sha256: str) -> None:
        """Record a file written for ``run_id`` (see ``workbench.artifacts``)."""
        self.artifact(
            ArtifactRecord(
                run_id=run_id,
                kind=path.name,
                path=str(path),
                bytes=path.stat().st_size,
                sha256=sha256,
                created_at=dt.datetime.now(dt.UTC),
            )
        )

    def run_ids(self) -> list[str]:
        """Ids of the runs ``wb_runs`` holds, oldest start first."""
        with self._lock:
            return list(self._runs)

    def publish(self) -> None:
        """Refresh ``wb_runs`` and ``wb_artifacts``; done lazily, only for SQL that reads them.

        Re-registering two tables on every run's start and finish would cost every
        query about a millisecond; the sessions call this when a statement names one.
        """
        with self._lock:
            if self._stale:
                self._publish_runs()
                self._publish_artifacts()
                self._stale = False

    def _publish_runs(self) -> None:
        rows = [
            {
                f.name: getattr(r, f.name)
                for f in dataclasses.fields(r)
                if f.name in _RUNS_SCHEMA.names
            }
            | {
                "status": str(r.status),
                "delta_files": [dataclasses.asdict(d) for d in r.delta_files],
            }
            for r in self._runs.values()
        ]
        self._replace(RUNS_TABLE, pa.Table.from_pylist(rows, schema=_RUNS_SCHEMA))
        gaps = [
            {"run_id": r.run_id, "lane": r.lane, "operation": op}
            for r in self._runs.values()
            for op in r.lane_gaps
        ]
        self._replace(LANE_GAPS_TABLE, pa.Table.from_pylist(gaps, schema=_LANE_GAPS_SCHEMA))

    def _publish_artifacts(self) -> None:
        rows = [dataclasses.asdict(a) for a in self._artifacts]
        self._replace(ARTIFACTS_TABLE, pa.Table.from_pylist(rows, schema=_ARTIFACTS_SCHEMA))

    def _replace(self, name: str, table: pa.Table) -> None:
        # A query already planned over the old table keeps it; new queries see this one.
        self.ctx.deregister_table(name)
        self.ctx.register_record_batches(
            name, [table.to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]]
        )

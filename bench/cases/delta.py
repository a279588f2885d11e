"""Delta scans that prune: the extension's provider against deltalake's, and planning cost.

The bench writes its own Delta tables with deltalake, once, under
``$WORKBENCH_DATA_DIR/bench/delta`` (default ``~/.cache/workbench/data``): one commit
from one ordered stream of rows, so every file holds a disjoint range of ``id``
(clustered) and ``v`` is random. Two kinds of case:

* **selective query** over 1,000 files (100 with ``--quick``): ``SELECT id, v ... WHERE id
  BETWEEN lo AND hi`` matching the rows of 1% of the files, through

  - ``register_delta (workbench)`` (baseline): ``session.sql(q).to_pyarrow()`` on a table
    registered with :meth:`workbench.Session.register_delta`, what ``%%dfsql`` runs;
  - ``deltalake DeltaTable provider``: a plain ``datafusion.SessionContext`` with
    ``ctx.register_table(name, deltalake.DeltaTable(uri))``, deltalake's own provider,
    which reads every file;
  - ``duckdb delta_scan``: only where DuckDB's ``delta`` extension loads without the
    network (it is downloaded on first use); otherwise the note says why it is absent.

  Each DataFusion variant reports ``bytes_scanned`` (summed over the executed plan's
  scan nodes) and ``files_opened`` (Parquet file ranges opened). The ratio of the
  deltalake variant is how many times slower it is; the target is 20 or more.
* **planning cost** on 10,000 files (1,000 with ``--quick``, scaled): opening the table
  (``register_delta``; ``deltalake.DeltaTable`` and ``register_table`` for comparison)
  and planning a selective query (``session.sql(q, plan_only=True)`` and its physical
  plan, i.e. what ``%explain`` pays before it renders; the same ``execution_plan()`` on
  deltalake's provider). ``ms_per_10k_files`` is the median scaled to 10,000 files; the
  target is under 50 ms.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datafusion
import deltalake
import numpy as np
import pyarrow as pa

import workbench
from bench.harness import Case, Sample, by_case, first_line
from workbench import datasets
from workbench.plans import physical_tree

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from bench.harness import Measurement
    from workbench.plans import PhysicalNode

WORKBENCH = "register_delta (workbench)"
DELTALAKE = "deltalake DeltaTable provider"
DUCKDB = "duckdb delta_scan"
TARGET_SPEEDUP = 20
TARGET_PLANNING_MS = 50
PER_FILES = 10_000
SEED = 13


@dataclass(frozen=True)
class Layout:
    """A generated table: how many files, and how many rows each."""

    files: int
    rows_per_file: int
    target_file_size: int
    """What makes deltalake's writer cut ``rows_per_file``: it closes a file at the first
    of its 1,024-row batches that takes it past this size (so it depends on the data)."""

    @property
    def name(self) -> str:
        return f"clustered-{self.files}x{self.rows_per_file}"


# 102,400 rows (~1.3 MB) a file; the writer's split for this data, checked when written.
SELECTIVE = Layout(files=1_000, rows_per_file=102_400, target_file_size=2_000_000)
SELECTIVE_QUICK = Layout(files=100, rows_per_file=20_480, target_file_size=400_000)
PLANNING = Layout(files=PER_FILES, rows_per_file=1_024, target_file_size=1)
PLANNING_QUICK = Layout(files=1_000, rows_per_file=1_024, target_file_size=1)


@dataclass(frozen=True)
class Table:
    """A generated Delta table and deltalake's add actions for it (one row per file)."""

    uri: str
    files: pa.Table

    @property
    def rows_per_file(self) -> int:
        """The most common file's row count (the last file may hold fewer)."""
        counts = self.files["num_records"].to_pylist()
        return int(max(set(counts), key=counts.count))

    @property
    def total_bytes(self) -> int:
        return int(sum(self.files["size_bytes"].to_pylist()))

    def selective(self, fraction: float = 0.01) -> tuple[str, int]:
        """A predicate on ``id`` matching exactly the rows of ``fraction`` of the files
        (consecutive ones, from the middle), and how many files that is."""
        ordered = self.files.sort_by("min.id")
        count = max(1, round(ordered.num_rows * fraction))
        first = ordered.num_rows // 2
        low = ordered["min.id"][first].as_py()
        high = ordered["max.id"][first + count - 1].as_py()
        return f"id BETWEEN {low} AND {high}", count


def _rows(layout: Layout) -> Iterator[pa.RecordBatch]:
    rng = np.random.default_rng(SEED)
    for start in range(0, layout.files * layout.rows_per_file, layout.rows_per_file):
        ids = np.arange(start, start + layout.rows_per_file, dtype=np.int64)
        yield pa.record_batch({"id": ids, "v": rng.integers(0, 1_000_000, ids.size)})


def generate(layout: Layout) -> Table:
    """The table of ``layout``, written first if it is not there yet (as datasets.tpch:
    a finished table has a manifest, written last; a half-written one never shadows it)."""
    final = datasets.data_dir() / "bench" / "delta" / layout.name
    if not (final / "manifest.json").exists():
        final.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{layout.name}-", dir=final.parent))
        try:
            schema = pa.schema({"id": pa.int64(), "v": pa.int64()})
            # One ordered stream: the writer keeps its order, so files are runs of ids.
            deltalake.write_deltalake(
                str(work / "table"),
                pa.RecordBatchReader.from_batches(schema, _rows(layout)),
                target_file_size=layout.target_file_size,
            )
            manifest = {"layout": asdict(layout), "writer": f"deltalake {deltalake.__version__}"}
            (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
            shutil.rmtree(final, ignore_errors=True)  # no manifest: a half-written leftover
            work.rename(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    uri = str(final / "table")
    return Table(uri, pa.table(deltalake.DeltaTable(uri).get_add_actions(flatten=True)))


def _scan_metrics(plan: PhysicalNode) -> dict[str, float]:
    """Bytes and files the scan nodes of an executed plan read."""
    nodes = list(plan.walk())
    metrics: dict[str, float] = {
        "bytes_scanned": sum(n.bytes_scanned or 0 for n in nodes),
        "files_opened": sum(dict(n.metrics).get("files_opened", 0) for n in nodes),
    }
    scanned = [
        dict(n.metrics)["count_files_scanned"]
        for n in nodes
        if n.operator == "DeltaScanExec" and "count_files_scanned" in dict(n.metrics)
    ]
    if scanned:
        metrics["delta_files_scanned"] = sum(scanned)
    return metrics


def _duckdb_delta() -> tuple[Any | None, str]:
    """A DuckDB connection with the delta extension, or None and why not."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")  # never reach for the network
    try:
        con.execute("LOAD delta")
    except duckdb.Error as exc:
        return (
            None,
            f"DuckDB's delta extension is not installed and is only downloadable ({first_line(exc)})",
        )
    return con, ""


def _selective_case(table: Table, quick: bool) -> Case:  # noqa: FBT001
    predicate, matching = table.selective()
    sql = f"SELECT id, v FROM clustered WHERE {predicate}"
    session = workbench.RuntimeProfile().session()
    session.register_delta("clustered", table.uri)
    ctx = datafusion.SessionContext()
    ctx.register_table("clustered", deltalake.DeltaTable(table.uri))

    def through_workbench() -> Sample:
        started = time.perf_counter()
        result = session.sql(sql)
        rows = result.to_pyarrow()
        seconds = time.perf_counter() - started
        metrics = _scan_metrics(session.plan(result.run.run_id).physical)
        return Sample(seconds, metrics=metrics, value=(rows, metrics))

    def through_deltalake() -> Sample:
        started = time.perf_counter()
        df = ctx.sql(sql)
        rows = df.to_arrow_table()
        seconds = time.perf_counter() - started
        # After a run the DataFrame hands back the plan it ran, with its metrics.
        metrics = _scan_metrics(physical_tree(df.execution_plan()))
        return Sample(seconds, metrics=metrics, value=(rows, metrics))

    variants: dict[str, Callable[[], Any]] = {
        WORKBENCH: through_workbench,
        DELTALAKE: through_deltalake,
    }
    con, missing = _duckdb_delta()
    if con is not None:
        duck_sql = f"SELECT id, v FROM delta_scan('{table.uri}') WHERE {predicate}"
        variants[DUCKDB] = lambda: (pa.table(con.execute(duck_sql).arrow()), {})

    def check(last: dict[str, Any]) -> str:
        mine, metrics = last[WORKBENCH]
        mine = mine.sort_by("id")
        if DELTALAKE in last and not mine.equals(last[DELTALAKE][0].sort_by("id")):
            raise AssertionError(f"{WORKBENCH} returned other rows than {DELTALAKE}")
        notes = []
        scanned = metrics.get("delta_files_scanned")
        if scanned != matching:
            notes.append(f"PRUNING MISSED: scanned {scanned} Delta files, {matching} overlap")
        if DUCKDB in last and not mine.equals(last[DUCKDB][0].sort_by("id")):
            notes.append(f"{DUCKDB} returned other rows")
        return " ".join(notes)

    files = table.files.num_rows
    note = (
        f"{files:,} files of {table.rows_per_file:,} rows, {table.total_bytes / 2**20:.0f} MB; "
        f"`{predicate}` matches the rows of {matching} of them; "
        f"target: {DELTALAKE} {TARGET_SPEEDUP}x slower or more"
    )
    if con is None:
        note += f"; {DUCKDB} left out: {missing}"
    return Case(
        name=f"selective query over {files:,} files",
        group="delta",
        baseline=WORKBENCH,
        variants=variants,
        repeats=3 if quick else 5,
        note=note,
        check=check,
        subject=WORKBENCH,
    )


def _per_files(files: int, run: Callable[[], Any]) -> Callable[[], Sample]:
    """``run`` timed, with its time scaled to PER_FILES files as a metric."""

    def timed() -> Sample:
        started = time.perf_counter()
        run()
        seconds = time.perf_counter() - started
        return Sample(
            seconds, metrics={"ms_per_10k_files": round(seconds * 1000 * PER_FILES / files, 1)}
        )

    return timed


def _planning_cases(table: Table, quick: bool) -> list[Case]:  # noqa: FBT001
    files = table.files.num_rows
    predicate, _ = table.selective()
    sql = f"SELECT id, v FROM clustered WHERE {predicate}"
    session = workbench.RuntimeProfile().session()
    session.register_delta("clustered", table.uri)
    ctx = datafusion.SessionContext()
    ctx.register_table("clustered", deltalake.DeltaTable(table.uri))

    def open_deltalake() -> None:
        ctx.register_table("opened", deltalake.DeltaTable(table.uri))
        ctx.deregister_table("opened")

    def plan_workbench() -> None:
        result = session.sql(sql, plan_only=True)
        result.dataframe.execution_plan()
        result.close_planned()

    repeats = 5 if quick else 9
    scaled = "" if files == PER_FILES else f", scaled to {PER_FILES:,}"
    note = f"ms_per_10k_files = median over {files:,} files{scaled}; target under {TARGET_PLANNING_MS} ms for the workbench"
    return [
        Case(
            name=f"open a {files:,}-file table",
            group="delta",
            baseline=WORKBENCH,
            variants={
                WORKBENCH: _per_files(files, lambda: session.register_delta("opened", table.uri)),
                DELTALAKE: _per_files(files, open_deltalake),
            },
            repeats=repeats,
            note=note,
            subject=WORKBENCH,
        ),
        Case(
            name=f"plan a selective query over {files:,} files",
            group="delta",
            baseline=WORKBENCH,
            variants={
                WORKBENCH: _per_files(files, plan_workbench),
                DELTALAKE: _per_files(files, lambda: ctx.sql(sql).execution_plan()),
            },
            repeats=repeats,
            note=note + f"; `{predicate}`",
            subject=WORKBENCH,
        ),
    ]


def cases(quick: bool) -> list[Case]:  # noqa: FBT001
    selective = generate(SELECTIVE_QUICK if quick else SELECTIVE)
    planning = generate(PLANNING_QUICK if quick else PLANNING)
    return [_selective_case(selective, quick), *_planning_cases(planning, quick)]


def summary(measurements: list[Measurement], *, quick: bool) -> str:  # noqa: ARG001
    lines = []
    for case, variants in by_case(measurements).items():
        mine, theirs = variants[WORKBENCH], variants.get(DELTALAKE)
        if mine.median_s is None:
            lines.append(f"- {case}: the workbench failed: {mine.error}")
            continue
        if case.startswith("selective"):
            lines.append(_speed_line(case, mine, theirs))
        else:
            ms = mine.metrics["ms_per_10k_files"]
            verdict = "met" if ms < TARGET_PLANNING_MS else "MISSED"
            peer = (
                f"; {DELTALAKE}: {theirs.metrics['ms_per_10k_files']:.1f} ms"
                if theirs is not None and theirs.median_s is not None
                else ""
            )
            lines.append(
                f"- {case}: {ms:.1f} ms per {PER_FILES:,} files "
                f"(target < {TARGET_PLANNING_MS} ms: {verdict}){peer}."
            )
    return "\n".join(lines)


def _speed_line(case: str, mine: Measurement, theirs: Measurement | None) -> str:
    read = mine.metrics.get("bytes_scanned", 0) / 2**20
    files = mine.metrics.get("delta_files_scanned", 0)
    seconds = mine.median_s or 0.0
    head = f"- {case}: {WORKBENCH} {seconds * 1000:.1f} ms, read {read:.2f} MB from {files:g} Delta file(s)"
    if theirs is None or theirs.ratio is None or theirs.median_s is None:
        return f"{head}; {DELTALAKE} failed: {theirs.error if theirs else 'not run'}."
    verdict = "met" if theirs.ratio >= TARGET_SPEEDUP else "MISSED"
    their_read = theirs.metrics.get("bytes_scanned", 0) / 2**20
    return (
        f"{head}; {DELTALAKE} {theirs.median_s * 1000:.1f} ms, read {their_read:.2f} MB: "
        f"{theirs.ratio:.1f}x the time (target >= {TARGET_SPEEDUP}x: {verdict}), "
        f"{their_read / read if read else float('inf'):.0f}x the bytes."
    )

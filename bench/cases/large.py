"""A large result: ``SELECT * FROM lineitem``, the biggest TPC-H table.

Two cases, every measurement in a fresh process (:mod:`bench.probe`) so its
peak RSS is its own; times are the probe's, not the subprocess's start-up:

* first preview: seconds from running the cell to its display being
  formatted, and the peak memory above the process's after set-up;
* export to Parquet: the workbench streaming ``Result.write_parquet`` against
  materialising the result first (``to_arrow_table`` + ``pq.write_table``),
  with DataFusion's own ``DataFrame.write_parquet`` as a third point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench import probe
from bench.harness import MEMORY_METRIC, Case, Sample, VariantError
from workbench import datasets

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from bench.harness import Measurement


WORKBENCH = "%%dfsql (workbench)"
JUPYSQL = "jupysql + duckdb"
DATAFUSION_DISPLAY = "datafusion DataFrame display"
POLARS_READ = "polars read_parquet"
POLARS_SCAN = "polars scan_parquet.head(20)"
PREVIEW = {
    WORKBENCH: "dfsql",
    JUPYSQL: "jupysql",
    DATAFUSION_DISPLAY: "datafusion-display",
    POLARS_READ: "polars-read",
    POLARS_SCAN: "polars-scan-head",
}

STREAMING = "workbench Result.write_parquet (streaming)"
MATERIALISE = "datafusion to_arrow_table + pq.write_table"
DATAFUSION_WRITE = "datafusion DataFrame.write_parquet"
EXPORT = {
    STREAMING: "workbench-write",
    MATERIALISE: "materialise-write",
    DATAFUSION_WRITE: "datafusion-write",
}

HANDS_BACK = {
    WORKBENCH: (
        "`%%dfsql` + `SELECT * FROM lineitem`: a 20-row HTML/text preview and a streaming "
        "Result; the scan stops after the batches the preview needed."
    ),
    JUPYSQL: (
        "`%%sql` on a native DuckDB connection (view over `read_parquet`): a ResultSet "
        "displaying 10 rows fetched from DuckDB's result."
    ),
    DATAFUSION_DISPLAY: (
        "`ctx.sql(\"SELECT * FROM lineitem\")` as the cell's value: the DataFrame's own "
        "display; the formatter calls `_repr_html_` and, for text/plain, `__repr__`, and "
        "each runs the query for its first batches (as in Jupyter)."
    ),
    POLARS_READ: (
        "`pl.read_parquet(path)`, what most notebooks write: the whole table in memory, "
        "displayed as its first and last rows."
    ),
    POLARS_SCAN: ("`pl.scan_parquet(path).head(20).collect()`, the lazy idiom: 20 rows in memory."),
}


def cases(quick: bool) -> list[Case]:  # noqa: FBT001
    data = datasets.tpch(0.01 if quick else 1)
    parquet = data.parquet("lineitem")
    repeats = 1 if quick else 3
    return [
        Case(
            name="lineitem: first preview",
            group="large",
            baseline=DATAFUSION_DISPLAY,
            variants={name: _probe(variant, parquet) for name, variant in PREVIEW.items()},
            repeats=repeats,
            subject=WORKBENCH,
        ),
        Case(
            name="lineitem: export to Parquet",
            group="large",
            baseline=MATERIALISE,
            variants={name: _probe(variant, parquet) for name, variant in EXPORT.items()},
            repeats=repeats,
            check=_rows_written(data.row_counts["lineitem"]),
            subject=STREAMING,
        ),
    ]


def _probe(variant: str, parquet: Path) -> Callable[[], Sample]:
    assert variant in probe.VARIANTS, variant
    return lambda: run_probe(variant, parquet)


def run_probe(variant: str, parquet: Path) -> Sample:
    """Run one probe in a fresh interpreter and read its measurement."""
    found = probe.run_child("bench.probe", [variant, str(parquet)], what=variant, timeout=1800)
    if "error" in found:
        raise VariantError(found["error"])
    metrics = {MEMORY_METRIC: float(found[MEMORY_METRIC])}
    if "rows" in found:
        metrics["rows"] = float(found["rows"])
    return Sample(float(found["seconds"]), metrics, found.get("rows"))


def _rows_written(expected: int) -> Callable[[dict[str, Any]], str | None]:
    def check(last: dict[str, Any]) -> str | None:
        if STREAMING in last:
            assert last[STREAMING] == expected, f"workbench wrote {last[STREAMING]} rows"
        differ = [f"{name} wrote {rows}" for name, rows in last.items() if rows != expected]
        return f"lineitem has {expected} rows: {', '.join(differ)}." if differ else None

    return check


def summary(measurements: list[Measurement], *, quick: bool) -> str:  # noqa: ARG001
    lines = [
        (
            f"`SELECT * FROM lineitem` at TPC-H scale {0.01 if quick else 1}. Each number comes "
            "from a fresh process whose variant was set up and warmed up on a one-row query "
            "first. `peak_rss_mb` is the process's peak resident memory during the measured step "
            "above its resident memory just before it (the kernel's `VmHWM`, reset before the "
            "step; `ru_maxrss` would include the parent benchmark's peak, which a child started "
            "by `subprocess` inherits). Preview times run from submitting the cell to its "
            "display being formatted."
        ),
        "",
        "What each preview variant hands the user (polars is measured both ways):",
        "",
        *[f"- {name}: {text}" for name, text in HANDS_BACK.items()],
        "",
        (
            "Export: the workbench streams batches from one `execute_stream()` into a "
            "`pyarrow.parquet.ParquetWriter` (snappy); the baseline builds the whole Arrow table "
            "first, then `pq.write_table` (snappy); DataFusion's native writer is shown with "
            "snappy too, so the three write the same encoding."
        ),
    ]
    return "\n".join(lines)

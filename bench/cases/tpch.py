"""TPC-H end to end: the 22 queries through each tool, on the same Parquet files.

One case per query, five variants, all over the demo data (scale 1; 0.01 in
quick mode):

* ``%%dfsql (workbench)``: the cell run by a real IPython shell, display hook
  included (text/plain and text/html), as a user sees it in Jupyter;
* ``datafusion raw``: a plain ``SessionContext``, ``ctx.sql(q)`` to an Arrow
  table, no IPython (the baseline);
* ``jupysql + duckdb``: ``%%sql`` on a native DuckDB connection, with display;
* ``magic-duckdb``: ``%%dql`` on another DuckDB connection, with display;
* ``polars sql``: ``pl.SQLContext`` over ``scan_parquet``, collected eagerly.

Queries run as written. q15 is three statements (create view; select; drop
view): the magics take the cell whole; DataFusion's and polars' ``sql()`` take
one statement, so for them the file's statements run one at a time, in order,
as DataFusion's own TPC-H runner does. Each variant reports the rows it
handed back, counted after the clock stops; the workbench must agree with
DataFusion, and a peer that disagrees is noted, not fixed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bench import notebook, peers
from bench.harness import Case, Sample, by_case, geometric_means, ratio_table
from workbench import datasets

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.harness import Measurement

WORKBENCH = "%%dfsql (workbench)"
RAW = "datafusion raw"
JUPYSQL = "jupysql + duckdb"
MAGIC_DUCKDB = "magic-duckdb"
POLARS = "polars sql"

HANDS_BACK = {
    WORKBENCH: (
        "an HTML and text preview of the first 20 rows plus a streaming `workbench.Result` "
        "(`-o NAME` binds it); only the batches the preview needed (20 rows + 1) were read, "
        "nothing else is materialised, and paging, `write_parquet` or `to_polars` continue "
        "the same run without re-executing the query."
    ),
    RAW: "a fully materialised `pyarrow.Table` of the whole result (no display).",
    JUPYSQL: (
        "a lazy `ResultSet` whose display fetched `displaylimit` (10) rows from DuckDB's "
        "result; `.DataFrame()`/`.PolarsDataFrame()` re-execute the query. On q15 it shows "
        "the outcome of the last statement (`drop view`: 'Success'), not the rows."
    ),
    MAGIC_DUCKDB: (
        "a fully materialised pandas DataFrame of the whole result (its display shows a "
        "truncated view)."
    ),
    POLARS: "a fully materialised polars DataFrame (eager collect, no display).",
}


def cases(quick: bool) -> list[Case]:  # noqa: FBT001
    variants = _variants(datasets.tpch(0.01 if quick else 1))
    for _, run in variants:
        # First calls pay one-off costs (imports, planners, caches): keep them out of q01.
        run("SELECT count(*) FROM nation")
    return [
        Case(
            name=f"q{number:02d}",
            group="tpch",
            baseline=RAW,
            variants={name: _bind(run, datasets.tpch_query(number)) for name, run in variants},
            repeats=2 if quick else 3,
            check=_rows_agree,
            subject=WORKBENCH,
        )
        for number in range(1, 23)
    ]


def _variants(data: datasets.TpchData) -> list[tuple[str, Callable[[str], Sample]]]:
    """Set every tool up over ``data``'s files; each variant runs one query's text."""
    tables = {name: data.parquet(name) for name in datasets.TABLES}
    notebook.load_extension("workbench")
    data.register(notebook.shell().user_ns["wb"])
    peers.connect_jupysql(tables)
    peers.connect_magic_duckdb(tables)
    ctx = peers.datafusion_context(tables)
    polars_ctx = peers.polars_context(tables)

    def raw(sql: str) -> Sample:
        return _timed(lambda: peers.run_statements(lambda s: ctx.sql(s).to_arrow_table(), sql))

    def polars(sql: str) -> Sample:
        return _timed(
            lambda: peers.run_statements(lambda s: polars_ctx.execute(s, eager=True), sql)
        )

    return [
        (WORKBENCH, lambda sql: _cell("%%dfsql\n" + sql)),
        (RAW, raw),
        (JUPYSQL, lambda sql: _cell("%%sql\n" + sql)),
        (MAGIC_DUCKDB, lambda sql: _cell("%%dql\n" + sql)),
        (POLARS, polars),
    ]


def _bind(run: Callable[[str], Sample], sql: str) -> Callable[[], Sample]:
    return lambda: run(sql)


def _cell(source: str) -> Sample:
    seconds, value = notebook.timed_cell(source)
    rows = count_rows(value)
    return Sample(seconds, {"rows": rows}, rows)


def _timed(run: Callable[[], Any]) -> Sample:
    started = time.perf_counter()
    value = run()
    seconds = time.perf_counter() - started
    rows = count_rows(value)
    return Sample(seconds, {"rows": rows}, rows)


def count_rows(value: Any) -> int:
    """Rows of what a tool handed back, reading the rest of a lazy result if needed."""
    import pyarrow as pa

    import workbench

    if isinstance(value, workbench.Result):
        # Streams the rows past the preview (head replayed first): untimed, only to check.
        return sum(batch.num_rows for batch in value)
    if isinstance(value, pa.Table):
        return int(value.num_rows)
    return len(value)  # pandas and polars frames; jupysql's ResultSet fetches the rest


def _rows_agree(last: dict[str, Any]) -> str | None:
    expected = last.get(RAW)
    if expected is None:
        return None
    if WORKBENCH in last:
        assert last[WORKBENCH] == expected, f"workbench {last[WORKBENCH]} rows, raw {expected}"
    differ = [f"{name} {rows}" for name, rows in last.items() if rows != expected]
    if not differ:
        return None
    return f"rows differ from {RAW} ({expected}): {', '.join(differ)}."


def summary(measurements: list[Measurement], *, quick: bool) -> str:
    means, complete = geometric_means(measurements)
    left_out = [name for name in by_case(measurements) if name not in complete]
    lines = [
        (
            f"TPC-H scale {0.01 if quick else 1} (Parquet, one file per table), 22 queries, "
            f"baseline `{RAW}`; the notebook variants include IPython's display formatting. "
            "q15 (create view; select; drop view) goes to the magics as one cell; DataFusion "
            "and polars run its statements one at a time, as DataFusion's TPC-H runner does."
        ),
        "",
        (
            f"Geometric mean of each variant's ratio over the {len(complete)} queries every "
            f"variant ran{' (left out: ' + ', '.join(left_out) + ')' if left_out else ''}:"
        ),
        "",
        "| variant | geometric mean ratio |",
        "|---|---:|",
        *[f"| {variant} | {mean:.2f} |" for variant, mean in means.items()],
        "",
        "Per-query ratios (variant / baseline):",
        "",
        *ratio_table(measurements),
    ]
    failures = [f"- {m.case}, {m.variant}: {m.error}" for m in measurements if m.error is not None]
    lines += ["", "Failed or unsupported:", "", *(failures or ["- none."])]
    lines += ["", "What each tool hands the user:", ""]
    lines += [f"- {variant}: {text}" for variant, text in HANDS_BACK.items()]
    return "\n".join(lines)

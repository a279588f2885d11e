"""What ``%%dfsql`` costs on top of DataFusion, and how that grows with rows and columns.

Each case is one query run two ways: as a ``%%dfsql`` cell in a real IPython
shell with display (the workbench), and as ``ctx.sql(q).to_arrow_table()`` on
a plain SessionContext (the baseline). The overhead is the ratio minus one;
the target is 3% at most.

The query aggregates ``generate_series(1, rows)`` into 100 groups with
``columns`` repeated sum expressions, so the engine's work grows with both
and is the same for the two variants: the result is 100 rows, of which the
workbench previews 20 and DataFusion collects all, a difference too small to
matter. What remains is the workbench's own cost: the cell, the SQL gate
(statement splitting and parameter scan over the text, which grows with the
columns), the stream, and formatting a preview as wide as the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench import notebook, peers
from bench.cases.tpch import count_rows
from bench.harness import Case, Sample, by_case

if TYPE_CHECKING:
    from collections.abc import Callable

    import datafusion

    from bench.harness import Measurement

WORKBENCH = "%%dfsql (workbench)"
RAW = "datafusion raw"
RAW_CELL = "datafusion raw in a cell"
TARGET = 0.03


def cases(quick: bool) -> list[Case]:  # noqa: FBT001
    notebook.load_extension("workbench")
    ctx = peers.datafusion_context({})
    rows = (1_000, 10_000, 100_000) if quick else (1_000, 100_000, 10_000_000)
    columns = (1, 16, 64)
    wide_rows = 10_000 if quick else 1_000_000
    shapes = [(n, 16) for n in rows] + [(wide_rows, c) for c in columns if c != 16]
    made = [_case(n, c, ctx, repeats=3 if quick else 7) for n, c in shapes]
    for variant in made[0].variants.values():
        variant()  # one-off first-call costs belong to no case
    return made


def query(rows: int, columns: int) -> str:
    sums = ",\n  ".join(f"sum(value * {i} + {i}) AS c{i}" for i in range(1, columns + 1))
    return (
        f"SELECT value % 100 AS k,\n  {sums}\n"
        f"FROM generate_series(1, {rows})\nGROUP BY k\nORDER BY k"
    )


def _case(rows: int, columns: int, ctx: datafusion.SessionContext, *, repeats: int) -> Case:
    sql = query(rows, columns)
    return Case(
        name=f"{rows:,} rows x {columns} columns",
        group="overhead",
        baseline=RAW,
        variants={WORKBENCH: _dfsql(sql), RAW: _raw(ctx, sql), RAW_CELL: _raw_cell(ctx, sql)},
        repeats=repeats,
        check=_same_rows,
        subject=WORKBENCH,
    )


def _dfsql(sql: str) -> Callable[[], Sample]:
    def run() -> Sample:
        seconds, result = notebook.timed_cell("%%dfsql\n" + sql)
        return Sample(seconds, value=count_rows(result))

    return run


def _raw(ctx: datafusion.SessionContext, sql: str) -> Callable[[], int]:
    return lambda: ctx.sql(sql).to_arrow_table().num_rows


def _raw_cell(ctx: datafusion.SessionContext, sql: str) -> Callable[[], Sample]:
    # The same raw call typed into a cell: separates IPython's own cost per cell
    # (history, compile, display hook) from what the workbench adds on top.
    notebook.shell().user_ns["_bench_ctx"] = ctx

    def run() -> Sample:
        seconds, rows = notebook.timed_cell(f"_bench_ctx.sql({sql!r}).to_arrow_table().num_rows")
        return Sample(seconds, value=rows)

    return run


def _same_rows(last: dict[str, Any]) -> None:
    if WORKBENCH in last and RAW in last:
        assert last[WORKBENCH] == last[RAW], last


def summary(measurements: list[Measurement], *, quick: bool) -> str:  # noqa: ARG001
    lines = [
        (
            "Overhead of `%%dfsql` (cell, SQL gate, stream, display) over "
            "`ctx.sql(q).to_arrow_table()` for the same query; target: at most "
            f"{TARGET:.0%}."
        ),
        "",
        "The last column compares with the same raw call typed into a cell, which pays",
        "IPython's own per-cell cost too: that difference is what the workbench adds.",
        "",
        (
            "| case | datafusion raw | %%dfsql | difference | overhead | within target "
            "| raw in a cell | %%dfsql over raw in a cell |"
        ),
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for name, variants in by_case(measurements).items():
        raw, wb, cell = variants[RAW], variants[WORKBENCH], variants[RAW_CELL]
        if raw.median_s is None or wb.median_s is None or wb.ratio is None:
            lines.append(
                f"| {name} | {_ms(raw.median_s)} | {_ms(wb.median_s)} | n/a | n/a | n/a | | |"
            )
            continue
        overhead = wb.ratio - 1
        over_cell = f"{wb.median_s / cell.median_s - 1:+.1%}" if cell.median_s else "n/a"
        lines.append(
            f"| {name} | {_ms(raw.median_s)} | {_ms(wb.median_s)} | "
            f"{(wb.median_s - raw.median_s) * 1000:+.1f} ms | {overhead:+.1%} | "
            f"{'yes' if overhead <= TARGET else 'no'} | {_ms(cell.median_s)} | {over_cell} |"
        )
    return "\n".join(lines)


def _ms(seconds: float | None) -> str:
    return "failed" if seconds is None else f"{seconds * 1000:.1f} ms"

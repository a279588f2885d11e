"""The demo data's Parquet layout, measured: tpchgen's default against rewritten layouts.

TPC-H scale 1 (0.01 and three queries in quick mode). The layouts hold the same rows:

* ``tpchgen``: the files as ``tpchgen-cli`` writes them (the demo data, the baseline):
  about 7 MiB row groups (114K lineitem rows), snappy, statistics and page indexes;
* ``sorted``: lineitem by ``l_shipdate`` and orders by ``o_orderdate`` (the columns most
  TPC-H filters range over), 128K-row groups, statistics and page indexes;
* ``sorted, 1M-row groups``: the same order in row groups of a million rows;
* ``1M-row groups``: tpchgen's order, a million rows per group.

The other six tables are the same files in every layout. Each variant is a workbench
session (``RuntimeProfile()``) over its layout, plus DuckDB over the baseline's and the
sorted files, so that the peers' side of a layout change is measured too. Every row
streams out; rows are compared by count between the variants.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

import workbench
from bench import peers
from bench.harness import geometric_means, means_and_ratios, tpch_row_count_cases
from workbench import datasets

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from bench.harness import Case, Measurement

TPCHGEN = "tpchgen"
SORTED = "sorted"
SORTED_BIG = "sorted, 1M-row groups"
BIG = "1M-row groups"
DUCK_TPCHGEN = "duckdb on tpchgen"
DUCK_SORTED = "duckdb on sorted"
LAYOUTS: dict[str, tuple[dict[str, str], int]] = {
    SORTED: ({"lineitem": "l_shipdate", "orders": "o_orderdate"}, 128 * 1024),
    SORTED_BIG: ({"lineitem": "l_shipdate", "orders": "o_orderdate"}, 1 << 20),
    BIG: ({}, 1 << 20),
}
"""Layout -> (sort column per rewritten table, rows per row group)."""
REWRITTEN = ("lineitem", "orders")
QUICK_QUERIES = (1, 6, 9)


def cases(quick: bool) -> list[Case]:  # noqa: FBT001
    data = datasets.tpch(0.01 if quick else 1)
    roots = {TPCHGEN: data.root / "parquet"}
    for name, (order, rows) in LAYOUTS.items():
        roots[name] = _rewritten(data, name, order, rows)
    runners: dict[str, Callable[[str], int]] = {
        name: _workbench(root) for name, root in roots.items()
    }
    runners[DUCK_TPCHGEN] = _duckdb(roots[TPCHGEN])
    runners[DUCK_SORTED] = _duckdb(roots[SORTED])
    return tpch_row_count_cases(
        "layout",
        QUICK_QUERIES if quick else range(1, 23),
        runners,
        baseline=TPCHGEN,
        subject=SORTED,
        quick=quick,
    )


def _rewritten(data: datasets.TpchData, name: str, order: dict[str, str], rows: int) -> Path:
    """The layout's directory beside the data (made once): rewritten tables, links to the rest."""
    slug = name.replace(",", "").replace(" ", "-")
    root = data.root / "layouts" / slug
    done = root / ".complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for table in datasets.TABLES:
        source = data.parquet(table)
        target = root / f"{table}.parquet"
        if table not in REWRITTEN:
            target.symlink_to(source)
            continue
        rewritten = pq.read_table(source)
        # pyarrow cannot sort (take) string_view columns, which tpchgen writes: plain strings.
        plain = [
            field.with_type(pa.string()) if field.type == pa.string_view() else field
            for field in rewritten.schema
        ]
        rewritten = rewritten.cast(pa.schema(plain))
        if table in order:
            rewritten = rewritten.sort_by(order[table])
        pq.write_table(
            rewritten,
            target,
            row_group_size=rows,
            compression="snappy",
            write_statistics=True,
            write_page_index=True,
        )
    done.touch()
    return root


def _workbench(root: Path) -> Callable[[str], int]:
    session = workbench.RuntimeProfile().session()
    datasets.register_parquet(session, root)
    return lambda sql: sum(batch.num_rows for batch in session.sql(sql))


def _duckdb(root: Path) -> Callable[[str], int]:
    con = peers.duckdb_connection({t: root / f"{t}.parquet" for t in datasets.TABLES})
    return lambda sql: peers.duckdb_rows(con, sql)


def summary(measurements: list[Measurement], *, quick: bool) -> str:
    _, complete = geometric_means(measurements)
    lines = [
        (
            f"TPC-H scale {0.01 if quick else 1}, {len(complete)} queries, every row streamed "
            "out, ratios against the workbench on tpchgen's files. The layouts are described in "
            "`bench/cases/layout.py`; DuckDB reads the tpchgen and the sorted files."
        ),
        "",
        *means_and_ratios(measurements),
    ]
    return "\n".join(lines)

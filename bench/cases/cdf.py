"""Change data feed: a small change of a large table, read from the feed or found by a diff.

A Delta table with change data feed on, of N rows (1M and 10M; 20k and 100k with
``--quick``), then one commit that updates 0.1% of its rows. Two ways to get what changed:

- ``table_changes (workbench)`` (baseline): ``SELECT * FROM table_changes('t', 1, 1)``,
  the rows the commit wrote to its change files (pre- and post-images);
- ``anti-join of two snapshots``: the table at versions 0 and 1 registered side by side and
  ``v1 EXCEPT v0`` plus ``v0 EXCEPT v1``, what a diff without a feed has to do: read both
  snapshots whole.

Both return the same changed rows (checked). The same number of rows changes at both sizes,
so the summary shows how each cost grows with the table. A third case measures the peak
memory of streaming a feed through ``wb.changes`` in a fresh process (:mod:`bench.probe`): the
whole table's insert (N rows) against the one small commit; streaming keeps it flat.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

import workbench
from bench.cases.large import run_probe
from bench.harness import MEMORY_METRIC, Case, Sample, by_case
from workbench import datasets

if TYPE_CHECKING:
    from pathlib import Path

    from bench.harness import Measurement

SIZES = (1_000_000, 10_000_000)
SIZES_QUICK = (20_000, 100_000)
EVERY = 1000
"""One row in EVERY changes: 0.1%."""
TARGET = 50
FEED = "table_changes (workbench)"
DIFF = "anti-join of two snapshots"
LARGE, SMALL = "stream the whole table's insert", "stream the one small commit"


@functools.cache
def table(rows: int) -> Path:
    """The benchmark table of ``rows`` rows (built once, kept under the data directory)."""
    path = datasets.data_dir() / "bench" / f"cdf-{rows}"
    if (path / "_delta_log" / "00000000000000000001.json").exists():
        return path
    ids = pa.array(range(rows), pa.int64())
    data = pa.table(
        {"id": ids, "v": pa.compute.multiply(ids, 7), "tag": pa.compute.cast(ids, pa.string())}
    )
    write_deltalake(
        path, data, mode="overwrite", configuration={"delta.enableChangeDataFeed": "true"}
    )
    DeltaTable(path).update(updates={"v": "v + 1"}, predicate=f"id % {EVERY} = 0")
    return path


def _speed_case(rows: int, quick: bool) -> Case:  # noqa: FBT001
    path = str(table(rows))
    session = workbench.RuntimeProfile().session()
    session.register_delta("t", path)
    session.register_delta("v0", path, version=0)
    session.register_delta("v1", path, version=1)
    feed_sql = "SELECT id, v, tag, _change_type FROM table_changes('t', 1, 1)"
    diff_sql = (
        "SELECT id, v, tag, 'update_postimage' AS _change_type "
        "FROM (SELECT * FROM v1 EXCEPT SELECT * FROM v0) "
        "UNION ALL SELECT id, v, tag, 'update_preimage' FROM (SELECT * FROM v0 EXCEPT SELECT * FROM v1)"
    )

    def run(sql: str) -> Any:
        def timed() -> Sample:
            started = time.perf_counter()
            got = session.sql(sql).to_pyarrow()
            return Sample(time.perf_counter() - started, value=got)

        return timed

    def check(last: dict[str, Any]) -> str:
        def key(t: pa.Table) -> list[tuple]:
            return sorted(
                zip(*(t.column(c).to_pylist() for c in ("id", "v", "_change_type")), strict=True)
            )

        if key(last[FEED]) != key(last[DIFF]):
            raise AssertionError(f"{FEED} and {DIFF} found other changes")
        return ""

    return Case(
        name=f"what changed: 0.1% of {rows:,} rows",
        group="cdf",
        baseline=FEED,
        variants={FEED: run(feed_sql), DIFF: run(diff_sql)},
        repeats=3 if quick else 5,
        note=f"{rows // EVERY:,} rows updated in one commit; target: {DIFF} {TARGET}x slower or more",
        check=check,
        subject=FEED,
    )


def _memory_case(rows: int) -> Case:
    path = table(rows)
    return Case(
        name=f"peak memory streaming wb.changes, {rows:,}-row table",
        group="cdf",
        baseline=SMALL,
        variants={
            LARGE: lambda: run_probe("cdf-stream-all", path),
            SMALL: lambda: run_probe("cdf-stream-commit", path),
        },
        repeats=1,
        note=f"{LARGE}: {rows:,} rows; {SMALL}: {2 * rows // EVERY:,} rows; each in a fresh process",
        subject=LARGE,
    )


def cases(quick: bool) -> list[Case]:  # noqa: FBT001
    sizes = SIZES_QUICK if quick else SIZES
    return [*(_speed_case(rows, quick) for rows in sizes), _memory_case(sizes[-1])]


def summary(measurements: list[Measurement], *, quick: bool) -> str:  # noqa: ARG001
    lines, growth = [], []
    for case, variants in by_case(measurements).items():
        if case.startswith("peak memory"):
            large, small = variants.get(LARGE), variants.get(SMALL)
            if large and small and large.metrics and small.metrics:
                lines.append(
                    f"- {case}: {large.metrics[MEMORY_METRIC]:.0f} MB for the whole table, "
                    f"{small.metrics[MEMORY_METRIC]:.0f} MB for the small commit."
                )
            continue
        mine, theirs = variants[FEED], variants.get(DIFF)
        if mine.median_s is None or theirs is None or theirs.median_s is None:
            lines.append(f"- {case}: failed ({mine.error or (theirs.error if theirs else '')})")
            continue
        ratio = theirs.median_s / mine.median_s
        verdict = "met" if ratio >= TARGET else "MISSED"
        lines.append(
            f"- {case}: {FEED} {mine.median_s * 1000:.1f} ms, {DIFF} {theirs.median_s * 1000:.0f} ms: "
            f"{ratio:.1f}x (target >= {TARGET}x: {verdict})."
        )
        growth.append(
            (
                int(case.rsplit(" of ", 1)[1].split()[0].replace(",", "")),
                mine.median_s,
                theirs.median_s,
            )
        )
    if len(growth) == 2:
        (r0, f0, d0), (r1, f1, d1) = growth
        lines.append(
            f"- growth with the table ({r1 / r0:.0f}x the rows, 0.1% of them changed): the feed "
            f"took {f1 / f0:.1f}x as long, the diff {d1 / d0:.1f}x."
        )
    return "\n".join(lines)

"""DataFusion settings swept over TPC-H through the workbench (issue 18, item 1).

Which of DataFusion's settings should the workbench change from their defaults on a small
machine? One case per TPC-H query (scale 1; 0.01 and three queries in quick mode), one
variant per setting, each in its own ``workbench.Session`` over the same Parquet files:

* ``defaults``: ``RuntimeProfile.datafusion()``, DataFusion's own engine defaults (the
  baseline and the subject: where a setting beats it, the report's slower section says so);
* each setting alone, through the profile's own field or applied with ``SET`` right after
  the session is made;
* ``workbench defaults``: ``RuntimeProfile()`` as shipped, with the settings
  :func:`workbench.session.machine_tuning` derives from this machine;
* ``memory limit 1 GiB``: the same under a limit, where the profile steps back to
  DataFusion's partitioning and join thresholds and gives the pool 3/4 of the limit.

The settings cover the issue's list: join thresholds, partitions, repartitioning (splitting
files into ranges), batch size, pushdown, statistics (collecting them, and the join
reordering that uses them), page indexes, sort-merge joins and memory. SF10 under a memory
limit is the ``bigdata`` group.

A run streams every row out of ``Session.sql`` (q15's three statements go whole, as one
cell), timed; its rows are then checked against the defaults' answer, computed once per
query before the repeats (which also warms the files into the page cache). Rows are
compared sorted, numbers within a relative 1e-6: a setting that changes an answer is
recorded as failed, with the first difference, and left out of the geometric means.

Peak memory is the process's resident high-water mark during the run above its resident
memory just before it (``VmHWM``, reset through ``/proc/self/clear_refs`` by
:func:`bench.probe.start_peak`, which falls back to ``ru_maxrss`` without ``/proc``), in the
bench's own process: memory an earlier run returned to the allocator is reused without
showing, so a small peak is a lower bound.
"""

from __future__ import annotations

import dataclasses
import math
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

import workbench
from bench import probe
from bench.harness import (
    MEMORY_METRIC,
    Case,
    Sample,
    VariantError,
    by_case,
    geometric_means,
    ratio_table,
)
from workbench import datasets

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.harness import Measurement

DEFAULTS = "defaults"
JOIN_THRESHOLD = "join threshold 64 MiB / 4M rows"
PARTITIONS = "target_partitions=4"
PUSHDOWN = "pushdown_filters=true"
BATCH = "batch_size=16384"
SORT_MERGE = "prefer_hash_join=false"
NO_FILE_SPLIT = "repartition_file_scans=false"
NO_STATISTICS = "collect_statistics=false"
NO_JOIN_REORDER = "join_reordering=false"
NO_PAGE_INDEX = "enable_page_index=false"
MEMORY_LIMIT = "memory limit 1 GiB"
BEST = "workbench defaults"

_PLAIN = workbench.RuntimeProfile.datafusion
SETTINGS: dict[str, tuple[workbench.RuntimeProfile, tuple[str, ...]]] = {
    DEFAULTS: (_PLAIN(), ()),
    JOIN_THRESHOLD: (
        _PLAIN(join_single_partition_bytes=64 << 20, join_single_partition_rows=4_000_000),
        (),
    ),
    PARTITIONS: (_PLAIN(target_partitions=4), ()),
    PUSHDOWN: (_PLAIN(), ("SET datafusion.execution.parquet.pushdown_filters = true",)),
    BATCH: (_PLAIN(batch_size=16384), ()),
    SORT_MERGE: (_PLAIN(), ("SET datafusion.optimizer.prefer_hash_join = false",)),
    NO_FILE_SPLIT: (_PLAIN(), ("SET datafusion.optimizer.repartition_file_scans = false",)),
    NO_STATISTICS: (_PLAIN(), ("SET datafusion.execution.collect_statistics = false",)),
    NO_JOIN_REORDER: (_PLAIN(), ("SET datafusion.optimizer.join_reordering = false",)),
    NO_PAGE_INDEX: (_PLAIN(), ("SET datafusion.execution.parquet.enable_page_index = false",)),
    MEMORY_LIMIT: (workbench.RuntimeProfile(memory_limit_bytes=1 << 30), ()),
    BEST: (workbench.RuntimeProfile(), ()),
}
"""Variant -> (its profile, statements run right after the session is made)."""

QUICK_QUERIES = (1, 7, 18)
"""Quick mode: a scan and aggregate, and the two joins the issue found most changed."""

OUTLIER = 0.10
"""A query whose ratio is this far from 1 either way is listed under the tables."""

_REL_TOL = 1e-6
"""Numbers in two answers agree within this relative difference (sums in another order)."""

Rows = list[tuple[Any, ...]]


def cases(quick: bool) -> list[Case]:  # noqa: FBT001
    data = datasets.tpch(0.01 if quick else 1)
    sessions = {name: _session(data, *setting) for name, setting in SETTINGS.items()}
    numbers = QUICK_QUERIES if quick else range(1, 23)
    return [_case(n, sessions, repeats=1 if quick else 5) for n in numbers]


def _session(
    data: datasets.TpchData, profile: workbench.RuntimeProfile, sets: tuple[str, ...]
) -> workbench.Session:
    session = profile.session()
    for statement in sets:
        _collect(session.sql(statement))
    data.register(session)
    # First calls pay one-off costs (planners, the gate's first schema read): not a case's.
    _collect(session.sql("SELECT count(*) FROM nation"))
    return session


def _case(number: int, sessions: dict[str, workbench.Session], *, repeats: int) -> Case:
    sql = datasets.tpch_query(number)
    expected: dict[str, Rows] = {}

    def setup() -> None:
        expected["rows"] = _rows(_collect(sessions[DEFAULTS].sql(sql)))

    return Case(
        name=f"q{number:02d}",
        group="profile",
        baseline=DEFAULTS,
        variants={name: _variant(session, sql, expected) for name, session in sessions.items()},
        repeats=repeats,
        setup=setup,
        subject=DEFAULTS,
    )


def _variant(
    session: workbench.Session, sql: str, expected: dict[str, Rows]
) -> Callable[[], Sample]:
    def run() -> Sample:
        before, source = probe.start_peak()
        started = time.perf_counter()
        batches = _collect(session.sql(sql))
        seconds = time.perf_counter() - started
        metrics = {MEMORY_METRIC: round(probe.peak(source) - before, 1)}
        rows = _rows(batches)
        difference = _difference(expected["rows"], rows)
        if difference is not None:
            msg = f"answer differs from {DEFAULTS}: {difference}"
            raise VariantError(msg)
        return Sample(seconds, {**metrics, "rows": len(rows)}, len(rows))

    return run


def _collect(result: workbench.Result) -> list[pa.RecordBatch]:
    return list(result)


# -- answers -------------------------------------------------------------------------


def _rows(batches: list[pa.RecordBatch]) -> Rows:
    """The rows of a result, sorted so that the order a plan happens to produce does not count."""
    if not batches:
        return []
    table = pa.Table.from_batches(batches)
    return sorted((tuple(row.values()) for row in table.to_pylist()), key=_sort_key)


def _sort_key(row: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    # Numbers rounded, so that two sums that differ in their last digits sort alike.
    return tuple(
        (0, None)
        if v is None
        else (1, float(f"{v:.6g}"))
        if isinstance(v, float | Decimal)
        else (1, v)
        for v in row
    )


def _difference(expected: Rows, found: Rows) -> str | None:
    """None if the answers agree; else the first difference, short enough for a table cell."""
    if len(expected) != len(found):
        return f"{len(found)} rows, expected {len(expected)}"
    for index, (want, got) in enumerate(zip(expected, found, strict=True)):
        if len(want) != len(got) or not all(map(_same, want, got)):
            return f"sorted row {index} is {got!r}, expected {want!r}"
    return None


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, float | Decimal) and isinstance(got, float | Decimal):
        return math.isclose(float(want), float(got), rel_tol=_REL_TOL, abs_tol=_REL_TOL)
    return bool(want == got)


# -- the report ------------------------------------------------------------------------


def _changed(profile: workbench.RuntimeProfile) -> dict[str, Any]:
    """The fields where ``profile`` differs from ``RuntimeProfile()``."""
    default = workbench.RuntimeProfile()
    return {
        f.name: getattr(profile, f.name)
        for f in dataclasses.fields(profile)
        if getattr(profile, f.name) != getattr(default, f.name)
    }


def summary(measurements: list[Measurement], *, quick: bool) -> str:
    means, complete = geometric_means(measurements)
    cases = by_case(measurements)
    left_out = [name for name in cases if name not in complete]
    lines = [
        (
            f"TPC-H scale {0.01 if quick else 1}, {len(cases)} queries through `Session.sql`, "
            f"every row streamed out; each setting in its own session against `{DEFAULTS}` "
            "(`RuntimeProfile.datafusion()`, DataFusion's own defaults). A setting whose answer "
            "differs from the defaults' (sorted rows, numbers within 1e-6) counts as failed."
        ),
        "",
        "| variant | how | geometric mean ratio | largest peak RSS (MB) |",
        "|---|---|---:|---:|",
    ]
    for name, (profile, sets) in SETTINGS.items():
        how = ", ".join(
            [f"`RuntimeProfile({k}={v})`" for k, v in _changed(profile).items()]
            + [f"`{s.removeprefix('SET ')}`" for s in sets]
        )
        mean = means.get(name)
        peaks = [
            m.metrics[MEMORY_METRIC]
            for m in measurements
            if m.variant == name and MEMORY_METRIC in m.metrics
        ]
        lines.append(
            f"| {name} | {how or 'as shipped'} | {'n/a' if mean is None else f'{mean:.2f}'} "
            f"| {max(peaks) if peaks else 'n/a'} |"
        )
    lines += [
        "",
        (
            f"Geometric means over the {len(complete)} queries every variant ran"
            f"{' (left out: ' + ', '.join(left_out) + ')' if left_out else ''}. "
            "Peak RSS: above the process's resident memory before the run, median of the "
            "repeats, largest over the queries (a lower bound; see the module's docstring)."
        ),
        "",
        "Per-query ratios (setting / defaults):",
        "",
        *ratio_table(measurements),
        "",
        f"More than {OUTLIER:.0%} slower or faster than the defaults:",
        "",
    ]
    outliers = [
        f"- {m.case}, {m.variant}: {m.ratio:.2f}"
        for m in measurements
        if m.variant != DEFAULTS and m.ratio is not None and abs(m.ratio - 1) > OUTLIER
    ]
    failures = [f"- {m.case}, {m.variant}: {m.error}" for m in measurements if m.error is not None]
    lines += [*(outliers or ["- none."]), "", "Failed or wrong answers:", ""]
    lines += failures or ["- none."]
    return "\n".join(lines)

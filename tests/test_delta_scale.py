"""Pruning at scale: on a 1,000-file Delta table, a query scans exactly the files it needs.

The table is written by deltalake in one commit, 1,024 rows to a file: ``id`` is clustered
(each file holds a disjoint range of consecutive ids) and ``v`` is not (each file holds
the values of a narrow range placed at random among the files). For every predicate the
files whose statistics overlap it are computed here, from deltalake's own add actions,
and compared with what the executed plan says was scanned.
"""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake

import workbench

if TYPE_CHECKING:
    from workbench.plans import PhysicalNode

FILES = 1_000
ROWS_PER_FILE = 1_024
"""deltalake's writer cuts a file at its 1,024-row batches once past ``target_file_size``."""
SEED = 13

Bounds = dict[str, tuple[int | None, int | None]]
"""Column -> inclusive (low, high), None for unbounded: a conjunction of ranges."""

PREDICATES: dict[str, Bounds] = {
    "clustered id, ~1% of the files": {"id": (500_000, 510_000)},
    "clustered id, inside one file": {"id": (1_030, 1_040)},
    "non-clustered v, files scattered over the table": {"v": (42_050, 43_520)},
    "both columns": {"id": (None, 299_999), "v": (90_000, None)},
    "no file can match": {"id": (FILES * ROWS_PER_FILE, None)},
}


def _write(uri: str) -> None:
    ids = np.arange(FILES * ROWS_PER_FILE, dtype=np.int64)
    # v of the file holding id: a random 100-wide slot per file, filled densely (id % 97
    # takes every value in 1,024 consecutive ids), so a file whose [min, max] overlaps a
    # range also holds a row in it.
    slot = np.random.default_rng(SEED).permutation(FILES)
    v = slot[ids // ROWS_PER_FILE] * 100 + ids % 97
    # One batch: the writer keeps its order, so every file is a run of consecutive ids.
    write_deltalake(uri, pa.table({"id": ids, "v": v}), target_file_size=1)


@pytest.fixture(scope="module")
def clustered(tmp_path_factory) -> str:
    uri = str(tmp_path_factory.mktemp("delta_scale") / "clustered")
    _write(uri)  # about 0.2 s: one commit, one batch
    return uri


@pytest.fixture(scope="module")
def files(clustered) -> pa.Table:
    """deltalake's add actions: one row per file, with its min/max per column."""
    return pa.table(DeltaTable(clustered).get_add_actions(flatten=True))


@pytest.fixture(scope="module")
def everything(clustered) -> pa.Table:
    """The whole table as deltalake's own reader returns it."""
    return DeltaTable(clustered).to_pyarrow_table()


@pytest.fixture(scope="module")
def scale_session(clustered) -> workbench.Session:
    session = workbench.RuntimeProfile().session()
    session.register_delta("clustered", clustered)
    session.register_delta("clustered_by_file", clustered, file_column_name="source_file")
    return session


def _sql(bounds: Bounds) -> str:
    parts = []
    for column, (low, high) in bounds.items():
        if low is not None and high is not None:
            parts.append(f"{column} BETWEEN {low} AND {high}")
        elif low is not None:
            parts.append(f"{column} >= {low}")
        else:
            parts.append(f"{column} <= {high}")
    return " AND ".join(parts)


def _expression(bounds: Bounds) -> pc.Expression:
    conditions = []
    for column, (low, high) in bounds.items():
        if low is not None:
            conditions.append(pc.field(column) >= low)
        if high is not None:
            conditions.append(pc.field(column) <= high)
    return functools.reduce(operator.and_, conditions)


def _overlapping(files: pa.Table, bounds: Bounds) -> set[str]:
    """Paths of the files whose [min, max] intersects every range of ``bounds``."""
    keep = set()
    for row in files.to_pylist():
        if all(
            (low is None or row[f"max.{column}"] >= low)
            and (high is None or row[f"min.{column}"] <= high)
            for column, (low, high) in bounds.items()
        ):
            keep.add(row["path"])
    return keep


def _scan_counts(plan: PhysicalNode) -> tuple[int, int]:
    """(Delta files scanned, Parquet files opened) from an executed plan's scan nodes."""
    nodes = list(plan.walk())
    (delta,) = [n for n in nodes if n.operator == "DeltaScanExec"]
    opened = sum(dict(n.metrics).get("files_opened", 0) for n in nodes)
    return dict(delta.metrics)["count_files_scanned"], opened


def test_the_table_has_1000_files_with_disjoint_id_ranges(files):
    ordered = files.sort_by("min.id")
    lows, highs = ordered["min.id"].to_pylist(), ordered["max.id"].to_pylist()
    assert ordered.num_rows == FILES
    assert set(ordered["num_records"].to_pylist()) == {ROWS_PER_FILE}
    assert all(high < low for high, low in zip(highs, lows[1:], strict=False))


def test_the_file_index_is_deltalakes_add_actions(scale_session, files):
    index = scale_session.sql(
        'SELECT path, num_records, "min.id", "max.id", "min.v", "max.v" '
        "FROM wb_delta_files('clustered')"
    ).to_pyarrow()
    columns = ["path", "num_records", "min.id", "max.id", "min.v", "max.v"]
    assert index.sort_by("path").to_pydict() == files.select(columns).sort_by("path").to_pydict()


@pytest.mark.parametrize("bounds", PREDICATES.values(), ids=PREDICATES.keys())
def test_files_scanned_are_exactly_those_whose_statistics_overlap(
    scale_session, files, everything, bounds
):
    expected = _overlapping(files, bounds)
    where = _sql(bounds)
    result = scale_session.sql(f"SELECT id, v FROM clustered WHERE {where}")
    rows = result.to_pyarrow()
    scanned, opened = _scan_counts(scale_session.plan(result.run.run_id).physical)
    # Every overlapping file holds a matching row, so the files the rows came from are at
    # least the overlapping ones; as many were scanned, so those are exactly the ones.
    assert (scanned, opened) == (len(expected), len(expected))
    sources = scale_session.sql(
        f"SELECT DISTINCT source_file FROM clustered_by_file WHERE {where}"
    ).to_pyarrow()
    assert {path.rsplit("/", 1)[-1] for path in sources["source_file"].to_pylist()} == expected
    assert len(expected) < FILES // 20  # the predicates are selective
    # And the rows are deltalake's own reader's.
    want = everything.filter(_expression(bounds)).sort_by("id")
    assert rows.sort_by("id").to_pydict() == want.to_pydict()

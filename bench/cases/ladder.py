"""The UDF ladder's upper rungs: the Rust UDAF, UDWF and UDTF against Python and built-ins.

Each function of the extension is timed in SQL (the baseline) against the same function
written as a Python UDF with DataFusion's Python API, and against a built-in formulation
where DataFusion has one. The variants of a case read the same in-memory table (or Parquet
file) in alternating repeats; its check compares what the timed runs returned and runs the
Rust function through the DataFrame API too, which must give its SQL result. SQL goes to
the context directly: the functions are timed, not the workbench's statement gate (the
``gate`` group measures that). Ratio = variant / Rust: 20 is 20 times slower than Rust.

* ``stable_id_agg(x, s)`` per group (2M rows, 64 groups): the Python UDAF is an
  ``Accumulator`` computing the documented fingerprint with ``workbench.canonical``. No
  built-in computes the same value; the built-in way to fingerprint a group's rows
  independently of their order is ``sha256`` of its sorted ``md5`` row hashes (same
  property, other bytes).
* ``sessionize(ts, 1800) OVER (PARTITION BY k ORDER BY ts)`` (2M NULL-free rows, 2,000
  keys, some equal timestamps, stored in key and time order as a log clustered by key
  would be: DataFusion still sorts, cheaply, so the window functions are most of the
  time): two Python ``WindowEvaluator`` classes, a row loop and a vectorised one
  (``pyarrow.compute``), and the SQL formulation ``1 + sum(ts - lag(ts) > gap)`` over
  ``ROWS UNBOUNDED PRECEDING``. With ROWS, equal timestamps get one session number only if
  ``lag`` and ``sum`` see them in one order; they do (one sort feeds both windows) and the
  check confirms it on the data. RANGE would not depend on that, at about 1.7x the time.
* ``wb_parquet_metadata(path)`` (a footer of 200 row groups x 40 columns, 8,000 rows, read
  20 times per repeat): a Python table function building the same rows from
  ``pyarrow.parquet.ParquetFile(path).metadata``. DataFusion's ``parquet_metadata`` is a
  datafusion-cli function, not in the Python package (no TABLE routine of that name): no
  built-in.

The aggregate and the window function also have a *floor* case, kept apart because a floor
is not an equivalent (so it never counts as a peer the workbench lost to): the same query
shape with a cheap built-in, which shows what the function itself adds. For
``stable_id_agg``: ``count``, ``min`` and ``max`` of each row's ``sha256`` (the per-row
hashing, no fingerprint); for ``sessionize``: ``row_number()`` over the same window (the
sort and the window machinery, no sessions).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datafusion
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from datafusion import Accumulator, col, lit
from datafusion.catalog import Table
from datafusion.expr import Window
from datafusion.user_defined import WindowEvaluator

import workbench
from bench.harness import Case, by_case
from workbench import canonical, datasets, extension

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.harness import Measurement

SEED = 16
GROUP = "ladder"

AGG_RUST = "rust stable_id_agg"
AGG_PYTHON = "python udaf"
AGG_FLOOR = "built-in floor: count, min/max of sha256"
AGG_BUILTIN = "built-in: sha256 of sorted md5s"
WIN_RUST = "rust sessionize"
WIN_PYTHON = "python udwf, row loop"
WIN_VECTOR = "python udwf, pyarrow.compute"
WIN_BUILTIN = "built-in: lag + running sum"
WIN_FLOOR = "built-in floor: row_number()"
META_RUST = "rust wb_parquet_metadata"
META_PYTHON = "python udtf, pyarrow footer"

KINDS = {
    AGG_PYTHON: "Python equivalent",
    AGG_FLOOR: "built-in floor (not an equivalent: hashes rows, no fingerprint)",
    AGG_BUILTIN: "built-in equivalent (same property, other bytes)",
    WIN_PYTHON: "Python equivalent",
    WIN_VECTOR: "Python equivalent",
    WIN_BUILTIN: "built-in equivalent",
    WIN_FLOOR: "built-in floor (not an equivalent: the same window, no sessions)",
    META_PYTHON: "Python equivalent",
}
NO_BUILTIN = {META_RUST: "no built-in (parquet_metadata is datafusion-cli only)"}


def cases(quick: bool) -> list[Case]:  # noqa: FBT001
    if quick:
        return [*_aggregate(20_000), *_window(20_000, 50), _table(10, 10, calls=2)]
    return [*_aggregate(2_000_000), *_window(2_000_000, 2000), _table(200, 40, calls=20)]


def _session(name: str, table: pa.Table) -> workbench.Session:
    session = workbench.RuntimeProfile().session()
    # In memory, so the variants time the function and not the data source.
    session.ctx.from_arrow(table, name=name)
    return session


def _rows(session: workbench.Session, sql: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = session.ctx.sql(sql).to_pylist()
    return rows


# -- stable_id_agg -------------------------------------------------------------------

_AGG_DOMAIN = b"workbench.stable_id_agg.v1\0"
_MOD = 1 << 128


class _PythonFingerprint(Accumulator):
    """stable_id_agg's documented formula: row count and sum of row ids mod 2**128."""

    def __init__(self) -> None:
        self._rows = 0
        self._sum = 0

    def update(self, *values: pa.Array) -> None:
        total = self._sum
        for row in zip(*(v.to_pylist() for v in values), strict=True):
            total += int(canonical.stable_id(*row), 16)
        self._sum = total % _MOD
        self._rows += len(values[0])

    def merge(self, states: list[pa.Array]) -> None:
        rows, sums = states
        for n, raw in zip(rows.to_pylist(), sums.to_pylist(), strict=True):
            self._rows += n
            self._sum = (self._sum + int.from_bytes(raw, "big")) % _MOD

    def state(self) -> list[pa.Scalar]:
        return [pa.scalar(self._rows, pa.int64()), pa.scalar(self._sum.to_bytes(16, "big"))]

    def evaluate(self) -> pa.Scalar:
        if self._rows == 0:
            return pa.scalar(None, pa.string())
        payload = self._rows.to_bytes(8, "big") + self._sum.to_bytes(16, "big")
        return pa.scalar(hashlib.sha256(_AGG_DOMAIN + payload).hexdigest()[:32])


def _aggregate(rows: int) -> list[Case]:
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 1 << 40, rows)
    table = pa.table(
        {"g": np.arange(rows) % 64, "x": x, "s": pc.cast(pa.array(x % 100_003), pa.string())}
    )
    session = _session("agg_input", table)
    session.ctx.register_udaf(
        datafusion.udaf(
            _PythonFingerprint,
            [pa.int64(), pa.string()],
            pa.string(),
            [pa.int64(), pa.binary()],
            "immutable",
            name="py_stable_id_agg",
        )
    )
    row_text = "concat_ws('|', x, s)"
    sql = {
        AGG_RUST: "SELECT g, stable_id_agg(x, s) AS f FROM agg_input GROUP BY g",
        AGG_PYTHON: "SELECT g, py_stable_id_agg(x, s) AS f FROM agg_input GROUP BY g",
        AGG_FLOOR: (
            f"SELECT g, count(*) AS n, min(sha256({row_text})) AS lo, "
            f"max(sha256({row_text})) AS hi FROM agg_input GROUP BY g"
        ),
        AGG_BUILTIN: (
            "SELECT g, sha256(string_agg(h, '' ORDER BY h)) AS f "
            f"FROM (SELECT g, md5({row_text}) AS h FROM agg_input) GROUP BY g"
        ),
    }

    def by_group(variant: str) -> Callable[[], dict[int, dict[str, Any]]]:
        return lambda: {r["g"]: r for r in _rows(session, sql[variant])}

    def groups(last: dict[str, Any]) -> None:
        assert {len(groups) for groups in last.values()} == {min(rows, 64)}, last

    def check(last: dict[str, Any]) -> str:
        groups(last)
        rust = {g: r["f"] for g, r in last[AGG_RUST].items()}
        if AGG_PYTHON in last:
            python = {g: r["f"] for g, r in last[AGG_PYTHON].items()}
            assert python == rust, "python udaf differs from stable_id_agg"
        udaf = session.ctx.udaf("stable_id_agg")
        df = session.ctx.table("agg_input").aggregate(
            [col("g")], [udaf(col("x"), col("s")).alias("f")]
        )
        assert {r["g"]: r["f"] for r in df.to_pylist()} == rust, "DataFrame API differs"
        return "python udaf = Rust per group; DataFrame API = SQL"

    name = f"stable_id_agg(x, s) over {rows:,} rows in 64 groups"
    return [
        Case(
            name=name,
            group=GROUP,
            baseline=AGG_RUST,
            variants={v: by_group(v) for v in (AGG_RUST, AGG_PYTHON, AGG_BUILTIN)},
            repeats=3,
            check=check,
            subject=AGG_RUST,
        ),
        Case(
            name=f"{name}: built-in floor",
            group=GROUP,
            baseline=AGG_RUST,
            variants={v: by_group(v) for v in (AGG_RUST, AGG_FLOOR)},
            repeats=3,
            check=groups,
        ),
    ]


# -- sessionize ----------------------------------------------------------------------

GAP = 1800


class _PythonSessionsLoop(WindowEvaluator):
    """Session numbers of one window partition, row by row (NULLs as sessionize does)."""

    def evaluate_all(self, values: list[pa.Array], num_rows: int) -> pa.Array:  # noqa: ARG002
        gap = values[1][0].as_py()
        out: list[int | None] = []
        session, previous = 0, None
        for t in values[0].to_pylist():
            if t is None:
                out.append(None)
                continue
            session = 1 if previous is None else session + (t - previous > gap)
            previous = t
            out.append(session)
        return pa.array(out, pa.int64())


class _PythonSessionsVector(WindowEvaluator):
    """Session numbers of one window partition with array kernels (NULL-free input only)."""

    def evaluate_all(self, values: list[pa.Array], num_rows: int) -> pa.Array:
        ts = values[0]
        if num_rows == 0:
            return pa.array([], pa.int64())
        starts = pc.greater(pc.subtract(ts[1:], ts[:-1]), values[1][0])
        first = pa.array([1], pa.int64())
        return pc.cumulative_sum(pa.concat_arrays([first, pc.cast(starts, pa.int64())]))


def _events(rows: int, keys: int) -> pa.Table:
    """``rows`` events of ``keys`` keys in key and time order, steps of 0 (equal timestamps)
    to 2.5 hours, so sessions both continue and break."""
    assert rows % keys == 0, (rows, keys)
    per_key = rows // keys
    steps = np.random.default_rng(SEED).choice([0, 1, 60, 600, 1800, 1801, 3600, 9000], rows)
    # One row of the grid per key: its running sum is that key's clock.
    ts = np.cumsum(steps.reshape(keys, per_key), axis=1).ravel()
    return pa.table({"k": np.repeat(np.arange(keys), per_key), "ts": ts})


def _window(rows: int, keys: int) -> list[Case]:
    session = _session("events", _events(rows, keys))
    for evaluator, name in (
        (_PythonSessionsLoop, "py_sessionize"),
        (_PythonSessionsVector, "py_sessionize_vector"),
    ):
        session.ctx.register_udwf(
            datafusion.udwf(evaluator, [pa.int64(), pa.int64()], pa.int64(), "immutable", name=name)
        )
    over = "OVER (PARTITION BY k ORDER BY ts)"
    sessions = {
        WIN_RUST: f"SELECT k, ts, sessionize(ts, {GAP}) {over} AS s FROM events",
        WIN_PYTHON: f"SELECT k, ts, py_sessionize(ts, {GAP}) {over} AS s FROM events",
        WIN_VECTOR: f"SELECT k, ts, py_sessionize_vector(ts, {GAP}) {over} AS s FROM events",
        WIN_BUILTIN: (
            f"SELECT k, ts, 1 + sum(CASE WHEN ts - prev > {GAP} THEN 1 ELSE 0 END) OVER "
            "(PARTITION BY k ORDER BY ts ROWS UNBOUNDED PRECEDING) AS s "
            f"FROM (SELECT k, ts, lag(ts) {over} AS prev FROM events)"
        ),
        WIN_FLOOR: f"SELECT k, ts, row_number() {over} AS s FROM events",
    }
    # A digest of every row's session number, so no variant hands back millions of rows.
    digest = (
        "SELECT count(*) AS rows_, count(s) AS numbered, sum(s) AS total, max(s) AS most, "
        "sum(s * (ts % 9973 + k)) AS weighted FROM ({})"
    )

    def run(variant: str) -> Callable[[], dict[str, Any]]:
        return lambda: _rows(session, digest.format(sessions[variant]))[0]

    def numbered(last: dict[str, Any]) -> None:
        assert {got["numbered"] for got in last.values()} == {rows}, last

    def check(last: dict[str, Any]) -> str:
        numbered(last)
        rust = last[WIN_RUST]
        differ = [name for name, got in last.items() if got != rust]
        assert not differ, f"{differ} differ from sessionize: {last}"
        udwf = session.ctx.udwf("sessionize")
        window = Window(partition_by=[col("k")], order_by=[col("ts").sort(ascending=True)])
        df = session.ctx.table("events").select(
            col("k"), col("ts"), udwf(col("ts"), lit(GAP)).over(window).alias("s")
        )
        session.ctx.register_view("sessions_df", df)
        assert _rows(session, digest.format("SELECT * FROM sessions_df"))[0] == rust
        return "every variant's session numbers agree; DataFrame API = SQL"

    name = f"sessionize over {rows:,} rows, {keys:,} keys"
    return [
        Case(
            name=name,
            group=GROUP,
            baseline=WIN_RUST,
            variants={v: run(v) for v in (WIN_RUST, WIN_PYTHON, WIN_VECTOR, WIN_BUILTIN)},
            repeats=3,
            check=check,
            subject=WIN_RUST,
        ),
        Case(
            name=f"{name}: built-in floor",
            group=GROUP,
            baseline=WIN_RUST,
            variants={v: run(v) for v in (WIN_RUST, WIN_FLOOR)},
            repeats=3,
            check=numbered,
        ),
    ]


# -- wb_parquet_metadata -------------------------------------------------------------


def _footer_file(row_groups: int, columns: int) -> Path:
    """A Parquet file of ``row_groups`` row groups of 50 rows and ``columns`` int64, float64
    and string columns (written once, kept under the data directory)."""
    path = datasets.data_dir() / "bench" / "ladder" / f"footer-{row_groups}x{columns}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(SEED)
    rows = row_groups * 50
    data = {}
    for c in range(columns):
        kind = c % 3
        if kind == 0:
            data[f"i{c}"] = pa.array(rng.integers(-(10**9), 10**9, rows))
        elif kind == 1:
            # Two decimals, so pyarrow and Rust print the same shortest text.
            data[f"f{c}"] = pa.array(np.round(rng.uniform(-1000, 1000, rows), 2))
        else:
            data[f"s{c}"] = pc.cast(pa.array(rng.integers(0, 10**6, rows)), pa.string())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=".footer-", dir=path.parent)
    os.close(fd)
    pq.write_table(pa.table(data), partial, row_group_size=50)
    Path(partial).replace(path)
    return path


_INT, _TEXT = pa.int64(), pa.string()
_META_SCHEMA = pa.schema(
    [
        ("filename", _TEXT),
        ("file_size_bytes", _INT),
        ("created_by", _TEXT),
        ("format_version", _INT),
        ("num_row_groups", _INT),
        ("file_num_rows", _INT),
        ("row_group_id", _INT),
        ("row_group_num_rows", _INT),
        ("row_group_num_columns", _INT),
        ("row_group_bytes", _INT),
        ("row_group_compressed_bytes", _INT),
        ("column_id", _INT),
        ("path_in_schema", _TEXT),
        ("physical_type", _TEXT),
        ("compression", _TEXT),
        ("encodings", pa.list_(_TEXT)),
        ("num_values", _INT),
        ("stats_min", _TEXT),
        ("stats_max", _TEXT),
        ("stats_null_count", _INT),
        ("stats_distinct_count", _INT),
        ("data_page_offset", _INT),
        ("dictionary_page_offset", _INT),
        ("total_compressed_size", _INT),
        ("total_uncompressed_size", _INT),
    ]
)
"""wb_parquet_metadata's columns (its Rust schema marks some NOT NULL; values are what count)."""


def _statistic(value: Any) -> str | None:
    """A statistic as wb_parquet_metadata prints it, for int64, float64 and string columns."""
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _python_parquet_metadata(written: str) -> pa.Table:
    """wb_parquet_metadata's rows from pyarrow's reading of the footer (same columns)."""
    meta = pq.ParquetFile(written).metadata
    columns: dict[str, list[Any]] = {name: [] for name in _META_SCHEMA.names}
    file_facts = {
        "filename": written,
        "file_size_bytes": Path(written).stat().st_size,
        "created_by": meta.created_by,
        # The footer's version field: 1 for format 1.0, 2 for every 2.x.
        "format_version": 1 if meta.format_version == "1.0" else 2,
        "num_row_groups": meta.num_row_groups,
        "file_num_rows": meta.num_rows,
    }
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        chunks = [rg.column(c) for c in range(rg.num_columns)]
        compressed = sum(chunk.total_compressed_size for chunk in chunks)
        for c, chunk in enumerate(chunks):
            stats = chunk.statistics
            min_max = stats is not None and stats.has_min_max
            row = {
                **file_facts,
                "row_group_id": g,
                "row_group_num_rows": rg.num_rows,
                "row_group_num_columns": rg.num_columns,
                "row_group_bytes": rg.total_byte_size,
                "row_group_compressed_bytes": compressed,
                "column_id": c,
                "path_in_schema": chunk.path_in_schema,
                "physical_type": chunk.physical_type,
                "compression": chunk.compression,
                "encodings": list(chunk.encodings),
                "num_values": chunk.num_values,
                "stats_min": _statistic(stats.min) if min_max else None,
                "stats_max": _statistic(stats.max) if min_max else None,
                "stats_null_count": stats.null_count if stats and stats.has_null_count else None,
                "stats_distinct_count": (
                    stats.distinct_count if stats and stats.has_distinct_count else None
                ),
                "data_page_offset": chunk.data_page_offset,
                "dictionary_page_offset": chunk.dictionary_page_offset,
                "total_compressed_size": chunk.total_compressed_size,
                "total_uncompressed_size": chunk.total_uncompressed_size,
            }
            for name, value in row.items():
                columns[name].append(value)
    return pa.table(columns, schema=_META_SCHEMA)


def _python_table_function(path: Any) -> Table:
    return Table(ds.dataset(_python_parquet_metadata(path.to_variant().value_string())))


def _comparable(table: pa.Table) -> list[dict[str, Any]]:
    """Rows with each chunk's encodings as a set: the two readers list them in other orders."""
    return [{**row, "encodings": sorted(row["encodings"])} for row in table.to_pylist()]


def _table(row_groups: int, columns: int, calls: int) -> Case:
    path = str(_footer_file(row_groups, columns))
    session = workbench.RuntimeProfile().session()
    session.ctx.register_udtf(datafusion.udtf(_python_table_function, "py_parquet_metadata"))

    def run(function: str) -> Callable[[], pa.Table]:
        def calls_in_a_row() -> pa.Table:
            for _ in range(calls):
                # Planned each time: the footer is read at planning, as a user's query would.
                got = session.ctx.sql(f"SELECT * FROM {function}('{path}')").to_arrow_table()
            return got

        return calls_in_a_row

    def check(last: dict[str, pa.Table]) -> str:
        rust = last[META_RUST]
        assert rust.num_rows == row_groups * columns, rust.num_rows
        if META_PYTHON in last:
            assert _comparable(last[META_PYTHON]) == _comparable(rust), "python udtf differs"
        function = extension.function("wb_parquet_metadata", session.ctx)
        df = session.ctx.read_table(function(lit(path)))
        assert df.to_arrow_table().equals(rust), "DataFrame API differs"
        return f"{calls} calls per repeat; python udtf = Rust row for row; DataFrame API = SQL"

    return Case(
        name=f"wb_parquet_metadata of {row_groups} row groups x {columns} columns",
        group=GROUP,
        baseline=META_RUST,
        variants={META_RUST: run("wb_parquet_metadata"), META_PYTHON: run("py_parquet_metadata")},
        repeats=3,
        check=check,
        subject=META_RUST,
    )


# -- summary -------------------------------------------------------------------------


def summary(measurements: list[Measurement], *, quick: bool) -> str:  # noqa: ARG001
    """Per Rust function: how many times its time each equivalent took, and of what kind."""
    lines = [
        "How many times the Rust function's time each other variant took (above 1: it is faster).",
        "",
        "| case | variant | kind | x of Rust |",
        "|---|---|---|---:|",
    ]
    for case, variants in by_case(measurements).items():
        rust = variants[next(iter(variants.values())).baseline]
        for name, m in variants.items():
            if m is rust:
                continue
            cell = "failed" if m.ratio is None else f"{m.ratio:.2f}"
            lines.append(f"| {case} | {name} | {KINDS.get(name, '')} | {cell} |")
        if rust.variant in NO_BUILTIN:
            lines.append(f"| {case} | - | {NO_BUILTIN[rust.variant]} | |")
    return "\n".join(lines)

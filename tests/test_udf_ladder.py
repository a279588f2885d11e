"""The Rust rungs of the UDF ladder: an aggregate, a window function and a table function.

``stable_id_agg`` is checked against a Python reference built on ``canonical.stable_id``,
``sessionize`` against a reference sessionizer, and ``wb_parquet_metadata`` against
pyarrow's reading of the same footer. Each runs through SQL (the session's gate) and the
DataFrame API, over several partitions and batches where that matters.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import random
from typing import TYPE_CHECKING, Any

import datafusion
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datafusion import col, lit
from datafusion.expr import Window

import workbench
from workbench import canonical, extension
from workbench.errors import SqlError

from .conftest import run_python

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

LADDER = ("stable_id_agg", "sessionize", "wb_parquet_metadata")


# -- references ----------------------------------------------------------------


def fingerprint(rows: Iterable[Sequence[Any]]) -> str | None:
    """stable_id_agg's documented formula, from the Python stable_id."""
    count, total = 0, 0
    for row in rows:
        count += 1
        total = (total + int(canonical.stable_id(*row), 16)) % (1 << 128)
    if count == 0:
        return None
    payload = count.to_bytes(8, "big") + total.to_bytes(16, "big")
    return hashlib.sha256(b"workbench.stable_id_agg.v1\0" + payload).hexdigest()[:32]


def sessions(times: Sequence[float | None], gap: float) -> list[int | None]:
    """Session numbers of ascending ``times`` (NULLs get NULL and do not move the clock)."""
    out: list[int | None] = []
    session, previous = 0, None
    for t in times:
        if t is None:
            out.append(None)
            continue
        session = 1 if previous is None else session + (t - previous > gap)
        previous = t
        out.append(session)
    return out


# -- registration --------------------------------------------------------------


def test_every_session_registers_the_ladder_and_reports_it(session):
    assert set(LADDER) <= set(session.registered)
    caps = workbench.capabilities(session)
    assert caps.provided == tuple(extension.COMPONENT_KINDS)
    assert caps.registered == session.registered
    kinds = {
        row["routine_name"]: row["function_type"]
        for row in session.ctx.sql(
            "SELECT routine_name, function_type FROM information_schema.routines"
        ).to_pylist()
    }
    assert kinds["stable_id_agg"] == "AGGREGATE"
    assert kinds["sessionize"] == "WINDOW"
    assert kinds["wb_parquet_metadata"] == "TABLE"
    assert {extension.COMPONENT_KINDS[name] for name in LADDER} == {"aggregate", "window", "table"}


def test_a_profile_can_leave_the_ladder_out():
    session = workbench.RuntimeProfile(extensions=("stable_id",)).session()
    assert session.registered == ("stable_id",)
    with pytest.raises(SqlError, match="sessionize"):
        session.sql("SELECT sessionize(1, 1) OVER ()")


# -- stable_id_agg -------------------------------------------------------------

GROUPED = pa.table(
    {
        "g": ["a", "b", "a", None, "b", "a", None],
        "x": [1, None, 3, 4, 2, None, None],
        "s": ["p", "q", None, "r", "q", "p", None],
    }
)


def _grouped(session: workbench.Session, query: str) -> dict[Any, Any]:
    rows = session.sql(query).to_pyarrow().to_pylist()
    return {row["g"]: row["f"] for row in rows}


def _expected_by_group(table: pa.Table, *columns: str) -> dict[Any, str | None]:
    groups: dict[Any, list[tuple[Any, ...]]] = {}
    for row in table.to_pylist():
        groups.setdefault(row["g"], []).append(tuple(row[c] for c in columns))
    return {g: fingerprint(rows) for g, rows in groups.items()}


def test_stable_id_agg_matches_the_reference_per_group_with_nulls(session):
    session.ctx.from_arrow(GROUPED, name="t")
    got = _grouped(session, "SELECT g, stable_id_agg(x) AS f FROM t GROUP BY g")
    assert got == _expected_by_group(GROUPED, "x")
    got = _grouped(session, "SELECT g, stable_id_agg(x, s) AS f FROM t GROUP BY g")
    assert got == _expected_by_group(GROUPED, "x", "s")


def test_stable_id_agg_counts_null_rows_and_duplicates(session):
    row = session.sql(
        "SELECT stable_id_agg(x) AS with_null, stable_id_agg(x) FILTER (WHERE x IS NOT NULL) "
        "AS without, stable_id_agg(y) AS twice FROM (VALUES (1, 7), (NULL, 7)) AS v(x, y)"
    ).to_pyarrow()
    values = row.to_pylist()[0]
    assert values["with_null"] == fingerprint([(1,), (None,)])
    assert values["without"] == fingerprint([(1,)])
    assert values["twice"] == fingerprint([(7,), (7,)])
    assert values["with_null"] != values["without"]


def test_stable_id_agg_distinct_fingerprints_the_set_of_rows():
    session = _partitioned(2000, 4, seed=4)
    rows = session.ctx.table("t").to_pylist()
    expected = {
        g: fingerprint({(r["x"] if r["x"] is None else r["x"] % 7,) for r in rows if r["g"] == g})
        for g in range(37)
    }
    # Alone, DataFusion rewrites it to a GROUP BY; beside another aggregate, the accumulator
    # keeps the set of row ids itself. Both give the fingerprint of the distinct rows.
    alone = _grouped(session, "SELECT g, stable_id_agg(DISTINCT x % 7) AS f FROM t GROUP BY g")
    beside = _grouped(
        session,
        "SELECT g, stable_id_agg(DISTINCT x % 7) AS f, stable_id_agg(s) AS other FROM t GROUP BY g",
    )
    assert alone == beside == expected


def test_stable_id_agg_of_no_rows_is_null(session):
    rows = session.sql(
        "SELECT stable_id_agg(value) AS f FROM generate_series(1, 10) WHERE value > 10"
    ).to_pyarrow()
    assert rows.column("f").to_pylist() == [None]


def _partitioned(n: int, target_partitions: int, seed: int) -> workbench.Session:
    """``n`` rows in four partitions of several batches each, shuffled by ``seed``."""
    rng = random.Random(seed)
    rows = [(i % 37, i if i % 11 else None, f"v{i % 5}") for i in range(n)]
    rng.shuffle(rows)
    table = pa.table(
        {"g": [r[0] for r in rows], "x": [r[1] for r in rows], "s": [r[2] for r in rows]}
    )
    batches = table.to_batches(max_chunksize=97)
    partitions = [batches[i::4] for i in range(4)]
    session = workbench.RuntimeProfile(target_partitions=target_partitions).session()
    session.ctx.register_record_batches("t", partitions)
    return session


def test_stable_id_agg_merges_partial_states_across_partitions():
    one = _grouped(
        _partitioned(3000, 1, seed=1), "SELECT g, stable_id_agg(x, s) AS f FROM t GROUP BY g"
    )
    four = _partitioned(3000, 4, seed=2)
    many = _grouped(four, "SELECT g, stable_id_agg(x, s) AS f FROM t GROUP BY g")
    assert many == one
    total = four.sql("SELECT stable_id_agg(x, s) AS f FROM t").to_pyarrow().column("f")[0]
    rows = four.ctx.table("t").to_pylist()
    assert total.as_py() == fingerprint((r["x"], r["s"]) for r in rows)
    assert many[0] == fingerprint((r["x"], r["s"]) for r in rows if r["g"] == 0)


def test_stable_id_agg_with_partial_aggregation_skipped():
    session = _partitioned(3000, 4, seed=3)
    for setting in (
        "SET datafusion.execution.skip_partial_aggregation_probe_rows_threshold = 10",
        "SET datafusion.execution.skip_partial_aggregation_probe_ratio_threshold = 0.0",
    ):
        session.ctx.sql(setting)
    got = _grouped(session, "SELECT g, stable_id_agg(x, s) AS f FROM t GROUP BY g")
    rows = session.ctx.table("t").to_pylist()
    assert got == {g: fingerprint((r["x"], r["s"]) for r in rows if r["g"] == g) for g in got}


def test_stable_id_agg_over_a_sliding_frame_retracts_rows(session):
    rows = session.sql(
        "SELECT value AS i, stable_id_agg(value % 3) OVER (ORDER BY value "
        "ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS f FROM generate_series(1, 8) ORDER BY i"
    ).to_pyarrow()
    expected = [fingerprint([(v % 3,) for v in range(max(1, i - 2), i + 1)]) for i in range(1, 9)]
    assert rows.column("f").to_pylist() == expected


def test_stable_id_agg_through_the_dataframe_api(session):
    session.ctx.from_arrow(GROUPED, name="t")
    agg = session.ctx.udaf("stable_id_agg")
    df = session.ctx.table("t").aggregate([col("g")], [agg(col("x"), col("s")).alias("f")])
    got = {row["g"]: row["f"] for row in df.to_pylist()}
    assert got == _expected_by_group(GROUPED, "x", "s")
    standalone = extension.function("stable_id_agg")
    assert isinstance(standalone, datafusion.AggregateUDF)
    total = session.ctx.table("t").aggregate([], [standalone(col("x")).alias("f")])
    assert total.to_pylist() == [{"f": fingerprint((x,) for x in GROUPED.column("x").to_pylist())}]


def test_stable_id_agg_refuses_types_without_an_encoding(session):
    with pytest.raises(SqlError, match=r"stable_id_agg: argument 1 has type Interval.*VARCHAR"):
        session.sql("SELECT stable_id_agg(INTERVAL '1 day')")


# -- sessionize ----------------------------------------------------------------

EVENTS = pa.table(
    {
        "user": ["u1", "u1", "u1", "u1", "u1", "u2", "u2", "u2", "u3"],
        "ts": pa.array(
            [0, 0, 1800, 3601, None, 100, 5000, 5000, None], pa.timestamp("s", tz="UTC")
        ),
    }
)


def _epoch(value: dt.datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _by_user(rows: list[dict[str, Any]]) -> dict[str, list[tuple[Any, Any]]]:
    out: dict[str, list[tuple[Any, Any]]] = {}
    for row in rows:
        out.setdefault(row["user"], []).append((_epoch(row["ts"]), row["s"]))
    return out


def _check_sessions(rows: list[dict[str, Any]], gap: float) -> None:
    for user, pairs in _by_user(rows).items():
        ordered = sorted(pairs, key=lambda p: (p[0] is None, p[0] or 0))
        assert [s for _, s in ordered] == sessions([t for t, _ in ordered], gap), user


@pytest.mark.parametrize("gap", ["1800", "1800.0", "INTERVAL '30 minutes'", "INTERVAL '1 hour'"])
def test_sessionize_matches_the_reference(session, gap):
    session.ctx.from_arrow(EVENTS, name="ev")
    rows = session.sql(
        f"SELECT user, ts, sessionize(ts, {gap}) OVER (PARTITION BY user ORDER BY ts) AS s FROM ev"
    ).to_pyarrow()
    seconds = 3600.0 if "hour" in gap else 1800.0
    _check_sessions(rows.to_pylist(), seconds)


def test_sessionize_edge_cases(session):
    session.ctx.from_arrow(EVENTS, name="ev")
    rows = session.sql(
        "SELECT user, ts, sessionize(ts, 1800) OVER (PARTITION BY user ORDER BY ts) AS s "
        "FROM ev ORDER BY user, ts NULLS LAST"
    ).to_pyarrow()
    got = [(r["user"], r["s"]) for r in rows.to_pylist()]
    assert got == [
        # First row is session 1; an equal timestamp and a gap of exactly 1800 s stay in it;
        # 1801 s later starts session 2; a NULL ts gets NULL.
        ("u1", 1), ("u1", 1), ("u1", 1), ("u1", 2), ("u1", None),
        ("u2", 1), ("u2", 2), ("u2", 2),
        ("u3", None),
    ]  # fmt: skip


def test_sessionize_over_many_partitions_and_batches():
    rng = random.Random(7)
    users = [f"u{i}" for i in range(23)]
    rows = [(rng.choice(users), rng.randrange(0, 50_000)) for _ in range(4000)]
    table = pa.table(
        {"user": [u for u, _ in rows], "ts": pa.array([t for _, t in rows], pa.timestamp("s"))}
    )
    batches = table.to_batches(max_chunksize=113)
    session = workbench.RuntimeProfile(target_partitions=4).session()
    session.ctx.register_record_batches("ev", [batches[i::4] for i in range(4)])
    got = session.sql(
        "SELECT user, ts, sessionize(ts, 600) OVER (PARTITION BY user ORDER BY ts) AS s FROM ev"
    ).to_pyarrow()
    as_utc = [{**r, "ts": r["ts"].replace(tzinfo=dt.UTC)} for r in got.to_pylist()]
    _check_sessions(as_utc, 600.0)


def test_sessionize_on_plain_numbers_and_dates(session):
    rows = session.sql(
        "SELECT v, sessionize(v, 2) OVER (ORDER BY v) AS s FROM (VALUES (1), (3), (6), (6.5)) t(v)"
    ).to_pyarrow()
    assert rows.column("s").to_pylist() == [1, 1, 2, 2]
    rows = session.sql(
        "SELECT d, sessionize(d, INTERVAL '1 day') OVER (ORDER BY d) AS s FROM (VALUES "
        "(DATE '2024-01-01'), (DATE '2024-01-02'), (DATE '2024-01-04')) t(d)"
    ).to_pyarrow()
    assert rows.column("s").to_pylist() == [1, 1, 2]


def test_sessionize_through_the_dataframe_api(session):
    session.ctx.from_arrow(EVENTS, name="ev")
    udwf = session.ctx.udwf("sessionize")
    window = Window(partition_by=[col("user")], order_by=[col("ts").sort(ascending=True)])
    df = session.ctx.table("ev").select(
        col("user"), col("ts"), udwf(col("ts"), lit(1800)).over(window).alias("s")
    )
    _check_sessions(df.to_pylist(), 1800.0)
    assert isinstance(extension.function("sessionize"), datafusion.WindowUDF)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "SELECT sessionize(ts, 60) OVER (PARTITION BY user ORDER BY ts DESC) FROM ev",
            r"ts goes backwards at row \d+ of its window partition; order the window by it",
        ),
        (
            "SELECT sessionize(user, 60) OVER (ORDER BY ts) FROM ev",
            r"ts \(argument 1\) has type Utf8",
        ),
        (
            "SELECT sessionize(ts, INTERVAL '1 month') OVER (ORDER BY ts) FROM ev",
            "months, which have no fixed length",
        ),
        (
            "SELECT sessionize(ts, -5) OVER (ORDER BY ts) FROM ev",
            "finite, non-negative",
        ),
        ("SELECT sessionize(ts) OVER (ORDER BY ts) FROM ev", r"got 1 arguments"),
    ],
)
def test_sessionize_errors_say_what_to_write(session, query, message):
    session.ctx.from_arrow(EVENTS, name="ev")
    with pytest.raises(SqlError, match=message):
        session.sql(query).to_pyarrow()


# -- wb_parquet_metadata -------------------------------------------------------


@pytest.fixture(scope="module")
def parquet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven rows in row groups of three, of flat and nested columns, written by pyarrow."""
    table = pa.table(
        {
            "id": pa.array([5, 1, 9, 3, 7, 2, 8], pa.int64()),
            "name": ["b", None, "a", "d", None, None, "c"],
            "day": [dt.date(2024, 1, d) for d in (3, 1, 2, 9, 5, 4, 7)],
            "price": pa.array(
                [decimal.Decimal(v) for v in ("1.50", "2.25", "0.10", "9.99", "3.00", "4.50", "5")],
                pa.decimal128(5, 2),
            ),
            "at": pa.array([i * 3_600_000_000 for i in range(7)], pa.timestamp("us")),
            "s": [{"a": i, "b": str(i)} for i in range(7)],
            "l": [[i, i + 10] for i in range(7)],
        }
    )
    path = tmp_path_factory.mktemp("parquet") / "sample.parquet"
    pq.write_table(table, path, row_group_size=3)
    return path


def _meta_rows(session: workbench.Session, path: Path | str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        session.sql(f"SELECT * FROM wb_parquet_metadata('{path}')").to_pyarrow().to_pylist()
    )
    return rows


def _same_statistic(ours: str | None, theirs: Any) -> bool:
    if ours is None or theirs is None:
        return ours is theirs
    if isinstance(theirs, dt.datetime):
        return dt.datetime.fromisoformat(ours) == theirs
    if isinstance(theirs, bytes):
        return ours == theirs.decode()
    return ours == str(theirs)


def test_parquet_metadata_matches_pyarrow(session, parquet_file):
    rows = _meta_rows(session, parquet_file)
    meta = pq.ParquetFile(parquet_file).metadata
    assert len(rows) == meta.num_row_groups * meta.num_columns
    assert meta.num_row_groups == 3
    for row in rows:
        assert row["filename"] == str(parquet_file)
        assert row["file_size_bytes"] == parquet_file.stat().st_size
        assert row["created_by"] == meta.created_by
        assert row["num_row_groups"] == meta.num_row_groups
        assert row["file_num_rows"] == meta.num_rows == 7
        rg = meta.row_group(row["row_group_id"])
        assert row["row_group_num_rows"] == rg.num_rows
        assert row["row_group_num_columns"] == rg.num_columns
        assert row["row_group_bytes"] == rg.total_byte_size
        chunk = rg.column(row["column_id"])
        assert row["path_in_schema"] == chunk.path_in_schema
        assert row["physical_type"] == chunk.physical_type
        assert row["compression"] == chunk.compression
        assert set(row["encodings"]) == set(chunk.encodings)
        assert row["num_values"] == chunk.num_values
        assert row["total_compressed_size"] == chunk.total_compressed_size
        assert row["total_uncompressed_size"] == chunk.total_uncompressed_size
        assert row["data_page_offset"] == chunk.data_page_offset
        assert row["dictionary_page_offset"] == chunk.dictionary_page_offset
        stats = chunk.statistics
        assert row["stats_null_count"] == stats.null_count
        where = f"{chunk.path_in_schema} in row group {row['row_group_id']}"
        assert _same_statistic(row["stats_min"], stats.min if stats.has_min_max else None), where
        assert _same_statistic(row["stats_max"], stats.max if stats.has_min_max else None), where
    paths = [row["path_in_schema"] for row in rows[: meta.num_columns]]
    assert paths == ["id", "name", "day", "price", "at", "s.a", "s.b", "l.list.element"]


def test_parquet_metadata_renders_statistics_by_logical_type(session, parquet_file):
    first = {
        row["path_in_schema"]: (row["stats_min"], row["stats_max"])
        for row in _meta_rows(session, parquet_file)
        if row["row_group_id"] == 0
    }
    assert first["id"] == ("1", "9")
    assert first["name"] == ("a", "b")
    assert first["day"] == ("2024-01-01", "2024-01-03")
    assert first["price"] == ("0.10", "2.25")
    assert first["at"] == ("1970-01-01T00:00:00", "1970-01-01T02:00:00")
    assert first["l.list.element"] == ("0", "12")


def test_parquet_metadata_renders_more_types_as_datafusion_shows_them(session, tmp_path):
    path = tmp_path / "types.parquet"
    table = pa.table(
        {
            "bin": pa.array([b"\x00\xff", b"ab", None], pa.binary()),
            "tm": pa.array([dt.time(1, 2), dt.time(0, 0, 1), None], pa.time64("us")),
            "flag": [True, False, None],
            "f": pa.array([1.5, -0.25, None], pa.float32()),
            "utc": pa.array([0, 86_400_000_000, None], pa.timestamp("us", tz="UTC")),
            "u": pa.array([1, 2**64 - 1, None], pa.uint64()),
            "dict": pa.array(["x", "y", None]).dictionary_encode(),
            "dur": pa.array([5, 1, None], pa.duration("us")),
        }
    )
    pq.write_table(table, path)
    got = {
        row["path_in_schema"]: (row["stats_min"], row["stats_max"], row["stats_null_count"])
        for row in _meta_rows(session, path)
    }
    assert got == {
        "bin": ("00ff", "6162", 1),
        "tm": ("00:00:01", "01:02:00", 1),
        "flag": ("false", "true", 1),
        "f": ("-0.25", "1.5", 1),
        "utc": ("1970-01-01T00:00:00Z", "1970-01-02T00:00:00Z", 1),
        "u": ("1", "18446744073709551615", 1),
        "dict": ("x", "y", 1),
        # Arrow's statistics converter has no Duration: the physical value is shown.
        "dur": ("1", "5", 1),
    }


def test_parquet_metadata_answers_questions_in_sql(session, parquet_file):
    row = (
        session.sql(
            "SELECT count(DISTINCT row_group_id) AS groups, sum(row_group_num_rows) "
            "FILTER (WHERE column_id = 0) AS rows_, max(file_size_bytes) AS size "
            f"FROM wb_parquet_metadata('{parquet_file}')"
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    assert row == {"groups": 3, "rows_": 7, "size": parquet_file.stat().st_size}


def test_parquet_metadata_through_the_dataframe_api(session, parquet_file):
    table_function = extension.function("wb_parquet_metadata", session.ctx)
    assert isinstance(table_function, datafusion.TableFunction)
    df = session.ctx.read_table(table_function(lit(str(parquet_file))))
    got = df.filter(col("column_id") == lit(0)).select("row_group_num_rows").to_pylist()
    assert [r["row_group_num_rows"] for r in got] == [3, 3, 1]


def test_parquet_metadata_reads_a_rewritten_file_afresh(session, tmp_path):
    # Planned anew each time through the context (the session's plan cache would reuse the
    # first plan for the same text).
    path = tmp_path / "changing.parquet"
    query = f"SELECT * FROM wb_parquet_metadata('{path}')"
    pq.write_table(pa.table({"a": [1, 2]}), path)
    assert session.ctx.sql(query).count() == 1
    pq.write_table(pa.table({"a": [1, 2], "b": [3, 4]}), path)
    assert session.ctx.sql(query).count() == 2


def test_parquet_metadata_of_a_file_without_row_groups_is_empty(session, tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.int64())}), path)
    meta = pq.ParquetFile(path).metadata
    assert len(_meta_rows(session, path)) == meta.num_row_groups * meta.num_columns


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("'{dir}/missing.parquet'", r"no such file: .*missing\.parquet"),
        (
            "'{dir}'",
            r"is a directory; pass one Parquet file \(its Parquet files include a\.parquet",
        ),
        ("'{dir}/notes.csv'", r"notes\.csv is not a readable Parquet file"),
        ("'s3://bucket/a.parquet'", "only local files can be read"),
        ("1", "the path is a string constant"),
        ("", "takes one argument, got 0"),
        ("'a', 'b'", "takes one argument, got 2"),
    ],
)
def test_parquet_metadata_path_errors_are_clear(session, tmp_path, argument, message):
    pq.write_table(pa.table({"a": [1]}), tmp_path / "a.parquet")
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    query = f"SELECT * FROM wb_parquet_metadata({argument.format(dir=tmp_path)})"
    with pytest.raises(SqlError, match=message):
        session.sql(query).to_pyarrow()


def test_table_function_errors_never_crash_the_process(tmp_path):
    # An FFI table function exported without a runtime handle crashed its host on exactly
    # these calls (datafusion-ffi 55 reads the runtime from the exporter's private data).
    code = f"""
        import datafusion, workbench
        from datafusion import lit
        from workbench import extension
        session = workbench.RuntimeProfile().session()
        direct = extension.function("wb_parquet_metadata")
        for _ in range(10):
            for args in ("", "'a', 'b'", "'{tmp_path}'", "1"):
                try:
                    session.ctx.sql(f"SELECT * FROM wb_parquet_metadata({{args}})").collect()
                except Exception:
                    pass
            for call in ((), (lit("a"), lit("b")), (lit(str({str(tmp_path)!r})),)):
                try:
                    direct(*call)
                except Exception:
                    pass
        print("survived")
    """
    assert run_python(code).strip() == "survived"

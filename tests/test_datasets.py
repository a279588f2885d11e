"""Demo data: TPC-H as Parquet and CDF-enabled Delta, idempotent, queryable as written."""

from __future__ import annotations

import datafusion
import pytest
from deltalake import DeltaTable

import workbench
from workbench import datasets
from workbench.errors import DatasetError

from .conftest import SHARED_QUERIES


def test_generation_is_idempotent(tpch):
    manifest = tpch.root / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    again = datasets.tpch(0.1)
    assert again == tpch
    assert manifest.stat().st_mtime_ns == stamp


def test_generation_into_a_fresh_directory(tmp_path):
    data = datasets.tpch(0.01, tmp_path)
    assert sorted(p.name for p in (tmp_path / "tpch").iterdir()) == ["sf0.01"]
    assert data.row_counts["nation"] == 25
    assert data.row_counts["region"] == 5


def test_parquet_only_data_lives_apart_and_refuses_delta_clearly(tmp_path):
    data = datasets.tpch(0.01, tmp_path, delta=False)
    assert data.root.name == "sf0.01-parquet"
    assert sorted(p.name for p in data.root.iterdir()) == ["manifest.json", "parquet"]
    assert data.row_counts["region"] == 5
    session = workbench.RuntimeProfile().session()
    with pytest.raises(DatasetError, match=r"Parquet files only: use datasets\.tpch"):
        data.register(session, "delta")
    data.register(session)
    rows = session.sql("SELECT count(*) AS n FROM nation").to_pyarrow().to_pylist()
    assert rows == [{"n": 25}]
    # The full scale in the same directory is a directory of its own.
    assert datasets.tpch(0.01, tmp_path).root.name == "sf0.01"


def test_delta_tables_match_parquet_and_have_change_data_feed(tpch):
    for table in datasets.TABLES:
        delta = DeltaTable(str(tpch.delta(table)))
        assert delta.metadata().configuration.get("delta.enableChangeDataFeed") == "true"
        rows = sum(
            int(n) for n in delta.get_add_actions(flatten=True).column("num_records").to_pylist()
        )
        assert rows == tpch.row_counts[table]


def test_bad_scale_is_refused():
    with pytest.raises(DatasetError, match="scale factor must be positive"):
        datasets.tpch(0)


@pytest.mark.parametrize("number", range(1, 23))
def test_tpch_query_through_the_workbench_matches_raw_datafusion(tpch, tpch_session, number):
    sql = datasets.tpch_query(number)
    ours = tpch_session.sql(sql).to_pyarrow()
    raw = datafusion.SessionContext()
    for table in datasets.TABLES:
        raw.register_parquet(table, str(tpch.parquet(table)))
    # Raw DataFusion runs each statement itself; q15's result is its second (create view; select; drop view).
    frames = [raw.sql(part) for part in sql.split(";") if part.strip()]
    expected = frames[1 if number == 15 else 0].to_arrow_table()
    assert ours.num_rows == expected.num_rows
    assert sorted(map(repr, ours.to_pylist())) == sorted(map(repr, expected.to_pylist()))


@pytest.mark.skipif(
    not SHARED_QUERIES.exists(), reason="../shared (the steering copy) is not beside this clone"
)
def test_shipped_queries_are_the_shared_ones_unchanged():
    for number in range(1, 23):
        shared = (SHARED_QUERIES / f"q{number:02d}.sql").read_text()
        assert datasets.tpch_query(number) == shared

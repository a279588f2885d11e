"""Delta tables through the extension's provider: registration, refresh, DDL, file index, errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

import workbench
from workbench.delta import DeltaError
from workbench.errors import SqlError


def _rows(session: workbench.Session, sql: str) -> list[dict]:
    return list(session.sql(sql).to_pyarrow().to_pylist())


@pytest.fixture
def events(tmp_path):
    """A small partitioned Delta table written by deltalake in three commits (versions 0-2)."""
    uri = str(tmp_path / "events")
    write_deltalake(uri, pa.table({"id": [1, 2], "kind": ["a", "b"]}), partition_by=["kind"])
    write_deltalake(uri, pa.table({"id": [3], "kind": ["a"]}), mode="append")
    DeltaTable(uri).delete("id = 2")
    return uri


def test_register_delta_reads_the_current_version_not_the_directory(session, events):
    table = session.register_delta("events", events)
    assert table.version == 2
    assert table.partition_columns == ["kind"]
    # The deleted row's file is still on disk (not vacuumed); a listing would return it.
    assert _rows(session, "SELECT id FROM events ORDER BY id") == [{"id": 1}, {"id": 3}]


def test_time_travel_by_version_and_timestamp(session, events):
    session.register_delta("v0", events, version=0)
    assert _rows(session, "SELECT id FROM v0 ORDER BY id") == [{"id": 1}, {"id": 2}]
    history = DeltaTable(events).history()
    second = next(h for h in history if h["version"] == 1)["timestamp"]  # ms since the epoch
    import datetime as dt

    at = dt.datetime.fromtimestamp(second / 1000, dt.UTC)
    session.register_delta("v1", events, timestamp=at)
    assert session.delta_tables["v1"].version == 1
    assert _rows(session, "SELECT count(*) AS n FROM v1") == [{"n": 3}]


def test_a_commit_by_another_writer_is_seen_by_the_next_query(session, events):
    session.register_delta("events", events)
    session.register_delta("pinned", events, version=2)
    assert _rows(session, "SELECT count(*) AS n FROM events") == [{"n": 2}]
    write_deltalake(events, pa.table({"id": [9], "kind": ["c"]}), mode="append")  # another writer
    assert _rows(session, "SELECT count(*) AS n FROM events") == [{"n": 3}]
    assert session.delta_tables["events"].version == 3
    assert _rows(session, "SELECT count(*) AS n FROM pinned") == [{"n": 2}]  # pinned stays


def test_create_external_table_stored_as_delta_in_sql(session, events):
    result = session.sql(f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{events}'")
    assert result.to_pyarrow().to_pylist() == [{"delta_table": "ev", "version": 2}]
    assert _rows(session, "SELECT count(*) AS n FROM ev") == [{"n": 2}]
    rows = session.sql(
        f"CREATE OR REPLACE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{events}' "
        "OPTIONS ('version' '0', 'file_column_name' 'source_file');\n"
        "SELECT id, source_file FROM ev ORDER BY id"
    ).to_pyarrow()
    assert rows.column("id").to_pylist() == [1, 2]
    assert all(str(f).endswith(".parquet") for f in rows.column("source_file").to_pylist())
    assert "OPTIONS ('version' '0'" in session.registrations["ev"]


def test_create_external_delta_table_errors_run_nothing(session, events):
    with pytest.raises(SqlError, match="unknown Delta option 'versoin'"):
        session.sql(
            "CREATE TABLE keep AS SELECT 1 AS x;\n"
            f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{events}' "
            "OPTIONS ('versoin' '0')"
        )
    assert "keep" not in session.tables()
    session.sql(f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{events}'")
    with pytest.raises(SqlError, match="already exists"):
        session.sql(f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{events}'")


def test_a_read_only_session_refuses_delta_ddl(tmp_path, events):
    session = workbench.RuntimeProfile(read_only=True, artifact_dir=str(tmp_path)).session()
    with pytest.raises(workbench.errors.ReadOnlyError):
        session.sql(f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{events}'; SELECT 1")


def test_the_file_index_has_a_row_per_file_with_statistics(session, events):
    session.register_delta("events", events)
    index = session.sql(
        'SELECT path, size_bytes, num_records, "partition.kind" AS kind, "min.id" AS lo, '
        "\"max.id\" AS hi FROM wb_delta_files('events') ORDER BY lo"
    ).to_pyarrow()
    assert index.num_rows == len(DeltaTable(events).file_uris()) == 2
    assert index.column("kind").to_pylist() == ["a", "a"]
    assert index.column("lo").to_pylist() == [1, 3]
    assert index.column("num_records").to_pylist() == [1, 1]
    assert all(size > 0 for size in index.column("size_bytes").to_pylist())


def test_the_file_index_of_an_unknown_table_is_a_clear_error(session):
    with pytest.raises(SqlError, match="no Delta table of that name"):
        session.sql("SELECT * FROM wb_delta_files('nope')")


def test_an_unsupported_reader_feature_is_refused_naming_it(session, tmp_path):
    uri = tmp_path / "future"
    write_deltalake(str(uri), pa.table({"x": [1, 2, 3]}))
    protocol = {
        "protocol": {
            "minReaderVersion": 3,
            "minWriterVersion": 7,
            "readerFeatures": ["workbenchMadeUpFeature"],
            "writerFeatures": ["workbenchMadeUpFeature"],
        }
    }
    commit = {"commitInfo": {"timestamp": 1764000000000, "operation": "SET TBLPROPERTIES"}}
    (uri / "_delta_log" / "00000000000000000001.json").write_text(
        json.dumps(protocol) + "\n" + json.dumps(commit) + "\n"
    )
    with pytest.raises(DeltaError, match="workbenchMadeUpFeature"):
        session.register_delta("future", str(uri))
    # The version before the feature is still readable, and right.
    session.register_delta("past", str(uri), version=0)
    assert _rows(session, "SELECT sum(x) AS s FROM past") == [{"s": 6}]


def test_a_missing_table_is_a_clear_error(session, tmp_path):
    with pytest.raises(DeltaError, match=r"is not a Delta table: .* does not exist"):
        session.register_delta("nothing", str(tmp_path / "nothing"))


def test_filters_reach_the_scan_and_prune_files(session, tmp_path):
    uri = str(tmp_path / "many")
    for chunk in range(10):  # ten files with disjoint id ranges
        ids = list(range(chunk * 100, chunk * 100 + 100))
        write_deltalake(uri, pa.table({"id": ids, "v": [i * 2 for i in ids]}), mode="append")
    session.register_delta("many", uri)
    result = session.sql("SELECT sum(v) AS s FROM many WHERE id BETWEEN 250 AND 260")
    assert result.to_pyarrow().to_pylist() == [{"s": sum(i * 2 for i in range(250, 261))}]
    plan = session.plan(result.run.run_id)
    metrics = {n.operator: dict(n.metrics) for n in plan.physical.walk()}
    # Only the one file whose statistics overlap [250, 260] is scanned and opened.
    assert metrics["DeltaScanExec"]["count_files_scanned"] == 1
    assert metrics["DataSourceExec"]["files_opened"] == 1


def test_every_run_records_the_files_each_delta_scan_read(session, tmp_path):
    uri = str(tmp_path / "runs")
    for chunk in range(5):  # five files with disjoint id ranges
        write_deltalake(
            uri, pa.table({"id": list(range(chunk * 10, chunk * 10 + 10))}), mode="append"
        )
    session.register_delta("r", uri)
    session.sql("SELECT * FROM r WHERE id < 10").to_pyarrow()
    session.sql("SELECT * FROM r").to_pyarrow()
    session.sql("SELECT 1 AS no_delta").to_pyarrow()
    rows = (
        session.sql(
            "SELECT sql, delta_files FROM wb_runs WHERE sql LIKE 'SELECT %' ORDER BY started_at"
        )
        .to_pyarrow()
        .to_pylist()
    )
    by_sql = {row["sql"]: row["delta_files"] for row in rows}
    assert by_sql["SELECT * FROM r WHERE id < 10"] == [
        {"table": "r", "version": 4, "files_total": 5, "files_scanned": 1}
    ]
    assert by_sql["SELECT * FROM r"] == [
        {"table": "r", "version": 4, "files_total": 5, "files_scanned": 5}
    ]
    assert by_sql["SELECT 1 AS no_delta"] == []

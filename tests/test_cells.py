"""Cells run as written: order, all-or-nothing, and what a failing cell says it ran."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import workbench
from workbench.errors import ReadOnlyError, SqlError


def _count(result: workbench.Result) -> int:
    return int(result.to_pyarrow().column(0)[0].as_py())


def test_a_query_does_not_see_a_later_insert_into_a_memory_table(session):
    session.sql("CREATE TABLE t AS VALUES (1), (2)")
    result = session.sql("SELECT count(*) AS n FROM t; INSERT INTO t VALUES (3)")
    assert _count(result) == 2
    assert _count(session.sql("SELECT count(*) FROM t")) == 3


def test_a_query_sees_an_earlier_insert_and_not_a_later_one(session):
    session.sql("CREATE TABLE t AS VALUES (1)")
    result = session.sql(
        "INSERT INTO t VALUES (2); SELECT count(*) AS n FROM t; INSERT INTO t VALUES (3)"
    )
    assert _count(result) == 2
    assert _count(session.sql("SELECT count(*) FROM t")) == 3


def test_a_query_does_not_see_a_later_insert_into_a_parquet_table(session, tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    pq.write_table(pa.table({"x": [1, 2]}), folder / "part-0.parquet")
    session.sql(f"CREATE EXTERNAL TABLE ev (x BIGINT) STORED AS PARQUET LOCATION '{folder}/'")
    result = session.sql("SELECT count(*) AS n FROM ev; INSERT INTO ev VALUES (3)")
    assert _count(result) == 2
    assert _count(session.sql("SELECT count(*) FROM ev")) == 3
    assert len(list(folder.glob("*.parquet"))) == 2  # the insert really wrote a file


def test_a_parse_error_later_in_the_cell_runs_nothing(session):
    with pytest.raises(SqlError) as info:
        session.sql("CREATE TABLE ms1 AS SELECT 1 AS a; SELEC 2")
    assert "ms1" not in session.tables()
    assert "no statement of the cell ran" in str(info.value)
    # The corrected cell now works: nothing was left behind.
    assert (
        session.sql("CREATE TABLE ms1 AS SELECT 1 AS a; SELECT * FROM ms1").to_pyarrow().num_rows
        == 1
    )


def test_a_planning_error_in_an_independent_statement_runs_nothing(session):
    session.sql("CREATE TABLE t AS VALUES (1)")
    with pytest.raises(SqlError, match="nosuch") as info:
        session.sql("DROP TABLE t; SELECT * FROM nosuch")
    assert info.value.statement == 2
    assert "t" in session.tables()


def test_a_statement_that_depends_on_an_earlier_one_is_planned_after_it_runs(session):
    result = session.sql(
        "CREATE TABLE d1 AS SELECT 1 AS a; CREATE VIEW d2 AS SELECT a + 1 AS b FROM d1; "
        "SELECT b FROM d2"
    )
    assert result.to_pyarrow().to_pylist() == [{"b": 2}]


def test_a_later_failure_says_which_statements_ran(session):
    session.sql("CREATE TABLE t AS VALUES (1)")
    with pytest.raises(SqlError) as info:
        # Statement 3 depends on statement 2's table, so it is planned only after 1 and 2 ran.
        session.sql(
            "INSERT INTO t VALUES (2); CREATE TABLE t2 AS SELECT 1 AS a; SELECT nope FROM t2"
        )
    message = str(info.value)
    assert info.value.statement == 3
    assert "statements 1, 2 of the cell ran; their changes stay" in message
    assert _count(session.sql("SELECT count(*) FROM t")) == 2


def test_a_read_only_session_refuses_a_cell_with_a_write_before_running_anything(tmp_path):
    session = workbench.RuntimeProfile(read_only=True, artifact_dir=str(tmp_path)).session()
    session.ctx.register_record_batches("t", [[pa.record_batch({"x": [1]})]])
    with pytest.raises(ReadOnlyError) as info:
        session.sql("SELECT count(*) FROM t; INSERT INTO t VALUES (2)")
    assert info.value.statement == 2
    assert _count(session.sql("SELECT count(*) FROM t")) == 1


def test_an_open_stream_keeps_its_file_list_and_fails_when_a_listed_file_is_deleted(tmp_path):
    session = workbench.RuntimeProfile(batch_size=1000).session()
    folder = tmp_path / "t"
    folder.mkdir()
    pq.write_table(pa.table({"x": list(range(100_000))}), folder / "a.parquet", row_group_size=1000)
    session.sql(f"CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{folder}/'")
    result = session.sql("SELECT x FROM t")
    assert result.preview(5).num_rows == 5  # the stream is open: its files are listed
    pq.write_table(pa.table({"x": [-1]}), folder / "b.parquet")
    assert _count(session.sql("SELECT count(*) FROM t")) == 100_001  # a new query sees it
    (folder / "a.parquet").unlink()
    with pytest.raises(SqlError, match=r"failed while running.*a\.parquet"):
        result.to_pyarrow()


def test_explain_analyze_of_an_insert_is_the_insert_and_runs_at_its_place(session):
    session.sql("CREATE TABLE t (a BIGINT)")
    result = session.sql("EXPLAIN ANALYZE INSERT INTO t VALUES (1); SELECT count(*) AS n FROM t")
    assert _count(result) == 1
    lone = session.sql("explain analyze insert into t values (2)")
    assert _count(session.sql("SELECT count(*) FROM t")) == 2  # ran before anything read it
    assert lone.run.status == workbench.RunStatus.FINISHED


def test_desc_is_a_query_and_does_not_turn_off_the_preflight(session):
    session.sql("CREATE TABLE t AS VALUES (1)")
    with pytest.raises(SqlError, match="no statement of the cell ran"):
        session.sql("DESC t; DROP TABLE t; SELECT nosuch FROM t2")
    assert "t" in session.tables()


@pytest.mark.parametrize("name", ['"a.b"', '"MixedCase"', '"s p a c e"'])
def test_a_quoted_table_created_in_the_cell_can_be_read_by_a_later_statement(session, name):
    result = session.sql(f"CREATE TABLE {name} AS SELECT 1 AS x; SELECT * FROM {name}")
    assert result.to_pyarrow().to_pylist() == [{"x": 1}]


def test_a_result_that_fails_while_streaming_says_which_statements_ran(session):
    session.sql("CREATE TABLE t (a VARCHAR)")
    result = session.sql("INSERT INTO t VALUES ('x'); SELECT CAST(a AS INT) FROM t")
    with pytest.raises(SqlError) as info:
        result.to_pyarrow()
    assert info.value.statement == 2
    assert "statement 1 of the cell ran; its changes stay" in str(info.value)
    assert _count(session.sql("SELECT count(*) FROM t")) == 1


def test_a_dml_result_leaves_no_stray_table_and_keeps_its_executed_plan(session):
    session.sql("CREATE TABLE t (a BIGINT)")
    before = session.tables()
    inserted = session.sql("INSERT INTO t SELECT value FROM generate_series(1, 1000)")
    assert inserted.to_pyarrow().column(0).to_pylist() == [1000]
    assert session.tables() == before
    tree = session.plan(inserted.run.run_id)
    assert tree.physical.operator == "DataSinkExec"
    assert any(node.output_rows == 1000 for node in tree.physical.walk())


def test_each_statement_runs_once_in_order_and_sees_only_the_ones_before(session):
    session.sql("CREATE TABLE log (step BIGINT)")
    seen = session.sql(
        "INSERT INTO log VALUES (1); SELECT max(step) AS top, count(*) AS n FROM log; "
        "INSERT INTO log VALUES (2)"
    )
    assert seen.to_pyarrow().to_pylist() == [{"top": 1, "n": 1}]
    steps = session.sql("SELECT step FROM log").to_pyarrow().column(0).to_pylist()
    assert sorted(steps) == [1, 2]

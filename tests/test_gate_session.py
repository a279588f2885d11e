"""The SQL gate inside ``Session.sql``: verdicts on runs, errors with suggestions, the plan cache."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

import workbench
from workbench import artifacts, datasets
from workbench.errors import SqlError
from workbench.ingress import split_statements

if TYPE_CHECKING:
    import pyarrow as pa


@pytest.fixture(scope="module")
def tpch_data():
    return datasets.tpch(0.01)


@pytest.fixture
def session(tpch_data) -> workbench.Session:
    session = workbench.RuntimeProfile().session()
    tpch_data.register(session)
    return session


def _rows(table: pa.Table) -> list[tuple]:
    return sorted(map(tuple, (row.values() for row in table.to_pylist())), key=repr)


@pytest.mark.parametrize("number", range(1, 23))
def test_every_tpch_query_through_the_gate_returns_what_datafusion_returns(session, number):
    for statement in split_statements(datasets.tpch_query(number)):
        if not statement.is_query:
            session.sql(statement.text)
            continue
        gated = session.sql(statement.text)
        rows = gated.to_pyarrow()
        assert _rows(rows) == _rows(session.ctx.sql(statement.text).to_arrow_table())
        run = gated.run
        assert run.policy_hash == session.gate.policy.hash
        assert run.canonical_sql is not None, run.gate_gaps
        assert run.plan_cache == "miss"


# DataFusion-specific syntax SQLGlot does not know (or reads differently): the gate must
# record a gap or a canonical form and pass each through to the same rows.
DATAFUSION_ONLY = [
    "SELECT arrow_typeof(1) AS t",
    "SELECT [1, 2, 3] AS a",
    "SELECT make_array(1, 2)[2] AS second",
    "SELECT {'a': 1, 'b': 'x'}['b'] AS field",
    "SELECT * FROM generate_series(1, 3)",
    "SELECT * FROM range(3)",
    "SELECT 1::BIGINT + 2 AS n",
    "SELECT DATE '2020-01-31' + INTERVAL '1 month' AS d",
    "SELECT * EXCLUDE (n_comment) FROM nation WHERE n_nationkey < 3",
    "SELECT unnest([1, 2, 3]) AS v",
    "SELECT n_name, row_number() OVER (ORDER BY n_name) AS r FROM nation",
    "EXPLAIN SELECT 1",
    "SHOW TABLES",
    "DESCRIBE nation",
    "SELECT 'a' || 'b' AS s",
    "SELECT 1 <=> 1 AS same",
    "VALUES (1, 'a'), (2, 'b')",
    "SELECT regexp_like('abc', '^a') AS m",
]


@pytest.mark.parametrize("sql", DATAFUSION_ONLY)
def test_the_gate_never_rejects_what_datafusion_accepts(session, sql):
    gated = session.sql(sql).to_pyarrow()
    direct = session.ctx.sql(sql).to_arrow_table()
    if sql.startswith("EXPLAIN"):
        assert gated.column_names == direct.column_names
    else:
        assert gated.to_pylist() == direct.to_pylist()


def test_what_sqlglot_cannot_read_is_recorded_as_a_gap(session):
    run = session.sql("SHOW TABLES").run
    assert run.canonical_sql is None
    assert run.gate_gaps, "a SHOW statement is a SQLGlot Command: the gap must be recorded"
    rows = session.sql(
        "SELECT gate_gaps, policy_hash FROM wb_runs WHERE run_id = $id", params={"id": run.run_id}
    ).to_pyarrow()
    assert rows.column("gate_gaps").to_pylist()[0] == list(run.gate_gaps)


def _broken_cases() -> list[tuple[str, str, tuple[int, int], str, str | None]]:
    from .conftest import REPO

    cases = []
    for line in (REPO / "tests" / "fixtures" / "gate_broken.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        sql, kind, where, token, suggestion = (part.strip() for part in line.split("|"))
        line_no, column = (int(n) for n in where.split(":"))
        cases.append((sql.replace("\\n", "\n"), kind, (line_no, column), token, suggestion or None))
    return cases


@pytest.mark.parametrize("case", _broken_cases(), ids=lambda case: case[0][:40])
def test_broken_queries_fail_with_kind_position_and_suggestion(session, case):
    sql, kind, where, token, suggestion = case
    session.sql("CREATE TABLE a AS SELECT 1 AS id, 'x' AS name")
    session.sql("CREATE TABLE b AS SELECT 1 AS id, 2 AS a_id")
    with pytest.raises(SqlError) as caught:
        session.sql(sql).to_pyarrow()
    error = caught.value
    assert error.kind == kind, str(error)
    assert error.location is not None, str(error)
    assert (error.location.line, error.location.column) == where, str(error)
    source = sql.splitlines()[where[0] - 1]
    assert source[where[1] - 1 :].lower().startswith(token.lower()), str(error)
    if suggestion is not None:
        assert suggestion in error.suggestions or suggestion in str(error), str(error)


def test_a_suggestion_is_in_the_message(session):
    with pytest.raises(SqlError, match=r"did you mean: orders\?"):
        session.sql("SELECT * FROM ordrs")
    session.sql("CREATE TABLE a AS SELECT 1 AS id")
    session.sql("CREATE TABLE b AS SELECT 2 AS id")
    with pytest.raises(SqlError, match=r"qualify it: a\.id or b\.id\?"):
        session.sql("SELECT id FROM a, b")


def test_the_plan_cache_hits_whatever_the_spacing_and_comments_and_shows_in_wb_runs(session):
    first = session.sql("SELECT count(*) AS n FROM orders WHERE o_totalprice > 1000")
    second = session.sql(
        "SELECT count(*)  AS n\n  FROM orders -- the big ones\n WHERE o_totalprice > 1000"
    )
    assert first.to_pyarrow() == second.to_pyarrow()
    assert (first.run.plan_cache, second.run.plan_cache) == ("miss", "hit")
    assert session.plan_cache.hits == 1
    ids = [first.run.run_id, second.run.run_id]
    rows = session.sql(
        "SELECT run_id, plan_cache FROM wb_runs WHERE run_id IN ($a, $b) ORDER BY started_at",
        params={"a": ids[0], "b": ids[1]},
    ).to_pyarrow()
    assert rows.column("plan_cache").to_pylist() == ["miss", "hit"]


def test_a_hit_reads_the_rows_of_now(session):
    session.sql("CREATE TABLE t AS VALUES (1), (2)")
    assert session.sql("SELECT sum(column1) AS s FROM t").to_pyarrow()["s"].to_pylist() == [3]
    session.sql("INSERT INTO t VALUES (10)")
    again = session.sql("SELECT sum(column1) AS s FROM t")
    assert again.to_pyarrow()["s"].to_pylist() == [13]
    assert again.run.plan_cache == "hit"


def test_a_schema_change_of_an_input_invalidates_the_plan(session):
    session.sql("CREATE TABLE t AS SELECT 1 AS x")
    session.sql("SELECT * FROM t").to_pyarrow()
    session.sql("CREATE OR REPLACE TABLE t AS SELECT 'one' AS x, 2 AS y")
    after = session.sql("SELECT * FROM t")
    assert after.to_pyarrow().to_pylist() == [{"x": "one", "y": 2}]
    assert after.run.plan_cache == "miss"


def test_a_table_replaced_with_the_same_schema_is_read_anew(session):
    session.sql("CREATE TABLE t AS SELECT 1 AS x")
    session.sql("SELECT x FROM t").to_pyarrow()
    session.sql("CREATE OR REPLACE TABLE t AS SELECT 2 AS x")
    after = session.sql("SELECT x FROM t")
    assert after.to_pyarrow()["x"].to_pylist() == [2]
    assert after.run.plan_cache == "miss"


def test_parameter_values_are_part_of_the_key(session):
    query = "SELECT count(*) AS n FROM nation WHERE n_regionkey = $r"
    counts = [session.sql(query, params={"r": r}).to_pyarrow()["n"][0].as_py() for r in (0, 1, 0)]
    direct = [
        session.ctx.sql(query, param_values={"r": r}).to_arrow_table()["n"][0].as_py()
        for r in (0, 1, 0)
    ]
    assert counts == direct
    assert session.plan_cache.hits == 1


def test_session_tables_and_table_functions_are_never_cached(session):
    for _ in range(2):
        assert session.sql("SELECT count(*) FROM wb_runs").run.plan_cache is None
        assert session.sql("SELECT count(*) FROM information_schema.tables").run.plan_cache is None


def test_a_cached_plan_stores_substrait_bytes_that_load_back(session):
    from datafusion.substrait import Consumer, Serde

    result = session.sql("SELECT n_name FROM nation WHERE n_regionkey = 1 ORDER BY n_name")
    rows = result.to_pyarrow()
    (cached,) = list(session.plan_cache._plans.values())
    assert cached.substrait is not None, cached.problem
    plan = Consumer.from_substrait_plan(session.ctx, Serde.deserialize_bytes(cached.substrait))
    assert session.ctx.create_dataframe_from_logical_plan(plan).to_arrow_table() == rows


def test_the_bundle_holds_the_canonical_ast_and_the_policy_hash(session, tmp_path):
    result = session.sql("SELECT n_name FROM nation WHERE n_nationkey = 3")
    result.to_pyarrow()
    run_id = result.run.run_id
    bundle = artifacts.export(session, [run_id], tmp_path / "bundle")
    gate = json.loads((bundle / run_id / "gate.json").read_text())
    assert gate["policy"]["hash"] == session.gate.policy.hash
    assert gate["canonical_sql"] == result.run.canonical_sql
    from sqlglot import exp, serde

    tree = serde.load(gate["canonical_ast"])
    assert isinstance(tree, exp.Expr)
    assert tree.sql("postgres") == result.run.canonical_sql
    record = json.loads((bundle / run_id / "run.json").read_text())
    assert record["policy_hash"] == session.gate.policy.hash


def test_two_texts_with_one_canonical_form_do_not_share_a_plan(session):
    """DataFusion answers these two differently (apache/datafusion#22881): no shared plan."""
    session.sql("CREATE TABLE l AS VALUES (1, 'a'), (2, 'b')")
    session.sql("CREATE TABLE r AS VALUES (2, 'x'), (3, 'y')")
    session.sql("CREATE VIEW lk AS SELECT column1 AS k FROM l")
    session.sql("CREATE VIEW rk AS SELECT column1 AS k FROM r")
    using = "SELECT k FROM lk FULL JOIN rk USING (k)"
    coalesced = "SELECT COALESCE(lk.k, rk.k) AS k FROM lk FULL JOIN rk ON lk.k = rk.k"
    expected = {q: session.ctx.sql(q).to_arrow_table().to_pylist() for q in (using, coalesced)}
    assert session.sql(using).to_pyarrow().to_pylist() == expected[using]
    second = session.sql(coalesced)
    assert second.to_pyarrow().to_pylist() == expected[coalesced]
    assert second.run.plan_cache == "miss"


def test_a_table_function_is_planned_anew_each_time(session, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)
    query = f"SELECT max(file_num_rows) AS n FROM wb_parquet_metadata('{path}')"
    assert session.sql(query).to_pyarrow()["n"].to_pylist() == [2]
    pq.write_table(pa.table({"a": [1, 2, 3]}), path)
    again = session.sql(query)
    assert again.to_pyarrow()["n"].to_pylist() == [3]
    assert again.run.plan_cache is None


def test_a_hit_evaluates_now_at_its_own_run(session):
    import time

    first = session.sql("SELECT now() AS t").to_pyarrow()["t"][0].as_py()
    time.sleep(0.05)
    again = session.sql("SELECT now() AS t")
    assert again.to_pyarrow()["t"][0].as_py() > first
    assert again.run.plan_cache == "hit"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("SELECT E'a\\nb' AS v", "SELECT E'anb' AS v"),
        ("SELECT $a AS v", "SELECT $A AS v"),
        (
            'SELECT "X" AS v FROM (SELECT 1 AS "X", 2 AS x)',
            'SELECT x AS v FROM (SELECT 1 AS "X", 2 AS x)',
        ),
    ],
)
def test_texts_that_differ_only_in_what_datafusion_reads_do_not_share_a_plan(
    session, first, second
):
    params = {"a": 2, "A": 1} if "$" in first else None
    for sql in (first, second):
        direct = session.ctx.sql(sql, param_values=params).to_arrow_table().to_pylist()
        assert session.sql(sql, params).to_pyarrow().to_pylist() == direct

"""The gate's own SQL: CREATE FUNCTION macros, named arguments, domain operators."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import workbench
from workbench import artifacts, datasets
from workbench.errors import ReadOnlyError, SqlError


@pytest.fixture(scope="module")
def tpch_data():
    return datasets.tpch(0.01)


@pytest.fixture
def session(tpch_data) -> workbench.Session:
    session = workbench.RuntimeProfile().session()
    tpch_data.register(session)
    return session


NET = (
    "CREATE FUNCTION net(price DECIMAL(15, 2), disc DECIMAL(15, 2)) RETURNS DECIMAL(15, 2) "
    "AS price * (1 - disc)"
)


def _value(session: workbench.Session, sql: str):
    table = session.sql(sql).to_pyarrow()
    return table.column(0)[0].as_py()


def test_a_macro_is_usable_in_later_queries_and_gives_the_expanded_rows(session):
    created = session.sql(NET).to_pyarrow()
    assert created.to_pylist() == [{"function": "net", "done": "created"}]
    by_macro = _value(session, "SELECT sum(net(l_extendedprice, l_discount)) FROM lineitem")
    by_hand = _value(
        session,
        "SELECT sum(CAST(l_extendedprice * (1 - l_discount) AS DECIMAL(15, 2))) FROM lineitem",
    )
    assert by_macro == by_hand
    run = session.sql("SELECT net(10, 0.25) AS n").run
    assert run.rewrites == ("macro net",)


def test_a_macro_call_as_an_output_column_is_named_by_its_call(session):
    session.sql(NET)
    table = session.sql("SELECT net(10, 0.5) FROM nation LIMIT 1").to_pyarrow()
    assert table.column_names == ["net(10, 0.5)"]
    assert table.column(0).to_pylist() == [Decimal("5.00")]


def test_a_macro_is_listed_with_the_other_functions(session):
    session.sql(NET)
    listed = session.sql("SHOW FUNCTIONS LIKE 'net'").to_pyarrow()
    assert listed.column("function_name").to_pylist() == ["net"]
    routines = session.ctx.sql(
        "SELECT routine_name FROM information_schema.routines WHERE routine_name = 'net'"
    ).to_arrow_table()
    assert routines.num_rows == 1


def test_sql_that_bypasses_the_gate_runs_the_macro_as_a_udf_to_the_same_rows(session):
    session.sql(NET)
    query = (
        "SELECT l_orderkey, l_linenumber, net(l_extendedprice, l_discount) AS n FROM lineitem "
        "ORDER BY l_orderkey, l_linenumber LIMIT 500"
    )
    gated = session.sql(query).to_pyarrow()
    bypassed = session.ctx.sql(query).to_arrow_table()  # no gate: DataFusion calls the UDF
    assert "net(" in session.ctx.sql(query).logical_plan().display_indent()
    assert bypassed.to_pylist() == gated.to_pylist()
    assert bypassed.schema.field("n").type == gated.schema.field("n").type


def test_macros_call_earlier_macros_and_or_replace_replaces(session):
    session.sql("CREATE FUNCTION twice(x BIGINT) RETURNS BIGINT AS x * 2")
    session.sql("CREATE FUNCTION quad(x BIGINT) RETURNS BIGINT AS twice(twice(x))")
    assert _value(session, "SELECT quad(3)") == 12
    with pytest.raises(SqlError, match="already exists; use CREATE OR REPLACE FUNCTION"):
        session.sql("CREATE FUNCTION twice(x BIGINT) RETURNS BIGINT AS x + x + 1")
    session.sql("CREATE OR REPLACE FUNCTION twice(x BIGINT) RETURNS BIGINT AS x * 3")
    assert _value(session, "SELECT twice(3)") == 9
    # quad was expanded when it was defined: it keeps the twice it was made with.
    assert _value(session, "SELECT quad(3)") == 12


def test_a_macro_defined_in_a_cell_is_usable_later_in_that_cell(session):
    result = session.sql(
        "CREATE FUNCTION add_one(x BIGINT) RETURNS BIGINT AS x + 1;\nSELECT add_one(41) AS v"
    )
    assert result.to_pyarrow().to_pylist() == [{"v": 42}]


@pytest.mark.parametrize(
    ("sql", "message", "kind"),
    [
        (
            "CREATE FUNCTION f(a INT) RETURNS INT AS a + 'x'",
            "DataFusion cannot plan its body",
            "type",
        ),
        ("CREATE FUNCTION f(a INT) RETURNS INT AS b", "not one of its arguments", "unknown column"),
        ("CREATE FUNCTION upper(a TEXT) RETURNS TEXT AS a", "already a function", "type"),
        ("CREATE FUNCTION f(a INT, a INT) RETURNS INT AS a", "named twice", "parse"),
        (
            "CREATE FUNCTION f(a INT) RETURNS INT AS (SELECT 1)",
            "one expression, not a query",
            "parse",
        ),
        ("DROP FUNCTION nope", "no function nope to drop", "unknown function"),
    ],
)
def test_bad_function_statements_are_clear_errors_that_change_nothing(session, sql, message, kind):
    before = session.sql("SELECT count(*) FROM information_schema.routines").to_pyarrow()
    with pytest.raises(SqlError, match=message) as caught:
        session.sql(sql)
    assert caught.value.kind == kind
    assert caught.value.location is not None
    after = session.sql("SELECT count(*) FROM information_schema.routines").to_pyarrow()
    assert after == before
    assert session.gate.macros == {}


def test_drop_function_removes_the_macro_and_its_listing(session):
    session.sql(NET)
    assert session.sql("DROP FUNCTION net").to_pyarrow().to_pylist() == [
        {"function": "net", "done": "dropped"}
    ]
    with pytest.raises(SqlError, match="Invalid function 'net'"):
        session.sql("SELECT net(1, 0)")
    session.sql("DROP FUNCTION IF EXISTS net")


def test_a_read_only_session_refuses_create_function():
    session = workbench.RuntimeProfile(read_only=True).session()
    with pytest.raises(ReadOnlyError, match="read-only"):
        session.sql("CREATE FUNCTION f(a INT) RETURNS INT AS a")
    assert session.gate.macros == {}


def test_named_arguments_of_the_workbench_functions_become_positional(session):
    named = _value(session, "SELECT prefixed_hash64(value => 42, prefix => 'cust')")
    positional = _value(session, "SELECT prefixed_hash64('cust', 42)")
    assert named == positional
    session.sql(NET)
    assert _value(session, "SELECT net(disc => 0.5, price => 10)") == Decimal("5.00")
    assert _value(session, "SELECT net(10, disc => 0.5)") == Decimal("5.00")


def test_datafusion_still_drops_parameter_names_at_the_ffi_boundary(session):
    """The gate rewrites named arguments because this fails; when it passes, use DataFusion's."""
    with pytest.raises(Exception, match="does not support named arguments"):
        session.ctx.sql("SELECT prefixed_hash64(prefix => 'a', value => 1)")


def test_named_arguments_of_builtins_are_datafusions(session):
    assert _value(session, "SELECT substr(str => 'abcdef', start_pos => 3)") == "cdef"


@pytest.mark.parametrize(
    ("sql", "message", "kind", "column"),
    [
        (
            "SELECT prefixed_hash64(prefx => 'a', value => 1)",
            "has no parameter 'prefx' (its parameters: prefix, value); did you mean prefix?",
            "unknown argument",
            24,
        ),
        ("SELECT prefixed_hash64(value => 1)", "needs prefix", "missing argument", 8),
        (
            "SELECT prefixed_hash64(prefix => 'a', prefix => 'b')",
            "given twice",
            "unknown argument",
            24,
        ),
        (
            "SELECT prefixed_hash64(prefix => 'a', 1)",
            "positional argument follows a named one",
            "parse",
            39,
        ),
    ],
)
def test_bad_named_arguments_are_clear_errors(session, sql, message, kind, column):
    with pytest.raises(SqlError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        session.sql(sql)
    assert caught.value.kind == kind
    assert caught.value.location is not None
    assert caught.value.location.column == column


def test_the_domain_operators_become_function_calls(session):
    table = session.sql("SELECT 'abc' ^@ 'ab' AS starts, 'kitten' <-> 'sitting' AS edits")
    assert table.to_pyarrow().to_pylist() == [{"starts": True, "edits": 3}]
    names = session.sql(
        "SELECT n_name FROM nation WHERE n_name ^@ 'UNITED' ORDER BY n_name"
    ).to_pyarrow()
    assert names.column(0).to_pylist() == ["UNITED KINGDOM", "UNITED STATES"]


def test_a_bundle_of_a_macro_query_replays_in_a_session_without_the_macro(session, tmp_path):
    session.sql(NET)
    result = session.sql("SELECT sum(net(l_extendedprice, l_discount)) AS revenue FROM lineitem")
    result.to_pyarrow()
    bundle = artifacts.export(session, [result.run.run_id], tmp_path / "bundle")
    fresh = workbench.RuntimeProfile().session()
    datasets.tpch(0.01).register(fresh)
    report = artifacts.replay(bundle, fresh)
    assert report.ok, report


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT twice(v) AS t FROM generate_series(1, 3) AS g(v)",
        "SELECT twice(2) AS t, [1, 2, 3] AS a",
        "SELECT * EXCLUDE (v) FROM (SELECT twice(1) AS t, 1 AS v)",
        "SELECT twice(2) AS t, arrow_typeof(1) AS ty",
    ],
)
def test_a_macro_next_to_datafusion_syntax_gives_what_its_expansion_gives(session, sql):
    session.sql("CREATE FUNCTION twice(x BIGINT) RETURNS BIGINT AS x * 2")
    by_hand = sql.replace("twice(v)", "CAST(v * 2 AS BIGINT)").replace("twice(2)", "4")
    by_hand = by_hand.replace("twice(1)", "2")
    assert session.sql(sql).to_pyarrow().to_pylist() == session.ctx.sql(by_hand).to_pylist()


def test_create_function_runs_carry_the_gate_policy(session):
    run = session.sql("CREATE FUNCTION inc(x BIGINT) RETURNS BIGINT AS x + 1").run
    assert run.policy_hash == session.gate.policy.hash


def test_named_arguments_of_the_rust_window_function(session):
    session.sql(
        "CREATE TABLE ev AS SELECT * FROM (VALUES (1, 0.0), (1, 10.0), (1, 100.0)) AS t(u, ts)"
    )
    named = session.sql(
        "SELECT sessionize(gap => 30, ts => ts) OVER (PARTITION BY u ORDER BY ts) AS s FROM ev"
    ).to_pyarrow()
    positional = session.sql(
        "SELECT sessionize(ts, 30) OVER (PARTITION BY u ORDER BY ts) AS s FROM ev"
    ).to_pyarrow()
    assert named.to_pylist() == positional.to_pylist() == [{"s": 1}, {"s": 1}, {"s": 2}]


def test_macro_parameters_fold_case_like_sql_names(session):
    session.sql("CREATE FUNCTION g(X BIGINT) RETURNS BIGINT AS x + 1")
    assert _value(session, "SELECT g(X => 1)") == 2
    assert _value(session, "SELECT g(2)") == 3


@pytest.mark.parametrize(
    "extra",
    [
        "6 ^ 3 AS v",  # DataFusion's XOR, PostgreSQL's power
        "CAST(1.1 AS FLOAT) AS f",  # Float32 here, DOUBLE PRECISION in SQLGlot's PostgreSQL
        "CAST(1 AS TINYINT) AS t",
    ],
)
def test_a_rewritten_call_leaves_the_rest_of_the_statement_as_datafusion_reads_it(session, extra):
    session.sql("CREATE FUNCTION dbl(x BIGINT) RETURNS BIGINT AS x * 2")
    for call in ("dbl(3)", "prefixed_hash64(value => 3, prefix => 'p')"):
        gated = session.sql(f"SELECT {call} AS c, {extra}").to_pyarrow()
        direct = session.ctx.sql(f"SELECT {extra}").to_arrow_table()
        assert gated.select(direct.column_names) == direct


def test_a_quoted_function_next_to_a_rewritten_call_is_found(session):
    session.register_udf(
        lambda a: pc.add(pc.multiply(a, 7), 1), [pa.int64()], pa.int64(), "PlusSeven"
    )
    table = session.sql(
        "SELECT \"PlusSeven\"(1) AS v, prefixed_hash64(prefix => 'p', value => 1) AS h"
    ).to_pyarrow()
    assert table["v"].to_pylist() == [8]


def test_without_the_gate_create_function_is_refused_clearly():
    session = workbench.RuntimeProfile(sql_gate=False).session()
    with pytest.raises(SqlError, match="sql_gate=True"):
        session.sql("CREATE FUNCTION f(x BIGINT) RETURNS BIGINT AS x + 1")


def test_a_python_udf_failing_while_running_is_a_short_message(session):
    def picky(values):
        if pc.max(values).as_py() > 100:
            msg = "values over 100 are not 'allowed'"
            raise ValueError(msg)
        return values

    session.register_udf(
        picky, [pa.int64()], pa.int64(), sample=pa.table({"v": pa.array([1, 2], pa.int64())})
    )
    with pytest.raises(SqlError) as caught:
        session.sql("SELECT picky(500) AS p").to_pyarrow()
    assert "values over 100 are not 'allowed'" in str(caught.value)
    assert "Traceback" not in str(caught.value)

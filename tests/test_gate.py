"""The SQL gate (issue 15, first step): canonical SQL for every TPC-H query, diagnostics for broken ones."""

from __future__ import annotations

import pytest

import workbench
from workbench import datasets
from workbench.ingress import gate, split_statements


@pytest.fixture(scope="module")
def tpch_session(tpch_data) -> workbench.Session:
    session = workbench.RuntimeProfile().session()
    tpch_data.register(session)
    return session


@pytest.fixture(scope="module")
def tpch_data():
    return datasets.tpch(0.1)


@pytest.mark.parametrize("number", range(1, 23))
def test_every_tpch_statement_passes_the_gate_with_canonical_sql(tpch_session, number):
    for statement in split_statements(datasets.tpch_query(number)):
        result = gate.check(statement.text, gate.live_schema(tpch_session.ctx))
        assert result.diagnostics == (), (number, statement.text)
        if statement.is_query:
            assert result.canonical is not None, (number, result.gaps)
            # The canonical SQL is SQL DataFusion runs, and to the same rows.
            original = tpch_session.sql(statement.text).to_pyarrow()
            rewritten = tpch_session.sql(result.canonical).to_pyarrow()
            assert original.num_rows == rewritten.num_rows
        else:
            tpch_session.sql(statement.text)  # the view q15 creates, for the statements after


def test_the_policy_hash_is_stable_and_names_the_rules():
    assert gate.Policy().hash == gate.Policy().hash
    assert gate.Policy(rules=("qualify",)).hash != gate.Policy().hash


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT o_orderky FROM orders", ("unknown column", (1, 16), "o_orderky", "o_orderkey")),
        ("SELECT * FROM ordrs", ("unknown table", (1, 19), "ordrs", "orders")),
        (
            "SELECT comment FROM orders o, part p",
            ("unknown column", (1, 14), "comment", "o_comment"),
        ),
        ("SELECT FROM WHERE", ("parse", (1, 17), "WHERE", None)),
    ],
)
def test_broken_queries_get_the_right_kind_position_and_suggestion(tpch_session, sql, expected):
    kind, where, token, suggestion = expected
    (diagnostic,) = gate.check(sql, gate.live_schema(tpch_session.ctx)).diagnostics
    assert (diagnostic.kind, (diagnostic.line, diagnostic.column), diagnostic.token) == (
        kind,
        where,
        token,
    )
    if suggestion is not None:
        assert suggestion in diagnostic.suggestions


def test_an_ambiguous_column_names_the_tables_that_have_it():
    schema = {"a": {"id": "BIGINT", "x": "TEXT"}, "b": {"id": "BIGINT", "y": "TEXT"}}
    (diagnostic,) = gate.check("SELECT id FROM a, b", schema).diagnostics
    assert diagnostic.kind == "ambiguous column"
    assert diagnostic.suggestions == ("a.id", "b.id")
    assert gate.check("SELECT a.id FROM a, b", schema).diagnostics == ()


def test_the_schema_is_read_live_from_the_session():
    session = workbench.RuntimeProfile().session()
    session.sql("CREATE TABLE fresh AS SELECT 1 AS n, 'x' AS s")
    assert gate.live_schema(session.ctx)["fresh"] == {"n": "BIGINT", "s": "TEXT"}

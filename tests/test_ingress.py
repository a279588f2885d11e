"""SQL ingress: statement splitting and {name} templates (error positions: test_error_locations)."""

from __future__ import annotations

import pytest

from workbench.errors import ParameterError
from workbench.ingress import bind_template, split_statements


def test_semicolons_in_strings_and_comments_do_not_split():
    statements = split_statements("SELECT ';' AS a -- ; not here\n;\n/* ; */ SELECT 2")
    assert [s.text for s in statements] == ["SELECT ';' AS a", "SELECT 2"]
    assert (statements[1].line, statements[1].column) == (3, 9)
    assert all(s.is_query for s in statements)


def test_statement_kinds():
    kinds = [
        s.is_query
        for s in split_statements(
            "CREATE TABLE t (x INT); INSERT INTO t VALUES (1); SET a.b = 1; "
            "WITH c AS (SELECT 1) SELECT * FROM c; EXPLAIN SELECT 1; VALUES (1); SHOW TABLES"
        )
    ]
    assert kinds == [False, False, False, True, True, True, True]


def test_templates_become_placeholders_of_the_same_length():
    sql = "SELECT * FROM t WHERE a = {x} AND b = '{x}' -- {x}"
    rewritten, params = bind_template(sql, {"x": "v"})
    assert rewritten == "SELECT * FROM t WHERE a = $x  AND b = '{x}' -- {x}"
    assert len(rewritten) == len(sql)
    assert params == {"x": "v"}


def test_template_with_unknown_name_is_a_clear_error():
    with pytest.raises(ParameterError, match="names no Python variable"):
        bind_template("SELECT {nope}", {})


@pytest.mark.parametrize(
    ("sql", "is_query"),
    [
        ("-- leading comment\n/* block */ SELECT 1", True),
        ("  (SELECT 1) UNION (SELECT 2)", True),
        ("explain select 1", True),
        ("INSERT INTO t VALUES (1);", False),
        ("create table t (x int)", False),
    ],
)
def test_single_statements_are_classified_without_the_tokenizer(monkeypatch, sql, is_query):
    if ";" not in sql.rstrip().rstrip(";"):

        def no_tokenizer(_: str) -> None:
            raise AssertionError("a single statement must not be tokenized")

        monkeypatch.setattr("workbench.ingress.statements.tokenize", no_tokenizer)
    (statement,) = split_statements(sql)
    assert statement.is_query is is_query
    assert not statement.text.endswith(";")

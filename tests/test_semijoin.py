"""The gate's semi-join reduction: q17-shaped subqueries get the outer keys, nothing else
changes, and every answer equals DataFusion's on the statement as written."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

from workbench.ingress.gate import Policy

from .conftest import gated_pair, rows_and_rewrites, tpch_rule_check

if TYPE_CHECKING:
    import workbench

REDUCED = "semi-join reduction"


def _pair(tables: dict[str, pa.Table]) -> tuple[workbench.Session, workbench.Session]:
    sessions = gated_pair(tables)
    # The filter-order rule would also move these statements' conjuncts (its own tests
    # are in test_filterorder.py): here the text must differ by the reduction alone.
    sessions[0].gate.policy = Policy(rules=tuple(r for r in Policy().rules if r != "filter_order"))
    return sessions


_rows = rows_and_rewrites


@pytest.fixture(scope="module")
def small():
    keys = [1, 2, 3, 4, 5, None, 2, 3]
    t = pa.table(
        {
            "k": [1, 1, 2, 2, 2, 3, 4, 5, None, 3, 3, 5],
            "v": [10, 20, 5, 7, 9, 1, 8, 100, 50, 2, 30, None],
        }
    )
    p = pa.table(
        {
            "key": keys,
            "a": ["x", "y", "x", None, "x", "x", "z", "y"],
            "b": [1, 2, 3, 4, 5, 6, 7, 8],
        }
    )
    return _pair({"t": t, "p": p})


REDUCIBLE = [
    (
        "SELECT p.key, t.v FROM t, p WHERE t.k = p.key AND p.a = 'x' "
        "AND t.v < (SELECT 2 * avg(t2.v) FROM t AS t2 WHERE t2.k = p.key)"
    ),
    (
        "SELECT count(*) AS n FROM t JOIN p ON t.k = p.key WHERE p.a IN ('x', 'y') AND p.b > 1 "
        "AND t.v >= (SELECT min(t2.v) FROM t AS t2 WHERE p.key = t2.k AND t2.v > 1)"
    ),
    (
        "SELECT p.b FROM p, t WHERE p.key = t.k AND p.a IS NOT NULL AND p.b BETWEEN 2 AND 6 "
        "AND (t.v = (SELECT max(t2.v) FROM t AS t2 WHERE t2.k = p.key))"
    ),
    (
        "SELECT p.key FROM p WHERE p.a LIKE 'x%' "
        "AND 1 < (SELECT count(*) FROM t WHERE t.k = p.key -- a comment before the paren\n)"
    ),
]
AS_WRITTEN = [
    # The comparison sits under an OR: an outer row failing p.a = 'x' may still be kept.
    (
        "SELECT p.key FROM t, p WHERE t.k = p.key "
        "AND (p.a = 'x' OR t.v < (SELECT avg(t2.v) FROM t AS t2 WHERE t2.k = p.key))"
    ),
    # An outer join keeps p rows without a match.
    (
        "SELECT p.key FROM p LEFT JOIN t ON t.k = p.key WHERE p.a = 'x' "
        "AND p.b < (SELECT count(*) FROM t AS t2 WHERE t2.k = p.key)"
    ),
    # No condition on p alone.
    (
        "SELECT p.key FROM t, p WHERE t.k = p.key "
        "AND t.v < (SELECT avg(t2.v) FROM t AS t2 WHERE t2.k = p.key)"
    ),
    # Two correlations.
    (
        "SELECT p.key FROM t, p WHERE t.k = p.key AND p.a = 'x' "
        "AND t.v < (SELECT avg(t2.v) FROM t AS t2 WHERE t2.k = p.key AND t2.v <> p.b)"
    ),
    # A subquery with a LIMIT, and one over two tables.
    (
        "SELECT p.key FROM p WHERE p.a = 'x' "
        "AND 0 < (SELECT t.v FROM t WHERE t.k = p.key ORDER BY t.v LIMIT 1)"
    ),
    (
        "SELECT p.key FROM p WHERE p.a = 'x' "
        "AND 0 < (SELECT count(*) FROM t, p AS q WHERE t.k = p.key AND q.key = t.k)"
    ),
    # A volatile condition on p.
    (
        "SELECT count(*) AS n FROM p WHERE random() < 2 "
        "AND 0 < (SELECT count(*) FROM t WHERE t.k = p.key)"
    ),
]


@pytest.mark.parametrize("sql", REDUCIBLE)
def test_a_reducible_subquery_gets_the_outer_keys_and_the_same_rows(small, sql):
    gated, plain = small
    rows, rewrites = _rows(gated, sql)
    expected, _ = _rows(plain, sql)
    assert rows == expected
    assert [r for r in rewrites if r.startswith(REDUCED)] == [
        f"{REDUCED}: k IN the p rows the query keeps"
    ]
    assert isinstance(rows, list)
    assert rows
    text = gated.gate.prepare(sql).text
    start = text.index("\n AND ")
    added = text[start : start + len(text) - len(sql)]
    assert text.replace(added, "", 1) == sql  # spliced: the rest is the statement as typed
    assert added.startswith('\n AND "t')
    assert "IN (SELECT __wb_sj.key FROM p AS __wb_sj WHERE" in added


@pytest.mark.parametrize("sql", AS_WRITTEN)
def test_a_subquery_outside_the_rule_is_left_as_written(small, sql):
    gated, plain = small
    rows, rewrites = _rows(gated, sql)
    assert not [r for r in rewrites if r.startswith(REDUCED)]
    assert gated.gate.prepare(sql).text == sql
    if "random()" not in sql:  # the same rows, or the same DataFusion error
        assert rows == _rows(plain, sql)[0]


def test_tpch_q17_is_reduced_gives_datafusions_answer_and_the_policy_names_the_rule(tpch):
    rewrites, _ = tpch_rule_check(tpch, 17, "semi_join_reduction")
    assert rewrites == ("semi-join reduction: l_partkey IN the part rows the query keeps",)

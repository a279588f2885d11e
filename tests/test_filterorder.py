"""The gate's filter order: a WHERE's cheap, selective filters go first, nothing crosses
a conjunct that could raise, and every answer equals DataFusion's on the text as written."""

from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa
import pytest

from .conftest import gated_pair, rows_and_rewrites, tpch_rule_check

ORDERED = "filter order: cheaper, more selective filters first on"


@pytest.fixture(scope="module")
def pair():
    """A session with the gate and one without (DataFusion plans the text as written)."""
    n = 400
    t = pa.table(
        {
            "id": list(range(n)),
            "mode": [["AIR", "SHIP", "MAIL", "RAIL", None][i % 5] for i in range(n)],
            "day": [dt.date(2020, 1, 1) + dt.timedelta(days=i % 90) for i in range(n)],
            "due": [dt.date(2020, 1, 15) + dt.timedelta(days=i % 60) for i in range(n)],
            "qty": [i % 50 for i in range(n)],
            "note": [f"0{i}" if i % 7 else "x" for i in range(n)],
        }
    )
    u = pa.table({"id": list(range(0, n, 3)), "kind": [["a", "b"][i % 2] for i in range(0, n, 3)]})
    return gated_pair({"t": t, "u": u})


_rows = rows_and_rewrites


MOVED = [
    # (statement, the WHERE as the gate sends it)
    (
        (
            "SELECT id FROM t WHERE mode IN ('AIR', 'SHIP') AND day >= DATE '2020-02-01' "
            "AND day < DATE '2020-02-01' + INTERVAL '1' MONTH"
        ),
        (
            "day >= DATE '2020-02-01' AND day < DATE '2020-02-01' + INTERVAL '1' MONTH "
            "AND mode IN ('AIR', 'SHIP')"
        ),
    ),
    # BETWEEN's own AND stays inside it; a column-to-column comparison goes after ranges.
    (
        "SELECT count(*) AS n FROM t WHERE note LIKE '0%' AND day < due AND qty BETWEEN 5 AND 20",
        "qty BETWEEN 5 AND 20 AND day < due AND note LIKE '0%'",
    ),
    # A join condition keeps its slot; filters of both tables are ranked together.
    (
        (
            "SELECT t.id FROM t, u WHERE t.id = u.id AND t.mode <> 'RAIL' AND u.kind = 'a' "
            "AND t.qty = 6"
        ),
        "t.id = u.id AND t.qty = 6 AND u.kind = 'a' AND t.mode <> 'RAIL'",
    ),
    # A WHERE inside a derived table is ordered too; the outer one has one filter.
    (
        (
            "SELECT s.id FROM (SELECT id, qty FROM t WHERE mode = 'MAIL' AND qty < 10) AS s "
            "WHERE s.qty > 2"
        ),
        "qty < 10 AND mode = 'MAIL')",
    ),
]

KEPT = [
    # Already in rank order.
    "SELECT id FROM t WHERE day >= DATE '2020-02-01' AND qty < 10 AND mode = 'AIR'",
    # Filters on different tables only: their order does not matter to DataFusion.
    "SELECT t.id FROM t JOIN u ON t.id = u.id WHERE u.kind = 'b' AND t.qty = 3",
    # A cast of a column could raise: nothing moves across it (note 'x' is no integer).
    "SELECT id FROM t WHERE mode = 'AIR' AND CAST(note AS INT) > 0 AND qty < 10",
    # A subquery is a barrier too.
    "SELECT id FROM t WHERE mode = 'AIR' AND id IN (SELECT id FROM u) AND qty < 10",
    # One conjunct under OR is one filter.
    "SELECT id FROM t WHERE mode = 'AIR' OR qty < 10",
]


@pytest.mark.parametrize(("sql", "where"), MOVED)
def test_filters_are_ordered_with_the_same_rows_and_their_text_as_typed(pair, sql, where):
    gated, plain = pair
    rows, rewrites = _rows(gated, sql)
    assert rows == _rows(plain, sql)[0]
    assert isinstance(rows, list)
    assert rows
    assert [r for r in rewrites if r.startswith(ORDERED)]
    text = gated.gate.prepare(sql).text
    assert text.endswith(where) or where in text
    assert sorted(text) == sorted(sql)  # the same characters, moved: nothing re-rendered


@pytest.mark.parametrize("sql", KEPT)
def test_a_where_outside_the_rule_is_left_as_written(pair, sql):
    gated, plain = pair
    rows, rewrites = _rows(gated, sql)
    assert not [r for r in rewrites if r.startswith(ORDERED)]
    assert gated.gate.prepare(sql).text == sql
    assert rows == _rows(plain, sql)[0]  # the same rows, or the same DataFusion error


def test_tpch_q12_gets_its_date_range_first_and_datafusions_answer(tpch):
    rewrites, text = tpch_rule_check(tpch, 12, "filter_order")
    assert rewrites == (f"{ORDERED} lineitem",)
    assert text.index("l_receiptdate >= date") < text.index("l_shipmode in")


POOL = [
    "mode IN ('AIR', 'SHIP')",
    "mode = 'MAIL'",
    "mode <> 'RAIL'",
    "mode IS NOT NULL",
    "note LIKE '0%'",
    "day >= DATE '2020-02-01'",
    "day < DATE '2020-02-01' + INTERVAL '1' MONTH",
    "day < due",
    "qty BETWEEN 5 AND 30",
    "qty = 6",
    "qty <> 7",
    "(qty < 3 OR mode = 'AIR')",
    "NOT (qty > 40)",
    "CAST(note AS INT) > 0",
    "qty / (qty - 6) > 0",
    "upper(mode) = 'SHIP'",
    "id IN (SELECT id FROM u WHERE kind = 'a')",
]


def test_any_order_of_filters_gives_datafusions_answer_or_error(pair):
    """Random WHEREs over safe filters and barriers that can raise (a cast of 'x', a
    division by zero at qty 6): the gate's text gives the rows, or the error, of the
    statement as written, and a barrier keeps the filters written before it before it."""
    gated, plain = pair
    rng = random.Random(18)
    moved = failed = 0
    for _ in range(60):
        picked = rng.sample(POOL, rng.randint(2, 6))
        sql = f"SELECT id, qty FROM t WHERE {' AND '.join(picked)}"
        rows, rewrites = _rows(gated, sql)
        assert rows == _rows(plain, sql)[0], sql
        text = gated.gate.prepare(sql).text
        assert bool(rewrites) == (text != sql)
        assert sorted(text) == sorted(sql)
        at = {p: text.index(p) for p in picked}
        barriers = [p for p in picked if p.startswith(("CAST", "qty /", "upper", "id IN"))]
        for barrier in barriers:
            before = set(picked[: picked.index(barrier)])
            assert {p for p in picked if at[p] < at[barrier]} == before, (sql, text)
        moved += text != sql
        failed += isinstance(rows, str)
    # The draw exercised both: statements the rule moved, and errors kept as written.
    assert moved >= 15
    assert failed >= 3

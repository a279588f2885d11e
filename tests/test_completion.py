"""Tab-completion of SQL: the engine's choices, and IPython's completer in SQL cells.

``|`` marks the cursor in every case. The engine cases read a live catalog of the TPC-H
tables; the IPython tests use the real shell with ``%load_ext workbench`` and ask its
completer the way the kernel does (``Completer.completions(cell, cursor)``).
"""

from __future__ import annotations

import time

import pyarrow as pa
import pytest
from datafusion import udf
from IPython.core.completer import provisionalcompleter

import workbench
from magics.completion import IDENTIFIER, register
from workbench.completion import Catalog, complete


def _split(marked: str) -> tuple[str, int]:
    return marked.replace("|", ""), marked.index("|")


@pytest.fixture(scope="module")
def catalog(tpch) -> Catalog:
    session = workbench.RuntimeProfile().session()
    tpch.register(session)
    session.sql('CREATE TABLE "Events" ("When" TIMESTAMP, kind VARCHAR)').to_pyarrow()
    return Catalog.read(session.ctx)


# (marked SQL, the first completions offered, in order)
CASES = [
    ("SELECT * FROM lin|", ["lineitem"]),
    ("SELECT * FROM lineitem l WHERE l.l_ord|", ["l_orderkey"]),
    ("SELECT l.l_ord| FROM lineitem l", ["l_orderkey"]),  # the alias comes after the cursor
    (
        "SELECT o.o_c| FROM lineitem l JOIN orders AS o ON true",
        ["o_custkey", "o_clerk", "o_comment"],
    ),
    ("SELECT lineitem.l_ship| FROM lineitem", ["l_shipdate", "l_shipinstruct", "l_shipmode"]),
    ("SELECT public.orders.o_orderd|", ["o_orderdate"]),
    ("SELECT * FROM lineitem, ord|", ["orders"]),
    ("SELECT * FROM generate_series(1, 3) g, ord|", ["orders"]),
    ("SELECT * FROM information_schema.rou|", ["routines"]),
    ("SELECT * FROM generate_s|", ["generate_series"]),
    ("WITH big AS (SELECT 1) SELECT * FROM b|", ["big"]),
    ("SELECT * FROM Ev|", ['"Events"']),
    ('SELECT e.| FROM "Events" e', ['"When"', "kind"]),
    ("SELECT prefixed_|", ["prefixed_hash64"]),
    ("SELECT stable_|", ["stable_id"]),
    ("SELECT date_tr|", ["date_trunc"]),
    ("SEL|", ["SELECT"]),
    ("sel|", ["select"]),
    ("SELECT 1 FROM t WH|", ['"When"', "WHEN", "WHERE"]),  # t is unknown: every column
    ("SELECT count(*) FROM t GROUP BY 1 ORD|", ["ORDER BY"]),
    ("SELECT * FROM orders WHERE o_c|", ["o_custkey", "o_clerk", "o_comment"]),
    ("SELECT * FROM lineitem; SELECT * FROM orders WHERE l_ship|", []),
    ("SELECT l_ship|", ["l_shipdate", "l_shipinstruct", "l_shipmode"]),  # no FROM yet
    ("SELECT * FROM orders WHERE o_orderdate < {lo|", ["low"]),
    ("SELECT * FROM t WHERE x = $lo|", []),
]


@pytest.mark.parametrize(("marked", "expected"), CASES)
def test_the_names_offered_fit_the_place_of_the_cursor(catalog, marked, expected):
    sql, cursor = _split(marked)
    found = complete(sql, cursor, catalog, variables=["low", "other"])
    assert found.place == "sql"
    assert [c.text for c in found.items][: len(expected)] == expected
    if not expected:
        assert found.items == ()


@pytest.mark.parametrize(
    ("marked", "place"),
    [
        ("SELECT * FROM t WHERE s = 'lin|", "string"),
        ("SELECT * FROM read_parquet($$/tmp/da|", "string"),
        ('SELECT "lin|', "quoted name"),
        ("SELECT 1 -- lin|", "comment"),
        ("SELECT 1 /* it's lin|", "comment"),
    ],
)
def test_nothing_is_offered_inside_literals_and_comments(catalog, marked, place):
    sql, cursor = _split(marked)
    found = complete(sql, cursor, catalog)
    assert (found.place, found.items) == (place, ())


def test_the_word_replaced_starts_where_the_name_starts(catalog):
    sql, cursor = _split("SELECT l.l_ord| FROM lineitem l")
    found = complete(sql, cursor, catalog)
    assert sql[found.start : cursor] == "l_ord"


def test_columns_in_scope_come_first_then_aliases_functions_and_keywords(catalog):
    sql, cursor = _split("SELECT * FROM lineitem WHERE l|")
    kinds = [c.kind for c in complete(sql, cursor, catalog).items]
    rank = ["column", "table", "function", "keyword"]
    assert kinds == sorted(kinds, key=rank.index)
    assert set(kinds) == set(rank)


def test_a_column_gets_its_type_and_a_function_its_kind(catalog):
    sql, cursor = _split("SELECT l_quantity, su| FROM lineitem")
    items = {c.text: c for c in complete(sql, cursor, catalog).items}
    assert items["sum"].detail == "aggregate"
    sql, cursor = _split("SELECT l_quant| FROM lineitem")
    (quantity,) = complete(sql, cursor, catalog).items
    assert (quantity.kind, quantity.detail) == ("column", "Decimal128(15, 2)")


# --- IPython: the matcher in a real shell -------------------------------------------


@pytest.fixture(scope="module")
def shell(ipython, tpch):
    tpch.register(ipython.magics_manager.registry["WorkbenchMagics"].holder.session)
    ipython.user_ns.update(lineitem_frame=1, zz_python=2)
    return ipython


def _offered(shell, marked: str) -> list[str]:
    text, cursor = _split(marked)
    with provisionalcompleter():
        completions = list(shell.Completer.completions(text, cursor))
    return [c.text for c in completions]


def _sql_offered(shell, marked: str) -> list[tuple[str, str]]:
    """(text, replaced fragment) of each completion, all of which must be the SQL matcher's."""
    text, cursor = _split(marked)
    with provisionalcompleter():
        completions = list(shell.Completer.completions(text, cursor))
    assert {c._origin for c in completions} <= {IDENTIFIER}
    return [(c.text, text[c.start : c.end]) for c in completions]


def test_a_table_completes_after_from_in_a_dfsql_cell(shell):
    assert _sql_offered(shell, "%%dfsql -o r\nSELECT * FROM lin|") == [("lineitem", "lin")]


def test_a_column_completes_after_an_alias_in_a_dfsql_cell(shell):
    offered = _sql_offered(shell, "%%dfsql\nSELECT l.l_ord|\nFROM lineitem l")
    assert offered == [("l_orderkey", "l_ord")]


def test_a_qualified_column_completes_in_an_explain_cell(shell):
    offered = _sql_offered(shell, "%%explain --analyze\nSELECT lineitem.l_ship| FROM lineitem")
    assert offered == [
        ("l_shipdate", "l_ship"),
        ("l_shipinstruct", "l_ship"),
        ("l_shipmode", "l_ship"),
    ]


@pytest.mark.parametrize(
    ("marked", "expected"),
    [
        ("%explain SELECT prefixed_|", "prefixed_hash64"),
        ("%explain --analyze SELECT stable_id_|", "stable_id_agg"),
        ("x = 1\n%explain SELECT date_tr|", "date_trunc"),
        ("%%dfsql\nSEL|", "SELECT"),
    ],
)
def test_functions_and_keywords_complete_after_explain_and_in_cells(shell, marked, expected):
    assert [text for text, _ in _sql_offered(shell, marked)] == [expected]


def test_a_table_and_a_udf_made_a_cell_ago_complete_at_once(shell):
    holder = shell.magics_manager.registry["WorkbenchMagics"].holder
    shell.run_cell("%%dfsql\nCREATE TABLE completion_fresh AS SELECT 1 AS fresh_col")
    holder.session.ctx.register_udf(
        udf(lambda a: a, [pa.int64()], pa.int64(), "immutable", name="completion_echo")
    )
    try:
        offered = _sql_offered(shell, "%%dfsql\nSELECT fresh_c|, completion_e FROM completion_fr")
        assert offered == [("fresh_col", "fresh_c")]
        tables = _sql_offered(shell, "%%dfsql\nSELECT * FROM completion_fr|")
        assert tables == [("completion_fresh", "completion_fr")]
        functions = _sql_offered(shell, "%%dfsql\nSELECT completion_e|")
        assert functions == [("completion_echo", "completion_e")]
    finally:
        shell.run_cell("%%dfsql\nDROP TABLE completion_fresh")


def test_python_variables_complete_inside_braces(shell):
    assert _sql_offered(shell, "%%dfsql\nSELECT {zz_|}") == [("zz_python", "zz_")]


@pytest.mark.parametrize(
    "marked",
    [
        "%%dfsql\nSELECT * FROM lin|",
        "%%dfsql\nSELECT zz_|",  # no SQL name fits: the word itself, not the Python name
        "%%dfsql\nSELECT 1 -- lin|",
        "%explain SELECT zz_|",
    ],
)
def test_python_names_are_not_offered_in_sql(shell, marked):
    offered = _offered(shell, marked)
    assert offered
    assert not {"lineitem_frame", "zz_python"} & set(offered)


@pytest.mark.parametrize(
    ("marked", "expected"),
    [
        ("x = lineitem_fr|", "lineitem_frame"),
        ("zz_|", "zz_python"),
        ("%%df|", "%%dfsql"),
    ],
)
def test_python_completion_is_unchanged_outside_sql(shell, marked, expected):
    offered = _offered(shell, marked)
    assert expected in offered
    assert "lineitem" not in offered


@pytest.mark.parametrize(
    "marked",
    [
        "%%dfsql -o lin|\nSELECT 1",  # the magic's own line
        "%explain --ana|",  # a flag being typed
        "%explain --diff lin|",  # --diff takes Python names or run ids
        "SELECT * FROM lin|",  # Python, however it looks
    ],
)
def test_the_sql_matcher_stays_out_of_python_and_magic_arguments(shell, marked):
    text, cursor = _split(marked)
    with provisionalcompleter():
        origins = {c._origin for c in shell.Completer.completions(text, cursor)}
    assert IDENTIFIER not in origins


def test_a_path_in_a_sql_string_is_left_to_ipython_file_completion(shell, tmp_path):
    (tmp_path / "orders_2024.parquet").touch()
    offered = _offered(shell, f"%%dfsql\nSELECT * FROM read_parquet('{tmp_path}/orders_|")
    assert any(text.endswith("orders_2024.parquet") for text in offered)


def test_loading_again_replaces_the_matcher_instead_of_adding_one(shell):
    holder = shell.magics_manager.registry["WorkbenchMagics"].holder
    register(shell, holder)
    identifiers = [getattr(m, "matcher_identifier", None) for m in shell.Completer.custom_matchers]
    assert identifiers.count(IDENTIFIER) == 1


def test_a_completion_request_reads_the_live_catalog_in_milliseconds(shell):
    text, cursor = _split("%%dfsql\nSELECT l.l_ord| FROM lineitem l JOIN orders o ON true")
    with provisionalcompleter():
        list(shell.Completer.completions(text, cursor))  # warm
        started = time.perf_counter()
        for _ in range(10):
            list(shell.Completer.completions(text, cursor))
    elapsed = (time.perf_counter() - started) / 10
    print(f"completion request with a live catalog read: {elapsed * 1000:.1f} ms")
    assert elapsed < 0.5

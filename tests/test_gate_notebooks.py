"""The gate and Ibis notebooks run headless in a real kernel; their outputs are checked."""

from __future__ import annotations

import ast
import decimal
import re

import pytest

from workbench import canonical
from workbench.ibis_lane import tpch
from workbench.ingress.gate import Policy

from .notebook_cells import code_cell, errors, executed, outputs, tagged_to_fail

pytestmark = pytest.mark.kernel


def _outputs(cell) -> str:
    return outputs(cell, traceback=True)


_cell = code_cell


def _rows(cell) -> list[list[str]]:
    """The rows of the Result a cell shows, from its text table (header, dashes, rows, footer)."""
    (plain,) = [o["data"]["text/plain"] for o in cell.outputs if "text/plain" in o.get("data", {})]
    lines = plain.splitlines()
    start = next(i for i, line in enumerate(lines) if set(line) <= {"-", "+"} and line) + 1
    body = [line for line in lines[start:] if " shown · " not in line]
    return [[value.strip() for value in line.split(" | ")] for line in body]


def _unexpected_errors(notebook) -> list:
    return [o for c, o in errors(notebook) if not tagged_to_fail(c)]


def _short_sql_error(cell) -> str:
    """The cell failed with a SqlError shown as its message (no traceback), as tagged."""
    assert tagged_to_fail(cell)
    (error,) = [o for o in cell.outputs if o["output_type"] == "error"]
    assert error["ename"] == "SqlError"
    shown = _outputs(cell)
    assert "Traceback" not in shown
    return shown


_executed = executed


# ---------------------------------------------------------------------------------------
# notebooks/gate.ipynb


@pytest.fixture(scope="module")
def gate_nb(tmp_path_factory):
    return _executed("gate.ipynb", tmp_path_factory)


def test_gate_notebook_records_the_policy_hash_and_canonical_sql(gate_nb):
    policy_hash = Policy().hash
    assert re.fullmatch(r"[0-9a-f]{16}", policy_hash)
    assert f"'{policy_hash}'" in _outputs(_cell(gate_nb, "%load_ext workbench"))
    shown = _outputs(_cell(gate_nb, 'print("policy hash:"'))
    assert f"policy hash: {policy_hash}" in shown
    assert (
        'canonical SQL: SELECT "nation"."n_name" AS "n_name", COUNT(*) AS "suppliers" '
        'FROM "supplier" AS "supplier" JOIN "nation" AS "nation"'
    ) in shown


def test_gate_notebook_shows_each_broken_query_as_a_short_error_with_a_suggestion(gate_nb):
    table = _short_sql_error(_cell(gate_nb, "%%dfsql\nSELECT count(*) AS lines FROM lineitems"))
    assert "line 1, column 31" in table
    assert "did you mean: lineitem?" in table
    column = _short_sql_error(_cell(gate_nb, "%%dfsql\nSELECT l_returnflag, sum(l_quantiy)"))
    assert "line 1, column 26" in column
    assert "Did you mean 'lineitem.l_quantity'?" in column
    ambiguous = _short_sql_error(_cell(gate_nb, "%%dfsql\nSELECT c_name, nation, c_acctbal"))
    assert "line 1, column 8" in ambiguous
    assert "qualify it: customer.c_name or customer_nation.c_name?" in ambiguous
    typed = _short_sql_error(_cell(gate_nb, "%%dfsql\nSELECT o_orderkey, o_orderdate +"))
    assert "line 1, column 32" in typed
    assert "Cannot coerce arithmetic expression Date32 + Decimal128(15, 2)" in typed


def test_gate_notebook_gives_each_broken_query_its_kind_position_and_suggestions(gate_nb):
    shown = _outputs(_cell(gate_nb, "from workbench.errors import SqlError"))
    pattern = re.compile(r"^(.+?)\s+line (\d+), column (\d+)\s+suggestions: (\[.*\])$")
    found = []
    for line in shown.strip().splitlines():
        match = pattern.match(line)
        assert match, line
        kind, row, column, suggestions = match.groups()
        found.append((kind, int(row), int(column), ast.literal_eval(suggestions)))
    assert found == [
        ("unknown table", 1, 31, ["lineitem"]),
        ("unknown column", 1, 26, ["l_quantity"]),
        ("ambiguous column", 1, 8, ["customer.c_name", "customer_nation.c_name"]),
        ("type", 1, 32, []),
    ]


def test_gate_notebook_defines_macros_uses_them_in_q1_and_lists_them(gate_nb):
    assert _rows(_cell(gate_nb, "%%dfsql\nCREATE FUNCTION disc_price")) == [
        ["disc_charge", "created"]
    ]
    shown = _outputs(_cell(gate_nb, "columns = "))
    assert "rewrites: ['macro disc_charge', 'macro disc_price']" in shown
    assert "same rows as TPC-H Q1: True" in shown
    listed = _rows(_cell(gate_nb, "%%dfsql\nSHOW FUNCTIONS"))
    assert sorted(row[:2] for row in listed) == [  # SHOW FUNCTIONS lists in no fixed order
        ["disc_charge", "Decimal(38, 6)"],
        ["disc_price", "Decimal(38, 4)"],
    ]


def test_gate_notebook_places_named_arguments_and_refuses_an_unknown_name(gate_nb, tpch_session):
    rows = _rows(_cell(gate_nb, "%%dfsql --limit 3"))
    balance = tpch_session.sql("SELECT c_acctbal FROM customer WHERE c_custkey = 1").to_pyarrow()
    discounted = balance["c_acctbal"][0].as_py() * decimal.Decimal("0.95")
    assert rows[0] == [
        "1",
        canonical.prefixed_hash64("cust", 1),
        canonical.prefixed_hash64("cust", 1),
        f"{discounted:.4f}",
    ]
    assert all(by_name == by_position for _, by_name, by_position, _ in rows)
    refused = _short_sql_error(_cell(gate_nb, "%%dfsql\nSELECT prefixed_hash64(prefx"))
    assert "line 1, column 24" in refused
    assert "no parameter 'prefx' (its parameters: prefix, value); did you mean prefix?" in refused


def test_gate_notebook_rewrites_the_domain_operators(gate_nb):
    rows = _rows(_cell(gate_nb, "%%dfsql -o near"))
    assert len(rows) == 5
    assert all(name.startswith("almond") for name, _ in rows)
    distances = [int(distance) for _, distance in rows]
    assert distances == sorted(distances)
    shown = _outputs(_cell(gate_nb, "list(near.run.rewrites)"))
    assert "['operator StartsWith -> starts_with', 'operator Distance -> levenshtein']" in shown


def test_gate_notebook_shows_a_plan_cache_miss_then_a_hit_in_wb_runs(gate_nb):
    policy_hash = Policy().hash
    assert _rows(_cell(gate_nb, "%%dfsql\nSELECT label, lane, plan_cache")) == [
        ["q6", "sql", "miss", policy_hash],
        ["q6", "sql", "hit", policy_hash],
    ]
    counts = re.search(r"plan cache: hits (\d+), misses (\d+)", _outputs(_cell(gate_nb, "cache =")))
    assert counts
    assert int(counts[1]) >= 1
    assert int(counts[2]) >= 1


def test_gate_notebook_passes_datafusion_syntax_and_records_the_gaps(gate_nb):
    assert "3 rows shown" in _outputs(_cell(gate_nb, "%%dfsql -o tables"))
    shown = _outputs(_cell(gate_nb, "arrays = "))
    assert "[{'xs': [1, 2, 3], 'second': 2}]" in shown
    assert "SHOW TABLES: gaps ['command: SHOW'], canonical SQL None" in shown
    assert 'SELECT [1, 2, 3]: gaps [], canonical SQL SELECT ARRAY[1, 2, 3] AS "xs"' in shown
    gaps = _rows(_cell(gate_nb, "%%dfsql\nSELECT run_id, lane, gate_gaps"))
    assert len(gaps) == 2  # SHOW FUNCTIONS and SHOW TABLES
    assert all(row[1:] == ["sql", "['command: SHOW']"] for row in gaps)


def test_gate_notebook_reads_the_gate_json_of_an_exported_bundle(gate_nb):
    shown = _outputs(_cell(gate_nb, "import json"))
    assert f"policy: {{'hash': '{Policy().hash}', 'dialect': 'postgres'" in shown
    assert 'canonical SQL: SELECT "nation"."n_name" AS "n_name"' in shown
    assert "AST loads back to it: True" in shown


def test_gate_notebook_fails_only_where_it_means_to(gate_nb):
    assert _unexpected_errors(gate_nb) == []
    tagged = [c for c in gate_nb.cells if tagged_to_fail(c)]
    assert len(tagged) == 5
    for cell in tagged:
        _short_sql_error(cell)


# ---------------------------------------------------------------------------------------
# notebooks/ibis.ipynb


@pytest.fixture(scope="module")
def ibis_nb(tmp_path_factory):
    return _executed("ibis.ipynb", tmp_path_factory)


def test_ibis_notebook_runs_q3_through_the_direct_lane_with_no_sql_text(ibis_nb):
    assert "10 rows shown" in _outputs(_cell(ibis_nb, "q3 = wb.run("))
    shown = _outputs(_cell(ibis_nb, 'print("lane:", q3.run.lane)'))
    assert "lane: ibis\n" in shown
    assert "canonical SQL: None" in shown
    assert "recorded as: -- Ibis expression" in shown
    assert "TableScan: lineitem" in shown
    assert "SubqueryAlias: __wb_j" in shown  # the direct lane's join inputs, not SQL's names
    assert "SELECT" not in shown.upper()


def test_ibis_notebook_gives_every_tpch_expression_the_rows_of_its_sql_query(ibis_nb):
    shown = _outputs(_cell(ibis_nb, "for number, query in tpch.QUERIES.items()"))
    found = {
        int(number): (lane, same)
        for number, lane, same in re.findall(
            r"Q(\d\d)  lane (\S+)\s+\d+ rows  same rows as SQL: (True|False)", shown
        )
    }
    assert set(found) == set(tpch.QUERIES)
    assert all(same == "True" for _, same in found.values())
    lanes = {number: lane for number, (lane, _) in found.items()}
    assert lanes.pop(18) == "ibis-sql"  # its IN subquery falls back
    assert set(lanes.values()) == {"ibis"}


def test_ibis_notebook_runs_an_inline_q9_with_deferred_selectors_and_bind(ibis_nb):
    cell = _cell(ibis_nb, "part, supplier, lineitem")
    for style in ("_.", "s.cols(", ".bind("):
        assert style in cell.source
    shown = _outputs(cell)
    assert "grouped by: ['nation', 'o_year']" in shown
    assert "lane ibis, same rows as TPC-H Q9: True" in shown


def test_ibis_notebook_window_function_falls_back_and_the_gap_table_names_it(ibis_nb):
    window = _cell(ibis_nb, 'customer = con.table("customer")')
    shown = _outputs(window)
    assert "lane: ibis-sql gaps: ['ops.WindowFunction']" in shown
    assert "10 rows shown" in shown
    gaps = _rows(_cell(ibis_nb, "%%dfsql\nSELECT * FROM wb_lane_gaps"))
    assert sorted(row[1:] for row in gaps) == [
        ["ibis-sql", "ops.InSubquery"],
        ["ibis-sql", "ops.WindowFunction"],
    ]
    (top_run,) = re.findall(
        r"run (\d{8}T\d{6}-[0-9a-f]+)", window.outputs[-1]["data"]["text/plain"]
    )
    assert [top_run, "ibis-sql", "ops.WindowFunction"] in gaps


def test_ibis_notebook_repeated_expression_hits_the_plan_cache(ibis_nb):
    assert "miss then hit" in _outputs(_cell(ibis_nb, "q3_again = "))
    assert _rows(_cell(ibis_nb, "%%dfsql\nSELECT label, lane, plan_cache")) == [
        ["q3", "ibis", "miss"],
        ["q3", "ibis", "hit"],
    ]


def test_ibis_notebook_has_no_errors(ibis_nb):
    assert _unexpected_errors(ibis_nb) == []
    assert not any(tagged_to_fail(c) for c in ibis_nb.cells)

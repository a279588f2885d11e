"""%%dfsql in a real IPython shell: preview, binding, parameters, short errors."""

from __future__ import annotations

import time

import pytest
from IPython.utils.capture import capture_output

import workbench
from workbench.errors import SqlError


def test_load_ext_registers_the_magic_and_binds_the_session(ipython):
    assert ipython.find_cell_magic("dfsql") is not None
    assert isinstance(ipython.user_ns["wb"], workbench.Session)


def test_usage_is_shown_with_question_mark(ipython):
    with capture_output() as captured:
        ipython.run_cell("%%dfsql?")
    text = captured.stdout
    assert "-o NAME, --out NAME" in text
    assert "--limit N" in text
    assert "{name} in the SQL binds the Python variable" in text


def test_preview_of_a_huge_series_is_immediate_and_bound(ipython):
    started = time.perf_counter()
    returned = ipython.run_cell_magic(
        "dfsql", "-o r", "SELECT * FROM generate_series(1, 500000000)"
    )
    elapsed = time.perf_counter() - started
    result = ipython.user_ns["r"]
    assert returned is result
    assert result.rows_read < 100_000
    bundle = result._repr_mimebundle_()
    assert "20 rows shown" in bundle["text/plain"]
    assert "more rows available" in bundle["text/html"]
    print(f"%%dfsql preview of 500M rows: {elapsed * 1000:.1f} ms")


def test_preview_after_to_polars_are_the_rows_of_the_query_once(ipython):
    ipython.run_cell_magic("dfsql", "-o r --limit 7", "SELECT * FROM generate_series(1, 300000)")
    result = ipython.user_ns["r"]
    result.preview()
    frame = result.to_polars()
    assert frame.height == 300000
    assert frame["value"].n_unique() == 300000
    assert frame["value"].min() == 1
    assert frame["value"].max() == 300000


def test_html_preview_escapes_every_value(ipython):
    result = ipython.run_cell_magic(
        "dfsql", "", "SELECT '<script>alert(1)</script>' AS \"<b>col</b>\""
    )
    html = result._repr_mimebundle_()["text/html"]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;col&lt;/b&gt;" in html
    assert "<script>alert(1)</script>" in result._repr_mimebundle_()["text/plain"]


def test_python_variables_are_bound_as_parameters(ipython):
    ipython.user_ns["needle"] = "it's; DROP TABLE x --"
    ipython.user_ns["low"] = 3
    result = ipython.run_cell_magic(
        "dfsql",
        "",
        "SELECT {needle} AS echoed, count(*) AS n FROM generate_series(1, 10) WHERE value > {low}",
    )
    row = result.to_pyarrow().to_pylist()[0]
    assert row == {"echoed": "it's; DROP TABLE x --", "n": 7}


def test_params_option_takes_a_dict(ipython):
    ipython.user_ns["p"] = {"lo": 8}
    result = ipython.run_cell_magic(
        "dfsql", "--params p", "SELECT count(*) AS n FROM generate_series(1, 10) WHERE value > $lo"
    )
    assert result.to_pyarrow().column("n").to_pylist() == [2]


def test_sql_error_is_a_short_message_with_a_caret_and_the_next_cell_runs(ipython):
    with capture_output() as captured:
        outcome = ipython.run_cell("%%dfsql\nSELECT value, valeu\nFROM generate_series(1, 3)")
    assert isinstance(outcome.error_in_exec, SqlError)
    shown = captured.stdout + captured.stderr
    assert "line 1, column 15" in shown
    assert "  SELECT value, valeu\n                ^^^^^" in shown
    assert "Traceback" not in shown
    assert "site-packages" not in shown
    after = ipython.run_cell("%%dfsql\nSELECT 1 + 1 AS two")
    assert after.success
    assert after.result.to_pyarrow().column("two").to_pylist() == [2]


def test_multi_statement_cell_with_tpch_q15(ipython, tpch):
    from workbench.datasets import tpch_query

    tpch.register(ipython.user_ns["wb"])
    result = ipython.run_cell_magic("dfsql", "-o q15", tpch_query(15))
    table = result.to_pyarrow()
    assert table.num_rows >= 1
    assert "s_suppkey" in table.column_names
    assert "revenue0" not in ipython.user_ns["wb"].tables()


@pytest.mark.parametrize("limit", [0, 3])
def test_limit_sets_preview_rows(ipython, limit):
    result = ipython.run_cell_magic(
        "dfsql", f"--limit {limit}", "SELECT * FROM generate_series(1, 100)"
    )
    assert f"{limit} rows shown" in result._repr_mimebundle_()["text/plain"]

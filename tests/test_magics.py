"""%%dfsql in a real IPython shell: preview, binding, parameters, short errors."""

from __future__ import annotations

import time

import pytest
from IPython.utils.capture import capture_output

import workbench
from workbench.errors import SqlError

from .conftest import run_python


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


def test_preview_of_a_huge_series_reads_only_its_first_batches_and_is_bound(ipython):
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


def test_to_polars_after_the_preview_returns_every_row_once_without_rerunning(ipython):
    ipython.run_cell_magic("dfsql", "-o r --limit 7", "SELECT * FROM generate_series(1, 300000)")
    result = ipython.user_ns["r"]
    run_id = result.run.run_id
    assert 7 < result.rows_read < 300000  # the cell's preview read only the head
    frame = result.to_polars()
    assert result.run.run_id == run_id
    assert result.rows_read == 300000  # the engine produced each row once: no second run
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


# Python names that SQLGlot's tokenizer reads as keywords: each must bind like any other.
KEYWORD_NAMES = [
    "limit", "date", "end", "offset", "time", "index", "first", "range", "rows", "filter",
    "format", "table", "left", "text", "json", "year", "order", "group", "values", "key",
]  # fmt: skip


@pytest.mark.parametrize("name", KEYWORD_NAMES)
def test_braces_bind_python_names_that_are_sql_keywords(ipython, name):
    ipython.user_ns[name] = 41
    result = ipython.run_cell_magic("dfsql", "", f"SELECT {{{name}}} + 1 AS answer")
    assert result.to_pyarrow().to_pylist() == [{"answer": 42}]


def test_dollar_quoted_strings_are_left_alone(ipython):
    ipython.user_ns["x"] = 5
    result = ipython.run_cell_magic("dfsql", "", "SELECT $$ {x} ; $y $$ AS literal, {x} AS bound")
    assert result.to_pyarrow().to_pylist() == [{"literal": " {x} ; $y ", "bound": 5}]


def test_params_takes_a_dict_literal_with_spaces(ipython):
    result = ipython.run_cell_magic(
        "dfsql", "--params {'lo': 7, 'hi': 9}  --limit 2", "SELECT $lo + $hi AS s"
    )
    assert result.to_pyarrow().to_pylist() == [{"s": 16}]
    assert result.preview_rows == 2


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--limit -1", "--limit takes a whole number >= 0"),
        ("--lmit 3", "unknown flag --lmit"),
        ("-o", "--out needs NAME"),
        ("--params {'x': 1", "unclosed bracket"),
        ("--params {'x': nosuchname}", "--params {'x': nosuchname}: NameError"),
        ("-o 1bad", "takes a Python variable name"),
        ("--label a --label b", "--label is given twice"),
    ],
)
def test_bad_flags_are_short_usage_errors(ipython, line, message):
    with capture_output() as captured:
        outcome = ipython.run_cell(f"%%dfsql {line}\nSELECT 1")
    assert isinstance(outcome.error_in_exec, workbench.errors.UsageError)
    shown = captured.stdout + captured.stderr
    assert message in shown
    assert "Traceback" not in shown


def test_explain_flags_take_any_whitespace_and_reject_unknown_ones(ipython):
    tree = ipython.run_line_magic(
        "explain", "--analyze\t  --all   SELECT count(*) FROM generate_series(1, 10)"
    )
    assert tree.analyzed
    assert tree.views == ("logical", "physical")
    with pytest.raises(workbench.errors.UsageError, match="unknown flag --analyse"):
        ipython.run_line_magic("explain", "--analyse SELECT 1")


def test_explain_analyze_verbose_runs_each_statement_of_a_cell_once(ipython):
    session = ipython.user_ns["wb"]
    session.sql("CREATE OR REPLACE TABLE explained_log (step BIGINT)")
    tree = ipython.run_cell_magic(
        "explain",
        "--analyze --verbose",
        "INSERT INTO explained_log VALUES (1);\n"
        "SELECT step FROM explained_log WHERE step > 0;\n"
        "INSERT INTO explained_log VALUES (2)",
    )
    steps = session.sql("SELECT step FROM explained_log").to_pyarrow().column(0).to_pylist()
    assert sorted(steps) == [1, 2]  # each INSERT ran exactly once
    assert tree.analyzed
    # The explained query ran after the first INSERT and before the second: it saw one row.
    assert tree.physical.output_rows == 1
    assert tree.verbose is not None
    assert "initial_logical_plan" in tree.verbose
    assert "TableScan: explained_log" in tree.verbose
    assert "Dml" not in tree.verbose  # the verbose text is the query's, not an INSERT's


def test_wb_profile_starts_a_configured_session_for_every_magic(ipython):
    before = ipython.user_ns["wb"]
    try:
        with capture_output() as captured:
            profile = ipython.run_line_magic("wb", "profile read_only=true memory_limit=2GB")
        assert profile.read_only
        assert profile.memory_limit_bytes == 2 << 30
        assert "new session" in captured.stdout
        now = ipython.user_ns["wb"]
        assert now is not before
        assert now.profile == profile
        with capture_output() as captured:
            outcome = ipython.run_cell("%%dfsql\nCREATE TABLE nope AS SELECT 1")
        assert isinstance(outcome.error_in_exec, workbench.errors.ReadOnlyError)
        tree = ipython.run_line_magic("explain", "SELECT 1")
        assert tree.run_id is not None
        assert now.recent(tree.run_id)[1].label == "explain"  # the explain ran on the new session
    finally:
        ipython.magics_manager.registry["WbMagics"].holder.use(before)
        ipython.user_ns["wb"] = before


def test_wb_profile_with_a_bad_setting_keeps_the_session(ipython):
    before = ipython.user_ns["wb"]
    with capture_output() as captured:
        outcome = ipython.run_cell("%wb profile memory_limit=lots")
    assert isinstance(outcome.error_in_exec, workbench.errors.WorkbenchError)
    assert "expected a size such as 2GB" in captured.stdout + captured.stderr
    assert ipython.user_ns["wb"] is before


def test_the_profile_environment_variable_configures_load_ext():
    code = """
        import os
        os.environ["WORKBENCH_PROFILE"] = "read_only=true target_partitions=3"
        from IPython.testing.globalipapp import start_ipython
        shell = start_ipython()
        shell.run_line_magic("load_ext", "workbench")
        profile = shell.user_ns["wb"].profile
        print(profile.read_only, profile.target_partitions)
    """
    assert run_python(code).split()[-2:] == ["True", "3"]

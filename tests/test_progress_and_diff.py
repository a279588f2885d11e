"""Live progress from streaming metrics; plan diffs and the regression guard."""

from __future__ import annotations

import json

import pytest

from workbench import datasets
from workbench.explain import explain
from workbench.plan_diff import assert_no_regression, diff, load_tree, regressions
from workbench.progress import Progress, Watcher
from workbench.widgets.progress import progress_bundle

SLOW = "SELECT sum(l_extendedprice * l_discount) AS s FROM lineitem, generate_series(1, 12)"


def test_watcher_reports_growing_progress_and_settles(tpch_session):
    result = tpch_session.sql(SLOW)
    reports: list[Progress] = []
    with Watcher(result, reports.append, delay_s=0.05, interval_s=0.05):
        result.to_pyarrow()
    assert len(reports) >= 2
    assert reports[-1].done
    assert not any(r.done for r in reports[:-1])
    scanned = [r.rows_scanned for r in reports]
    assert scanned == sorted(scanned)
    assert reports[-1].rows_scanned >= 600572
    assert reports[-1].run_id == result.run.run_id


def test_short_queries_report_nothing(session):
    result = session.sql("SELECT 1")
    reports: list[Progress] = []
    with Watcher(result, reports.append, delay_s=5):
        result.to_pyarrow()
    assert reports == []


def test_progress_view_is_escaped_text_and_html():
    bundle = progress_bundle(
        Progress(run_id="<b>x</b>", elapsed_s=1.5, rows_out=2, rows_scanned=3000, done=True)
    )
    assert bundle["text/plain"] == "done: 3,000 rows scanned, 2 rows out, 1.5 s (run <b>x</b>)"
    assert "&lt;b&gt;x&lt;/b&gt;" in bundle["text/html"]
    assert "<b>x</b>" not in bundle["text/html"]


def test_a_failing_final_report_does_not_mask_the_query_error(tpch_session):
    result = tpch_session.sql(SLOW)
    seen: list[Progress] = []

    def view_gone_at_the_end(progress: Progress) -> None:
        if progress.done:
            raise RuntimeError("view is gone")
        seen.append(progress)

    def query_then_fail() -> None:
        with Watcher(result, view_gone_at_the_end, delay_s=0.01, interval_s=0.01):
            result.preview(1)
            raise KeyError("the user's own error")

    with pytest.raises(KeyError, match="the user's own error"):
        query_then_fail()
    assert seen, "the query finished before the first report; the test needs a slower query"


@pytest.fixture
def two_q1_plans(tpch_session):
    # Q1 has no LIMIT and no join: with those, operators may stop early or get
    # dynamic filters, and row counts legitimately differ from run to run.
    q1 = datasets.tpch_query(1)
    first = explain(tpch_session, q1, analyze=True)
    second = explain(tpch_session, q1, analyze=True)
    return first, second


def test_same_query_twice_has_the_same_shape(two_q1_plans):
    first, second = two_q1_plans
    compared = diff(first, second)
    assert compared.same_shape
    assert len(compared.rows) == len(first.nodes)
    assert all(r.rows_delta == 0 for r in compared.rows)
    assert_no_regression(first, second)
    assert "rows +0" in compared.text()


def test_different_queries_mark_added_and_removed_operators(tpch_session):
    a = explain(tpch_session, "SELECT count(*) FROM orders", analyze=True)
    b = explain(
        tpch_session,
        "SELECT o_orderstatus, count(*) FROM orders GROUP BY 1 ORDER BY 1",
        analyze=True,
    )
    compared = diff(a, b)
    statuses = {r.status for r in compared.rows}
    assert {"removed", "added"} <= statuses
    html = compared._repr_mimebundle_()["text/html"]
    assert "<td>added</td>" in html
    problems = regressions(a, b)
    assert problems
    assert problems[0].startswith("plan shape changed")
    with pytest.raises(AssertionError, match="plan shape changed"):
        assert_no_regression(a, b)


def test_worse_pruning_is_a_regression(tpch_session, tmp_path):
    selective = explain(
        tpch_session, "SELECT count(*) FROM lineitem WHERE l_orderkey < 1000", analyze=True
    )
    broad = explain(
        tpch_session, "SELECT count(*) FROM lineitem WHERE l_orderkey < 500000", analyze=True
    )
    baseline = tmp_path / "metrics_tree.json"
    baseline.write_text(selective.to_json())
    assert load_tree(baseline).physical.operator == selective.physical.operator
    problems = regressions(load_tree(baseline), broad)
    assert any("keeps" in p and "was" in p for p in problems), problems
    assert_no_regression(baseline, json.loads(selective.to_json()))


def test_explain_diff_magic_compares_two_results(ipython, tpch):
    tpch.register(ipython.user_ns["wb"])
    ipython.run_cell_magic("dfsql", "-o a", "SELECT count(*) FROM nation")
    ipython.run_cell_magic("dfsql", "-o b", "SELECT count(*) FROM nation")
    ipython.user_ns["a"].to_pyarrow()
    ipython.user_ns["b"].to_pyarrow()
    compared = ipython.run_line_magic("explain", "--diff a b")
    assert compared.same_shape
    by_id = ipython.run_line_magic("explain", f"--diff {ipython.user_ns['a'].run.run_id} b")
    assert by_id.same_shape

"""Live progress from streaming metrics; plan diffs and the regression guard."""

from __future__ import annotations

import json

import pytest

import workbench
from workbench import datasets, plans
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


def test_progress_view_is_escaped_text_and_html(tpch_session):
    result = tpch_session.sql("SELECT '<b>' AS x")
    result.to_pyarrow()
    from workbench.progress import snapshot

    bundle = progress_bundle(snapshot(result, done=True))
    assert bundle["text/plain"].startswith("done: ")
    assert "wb-progress" in bundle["text/html"]


@pytest.fixture
def two_q3_plans(tpch_session):
    q3 = datasets.tpch_query(3)
    first = plans.explain(tpch_session, q3, analyze=True)
    second = plans.explain(tpch_session, q3, analyze=True)
    return first, second


def test_same_query_twice_has_the_same_shape(two_q3_plans):
    first, second = two_q3_plans
    compared = diff(first, second)
    assert compared.same_shape
    assert len(compared.rows) == len(first.nodes)
    assert all(r.rows_delta == 0 for r in compared.rows)
    assert_no_regression(first, second)
    assert "rows +0" in compared.text()


def test_different_queries_mark_added_and_removed_operators(tpch_session):
    a = plans.explain(tpch_session, "SELECT count(*) FROM orders", analyze=True)
    b = plans.explain(
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
    selective = plans.explain(
        tpch_session, "SELECT count(*) FROM lineitem WHERE l_orderkey < 1000", analyze=True
    )
    broad = plans.explain(
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


def test_profile_sessions_still_work_without_the_progress_thread():
    session = workbench.RuntimeProfile().session()
    assert session.sql("SELECT 1 AS one").to_pyarrow().column("one").to_pylist() == [1]

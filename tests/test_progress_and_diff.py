"""Live progress from streaming metrics; plan diffs and the regression guard."""

from __future__ import annotations

import json

import pytest

import workbench
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
    with Watcher(result, reports.append):  # the default delay, as %%dfsql uses it
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
def two_q1_plans(tpch):
    # Q1 has no LIMIT and no join: with those, operators may stop early or get
    # dynamic filters, and row counts legitimately differ from run to run. On one
    # partition per core: with more partitions than cores (the machine tuning's 4 on 2
    # cores) the partial aggregate's output rows moved by 4 between identical runs in 3 of
    # 4 tries under CPU load (docs/known-issues.md).
    session = workbench.RuntimeProfile.datafusion().session()
    tpch.register(session)
    q1 = datasets.tpch_query(1)
    first = explain(session, q1, analyze=True)
    second = explain(session, q1, analyze=True)
    return first, second


def _changes(compared) -> list[tuple[str, str, int]]:
    return [(r.status, r.operator, r.depth) for r in compared.rows if r.status != "matched"]


def test_identical_plans_match_operator_by_operator_and_pass_the_guard(two_q1_plans, tmp_path):
    first, second = two_q1_plans
    compared = diff(first, second)
    assert [(r.status, r.operator) for r in compared.rows] == [
        ("matched", n.operator) for n in first.nodes
    ]
    assert [r.rows_delta for r in compared.rows] == [0] * len(first.nodes)
    assert compared.text().count("rows +0") == len(first.nodes)
    assert regressions(first, second) == []
    assert_no_regression(first, second)
    # The same through a saved metrics tree and its dict.
    saved = tmp_path / "metrics_tree.json"
    saved.write_text(first.to_json())
    assert_no_regression(saved, json.loads(second.to_json()))


def test_a_changed_operator_is_reported_where_it_changed_and_fails_the_guard(tpch_session):
    grouped = "SELECT o_orderstatus, count(*) FROM orders {} GROUP BY 1 ORDER BY 1"
    a = explain(tpch_session, grouped.format(""), analyze=True)
    b = explain(tpch_session, grouped.format("WHERE o_orderkey < 100"), analyze=True)
    compared = diff(a, b)
    scan_depth = len(a.nodes) - 1  # a chain: the scan is the deepest operator
    assert a.nodes[-1].operator == "DataSourceExec"
    # The operators above the scan still match; below them the filter is new.
    assert [r.status for r in compared.rows[:scan_depth]] == ["matched"] * scan_depth
    assert _changes(compared) == [
        ("removed", "DataSourceExec", scan_depth),
        ("added", "FilterExec", scan_depth),
        ("added", "DataSourceExec", scan_depth + 1),
    ]
    assert "\n+ " + "  " * scan_depth + "FilterExec\n" in compared.text()
    assert "<td>added</td><td style='padding-left:" in compared._repr_mimebundle_()["text/html"]
    shape = "plan shape changed: removed DataSourceExec, added FilterExec, added DataSourceExec"
    assert regressions(a, b) == [shape]
    with pytest.raises(AssertionError, match=shape):
        assert_no_regression(a, b)


def test_a_different_root_reports_every_operator_of_both_plans(tpch_session):
    a = explain(tpch_session, "SELECT count(*) FROM orders", analyze=True)
    b = explain(
        tpch_session,
        "SELECT o_orderstatus, count(*) FROM orders GROUP BY 1 ORDER BY 1",
        analyze=True,
    )
    assert a.physical.operator != b.physical.operator
    changes = _changes(diff(a, b))
    assert [op for status, op, _ in changes if status == "removed"] == [n.operator for n in a.nodes]
    assert [op for status, op, _ in changes if status == "added"] == [n.operator for n in b.nodes]
    with pytest.raises(AssertionError, match="added SortPreservingMergeExec"):
        assert_no_regression(a, b)


def test_worse_pruning_is_a_regression_and_better_pruning_is_not(tpch_session, tmp_path):
    selective = explain(
        tpch_session, "SELECT count(*) FROM lineitem WHERE l_orderkey < 1000", analyze=True
    )
    broad = explain(
        tpch_session, "SELECT count(*) FROM lineitem WHERE l_orderkey < 500000", analyze=True
    )
    scan = broad.nodes[-1]
    before = {p.name: p for p in selective.nodes[-1].pruning}["row_groups_pruned_statistics"]
    after = {p.name: p for p in scan.pruning}["row_groups_pruned_statistics"]
    assert after.total == before.total
    assert after.matched > before.matched  # the broad filter keeps more row groups
    baseline = tmp_path / "metrics_tree.json"
    baseline.write_text(selective.to_json())
    problems = regressions(load_tree(baseline), broad)
    expected = (
        f"{scan.label}: row_groups_pruned_statistics keeps {after.matched}/{after.total}, "
        f"was {before.matched}/{before.total}"
    )
    assert expected in problems
    assert all(p.startswith(f"{scan.label}: ") and " keeps " in p for p in problems), problems
    with pytest.raises(AssertionError, match="row_groups_pruned_statistics keeps"):
        assert_no_regression(baseline, broad)
    assert regressions(broad, selective) == []  # pruning more is an improvement


def test_a_new_spill_is_a_regression_and_a_spill_gone_is_not(tpch, tmp_path):
    sort = "SELECT l_orderkey, l_comment FROM lineitem ORDER BY l_comment"
    roomy = workbench.RuntimeProfile(target_partitions=1).session()
    tight = workbench.RuntimeProfile(
        target_partitions=1, memory_limit_bytes=100_000_000, spill_dir=str(tmp_path)
    ).session()
    for session in (roomy, tight):
        tpch.register(session)
    before = explain(roomy, sort, analyze=True)
    after = explain(tight, sort, analyze=True)
    assert diff(before, after).same_shape
    (spilled,) = [n for n in after.nodes if n.spill_count]
    assert not any(n.spill_count for n in before.nodes)
    message = f"{spilled.label}: spills now ({spilled.spilled_bytes:,} bytes), did not before"
    assert regressions(before, after) == [message]
    with pytest.raises(AssertionError, match="spills now"):
        assert_no_regression(before, after)
    assert regressions(after, before) == []


def test_explain_diff_magic_compares_two_results_by_name_or_run_id(ipython, tpch):
    tpch.register(ipython.user_ns["wb"])
    ipython.run_cell_magic("dfsql", "-o a", "SELECT count(*) FROM nation")
    ipython.run_cell_magic("dfsql", "-o b", "SELECT count(*) FROM nation")
    ipython.run_cell_magic("dfsql", "-o c", "SELECT n_name FROM nation WHERE n_nationkey < 3")
    a, b, c = (ipython.user_ns[name] for name in "abc")
    for result in (a, b, c):
        result.to_pyarrow()
    operators = [n.operator for n in a.plan().nodes]
    for compared in (
        ipython.run_line_magic("explain", "--diff a b"),
        ipython.run_line_magic("explain", f"--diff {a.run.run_id} b"),
    ):
        assert (compared.a.run_id, compared.b.run_id) == (a.run.run_id, b.run.run_id)
        assert [(r.status, r.operator) for r in compared.rows] == [
            ("matched", op) for op in operators
        ]
        assert compared.text().startswith(
            f"plan diff: A run {a.run.run_id} vs B run {b.run.run_id}"
        )
    changed = ipython.run_line_magic("explain", "--diff a c")
    assert _changes(changed)[0] == ("removed", operators[0], 0)
    assert [op for status, op, _ in _changes(changed) if status == "added"] == [
        n.operator for n in c.plan().nodes
    ]

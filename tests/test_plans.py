"""The plan model, %explain and the run diagnostics, on TPC-H demo data."""

from __future__ import annotations

import json

import pytest

import workbench
from workbench import datasets, plans
from workbench.explain import explain
from workbench.plans import _parse_count, _parse_pruning
from workbench.runs import RunStatus
from workbench.widgets.plan_tree import payload, plan_html


@pytest.fixture(scope="module")
def q9_tree(tpch):
    session = workbench.RuntimeProfile().session()
    tpch.register(session)
    return session, explain(session, datasets.tpch_query(9), analyze=True)


def _operators(display: str) -> list[str]:
    """Operator names of an indented EXPLAIN text, in pre-order."""
    return [line.strip().split(":")[0] for line in display.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4 total → 1 matched", (4, 1)),
        ("100.4 K total → 20.10 K matched", (100400, 20100)),
        ("N/A", None),
    ],
)
def test_pruning_text_is_parsed(text, expected):
    assert _parse_pruning(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("3", 3), ("20.10 K", 20100), ("1.50 M", 1500000), ("N/A (0/0)", None)]
)
def test_count_text_is_parsed(text, expected):
    assert _parse_count(text) == expected


def test_q9_every_operator_appears_with_rows_and_time(q9_tree):
    session, tree = q9_tree
    df, _ = session.recent(tree.run_id)
    assert [n.operator for n in tree.nodes] == _operators(df.execution_plan().display_indent())
    assert tree.analyzed
    for node in tree.nodes:
        assert node.output_rows is not None, node.label
        assert node.exclusive_ns is not None, node.label
    assert tree.nodes[0].output_rows == 175  # Q9 at scale 0.1: 25 nations x 7 years


def test_q9_exclusive_shares_sum_to_one(q9_tree):
    _, tree = q9_tree
    assert sum(n.share for n in tree.nodes) == pytest.approx(1.0)
    assert tree.total_ns == sum(n.exclusive_ns or 0 for n in tree.nodes)


def test_q9_scans_show_pruning_counters(q9_tree):
    _, tree = q9_tree
    scans = [n for n in tree.nodes if n.operator == "DataSourceExec"]
    assert len(scans) == 6
    for scan in scans:
        names = {p.name for p in scan.pruning}
        assert "row_groups_pruned_statistics" in names, scan.label
        assert all(p.matched <= p.total for p in scan.pruning)
    lineitem = next(s for s in scans if "lineitem" in s.details)
    assert lineitem.output_rows == 600572


def test_hot_path_follows_the_most_expensive_subtree(q9_tree):
    _, tree = q9_tree
    assert tree.hot_path[0] == 0
    for parent_id, child_id in zip(tree.hot_path, tree.hot_path[1:], strict=False):
        parent = tree.node(parent_id)
        assert child_id == max(parent.children, key=lambda c: c.subtree_ns).id


def test_the_same_tree_comes_back_from_the_run_record(tpch_session):
    result = tpch_session.sql(datasets.tpch_query(9))
    rows = result.to_pyarrow().num_rows
    tree = result.plan()
    assert tree.run_id == result.run.run_id
    assert tree.analyzed
    assert tree.nodes[0].output_rows == rows
    assert sum(n.share for n in tree.nodes) == pytest.approx(1.0)


def test_planning_only_runs_nothing_and_closes_its_run(tpch_session):
    tree = explain(tpch_session, "SELECT count(*) FROM lineitem")
    assert not tree.analyzed
    assert all(n.output_rows is None for n in tree.nodes)
    _, record = tpch_session.recent(tree.run_id)
    assert record.status == RunStatus.PLANNED
    assert record.finished_at is not None


def test_planning_only_never_changes_data(session):
    session.sql("CREATE TABLE t (x INT)")
    with pytest.raises(workbench.errors.SqlError, match="planning only: DML"):
        explain(session, "INSERT INTO t VALUES (2)")
    assert session.sql("SELECT count(*) AS n FROM t").to_pyarrow().column("n").to_pylist() == [0]


def test_views_escape_every_value_and_carry_text(tpch_session):
    tree = explain(tpch_session, "SELECT '<img src=x onerror=alert(1)>' AS x", analyze=True)
    bundle = tree._repr_mimebundle_()
    assert "<img src=x" not in bundle["text/html"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in bundle["text/html"]
    assert "ProjectionExec" in bundle["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_logical_and_verbose_views(tpch_session):
    tree = explain(
        tpch_session, "SELECT count(*) FROM orders", views=("logical", "physical"), verbose=True
    )
    text = tree.text()
    assert "optimized logical plan" in text
    assert "TableScan: orders" in text
    assert "EXPLAIN VERBOSE" in text
    assert "initial_logical_plan" in (tree.verbose or "")


def test_largest_tpch_payload_is_small(tpch_session):
    sizes = {}
    for number in range(1, 23):
        tree = explain(tpch_session, datasets.tpch_query(number), analyze=True)
        sizes[number] = len(json.dumps(payload(tree))) + len(plan_html(tree))
    assert max(sizes.values()) < 200_000, sizes


def test_every_run_is_recorded_in_json_lines_and_wb_runs(tmp_path):
    session = workbench.RuntimeProfile(artifact_dir=str(tmp_path)).session()
    session.sql("SELECT * FROM generate_series(1, 10)", label="ten").to_pyarrow()
    failing = session.sql("SELECT 1 / (value - 5) FROM generate_series(1, 10)")
    with pytest.raises(workbench.WorkbenchError):
        failing.to_pyarrow()
    events = [json.loads(line) for line in session.diagnostics.runs_path.read_text().splitlines()]
    assert [(e["event"], e["status"]) for e in events] == [
        ("start", "planned"),
        ("planned", "planned"),  # with what the SQL gate made of the statement
        ("finish", "finished"),
        ("start", "planned"),
        ("planned", "planned"),
        ("finish", "failed"),
    ]
    assert session.diagnostics.runs_path.parent.parent == tmp_path
    rows = (
        session.sql("SELECT label, status, rows, error FROM wb_runs ORDER BY started_at")
        .to_pyarrow()
        .to_pylist()
    )
    assert rows[0] == {"label": "ten", "status": "finished", "rows": 10, "error": None}
    assert rows[1]["status"] == "failed"
    assert "Divide by zero" in rows[1]["error"]
    assert rows[2]["status"] == "planned"  # the query reading wb_runs sees itself


def test_explain_magic_returns_the_model(ipython, tpch):
    tpch.register(ipython.user_ns["wb"])
    tree = ipython.run_line_magic(
        "explain", "--analyze SELECT count(*) FROM orders WHERE o_orderdate < DATE '1995-01-01'"
    )
    assert isinstance(tree, plans.PlanTree)
    assert tree.analyzed
    assert tree.nodes[0].output_rows == 1
    cell = ipython.run_cell_magic(
        "explain", "--logical", "SELECT o_orderkey FROM orders -- comment"
    )
    assert cell.views == ("logical",)
    assert "TableScan: orders" in cell.text()
    assert "ProjectionExec" not in cell.text()

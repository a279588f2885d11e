"""Every notebook in notebooks/ runs headless in a real kernel; its outputs are checked."""

from __future__ import annotations

import pytest

from workbench import datasets

from .conftest import REPO, physical_operator_count
from .notebook_cells import code_cell, executed, outputs

pytestmark = pytest.mark.kernel


_outputs = outputs
_cell = code_cell
_executed = executed


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    return _executed("tour.ipynb", tmp_path_factory)


def test_tour_registers_the_demo_tables(tour):
    shown = _outputs(_cell(tour, "%load_ext workbench"))
    for table in ("lineitem", "orders", "customer", "nation"):
        assert f"'{table}'" in shown


def test_tour_runs_tpch_q1_with_a_preview(tour):
    shown = _outputs(_cell(tour, "%%dfsql -o q1"))
    assert "l_returnflag" in shown
    assert "4 rows shown" in shown
    assert "all rows shown" in shown


def test_tour_binds_python_parameters(tour, tpch_session):
    shown = _outputs(_cell(tour, "%%dfsql -o q6"))
    expected = tpch_session.sql(
        "select sum(l_extendedprice * l_discount) as revenue from lineitem "
        "where l_shipdate >= date '1994-01-01' and l_shipdate < date '1995-01-01' "
        "and l_discount between 0.05 and 0.07 and l_quantity < 24"
    ).to_pyarrow()
    assert str(expected.column("revenue")[0].as_py()) in shown


def test_tour_uses_the_rust_udfs(tour):
    from workbench import canonical

    shown = _outputs(_cell(tour, "%%dfsql --limit 5\nSELECT c_custkey"))
    assert str(canonical.prefixed_hash64("cust", 1)) in shown
    assert canonical.stable_id(1, "Customer#000000001") in shown


def test_tour_pages_and_hands_the_result_to_polars(tour, tpch):
    assert "5 rows shown" in _outputs(_cell(tour, "%%dfsql -o items"))
    assert "l_quantity" in _outputs(_cell(tour, "items.page(2"))
    lineitem_rows = tpch.row_counts["lineitem"]
    assert f"({lineitem_rows}, 16)" in _outputs(_cell(tour, "frame = items.to_polars()"))


def test_tour_shows_a_misspelled_column_with_a_caret_and_goes_on(tour):
    shown = _outputs(_cell(tour, "%%dfsql\nSELECT l_orderkey, l_quantiy"))
    assert "SqlError" in shown
    assert "line 1, column 20" in shown
    last = _outputs(_cell(tour, "%%dfsql\nSELECT count(*) AS orders"))
    assert "150000" in last


@pytest.fixture(scope="module")
def plans_nb(tmp_path_factory):
    return _executed("plans.ipynb", tmp_path_factory)


def test_plans_notebook_shows_q9_analyzed_with_a_widget_and_fallbacks(plans_nb):
    cell = _cell(plans_nb, "%%explain --analyze")
    (output,) = cell.outputs
    assert "application/vnd.jupyter.widget-view+json" in output["data"]
    assert "physical plan (analyzed" in output["data"]["text/plain"]
    assert "<details open class='hot'>" in output["data"]["text/html"]
    assert "DataSourceExec" in output["data"]["text/html"]


def test_plans_notebook_reports_shares_hot_path_and_pruning(plans_nb):
    shown = _outputs(_cell(plans_nb, "q9 = _"))
    operators = physical_operator_count(0.1, datasets.tpch_query(9))
    assert f"operators: {operators}, shares sum to 1.000" in shown
    assert "hot path: SortPreservingMergeExec" in shown
    assert "row_groups_pruned_statistics=" in shown


def test_plans_notebook_lists_runs_and_replays_its_bundle(plans_nb):
    runs = _outputs(_cell(plans_nb, "%%dfsql\nSELECT run_id, label"))
    assert "explain --analyze" in runs
    assert "finished" in runs
    listing = _outputs(_cell(plans_nb, "import tempfile"))
    assert "'plan.substrait'" in listing
    assert "result hash matches: True" in _outputs(_cell(plans_nb, "report = %wb replay"))
    assert _outputs(_cell(plans_nb, "report = %wb replay")).strip().endswith("True")


def test_every_notebook_is_covered_by_a_test():
    notebooks = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    # plans and tour here; prune in tests/test_prune.py, cdf in tests/test_cdf.py,
    # gate and ibis in tests/test_gate_notebooks.py, registry in tests/test_registry_notebook.py,
    # cluster in tests/test_cluster_notebook.py
    assert notebooks == [
        "cdf.ipynb",
        "cluster.ipynb",
        "gate.ipynb",
        "ibis.ipynb",
        "plans.ipynb",
        "prune.ipynb",
        "registry.ipynb",
        "tour.ipynb",
    ]

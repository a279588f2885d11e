"""Every notebook in notebooks/ runs headless in a real kernel; its outputs are checked."""

from __future__ import annotations

import nbformat
import pytest

from workbench.tour import execute_notebook

from .conftest import REPO

pytestmark = pytest.mark.kernel


def _outputs(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        parts += [data.get("text/plain", ""), data.get("text/html", ""), output.get("text", "")]
        if output["output_type"] == "error":
            parts += [output["ename"], output["evalue"]]
    return "\n".join(parts)


def _cell(notebook, startswith: str):
    matches = [
        c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(startswith)
    ]
    assert matches, f"no cell starts with {startswith!r}"
    return matches[0]


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    out = execute_notebook(
        REPO / "notebooks" / "tour.ipynb", tmp_path_factory.mktemp("nb") / "tour.ipynb"
    )
    return nbformat.read(out, as_version=4)


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


def test_every_notebook_is_covered_by_a_test():
    notebooks = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    assert notebooks == ["tour.ipynb"]

"""notebooks/registry.ipynb runs headless in a real kernel; its outputs are checked."""

from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest

from workbench import datasets

from .notebook_cells import code_cell, errors, executed, outputs, tagged_to_fail

pytestmark = pytest.mark.kernel


_outputs = outputs
_cell = code_cell


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    return executed("registry.ipynb", tmp_path_factory)


def test_only_the_tagged_cell_fails_and_it_fails_short(notebook):
    failing = [c for c, _ in errors(notebook)]
    assert len(failing) == 1
    (cell,) = failing
    assert tagged_to_fail(cell)
    shown = _outputs(cell)
    assert "UdfPolicyError" in shown
    assert "refused by the strict profile: upper() returns the same values" in shown


def test_the_tables_are_listed_with_their_provenance(notebook):
    shown = _outputs(_cell(notebook, "%wb tables"))
    assert "lineitem" in shown
    assert "PARQUET" in shown


def test_describe_gives_partitions_counts_and_ddl_that_registers_the_same_table(notebook):
    shown = _outputs(_cell(notebook, "%wb describe events"))
    assert "2 files, 7 rows" in shown
    assert "day      Utf8View not null (partition)" in shown
    assert "PARTITIONED BY (day)" in shown
    assert "OPTIONS ('format.pushdown_filters' 'true')" in shown
    checked = _outputs(_cell(notebook, 'shown = wb.sql("SHOW CREATE TABLE events")'))
    assert "SHOW CREATE TABLE keeps PARTITIONED BY: False" in checked
    assert "same table in a fresh session: True True True" in checked


def test_a_delta_table_describes_its_snapshot(notebook):
    shown = _outputs(_cell(notebook, 'wb.register_delta("orders_delta"'))
    rows = datasets.tpch(0.1).row_counts["orders"]
    assert f"1 files, {rows:,} rows" in shown
    assert "STORED AS DELTA" in shown


def test_the_rust_functions_are_listed_and_run(notebook):
    listed = _outputs(_cell(notebook, "%wb functions Rust"))
    for name in ("stable_id_agg", "sessionize", "wb_parquet_metadata", "prefixed_hash64"):
        assert name in listed
    assert "aggregate" in listed
    assert "window" in listed
    fingerprints = _outputs(_cell(notebook, "%%dfsql\nSELECT user_id,\n       stable_id_agg"))
    assert fingerprints.count("| True") == 3
    sessions = _outputs(_cell(notebook, "%%dfsql\nSELECT user_id, day, t,"))
    # user 1: two days apart, two sessions; users 2 and 3: events 600 s apart, one session
    assert "1               | 2026-11-25        | 86400     | 2" in sessions
    assert "3               | 2026-11-25        | 88200     | 1" in sessions
    footer = _outputs(_cell(notebook, "# A table function's argument is planned"))
    metadata = pq.ParquetFile(datasets.tpch(0.1).parquet("lineitem")).metadata
    first = metadata.row_group(0)
    assert f"0                    | {metadata.num_columns}" in footer
    assert f"| {first.num_rows}" in footer
    assert "DataFrame API == SQL: True" in _outputs(_cell(notebook, "from datafusion import col"))


def test_the_udf_policy_warns_registers_and_records(notebook):
    warned = _outputs(_cell(notebook, "def shout("))
    assert "registered with a warning | upper" in warned
    assert "UdfPolicyWarning" in warned
    assert "registered | None | True" in _outputs(_cell(notebook, "def minutes_bucket("))
    decisions = _outputs(_cell(notebook, "%%dfsql\nSELECT name, verdict"))
    assert "shout          | registered with a warning | upper" in decisions
    assert "minutes_bucket | registered                | NULL" in decisions


def test_the_cache_panel_shows_the_extensions_caches_after_two_scans(notebook):
    settings = _outputs(_cell(notebook, "for _ in range(2):"))
    assert "metadata_cache_limit=" in settings
    shown = _outputs(_cell(notebook, "%wb cache"))
    # cache, entries, bytes, hits, misses, hit ratio: the summary table's rows
    rows = {
        found["cache"]: found
        for found in re.finditer(
            r"^(?P<cache>metadata|statistics|list files)\s+(?P<entries>\d+)\s+(?:\S+ \S+|-)"
            r"\s+(?P<hits>\d+)\s+(?P<misses>\d+)",
            shown,
            re.MULTILINE,
        )
    }
    assert int(rows["metadata"]["entries"]) >= 1  # the footer of the orders file is kept
    assert int(rows["metadata"]["hits"]) >= 1  # the second scan read it from the cache
    assert int(rows["statistics"]["hits"]) >= 1  # the second scan reused the snapshot
    assert "list files" in rows
    assert "orders_delta v0" in shown
    assert "delta/orders/part-" in shown

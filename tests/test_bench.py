"""bench/ keeps running: the quick mode executes every case (it measures nothing)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO

GROUPS = {"udf", "tpch", "large", "overhead", "plans"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    (json_file,) = out.glob("*.json")
    (md_file,) = out.glob("*.md")
    return done.stdout, json.loads(json_file.read_text()), md_file.read_text()


def test_quick_mode_runs_every_case_and_writes_json_and_markdown(quick_run):
    stdout, report, markdown = quick_run
    assert "| udf | stable_id over 100,000 rows | python udf |" in stdout
    assert report["quick"] is True
    assert report["machine"]["cpus"] >= 1
    variants = {(m["case"], m["variant"]) for m in report["measurements"]}
    assert ("stable_id over 100,000 rows", "rust stable_id") in variants
    assert ("stable_id over 100,000 rows", "python udf") in variants
    baseline = [m for m in report["measurements"] if m["variant"] == m["baseline"]]
    assert all(m["ratio"] == 1.0 for m in baseline)
    assert "ratio vs baseline" in markdown


def test_quick_mode_runs_every_group_and_the_workbench_never_fails(quick_run):
    _, report, _ = quick_run
    measurements = report["measurements"]
    assert {m["group"] for m in measurements} == GROUPS
    subjects = [m for m in measurements if m["variant"] == m["subject"]]
    assert {m["group"] for m in subjects} == GROUPS
    assert [m for m in subjects if m["error"] is not None] == []


def test_tpch_runs_the_22_queries_through_the_five_tools_with_row_counts(quick_run):
    _, report, markdown = quick_run
    tpch = [m for m in report["measurements"] if m["group"] == "tpch"]
    assert {m["case"] for m in tpch} == {f"q{n:02d}" for n in range(1, 23)}
    assert {m["variant"] for m in tpch} == {
        "%%dfsql (workbench)",
        "datafusion raw",
        "jupysql + duckdb",
        "magic-duckdb",
        "polars sql",
    }
    ran = [m for m in tpch if m["error"] is None]
    assert all("rows" in m["metrics"] for m in ran)
    assert "Geometric mean of each variant's ratio" in markdown
    assert "What each tool hands the user" in markdown


def test_large_reports_peak_memory_from_fresh_processes(quick_run):
    _, report, _ = quick_run
    large = [m for m in report["measurements"] if m["group"] == "large"]
    assert {m["case"] for m in large} == {"lineitem: first preview", "lineitem: export to Parquet"}
    assert all(m["error"] is None for m in large), large
    assert all(m["metrics"]["peak_rss_mb"] >= 0 for m in large)
    exports = [m for m in large if m["case"] == "lineitem: export to Parquet"]
    assert len({m["metrics"]["rows"] for m in exports}) == 1


def test_markdown_says_where_the_workbench_is_slower_and_its_overhead(quick_run):
    _, report, markdown = quick_run
    assert "## Where the workbench is slower" in markdown
    assert " peak_rss_mb |" in markdown  # the samples' metrics become columns
    assert "## overhead" in markdown
    assert "within target" in markdown
    assert set(report["sections"]) == {"tpch", "large", "overhead", "plans"}


def test_plans_group_prints_render_time_and_payload_of_the_largest_plan(quick_run):
    stdout, report, _ = quick_run
    plans = [m for m in report["measurements"] if m["group"] == "plans"]
    bundle = next(m for m in plans if m["variant"].startswith("plan tree bundle"))
    assert bundle["error"] is None
    assert 0 < bundle["metrics"]["payload_kb"] < 200
    assert "the notebook bundle renders in" in stdout

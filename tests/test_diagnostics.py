"""The diagnostics sink: bounded in memory, complete on disk."""

from __future__ import annotations

import json

import pytest

import workbench
from workbench.diagnostics import KEEP_ARTIFACTS, KEEP_RUNS, DiagnosticsSink
from workbench.errors import ArgumentError


@pytest.fixture
def bounded(tmp_path) -> workbench.Session:
    """A session whose sink keeps 3 runs and 2 artifact records."""
    session = workbench.RuntimeProfile(artifact_dir=str(tmp_path)).session()
    session.diagnostics = DiagnosticsSink(
        session.ctx, tmp_path / "bounded", keep_runs=3, keep_artifacts=2
    )
    return session


def test_wb_runs_keeps_the_newest_runs_and_runs_jsonl_keeps_every_event(bounded):
    for n in range(5):
        bounded.sql(f"SELECT {n} AS n").to_pyarrow()
    bounded.diagnostics.publish()
    table = bounded.ctx.sql("SELECT sql FROM wb_runs ORDER BY started_at").to_arrow_table()
    assert table.column("sql").to_pylist() == [f"SELECT {n} AS n" for n in (2, 3, 4)]
    # Through the session too (whether the reading query sees itself is not the point here).
    sqls = bounded.sql("SELECT sql FROM wb_runs").to_pyarrow().column("sql").to_pylist()
    assert len(sqls) == 3
    assert "SELECT 4 AS n" in sqls
    assert "SELECT 1 AS n" not in sqls
    events = [json.loads(line) for line in bounded.diagnostics.runs_path.read_text().splitlines()]
    for event in ("start", "finish"):
        logged = [e["sql"] for e in events if e["event"] == event]
        assert logged[:5] == [f"SELECT {n} AS n" for n in range(5)], event


def test_a_late_finish_updates_a_kept_run_in_place(bounded):
    first = bounded.sql("SELECT 1 AS n")  # started, not yet read: running
    bounded.sql("SELECT 2 AS n").to_pyarrow()
    first.to_pyarrow()  # finishes after the second run
    bounded.diagnostics.publish()
    rows = bounded.ctx.sql("SELECT sql, status FROM wb_runs ORDER BY started_at").to_arrow_table()
    assert rows.column("sql").to_pylist() == ["SELECT 1 AS n", "SELECT 2 AS n"]
    assert rows.column("status").to_pylist() == ["finished", "finished"]


def test_wb_artifacts_keeps_the_newest_records(bounded, tmp_path):
    for n in range(4):
        path = tmp_path / f"file{n}.txt"
        path.write_text("x" * n)
        bounded.diagnostics.artifact_written(f"run{n}", path, sha256=f"hash{n}")
    bounded.diagnostics.publish()
    kept = bounded.ctx.sql("SELECT run_id FROM wb_artifacts ORDER BY created_at").to_arrow_table()
    assert kept.column("run_id").to_pylist() == ["run2", "run3"]
    assert len(bounded.diagnostics.artifacts_path.read_text().splitlines()) == 4


def test_the_default_bounds_are_documented_and_a_bound_below_one_is_refused(session, tmp_path):
    assert session.diagnostics.keep_runs == KEEP_RUNS == 10_000
    assert KEEP_ARTIFACTS == 10_000
    with pytest.raises(ArgumentError, match="keep_runs=0"):
        DiagnosticsSink(session.ctx, tmp_path, keep_runs=0)

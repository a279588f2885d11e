"""Artifact bundles: complete, atomic, verified, and replayable in a fresh process."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

import workbench
from workbench import artifacts, datasets
from workbench.artifacts import ArtifactError
from workbench.hashing import content_hash

from .conftest import run_python

BUNDLE_FILES = {
    "config.json",
    "logical_plan.txt",
    "metrics_tree.json",
    "physical_plan.txt",
    "plan.dot",
    "plan.pgjson.json",
    "plan.substrait",
    "query.sql",
    "run.json",
    "sqlglot_ast.json",
    "versions.json",
}


@pytest.fixture
def exported(tpch, tmp_path):
    session = workbench.RuntimeProfile(artifact_dir=str(tmp_path / "runs")).session()
    tpch.register(session)
    ids = []
    for number in (3, 9):
        result = session.sql(datasets.tpch_query(number))
        result.to_pyarrow()
        ids.append(result.run.run_id)
    return session, ids, artifacts.export(session, ids, tmp_path / "bundle")


def test_content_hash_ignores_row_order_and_string_layout_but_not_duplicates():
    a = pa.table({"k": [1, 2, 3], "s": ["x", "y", "z"]})
    b = pa.table({"k": [3, 1, 2], "s": pa.array(["z", "x", "y"], type=pa.string_view())})
    assert content_hash(a) == content_hash(b)
    assert content_hash(a).rows == 3
    assert content_hash(a) != content_hash(a.slice(0, 2))
    doubled = pa.concat_tables([a, a])
    assert content_hash(doubled) != content_hash(a)
    assert content_hash(doubled.to_batches(max_chunksize=1)) == content_hash(doubled)


def test_content_hash_handles_nested_types():
    lists = pa.table({"a": [[1], [2, 3]], "m": [{"x": 1}, {"x": 2}]})
    assert content_hash(lists) == content_hash(lists.take([1, 0]))


def test_a_query_with_list_columns_exports_and_replays(tmp_path):
    session = workbench.RuntimeProfile(artifact_dir=str(tmp_path / "runs")).session()
    session.ctx.from_pydict({"v": list(range(1, 10))}, name="nums")
    result = session.sql("SELECT v % 3 AS k, array_agg(v) AS vs FROM nums GROUP BY 1")
    result.to_pyarrow()
    bundle = artifacts.export(session, [result.run.run_id], tmp_path / "lists")
    assert artifacts.replay(bundle, session).ok


def test_a_plan_substrait_cannot_carry_is_a_clear_error_and_writes_nothing(tmp_path):
    session = workbench.RuntimeProfile(artifact_dir=str(tmp_path / "runs")).session()
    result = session.sql("SELECT count(*) AS n FROM generate_series(1, 9)")
    result.to_pyarrow()
    with pytest.raises(ArtifactError, match="Substrait plan did not run here"):
        artifacts.export(session, [result.run.run_id], tmp_path / "series")
    assert not (tmp_path / "series").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]


def test_bundle_holds_every_artifact_with_hashes(exported):
    session, ids, bundle = exported
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["schema_version"] == 1
    assert [r["run_id"] for r in manifest["runs"]] == ids
    for run_id in ids:
        assert {p.name for p in (bundle / run_id).iterdir()} == BUNDLE_FILES
    assert len(manifest["files"]) == 2 * len(BUNDLE_FILES)
    q9 = json.loads((bundle / ids[1] / "metrics_tree.json").read_text())
    assert q9["analyzed"] is True
    assert json.loads((bundle / ids[1] / "plan.pgjson.json").read_text())[0]["Plan"]
    assert manifest["runs"][1]["rows"] == 175
    assert [p.name for p in bundle.parent.iterdir() if p.name.startswith(".")] == []
    recorded = session.sql("SELECT count(*) AS n FROM wb_artifacts").to_pyarrow()
    assert recorded.column("n").to_pylist() == [2 * len(BUNDLE_FILES)]


def test_bundle_replays_in_a_fresh_process_with_the_same_hash(exported, tpch):
    _, _, bundle = exported
    out = run_python(f"""
        import json, workbench
        from workbench import datasets
        session = workbench.RuntimeProfile().session()
        datasets.tpch({tpch.scale}).register(session)
        report = workbench.replay({str(bundle)!r}, session)
        print(json.dumps([[r.run_id, r.actual_hash, r.rows] for r in report.runs]))
    """)
    manifest = json.loads((bundle / "manifest.json").read_text())
    expected = [[r["run_id"], r["result_hash"], r["rows"]] for r in manifest["runs"]]
    assert json.loads(out) == expected


def test_a_changed_file_is_refused(exported):
    session, ids, bundle = exported
    (bundle / ids[0] / "plan.substrait").write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match="changed since export"):
        artifacts.replay(bundle, session)


def test_existing_directory_is_never_overwritten(exported):
    session, ids, bundle = exported
    before = sorted(p.name for p in bundle.iterdir())
    with pytest.raises(ArtifactError, match="already exists"):
        artifacts.export(session, ids, bundle)
    assert sorted(p.name for p in bundle.iterdir()) == before


def test_wb_magic_exports_the_last_run_and_replays_it(ipython, tpch, tmp_path):
    tpch.register(ipython.user_ns["wb"])
    ipython.run_cell_magic(
        "dfsql", "-o r", "SELECT n_name, count(*) AS c FROM nation GROUP BY n_name"
    )
    ipython.user_ns["r"].to_pyarrow()
    path = ipython.run_line_magic("wb", f"export {tmp_path / 'b'}")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["runs"][0]["run_id"] == ipython.user_ns["r"].run.run_id
    assert manifest["runs"][0]["rows"] == 25
    report = ipython.run_line_magic("wb", f"replay {path}")
    assert report.ok
    outcome = ipython.run_cell("%wb frobnicate")
    assert "usage: %wb export" in str(outcome.error_in_exec)

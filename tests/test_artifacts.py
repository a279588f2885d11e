"""Artifact bundles: every run exports, replay proves the round trip, and is safe on any bundle."""

from __future__ import annotations

import builtins
import datetime as dt
import decimal
import hashlib
import io
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datafusion.substrait import Consumer, Producer

import workbench
from workbench import artifacts, datasets
from workbench.artifacts import ArtifactError
from workbench.hashing import content_hash

from .conftest import run_python

BUNDLE_FILES = {
    "cell.sql",
    "config.json",
    "gate.json",
    "logical_plan.txt",
    "metrics_tree.json",
    "params.json",
    "physical_plan.txt",
    "plan.dot",
    "plan.pgjson.json",
    "plan.substrait",
    "query.sql",
    "run.json",
    "sqlglot_ast.json",
    "tables.sql",
    "versions.json",
}
SERIES = (
    "SELECT count(*) AS n, sum(value) AS total FROM generate_series(1, 1000) WHERE value > $low"
)


def _session(tmp_path) -> workbench.Session:
    return workbench.RuntimeProfile(artifact_dir=str(tmp_path / "runs")).session()


def _ran(session, sql, params=None) -> str:
    result = session.sql(sql, params)
    result.to_pyarrow()
    return str(result.run.run_id)


def _manifest(bundle):
    return json.loads((bundle / "manifest.json").read_text())


def _rewrite(bundle, manifest, files=None) -> None:
    """Change a bundle consistently: new file contents, their hashes in the manifest."""
    for name, data in (files or {}).items():
        path = bundle / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        manifest["files"][name] = hashlib.sha256(data).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def exported(tpch, tmp_path):
    session = _session(tmp_path)
    tpch.register(session)
    ids = [_ran(session, datasets.tpch_query(number)) for number in (3, 9)]
    return session, ids, artifacts.export(session, ids, tmp_path / "bundle")


@pytest.fixture
def nation(tpch, tmp_path):
    """A session with the TPC-H tables and a bundle of one small query (both lanes)."""
    session = _session(tmp_path)
    tpch.register(session)
    run_id = _ran(session, "SELECT n_regionkey, count(*) AS c FROM nation GROUP BY n_regionkey")
    return session, run_id, artifacts.export(session, [run_id], tmp_path / "nation")


@pytest.fixture
def series(tmp_path):
    """A bundle of a generate_series run: Substrait cannot carry it, so only the SQL lane."""
    session = _session(tmp_path)
    run_id = _ran(session, SERIES, {"low": 10})
    return session, run_id, artifacts.export(session, [run_id], tmp_path / "series")


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
    session = _session(tmp_path)
    session.ctx.from_pydict({"v": list(range(1, 10))}, name="nums")
    run_id = _ran(session, "SELECT v % 3 AS k, array_agg(v) AS vs FROM nums GROUP BY 1")
    bundle = artifacts.export(session, [run_id], tmp_path / "lists")
    assert artifacts.replay(bundle, session).ok


# --- 12: every run exports -------------------------------------------------------------------


def test_a_plan_substrait_cannot_carry_exports_with_the_sql_lane_and_replays(series):
    session, run_id, bundle = series
    (run,) = _manifest(bundle)["runs"]
    substrait, sql = run["lanes"]["substrait"], run["lanes"]["sql"]
    assert substrait["available"] is False
    assert "generate_series" in substrait["reason"]
    assert sql == {
        "available": True,
        "statement": f"{run_id}/query.sql",
        "params": f"{run_id}/params.json",
    }
    assert run["result"]["rows"] == 1
    names = {p.name for p in (bundle / run_id).iterdir()}
    assert {"query.sql", "params.json", "tables.sql", "logical_plan.txt", "run.json"} <= names
    (replayed,) = artifacts.replay(bundle, session).runs
    assert (replayed.lane, replayed.matches, replayed.rows) == ("sql", True, 1)
    assert "(sql lane)" in replayed.describe()


def test_the_sql_lane_binds_the_recorded_parameters_with_their_types(tmp_path):
    session = _session(tmp_path)
    params = {
        "low": decimal.Decimal("10.5"),
        "high": 900.25,
        "step": 2,
        "day": dt.date(2024, 2, 29),
        "tag": "it's",
        "flag": True,
    }
    sql = (
        "SELECT count(*) AS n, sum(value) AS total, max($day) AS day, max($tag) AS tag "
        "FROM generate_series(1, 1000) WHERE value > $low AND value < $high "
        "AND value % $step = 0 AND $flag"
    )
    run_id = _ran(session, sql, params)
    bundle = artifacts.export(session, [run_id], tmp_path / "params")
    recorded = json.loads((bundle / run_id / "params.json").read_text())
    assert recorded["low"] == {"type": "decimal", "value": "10.5"}
    assert recorded["day"] == {"type": "date", "value": "2024-02-29"}
    assert recorded["flag"] == {"type": "bool", "value": "true"}
    (replayed,) = artifacts.replay(bundle, _session(tmp_path)).runs
    assert (replayed.lane, replayed.matches) == ("sql", True)


def test_the_tables_a_plan_scans_are_recorded_with_their_ddl(tpch, tmp_path):
    session = _session(tmp_path)
    tpch.register(session)
    session.ctx.from_pydict({"k": [1, 2]}, name="picked")
    run_id = _ran(
        session,
        "SELECT count(*) AS n FROM lineitem WHERE l_orderkey IN "
        "(SELECT o_orderkey FROM orders WHERE o_custkey IN (SELECT k FROM picked))",
    )
    bundle = artifacts.export(session, [run_id], tmp_path / "tables")
    (run,) = _manifest(bundle)["runs"]
    assert sorted(run["tables"]) == ["lineitem", "orders", "picked"]
    assert run["tables"]["orders"] == session.registrations["orders"]
    assert run["tables"]["picked"] == "unknown"
    ddl = (bundle / run_id / "tables.sql").read_text()
    assert f"{session.registrations['lineitem']};" in ddl
    assert "-- picked: unknown" in ddl


def test_planned_failed_and_writing_runs_export_without_a_result_hash(tpch, tmp_path):
    session = _session(tmp_path)
    tpch.register(session)
    planned = session.sql("SELECT count(*) FROM orders", plan_only=True)
    planned.close_planned()
    with pytest.raises(workbench.WorkbenchError):
        session.sql("SELECT nope FROM orders")
    session.diagnostics.publish()
    (failed,) = session.ctx.sql("SELECT run_id FROM wb_runs WHERE status = 'failed'").to_pydict()[
        "run_id"
    ]
    session.sql("CREATE TABLE t AS SELECT 1 AS a")
    wrote = _ran(session, "INSERT INTO t VALUES (2)")
    ids = [planned.run.run_id, failed, wrote]
    bundle = artifacts.export(session, ids, tmp_path / "odd")
    runs = {run["run_id"]: run for run in _manifest(bundle)["runs"]}
    assert all(runs[i]["result"] is None for i in ids)
    assert "only planned" in runs[planned.run.run_id]["note"]
    assert runs[planned.run.run_id]["lanes"]["substrait"]["available"] is True
    assert "failed before it was planned" in runs[failed]["note"]
    assert (bundle / failed / "cell.sql").read_text() == "SELECT nope FROM orders"
    assert "not a query" in runs[wrote]["lanes"]["sql"]["reason"]
    report = artifacts.replay(bundle, session)
    lanes = {r.run_id: (r.lane, r.compared) for r in report.runs}
    assert lanes == {
        planned.run.run_id: ("substrait", False),
        failed: (None, False),
        wrote: (None, False),
    }
    assert session.sql("SELECT count(*) AS n FROM t").to_pyarrow()["n"][0].as_py() == 2


def test_export_never_executes_a_run_whose_own_plan_writes(tmp_path, monkeypatch):
    session = _session(tmp_path)
    session.sql("CREATE TABLE t (a BIGINT)")
    session.sql("CREATE TABLE tmp AS SELECT 7 AS a")
    run_id = _ran(session, "SELECT a FROM tmp")  # its statement still plans, as a query
    _, record = session.recent(run_id)
    writes = session.ctx.sql("EXPLAIN ANALYZE INSERT INTO t SELECT a FROM tmp")  # lazy: no write
    # What export executes is the run's DataFrame, so that is what must be checked, however
    # the session classified the statement: give the run a plan that writes.
    monkeypatch.setattr(session, "recent", lambda _run_id: (writes, record))
    bundle = artifacts.export(session, [run_id], tmp_path / "writes")
    assert session.ctx.sql("SELECT count(*) AS n FROM t").to_pydict() == {"n": [0]}
    (run,) = _manifest(bundle)["runs"]
    assert run["result"] is None
    assert "DmlStatement" in run["note"]
    assert "does not run it again" in run["note"]
    assert not any(lane["available"] for lane in run["lanes"].values())
    assert not (bundle / run_id / "plan.substrait").exists()


def test_exporting_explain_analyze_of_an_insert_does_not_insert_again(tmp_path):
    session = _session(tmp_path)
    session.sql("CREATE TABLE t (a BIGINT)")
    session.sql("CREATE TABLE tmp AS SELECT 7 AS a")
    result = session.sql("EXPLAIN ANALYZE INSERT INTO t SELECT a FROM tmp; DROP TABLE tmp")
    result.to_pyarrow()
    bundle = artifacts.export(session, [result.run.run_id], tmp_path / "explained")
    assert session.ctx.sql("SELECT a FROM t").to_pydict() == {"a": [7]}
    (run,) = _manifest(bundle)["runs"]
    assert run["result"] is None
    assert "not a query" in run["note"]


def test_sqlglot_warnings_go_into_the_ast_file_not_to_the_user(tmp_path, caplog):
    session = _session(tmp_path)
    run_id = _ran(session, "EXPLAIN SELECT 1 AS a")
    with caplog.at_level("DEBUG"):
        bundle = artifacts.export(session, [run_id], tmp_path / "explain")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("sqlglot")] == []
    ast = json.loads((bundle / run_id / "sqlglot_ast.json").read_text())
    assert any("Falling back to parsing as a 'Command'" in w for w in ast["warnings"])


def test_a_run_whose_files_no_longer_plan_exports_with_error_placeholders(tmp_path):
    data = tmp_path / "ext"
    data.mkdir()
    pq.write_table(pa.table({"a": [1, 2]}), data / "f.parquet")
    session = _session(tmp_path)
    session.sql(f"CREATE EXTERNAL TABLE ext STORED AS PARQUET LOCATION '{data}/'")
    result = session.sql("SELECT a FROM ext")
    (data / "f.parquet").write_bytes(b"garbage, not parquet")
    with pytest.raises(workbench.WorkbenchError, match="Corrupt footer"):
        result.preview()
    bundle = artifacts.export(session, [result.run.run_id], tmp_path / "garbage")
    run_dir = bundle / result.run.run_id
    for name in ("physical_plan.txt", "metrics_tree.json"):
        assert "Corrupt footer" in json.loads((run_dir / name).read_text())["error"]
    assert (run_dir / "logical_plan.txt").read_text() == "TableScan: ext projection=[a]"
    (run,) = _manifest(bundle)["runs"]
    assert run["status"] == "failed"
    assert run["result"] is None
    assert "failed when export ran it again" in run["note"]
    (replayed,) = artifacts.replay(bundle, session).runs
    assert (replayed.compared, replayed.rows) == (False, None)


def test_a_run_that_cannot_be_planned_again_keeps_its_record_and_logical_plan(
    tmp_path, monkeypatch
):
    session = _session(tmp_path)
    run_id = _ran(session, "SELECT 1 AS a")

    def broken(*_args):
        msg = "the engine fell over"
        raise RuntimeError(msg)

    monkeypatch.setattr(artifacts, "_sql_problem", broken)
    bundle = artifacts.export(session, [run_id], tmp_path / "fallback")
    assert {p.name for p in (bundle / run_id).iterdir()} == {
        "cell.sql",
        "config.json",
        "logical_plan.txt",
        "run.json",
        "sqlglot_ast.json",
        "versions.json",
    }
    assert "Projection" in (bundle / run_id / "logical_plan.txt").read_text()
    (run,) = _manifest(bundle)["runs"]
    assert run["result"] is None
    assert "could not plan the run again (the engine fell over)" in run["note"]


def test_export_and_replay_expand_the_home_directory(tmp_path, monkeypatch):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    session = _session(tmp_path)
    run_id = _ran(session, "SELECT 1 AS a")
    assert artifacts.export(session, [run_id], "~/bundles/b") == home / "bundles" / "b"
    assert (home / "bundles" / "b" / "manifest.json").is_file()
    assert list(cwd.iterdir()) == []
    assert artifacts.replay("~/bundles/b", session).ok


@pytest.mark.parametrize(
    ("place", "message"),
    [
        ("{file}/bundle", "is a file, not a directory"),
        ("{file}/a/b/bundle", "is a file, not a directory"),
        ("/proc/wb-bundle", "cannot write the bundle to /proc/wb-bundle"),
        ("/proc/self/wb/bundle", "cannot write the bundle to /proc/self/wb/bundle"),
        ("/sys/wb-bundle", "cannot write the bundle to /sys/wb-bundle"),
    ],
)
def test_an_export_place_that_cannot_be_written_is_a_clear_error(tmp_path, place, message):
    session = _session(tmp_path)
    run_id = _ran(session, "SELECT 1 AS a")
    file = tmp_path / "a-file"
    file.write_text("not a directory")
    before = sorted(tmp_path.iterdir())
    with pytest.raises(ArtifactError, match=message) as raised:
        artifacts.export(session, [run_id], place.format(file=file))
    assert "nothing was left behind" in str(raised.value)
    assert sorted(tmp_path.iterdir()) == before
    assert not Path(place.format(file=file)).exists()


def test_a_failed_write_leaves_no_partial_bundle_nor_the_directories_it_made(tmp_path, monkeypatch):
    session = _session(tmp_path)
    run_id = _ran(session, "SELECT 1 AS a")
    out = tmp_path / "out"
    out.mkdir()

    def full(self, _data):
        raise OSError(28, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(ArtifactError, match="No space left on device"):
        artifacts.export(session, [run_id], out / "new" / "deeper" / "bundle")
    assert list(out.iterdir()) == []


def test_bundle_holds_every_artifact_with_hashes(exported):
    session, ids, bundle = exported
    manifest = _manifest(bundle)
    assert manifest["schema_version"] == artifacts.SCHEMA_VERSION == 2
    assert [r["run_id"] for r in manifest["runs"]] == ids
    for run_id in ids:
        assert {p.name for p in (bundle / run_id).iterdir()} == BUNDLE_FILES
    assert len(manifest["files"]) == 2 * len(BUNDLE_FILES)
    q9 = json.loads((bundle / ids[1] / "metrics_tree.json").read_text())
    assert q9["analyzed"] is True
    assert json.loads((bundle / ids[1] / "plan.pgjson.json").read_text())[0]["Plan"]
    assert manifest["runs"][1]["result"]["rows"] == 175
    assert all(
        run["lanes"]["substrait"] == {"available": True, "plan": f"{run['run_id']}/plan.substrait"}
        for run in manifest["runs"]
    )
    assert [p.name for p in bundle.parent.iterdir() if p.name.startswith(".")] == []
    recorded = session.sql("SELECT count(*) AS n FROM wb_artifacts").to_pyarrow()
    assert recorded.column("n").to_pylist() == [2 * len(BUNDLE_FILES)]


def test_bundle_replays_in_a_fresh_process_with_the_same_hash_and_names_the_lane(
    exported, series, tpch
):
    _, _, bundle = exported
    _, _, series_bundle = series
    out = run_python(f"""
        import json, workbench
        from workbench import datasets
        session = workbench.RuntimeProfile().session()
        datasets.tpch({tpch.scale}).register(session)
        runs = [r for b in ({str(bundle)!r}, {str(series_bundle)!r})
                for r in workbench.replay(b, session).runs]
        print(json.dumps([[r.run_id, r.actual_hash, r.rows, r.lane] for r in runs]))
    """)
    expected = [
        [r["run_id"], r["result"]["hash"], r["result"]["rows"]]
        for b in (bundle, series_bundle)
        for r in _manifest(b)["runs"]
    ]
    replayed = json.loads(out)
    assert [r[:3] for r in replayed] == expected
    assert [r[3] for r in replayed] == ["substrait", "substrait", "sql"]


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
    manifest = _manifest(path)
    assert manifest["runs"][0]["run_id"] == ipython.user_ns["r"].run.run_id
    assert manifest["runs"][0]["result"]["rows"] == 25
    report = ipython.run_line_magic("wb", f"replay {path}")
    assert report.ok
    assert report.runs[0].lane == "substrait"
    outcome = ipython.run_cell("%wb frobnicate")
    assert "%wb export [RUN_ID ...] DIR" in str(outcome.error_in_exec)


# --- 13: replay proves the round trip --------------------------------------------------------


def test_the_expected_hash_comes_from_the_sql_lane(tpch, tmp_path, monkeypatch):
    session = _session(tmp_path)
    tpch.register(session)
    run_id = _ran(session, "SELECT n_regionkey, count(*) AS c FROM nation GROUP BY n_regionkey")
    other = session.ctx.sql(
        "SELECT n_regionkey, count(*) AS c FROM nation WHERE n_nationkey > 3 GROUP BY 1"
    )
    # The Substrait lane, as loaded back at export, gives other rows than the SQL lane.
    monkeypatch.setattr(Consumer, "from_substrait_plan", lambda _ctx, _plan: other.logical_plan())
    bundle = artifacts.export(session, [run_id], tmp_path / "lanes")
    (run,) = _manifest(bundle)["runs"]
    sql_lane = content_hash(session.ctx.sql(session.statement(run_id)).to_arrow_table())
    substrait_lane = content_hash(other.to_arrow_table())
    assert sql_lane != substrait_lane
    assert run["result"] == {"hash": sql_lane.digest, "rows": sql_lane.rows}
    assert "other rows" in run["lanes"]["substrait"]["reason"]


def test_export_refuses_a_substrait_plan_that_gives_other_rows(tpch, tmp_path, monkeypatch):
    session = _session(tmp_path)
    tpch.register(session)
    run_id = _ran(session, "SELECT n_regionkey, count(*) AS c FROM nation GROUP BY n_regionkey")
    other = session.ctx.sql(
        "SELECT n_regionkey, count(*) AS c FROM nation WHERE n_nationkey > 3 GROUP BY 1"
    )
    produce = Producer.to_substrait_plan
    # A producer that loses a filter: the bundle's own plan would then certify itself.
    monkeypatch.setattr(
        Producer, "to_substrait_plan", lambda _plan, ctx: produce(other.logical_plan(), ctx)
    )
    bundle = artifacts.export(session, [run_id], tmp_path / "lossy")
    (run,) = _manifest(bundle)["runs"]
    assert run["lanes"]["substrait"]["available"] is False
    assert "other rows" in run["lanes"]["substrait"]["reason"]
    truth = content_hash(session.ctx.sql(session.statement(run_id)).to_arrow_table())
    assert run["result"] == {"hash": truth.digest, "rows": truth.rows}
    (replayed,) = artifacts.replay(bundle, session).runs
    assert (replayed.lane, replayed.matches) == ("sql", True)


def test_a_swapped_substrait_plan_with_a_consistent_manifest_is_reported(nation):
    session, run_id, bundle = nation
    other = session.ctx.sql(
        "SELECT n_regionkey, count(*) AS c FROM nation WHERE n_nationkey < 9 GROUP BY 1"
    )
    swapped = bytes(Producer.to_substrait_plan(other.logical_plan(), session.ctx).encode())
    _rewrite(bundle, _manifest(bundle), {f"{run_id}/plan.substrait": swapped})
    (replayed,) = artifacts.replay(bundle, session, check=False).runs
    assert replayed.lane == "substrait"
    assert replayed.compared
    assert not replayed.matches
    assert "result hash matches: False" in replayed.describe()
    with pytest.raises(
        ArtifactError, match=rf"different results for run\(s\) {run_id} \(substrait lane\)"
    ):
        artifacts.replay(bundle, session)


def test_a_changed_file_is_refused(exported):
    session, ids, bundle = exported
    (bundle / ids[0] / "plan.substrait").write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match="changed since export"):
        artifacts.replay(bundle, session)


def test_a_substrait_plan_that_does_not_load_here_falls_back_to_the_sql_lane(tmp_path):
    session = _session(tmp_path)
    strict = pa.schema([pa.field("a", pa.int64(), nullable=False)])
    session.ctx.register_record_batches(
        "t", [pa.table({"a": [1, 2, 3]}, schema=strict).to_batches()]
    )
    run_id = _ran(session, "SELECT a * 2 AS b FROM t")
    bundle = artifacts.export(session, [run_id], tmp_path / "strict")
    (run,) = _manifest(bundle)["runs"]
    assert run["lanes"]["substrait"]["available"] is True
    # Here the table has the same rows but a nullable column, which the Substrait plan's
    # schema does not allow: its plan does not load, the statement still plans.
    here = _session(tmp_path)
    here.ctx.from_pydict({"a": [1, 2, 3]}, name="t")
    report = artifacts.replay(bundle, here)
    (replayed,) = report.runs
    assert (replayed.lane, replayed.matches, replayed.rows) == ("sql", True, 3)
    assert replayed.actual_hash == run["result"]["hash"]
    note = replayed.note or ""
    assert note.startswith("the substrait lane does not plan here: ")
    assert "nullable" in note
    assert report.ok


def test_a_run_whose_lanes_both_fail_to_plan_here_is_an_error_naming_both(tmp_path):
    session = _session(tmp_path)
    run_id = _ran(session, "SELECT stable_id(1, 'a') AS id")
    bundle = artifacts.export(session, [run_id], tmp_path / "udf")
    assert _manifest(bundle)["runs"][0]["lanes"]["substrait"]["available"] is True
    bare = workbench.RuntimeProfile(artifact_dir=str(tmp_path / "runs"), extensions=()).session()
    with pytest.raises(
        ArtifactError, match=r"did not plan here: the substrait lane .*stable_id.*the sql lane"
    ):
        artifacts.replay(bundle, bare)


# --- 14: replay is safe on someone else's bundle ---------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "/etc/hostname",
        "../outside.sql",
        "{run}/../../outside.sql",
        "{run}//query.sql",
        "{run}\\q.sql",
    ],
)
def test_file_names_that_leave_the_bundle_are_refused(nation, name):
    session, run_id, bundle = nation
    manifest = _manifest(bundle)
    manifest["files"][name.format(run=run_id)] = "0" * 64
    _rewrite(bundle, manifest)
    with pytest.raises(ArtifactError, match="leaves the bundle"):
        artifacts.replay(bundle, session)


def test_a_symlink_out_of_the_bundle_is_refused(nation, tmp_path):
    session, run_id, bundle = nation
    secret = tmp_path / "secret.sql"
    secret.write_text("SELECT 1")
    link = bundle / run_id / "query.sql"
    link.unlink()
    link.symlink_to(secret)
    manifest = _manifest(bundle)
    manifest["files"][f"{run_id}/query.sql"] = hashlib.sha256(secret.read_bytes()).hexdigest()
    _rewrite(bundle, manifest)
    with pytest.raises(ArtifactError, match="outside the bundle"):
        artifacts.replay(bundle, session)


@pytest.mark.parametrize("run_id", ["../up", "/abs", "a/b", ".."])
def test_run_ids_that_leave_the_bundle_are_refused(nation, run_id):
    session, _, bundle = nation
    manifest = _manifest(bundle)
    manifest["runs"][0]["run_id"] = run_id
    _rewrite(bundle, manifest)
    with pytest.raises(ArtifactError, match="not a plain run id"):
        artifacts.replay(bundle, session)


def test_a_lane_file_not_listed_in_the_manifest_is_never_read(nation, monkeypatch):
    session, run_id, bundle = nation
    unlisted = bundle / run_id / "other.substrait"
    unlisted.write_bytes((bundle / run_id / "plan.substrait").read_bytes())
    manifest = _manifest(bundle)
    manifest["runs"][0]["lanes"]["substrait"]["plan"] = f"{run_id}/other.substrait"
    _rewrite(bundle, manifest)
    opened: list[str] = []
    real_open = io.open

    def recording_open(file, *args, **kwargs):
        opened.append(os.path.realpath(file) if isinstance(file, str | os.PathLike) else str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(io, "open", recording_open)
    monkeypatch.setattr(builtins, "open", recording_open)
    with pytest.raises(ArtifactError, match="replay reads only listed files"):
        artifacts.replay(bundle, session)
    assert str((bundle / "manifest.json").resolve()) in opened  # the recorder sees reads
    assert str(unlisted.resolve()) not in opened


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda _: "{not json", "is not valid JSON"),
        (lambda m: [m], "should be an object"),
        (lambda m: {**m, "runs": []}, "lists no runs"),
        (lambda m: {k: v for k, v in m.items() if k != "files"}, "has no 'files'"),
        (
            lambda m: {**m, "runs": [{k: v for k, v in m["runs"][0].items() if k != "lanes"}]},
            "has no 'lanes'",
        ),
        (
            lambda m: {**m, "runs": [{**m["runs"][0], "result": {"hash": "x", "rows": "ten"}}]},
            r"runs\[0\]\.result\.rows should be an integer",
        ),
        (
            lambda m: {
                **m,
                "runs": [{**m["runs"][0], "lanes": {"sql": {"available": False, "reason": "x"}}}],
            },
            "has no 'substrait'",
        ),
        (lambda m: {**m, "runs": "all"}, "runs should be a list"),
        (
            lambda m: {**m, "runs": [{k: v for k, v in m["runs"][0].items() if k != "result"}]},
            "has no 'result'",
        ),
        (lambda m: {**m, "runs": [{**m["runs"][0], "note": 5}]}, "note should be a string or null"),
        (
            lambda m: {
                **m,
                "runs": [
                    {
                        **m["runs"][0],
                        "lanes": {**m["runs"][0]["lanes"], "sql": {"available": "yes"}},
                    }
                ],
            },
            r"lanes\.sql\.available should be true or false",
        ),
        (lambda _: "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (lambda m: {**m, "schema_version": 1}, "older workbench: export the runs again"),
        (lambda m: {**m, "schema_version": 99}, "newer workbench: update the workbench"),
        (lambda m: {k: v for k, v in m.items() if k != "schema_version"}, "not a workbench bundle"),
    ],
)
def test_a_malformed_manifest_is_a_clear_error(nation, damage, message):
    session, _, bundle = nation
    changed = damage(_manifest(bundle))
    text = changed if isinstance(changed, str) else json.dumps(changed)
    (bundle / "manifest.json").write_text(text)
    with pytest.raises(ArtifactError, match=message):
        artifacts.replay(bundle, session)


def test_a_bundle_hashed_with_another_algorithm_is_refused(nation):
    session, _, bundle = nation
    manifest = _manifest(bundle)
    assert manifest["content_hash"] == "workbench.content.v1"
    manifest["content_hash"] = "json-rows"  # what bundles of the first release would say
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="computed with 'json-rows'"):
        artifacts.replay(bundle, session)


def test_a_directory_without_a_manifest_is_not_a_bundle(tmp_path, session):
    with pytest.raises(ArtifactError, match="is not a bundle"):
        artifacts.replay(tmp_path, session)


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE victim",
        "INSERT INTO victim VALUES (99)",
        "CREATE TABLE other AS SELECT 1",
        "COPY victim TO '{dir}/copied.csv'",
        "SET datafusion.execution.batch_size = 1",
    ],
)
def test_a_bundle_whose_statement_writes_is_refused_and_nothing_changes(
    series, tmp_path, statement
):
    session, run_id, bundle = series
    session.sql("CREATE TABLE victim AS SELECT 1 AS a")
    _rewrite(
        bundle, _manifest(bundle), {f"{run_id}/query.sql": statement.format(dir=tmp_path).encode()}
    )
    with pytest.raises(ArtifactError, match="is not a query"):
        artifacts.replay(bundle, session)
    assert session.ctx.sql("SELECT a FROM victim").to_pydict() == {"a": [1]}
    assert not session.ctx.table_exist("other")
    assert not (tmp_path / "copied.csv").exists()
    assert session.ctx.sql(
        "SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.batch_size'"
    ).to_pydict()["value"] != ["1"]


def test_the_plan_guard_refuses_writes_anywhere_in_a_plan(session):
    session.ctx.sql("CREATE TABLE victim AS SELECT 1 AS a").collect()
    for sql in ("INSERT INTO victim VALUES (2)", "EXPLAIN ANALYZE INSERT INTO victim VALUES (2)"):
        plan = session.ctx.sql(sql).logical_plan()  # DML plans lazily: nothing ran
        with pytest.raises(ArtifactError, match="DmlStatement"):
            artifacts._require_query(plan, "the test plan")
    query = session.ctx.sql("SELECT a FROM victim WHERE a IN (SELECT a FROM victim) LIMIT 1")
    artifacts._require_query(query.logical_plan(), "the test plan")
    assert session.ctx.sql("SELECT a FROM victim").to_pydict() == {"a": [1]}


def test_a_substrait_write_is_refused_and_nothing_changes(nation):
    session, run_id, bundle = nation
    session.sql("CREATE TABLE victim AS SELECT 1 AS a")
    from datafusion.substrait import Plan

    read = json.loads(
        Producer.to_substrait_plan(
            session.ctx.sql("SELECT a FROM victim").logical_plan(), session.ctx
        ).to_json()
    )
    scan = read["relations"][0]["root"]["input"]
    schema = (
        scan["project"]["input"]["read"]["baseSchema"]
        if "project" in scan
        else scan["read"]["baseSchema"]
    )
    write = {
        "write": {
            "namedTable": {"names": ["victim"]},
            "tableSchema": schema,
            "op": "WRITE_OP_INSERT",
            "input": scan,
            "output": "OUTPUT_MODE_MODIFIED_RECORDS",
        }
    }
    read["relations"] = [{"root": {"input": write, "names": ["count"]}}]
    plan = bytes(Plan.from_json(json.dumps(read)).encode())
    manifest = _manifest(bundle)
    manifest["runs"][0]["lanes"]["sql"] = {"available": False, "reason": "test"}
    _rewrite(bundle, manifest, {f"{run_id}/plan.substrait": plan})
    with pytest.raises(ArtifactError, match="did not plan here"):
        artifacts.replay(bundle, session)
    assert session.ctx.sql("SELECT a FROM victim").to_pydict() == {"a": [1]}


def test_replay_never_runs_the_bundles_ddl_and_says_which_tables_are_missing(nation, tmp_path):
    _, _, bundle = nation
    empty = _session(tmp_path)
    with pytest.raises(
        ArtifactError,
        match=r"(?s)tables this session does not have: nation.*CREATE EXTERNAL TABLE nation",
    ):
        artifacts.replay(bundle, empty)
    assert not empty.ctx.table_exist("nation")


def test_a_statement_needing_a_view_dropped_later_in_its_cell_replays_through_substrait(
    tpch, tmp_path
):
    session = _session(tmp_path)
    tpch.register(session)
    run_id = _ran(session, datasets.tpch_query(15))
    bundle = artifacts.export(session, [run_id], tmp_path / "q15")
    (run,) = _manifest(bundle)["runs"]
    assert "revenue0" in run["lanes"]["sql"]["reason"]
    assert sorted(run["tables"]) == ["lineitem", "supplier"]
    (replayed,) = artifacts.replay(bundle, session).runs
    assert (replayed.lane, replayed.matches, replayed.rows) == ("substrait", True, 1)


@pytest.mark.parametrize("name", ["", ".", "a..b", ".t", "t.", "a.b.c.d", "t\n"])
def test_a_table_name_that_is_not_one_is_refused(nation, name):
    session, _, bundle = nation
    manifest = _manifest(bundle)
    manifest["runs"][0]["tables"] = {name: "CREATE TABLE evil AS SELECT 1"}
    _rewrite(bundle, manifest)
    with pytest.raises(
        ArtifactError, match=r"runs\[0\]\.tables names .* which is not a table name"
    ):
        artifacts.replay(bundle, session)
    assert not session.ctx.table_exist("evil")


def test_a_table_in_a_schema_this_session_lacks_is_reported_missing(nation):
    session, _, bundle = nation
    manifest = _manifest(bundle)
    manifest["runs"][0]["tables"] = {"elsewhere.t": "CREATE TABLE elsewhere.t AS SELECT 1"}
    _rewrite(bundle, manifest)
    with pytest.raises(ArtifactError, match=r"tables this session does not have: elsewhere\.t"):
        artifacts.replay(bundle, session)


def test_a_run_with_a_result_hash_that_no_lane_replays_is_not_ok(nation):
    session, run_id, bundle = nation
    manifest = _manifest(bundle)
    manifest["runs"][0]["lanes"] = {
        "substrait": {"available": False, "reason": "no plan"},
        "sql": {"available": False, "reason": "no statement"},
    }
    _rewrite(bundle, manifest)
    report = artifacts.replay(bundle, session, check=False)
    (replayed,) = report.runs
    assert replayed.expected_hash is not None
    assert not replayed.compared
    assert not report.ok
    with pytest.raises(
        ArtifactError,
        match=rf"could not compare run\(s\) that have a result hash.*{run_id}: "
        r"substrait: no plan; sql: no statement",
    ):
        artifacts.replay(bundle, session)

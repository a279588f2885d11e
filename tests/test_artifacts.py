"""Artifact bundles: every run exports, replay proves the round trip, and is safe on any bundle."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json

import pyarrow as pa
import pytest
from datafusion.substrait import Producer

import workbench
from workbench import artifacts, datasets
from workbench.artifacts import ArtifactError
from workbench.hashing import content_hash

from .conftest import run_python

BUNDLE_FILES = {
    "cell.sql",
    "config.json",
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


def test_the_expected_hash_comes_from_the_sql_lane(nation):
    session, run_id, bundle = nation
    (run,) = _manifest(bundle)["runs"]
    again = session.ctx.sql(session.statement(run_id))
    assert run["result"]["hash"] == content_hash(again.to_arrow_table()).digest


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


def test_a_lane_file_not_listed_in_the_manifest_is_never_read(nation):
    session, run_id, bundle = nation
    (bundle / run_id / "other.substrait").write_bytes(
        (bundle / run_id / "plan.substrait").read_bytes()
    )
    manifest = _manifest(bundle)
    manifest["runs"][0]["lanes"]["substrait"]["plan"] = f"{run_id}/other.substrait"
    _rewrite(bundle, manifest)
    with pytest.raises(ArtifactError, match="replay reads only listed files"):
        artifacts.replay(bundle, session)


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

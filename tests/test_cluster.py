"""Scale-out on Ballista: a real scheduler and two executor processes on 127.0.0.1
(``python -m workbench.cluster``) and the in-process standalone engine, against the local
engine on TPC-H SF0.1; the workbench's Rust functions on the executors; refusals; faults."""

from __future__ import annotations

import _thread
import http.server
import json
import re
import threading
import time
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

import workbench
from tests.test_ibis_lane import assert_same_rows
from workbench import datasets
from workbench.cluster import ClusterError, parse_engine, worded
from workbench.cluster.local import LocalCluster, free_port
from workbench.errors import QueryCancelledError, WorkbenchError
from workbench.session import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator

# Long enough to interrupt: a self-join of lineitem on its supplier (361M rows at SF0.1).
# Its hash join yields between batches, so an aborted task stops.
LONG_QUERY = "SELECT count(*) FROM lineitem l1 JOIN lineitem l2 ON l1.l_suppkey = l2.l_suppkey"
# orders is read in four partitions, so the window's PARTITION BY needs a shuffle.
UDF_QUERY = """
SELECT o_custkey, stable_id(o_orderkey) AS id, prefixed_hash64('o', o_orderkey) AS h,
       sessionize(o_orderkey, 100) OVER (PARTITION BY o_custkey ORDER BY o_orderkey) AS s
FROM orders WHERE o_custkey < 200
"""
UDAF_QUERY = "SELECT l_returnflag, stable_id_agg(l_orderkey) AS fp FROM lineitem GROUP BY 1"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(executors=2, slots=1) as running:
        yield running


def _session(tpch: datasets.TpchData, engine: str) -> workbench.Session:
    session = workbench.RuntimeProfile(engine=engine).session()
    tpch.register(session)
    return session


def _same_as_local(session: workbench.Session, sql: str) -> workbench.Result:
    remote = session.sql(sql)
    got = remote.to_pyarrow()
    want = session.sql(sql, engine="local").to_pyarrow()
    assert got.num_rows == want.num_rows
    assert_same_rows(got, want, ordered=False)
    return remote


def test_the_22_tpch_queries_on_a_scheduler_and_two_executors_equal_the_local_engine(
    cluster: LocalCluster, tpch: datasets.TpchData
) -> None:
    session = _session(tpch, cluster.engine)
    jobs = set()
    for number in range(1, 23):
        result = _same_as_local(session, datasets.tpch_query(number))
        assert result.run.engine == cluster.engine, number
        assert result.cluster_job is not None, number
        assert result.cluster_job.job_id, number
        jobs.add(result.cluster_job.job_id)
    finished = {j["job_id"] for j in cluster.api("/api/jobs") if j["status"] == "Completed"}
    assert jobs <= finished  # every query ran as a job of that scheduler
    executors = {e["port"] for e in cluster.api("/api/executors")}
    assert len(executors) == 2
    runs = session.sql("SELECT engine, count(*) AS n FROM wb_runs GROUP BY engine").to_pyarrow()
    assert dict(zip(*runs.to_pydict().values(), strict=True))[cluster.engine] == 22


def test_the_22_tpch_queries_through_ballista_standalone_equal_the_local_engine(
    tpch: datasets.TpchData,
) -> None:
    session = _session(tpch, "ballista:standalone")
    for number in range(1, 23):
        result = _same_as_local(session, datasets.tpch_query(number))
        assert result.run.engine == "ballista:standalone"


def test_the_workbench_rust_functions_run_on_the_executors(
    cluster: LocalCluster, tpch: datasets.TpchData
) -> None:
    session = _session(tpch, cluster.engine)
    result = _same_as_local(session, UDF_QUERY)
    _same_as_local(session, UDAF_QUERY)
    tree = result.plan()
    # The window function runs after a shuffle by o_custkey: in a stage of its own, on an
    # executor (a separate process that only knows it from the extension).
    stages = tree.physical.children
    assert len(stages) >= 2
    windowed = [s for s in stages if any("sessionize" in n.details for n in s.walk())]
    assert len(windowed) == 1
    assert any(n.operator == "ShuffleReaderExec" for n in windowed[0].walk())


def test_a_cell_picks_its_engine_and_ddl_stays_in_the_session(
    cluster: LocalCluster, tpch: datasets.TpchData, ipython
) -> None:
    session = _session(tpch, "local")
    location = str(tpch.parquet("region"))
    result = session.sql(
        f"CREATE EXTERNAL TABLE r2 STORED AS PARQUET LOCATION '{location}';"
        "SELECT r_name FROM r2 ORDER BY r_name",
        engine=cluster.engine,
    )
    assert result.to_pyarrow().column(0).to_pylist()[0] == "AFRICA"
    assert result.run.engine == cluster.engine
    assert "r2" in session.tables()  # the catalog is the session's
    holder = ipython.magics_manager.registry["WbMagics"].holder
    before = holder.use(session)
    try:
        line = f"-o on_cluster --engine {cluster.engine}"
        ipython.run_cell_magic("dfsql", line, "SELECT r_name FROM r2 WHERE r_regionkey = 1")
    finally:
        holder.use(before)
    assert ipython.user_ns["on_cluster"].run.engine == cluster.engine
    assert ipython.user_ns["on_cluster"].to_pyarrow().to_pylist() == [{"r_name": "AMERICA"}]


def test_tables_and_functions_of_this_process_are_refused_by_name_and_catalog_queries_run_here(
    cluster: LocalCluster, tpch: datasets.TpchData
) -> None:
    session = _session(tpch, cluster.engine)
    session.ctx.register_record_batches("mem", [[pa.record_batch({"k": [1, 2]})]])
    with pytest.raises(ClusterError, match=r"table mem cannot run on ballista://.*--engine local"):
        session.sql("SELECT * FROM mem JOIN nation ON k = n_nationkey")
    session.register_delta("dnation", str(tpch.delta("nation")))
    with pytest.raises(ClusterError, match=r"table dnation .* Delta table"):
        session.sql("SELECT count(*) FROM dnation")
    session.register_udf(lambda a: a, [pa.int64()], pa.int64(), name="py_same")
    with pytest.raises(ClusterError, match=r"py_same is a Python function of this session"):
        session.sql("SELECT py_same(n_nationkey) FROM nation")
    with pytest.raises(ClusterError, match=r"table mem cannot run"):
        session.sql("SELECT count(*) FROM mem")
    # Opened before a later statement of the cell writes: refused there, the run failed.
    with pytest.raises(ClusterError, match=r"table mem cannot run"):
        session.sql("SELECT * FROM mem; CREATE TABLE later AS SELECT 1 AS one")
    assert "later" not in session.tables()
    # The session's catalog and diagnostics only: it runs here, and the run says so.
    failed = session.sql("SELECT status, error FROM wb_runs WHERE status = 'failed'")
    assert failed.to_pyarrow().num_rows == 5
    assert failed.run.engine == "local"
    catalog = session.sql("SELECT count(*) AS n FROM information_schema.tables")
    assert catalog.to_pyarrow().column(0)[0].as_py() > 8
    assert session.sql("SELECT count(*) AS n FROM nation").to_pyarrow().to_pylist() == [{"n": 25}]


def test_a_scheduler_that_is_down_gives_a_clear_error_at_the_first_query(
    tpch: datasets.TpchData,
) -> None:
    port = free_port()
    session = _session(tpch, f"ballista://127.0.0.1:{port}")  # creating it connects nothing
    started = time.monotonic()
    with pytest.raises(WorkbenchError) as raised:
        session.sql("SELECT count(*) FROM nation").to_pyarrow()
    assert time.monotonic() - started < 10
    message = str(raised.value)
    assert f"scheduler at 127.0.0.1:{port} does not answer" in message
    assert "python -m workbench.cluster scheduler" in message
    assert session.sql("SELECT 1 AS x", engine="local").to_pyarrow().num_rows == 1


class _Answer(http.server.BaseHTTPRequestHandler):
    """An HTTP server in a scheduler's place (a Ballista 54 scheduler cannot be built
    here in a test's time): /api/version answers with the class's version."""

    version: str | None = "54.1.0"

    def do_GET(self) -> None:
        if self.version is None or self.path != "/api/version":
            self.send_error(404)
            return
        body = json.dumps({"version": self.version}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("54.1.0", r"runs Ballista 54\.1\.0, and this workbench speaks Ballista 55\.0\.0"),
        (None, r"answers, but not as a Ballista scheduler"),
    ],
)
def test_a_scheduler_of_another_version_or_not_a_scheduler_is_named_at_the_first_query(
    tpch: datasets.TpchData, version: str | None, expected: str
) -> None:
    handler = type("Answer", (_Answer,), {"version": version})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        session = _session(tpch, f"ballista://127.0.0.1:{server.server_port}")
        with pytest.raises(WorkbenchError, match=expected):
            session.sql("SELECT count(*) FROM nation").to_pyarrow()
    finally:
        server.shutdown()


def test_ballistas_own_version_refusals_are_worded() -> None:
    engine = parse_engine("ballista://head:50050")
    # The texts of ballista-core 55's version check (src/version.rs).
    newer = (
        'Execution("Ballista client 55.0.0 cannot be used with scheduler 56.1.0. The client '
        'and the scheduler must have the same major version.")'
    )
    assert "runs Ballista 56.1.0" in worded(engine, newer)
    older = (
        "Ballista client 55.0.0 cannot be used with scheduler older than 55.0.0 (no "
        "`ballista-version` header). The client and the scheduler must have the same major"
    )
    assert "older than 55" in worded(engine, older)
    failed = 'Execution("Job 038G failed: Task failed due to runtime error: Division by zero")'
    assert worded(engine, failed) == (
        "the cluster's job 038G failed: Task failed due to runtime error: Division by zero"
    )


def test_engine_text_is_checked_when_the_profile_is_made() -> None:
    assert parse_engine("ballista://10.0.0.5").port == 50050
    assert parse_engine("ballista://[::1]:7000").url == "http://[::1]:7000"
    with pytest.raises(ConfigError, match="use 'local', 'ballista:standalone'"):
        workbench.RuntimeProfile(engine="spark://x")
    profile = workbench.RuntimeProfile().with_settings("engine=ballista:standalone")
    assert profile.engine == "ballista:standalone"


def test_ctrl_c_cancels_the_job_on_the_cluster_and_the_next_query_runs(
    cluster: LocalCluster, tpch: datasets.TpchData
) -> None:
    session = _session(tpch, cluster.engine)
    result = session.sql(LONG_QUERY)
    timer = threading.Timer(3, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        result.preview()
    timer.cancel()
    assert result.run.status == workbench.RunStatus.CANCELLED
    with pytest.raises(QueryCancelledError):
        result.preview()
    assert result.cluster_job is not None
    job = result.cluster_job.job_id
    assert job is not None
    assert cluster.api(f"/api/job/{job}")["status"] == "Failed"
    # The tasks stop on the executors, not only the stream here.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        logs = cluster.executor_log(0) + cluster.executor_log(1)
        if re.search(rf"Cancelling tasks for .*{job}", logs) and "Task cancelled" in logs:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"no executor cancelled the tasks of {job}: {logs[-2000:]}")
    assert session.sql("SELECT count(*) AS n FROM region").to_pyarrow().to_pylist() == [{"n": 5}]


def test_an_executor_killed_mid_query_is_replaced_by_the_other_and_the_answer_is_right(
    tpch: datasets.TpchData,
) -> None:
    with LocalCluster(executors=2, slots=1, executor_timeout_s=6) as own:
        session = _session(tpch, own.engine)
        want = session.sql(LONG_QUERY, engine="local").to_pyarrow()
        result = session.sql(LONG_QUERY)
        timer = threading.Timer(1.5, own.kill_executor, args=(0,))
        timer.start()
        try:
            got = result.to_pyarrow()
        except Exception as exc:  # noqa: BLE001  (either outcome is allowed; checked below)
            message = str(exc)
            assert "failed" in message, message
            assert "Traceback" not in message, message
        else:
            assert got.to_pylist() == want.to_pylist()
            assert "lost Executor" in (own.log_dir / "scheduler.log").read_text()
        finally:
            timer.cancel()
        again = session.sql("SELECT count(*) AS n FROM nation").to_pyarrow()
        assert again.to_pylist() == [{"n": 25}]
        assert len(own.api("/api/executors")) == 1
        own.stop()  # the scheduler goes too, after the session first reached it
        with pytest.raises(WorkbenchError, match=r"scheduler at 127\.0\.0\.1:\d+ does not answer"):
            session.sql("SELECT count(*) AS n FROM nation").to_pyarrow()


def test_explain_on_a_cluster_shows_the_stages_planned_and_then_with_their_metrics(
    cluster: LocalCluster, tpch: datasets.TpchData
) -> None:
    from workbench.explain import explain

    session = _session(tpch, "local")
    sql = (
        "SELECT n_name, count(*) AS suppliers FROM supplier JOIN nation "
        "ON s_nationkey = n_nationkey GROUP BY n_name"
    )
    planned = explain(session, sql, engine=cluster.engine)
    assert not planned.analyzed
    assert planned.physical.operator == "BallistaJob"
    stages = planned.physical.children
    assert len(stages) >= 2
    assert all(s.operator.startswith("Stage ") for s in stages)
    writers = [n.operator for s in stages for n in s.children]
    assert all(w.endswith("ShuffleWriterExec") for w in writers), writers
    assert any(n.operator == "UnresolvedShuffleExec" for n in planned.nodes)
    record = session.recent(str(planned.run_id))[1]
    assert record.engine == cluster.engine
    assert record.status == workbench.RunStatus.PLANNED

    ran = explain(session, sql, analyze=True, engine=cluster.engine)
    assert ran.analyzed
    last = ran.physical.children[-1]
    assert last.children[0].output_rows == 25
    scans = [n for n in ran.nodes if n.operator == "DataSourceExec"]
    assert sorted(n.output_rows or 0 for n in scans) == [25, 1000]
    assert sum(n.share for n in ran.nodes) == pytest.approx(1.0)
    assert [n.id for n in ran.nodes] == list(range(len(ran.nodes)))
    assert "Stage" in ran.text()


def test_a_cluster_runs_progress_names_the_engine_and_the_jobs_stages(
    cluster: LocalCluster, tpch: datasets.TpchData
) -> None:
    from workbench.progress import snapshot
    from workbench.widgets.progress import progress_text

    session = _session(tpch, cluster.engine)
    result = session.sql(datasets.tpch_query(9))
    result.to_pyarrow()
    progress = snapshot(result, done=True)
    assert result.cluster_job is not None
    assert progress.engine == cluster.engine
    assert progress.rows_out == 175
    assert progress.job is not None
    assert progress.job.startswith(f"{result.cluster_job.job_id} completed, stages ")
    done, total = progress.job.rsplit(" ", 1)[1].split("/")
    assert done == total
    assert int(total) >= 3
    assert progress_text(progress).startswith(f"done on {cluster.engine}: job ")


def test_a_bundle_of_a_cluster_run_names_its_engine_and_its_stages(
    cluster: LocalCluster, tpch: datasets.TpchData, tmp_path
) -> None:
    session = _session(tpch, cluster.engine)
    result = session.sql("SELECT n_regionkey, count(*) AS n FROM nation GROUP BY n_regionkey")
    assert result.to_pyarrow().num_rows == 5
    bundle = workbench.export(session, [result.run.run_id], tmp_path / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    (entry,) = manifest["runs"]
    assert entry["engine"] == cluster.engine
    run_dir = next(p for p in bundle.iterdir() if p.is_dir())
    assert json.loads((run_dir / "run.json").read_text())["engine"] == cluster.engine
    tree = json.loads((run_dir / "metrics_tree.json").read_text())
    assert tree["physical"]["operator"] == "BallistaJob"
    assert tree["physical"]["children"][0]["operator"].startswith("Stage ")

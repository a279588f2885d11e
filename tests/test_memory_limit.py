"""Sessions under a memory limit: retries that spill, stalls, freed memory, sized settings.

Real DataFusion pools and real queries over TPC-H at scale 0.1; the limits are chosen so
that a hash join of lineitem with itself does not fit and a sort-merge join does.
"""

from __future__ import annotations

import time

import datafusion
import pyarrow as pa
import pytest

import workbench
from workbench.errors import SqlError
from workbench.result import memory_hint
from workbench.session import machine_tuning

SELF_JOIN = (
    "SELECT count(*) AS n FROM lineitem a JOIN lineitem b "
    "ON a.l_orderkey = b.l_orderkey AND a.l_linenumber = b.l_linenumber"
)
ORDERS_JOIN = (
    "SELECT count(*) AS n FROM orders a JOIN orders b "
    "ON a.o_orderkey = b.o_orderkey AND a.o_custkey = b.o_custkey"
)


def _limited(tpch, tmp_path, mib: int, **fields) -> workbench.Session:
    profile = workbench.RuntimeProfile(
        memory_limit_bytes=mib << 20, spill_dir=str(tmp_path), **fields
    )
    session = profile.session()
    tpch.register(session)
    return session


def _setting(session: workbench.Session, name: str) -> str:
    rows = session.ctx.sql(
        "SELECT value FROM information_schema.df_settings WHERE name = $name",
        param_values={"name": name},
    ).to_pydict()["value"]
    return str(rows[0])


def _operators(result: workbench.Result) -> set[str]:
    return {node.operator for node in result.plan().nodes}


def test_a_hash_join_out_of_memory_runs_again_with_sort_merge_joins_and_says_so(
    tpch, tmp_path, tpch_session
):
    expected = tpch_session.sql(SELF_JOIN).to_pyarrow().to_pylist()
    session = _limited(tpch, tmp_path, 16)
    result = session.sql(SELF_JOIN)
    assert result.to_pyarrow().to_pylist() == expected
    retried = result.run.retried
    assert retried is not None
    assert "Resources exhausted" in retried
    assert "HashJoinInput" in retried
    operators = _operators(result)
    assert "SortMergeJoinExec" in operators
    assert "HashJoinExec" not in operators
    # wb_runs says so too, and the session's own settings are as they were.
    listed = session.sql(
        "SELECT retried FROM wb_runs WHERE run_id = $id", {"id": result.run.run_id}
    ).to_pyarrow()
    assert listed.column("retried").to_pylist() == [retried]
    assert _setting(session, "datafusion.optimizer.prefer_hash_join") == "true"
    assert session.sql(SELF_JOIN.replace("count(*)", "count(a.l_orderkey)")).to_pyarrow()


def test_a_query_that_cannot_fit_names_the_operator_and_what_to_change(tpch, tmp_path):
    # On one partition DataFusion plans a hash join whatever the setting: nothing to retry.
    session = _limited(tpch, tmp_path, 16, target_partitions=1)
    with pytest.raises(SqlError) as caught:
        session.sql(SELF_JOIN).to_pyarrow()
    message = str(caught.value)
    assert "out of memory in HashJoinExec" in message
    assert "cannot spill" in message
    assert "memory_limit=" in message
    # The failed run gave its memory back: a join that needs most of the pool still runs.
    orders = tpch.row_counts["orders"]
    assert session.sql(ORDERS_JOIN).to_pyarrow().to_pylist() == [{"n": orders}]


def test_ended_runs_give_back_what_their_joins_held_and_keep_their_metrics(tpch, tmp_path):
    session = _limited(tpch, tmp_path, 16, target_partitions=1)
    orders = tpch.row_counts["orders"]
    first = session.sql(ORDERS_JOIN)
    assert first.to_pyarrow().to_pylist() == [{"n": orders}]
    before = [(n.operator, n.output_rows) for n in first.plan().nodes]
    # Each join's build side takes most of the pool: a kept executed plan would fail the next.
    for _ in range(3):
        assert session.sql(ORDERS_JOIN).to_pyarrow().to_pylist() == [{"n": orders}]
    after = first.plan()
    assert [(n.operator, n.output_rows) for n in after.nodes] == before
    assert after.analyzed
    assert session.plan(first.run.run_id).nodes == after.nodes


def test_a_query_that_stalls_runs_again_on_one_partition(tmp_path):
    session = workbench.RuntimeProfile(
        memory_limit_bytes=256 << 20, spill_dir=str(tmp_path), stall_s=1
    ).session()
    calls: list[int] = []

    def idle_once(values: pa.Array) -> pa.Array:
        calls.append(len(values))
        if len(calls) == 1:
            time.sleep(4)  # waits without using the CPU, as a deadlocked plan does
        return values

    session.ctx.register_udf(
        datafusion.udf(idle_once, [pa.int64()], pa.int64(), "volatile", "idle_once")
    )
    result = session.sql("SELECT idle_once(x) AS x FROM (VALUES (1), (2), (3)) AS t(x)")
    assert sorted(result.to_pyarrow().column("x").to_pylist()) == [1, 2, 3]
    assert result.run.retried is not None
    assert result.run.retried.startswith("no progress for 1 s with the process idle")
    assert "RepartitionExec" not in _operators(result)
    assert _setting(session, "datafusion.execution.target_partitions") != "1"


def test_datafusions_repartition_deadlock_does_not_hang_the_session(tpch, tmp_path, tpch_session):
    # apache/datafusion#24883: under this pool the plan below deadlocks in most runs.
    query = (
        "SELECT o.o_orderpriority, count(*) AS n, max(l.l_comment) AS c "
        "FROM orders o JOIN lineitem l ON l.l_orderkey = o.o_orderkey GROUP BY 1 ORDER BY 1"
    )
    expected = tpch_session.sql(query).to_pyarrow().to_pylist()
    for _ in range(3):
        session = _limited(tpch, tmp_path, 24, stall_s=2)
        result = session.sql(query)
        assert result.to_pyarrow().to_pylist() == expected
        assert result.run.retried is None or "no progress" in result.run.retried


def test_the_machine_tuning_steps_back_under_a_memory_limit():
    tuned = machine_tuning()
    plain = workbench.RuntimeProfile().engine_settings()
    expected = {
        "datafusion.execution.target_partitions": tuned.target_partitions,
        "datafusion.optimizer.hash_join_single_partition_threshold": (
            tuned.join_single_partition_bytes
        ),
        "datafusion.optimizer.hash_join_single_partition_threshold_rows": (
            tuned.join_single_partition_rows
        ),
    }
    assert plain == {name: value for name, value in expected.items() if value is not None}
    assert tuned.target_partitions is None or tuned.target_partitions > tuned.cores
    assert workbench.RuntimeProfile.datafusion().engine_settings() == {}
    limited = workbench.RuntimeProfile(memory_limit_bytes=64 << 20).engine_settings()
    # 48 MiB of pool: a sort reserves 1/32 of it to merge, not DataFusion's 10 MiB.
    assert limited == {"datafusion.execution.sort_spill_reservation_bytes": (48 << 20) // 32}
    chosen = workbench.RuntimeProfile(memory_limit_bytes=4 << 30, target_partitions=3)
    assert chosen.engine_settings() == {
        "datafusion.execution.target_partitions": 3,
        "datafusion.execution.sort_spill_reservation_bytes": 10 << 20,
    }
    session = chosen.session()
    assert _setting(session, "datafusion.execution.target_partitions") == "3"
    assert _setting(session, "datafusion.runtime.memory_limit") == "3G"  # 0.75 of 4 GiB


def test_a_small_memory_limit_still_makes_a_session_that_sorts(tpch, tmp_path):
    # DataFusion's 10 MiB sort reservation alone was more than this pool: the session's
    # own first query failed.
    session = _limited(tpch, tmp_path, 4)
    top = session.sql("SELECT n_name FROM nation ORDER BY n_name DESC LIMIT 2").to_pyarrow()
    assert top.column("n_name").to_pylist() == ["VIETNAM", "UNITED STATES"]


@pytest.mark.parametrize(
    ("consumer", "operator"),
    [
        ("HashJoinInput[3]", "HashJoinExec"),
        ("ExternalSorterMerge[0]", "SortExec"),
        ("GroupedHashAggregateStream[1] (count(1))", "AggregateExec"),
        ("SomethingNew", "SomethingNew"),
    ],
)
def test_the_memory_hint_names_the_operator_and_the_pool(consumer, operator):
    message = (
        f"Resources exhausted: Failed to allocate additional 807.8 KB for {consumer} with "
        "361.7 MB already allocated for this reservation - 724.8 KB remain available for "
        "the total memory pool: fair(pool_size: 1536.0 MB)"
    )
    hint = memory_hint(message)
    assert hint is not None
    assert hint.startswith(f"out of memory in {operator}")
    assert "(the pool is 1536.0 MB)" in hint
    assert memory_hint("Error during planning: table 'x' not found") is None


def test_without_a_limit_only_large_build_sides_are_let_go_off_the_next_runs_path(tpch_session):
    small = tpch_session.sql(
        "SELECT count(*) AS n FROM nation JOIN region ON n_regionkey = r_regionkey"
    )
    assert small.to_pyarrow().to_pylist() == [{"n": 25}]
    small_df = small.dataframe
    large = tpch_session.sql(SELF_JOIN)
    expected = large.to_pyarrow().to_pylist()
    large_df, before = large.dataframe, [(n.operator, n.output_rows) for n in large.plan().nodes]
    assert "HashJoinExec" in {operator for operator, _ in before}
    tpch_session.sql("SELECT 1 AS one").to_pyarrow()  # the next run lets go, on a worker
    deadline = time.monotonic() + 10
    while large.dataframe is large_df and time.monotonic() < deadline:
        time.sleep(0.05)
    assert large.dataframe is not large_df  # a fresh, unexecuted DataFrame of the same plan
    assert [(n.operator, n.output_rows) for n in large.plan().nodes] == before
    assert small.dataframe is small_df  # a few KB of build side: not worth a capture
    assert large.dataframe.to_arrow_table().to_pylist() == expected  # runs again when asked

"""TPC-H on a local Ballista cluster against the same session on one process.

TPC-H scale 1 (0.01 and three queries in quick mode), the 22 queries as written. Variants:

* ``local``: a workbench session running on its own DataFusion (the baseline);
* ``cluster``: the same session with ``engine=ballista://127.0.0.1:PORT``, a scheduler and two
  executor processes of one task slot each started on this machine
  (:class:`workbench.cluster.local.LocalCluster`);
* ``standalone``: ``engine=ballista:standalone`` (scheduler and executor in this process).

On a 2-core machine the cluster has no cores to add: what it costs is planning on the
scheduler, stages written to and read from shuffle files, and results fetched over Arrow
Flight after the job ends. Every row streams out; row counts are compared with local's.
"""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING

import workbench
from bench.harness import geometric_means, means_and_ratios, tpch_row_count_cases
from workbench import datasets
from workbench.cluster.local import LocalCluster

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.harness import Case, Measurement

LOCAL = "local"
CLUSTER = "cluster"
STANDALONE = "standalone"
QUICK_QUERIES = (1, 6, 9)


def cases(quick: bool) -> list[Case]:  # noqa: FBT001
    data = datasets.tpch(0.01 if quick else 1)
    cluster = LocalCluster(executors=2, slots=1, log="warn").start()
    atexit.register(cluster.stop)
    engines = {LOCAL: "local", CLUSTER: cluster.engine, STANDALONE: "ballista:standalone"}
    runners = {name: _session(data, engine) for name, engine in engines.items()}
    return tpch_row_count_cases(
        "cluster",
        QUICK_QUERIES if quick else range(1, 23),
        runners,
        baseline=LOCAL,
        subject=CLUSTER,
        quick=quick,
    )


def _session(data: datasets.TpchData, engine: str) -> Callable[[str], int]:
    session = workbench.RuntimeProfile(engine=engine).session()
    data.register(session)
    return lambda sql: sum(batch.num_rows for batch in session.sql(sql))


def summary(measurements: list[Measurement], *, quick: bool) -> str:
    _, complete = geometric_means(measurements)
    lines = [
        (
            f"TPC-H scale {0.01 if quick else 1}, {len(complete)} queries, every row streamed "
            "out, time relative to the same session on its own DataFusion (`local`). `cluster`: "
            "a scheduler and two executor processes (one slot each) on this machine; "
            "`standalone`: scheduler and executor in the process. On 2 cores a cluster adds "
            "no cores, only shuffle files, scheduling and a Flight fetch: it is expected to "
            "be slower here."
        ),
        "",
        *means_and_ratios(measurements),
    ]
    return "\n".join(lines)

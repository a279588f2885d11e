"""One TPC-H query in a fresh process under a memory limit: ``python -m bench.tpch_probe``.

``python -m bench.tpch_probe ENGINE PARQUET_DIR QUERY LIMIT_BYTES SPILL_DIR``, ENGINE
``workbench``, ``workbench-tuned`` (the machine's tuning kept under the limit),
``workbench-sort-merge`` (sort-merge joins from the start) or ``duckdb``. The process sets
up the engine with the memory limit and a
spill directory, registers the eight tables over the Parquet files in PARQUET_DIR, runs
query QUERY (1-22) streaming its rows out and keeping none, and prints one line
``PROBE {json}``: ``seconds``, ``rows``, ``peak_rss_mb`` (the process's resident
high-water mark over its whole life, ``VmHWM``: what the machine had to give it),
``start_rss_mb`` (after set-up, before the query), and for the workbench what its run
record says about a retry (``retried``). A failure is ``error``, the first line of it.

A process per query keeps each peak its own: memory a query returned to the allocator
would otherwise hide the next one's.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import workbench
from bench import peers
from bench.probe import PREFIX, status_mb
from workbench import datasets
from workbench.session import machine_tuning


def _workbench(parquet: Path, query: int, limit: int, spill: Path) -> dict[str, object]:
    profile = workbench.RuntimeProfile(memory_limit_bytes=limit, spill_dir=str(spill))
    return _session_run(parquet, query, profile)


def _workbench_tuned(parquet: Path, query: int, limit: int, spill: Path) -> dict[str, object]:
    """The workbench with the machine's tuning kept under the limit (4 partitions, joins in
    one partition up to 64 MiB): what ``RuntimeProfile`` steps back from."""
    tuned = machine_tuning()
    profile = workbench.RuntimeProfile(
        memory_limit_bytes=limit,
        spill_dir=str(spill),
        target_partitions=tuned.target_partitions,
        join_single_partition_bytes=tuned.join_single_partition_bytes,
        join_single_partition_rows=tuned.join_single_partition_rows,
    )
    return _session_run(parquet, query, profile)


def _workbench_sort_merge(parquet: Path, query: int, limit: int, spill: Path) -> dict[str, object]:
    """The workbench under the limit with sort-merge joins from the start
    (``prefer_hash_join = false``): every join can spill, none is retried."""
    profile = workbench.RuntimeProfile(memory_limit_bytes=limit, spill_dir=str(spill))
    return _session_run(
        parquet, query, profile, sets=("SET datafusion.optimizer.prefer_hash_join = false",)
    )


def _session_run(
    parquet: Path, query: int, profile: workbench.RuntimeProfile, sets: tuple[str, ...] = ()
) -> dict[str, object]:
    session = profile.session()
    for statement in sets:
        session.sql(statement).to_pyarrow()
    datasets.register_parquet(session, parquet)
    start = status_mb("VmRSS")
    started = time.perf_counter()
    result = session.sql(datasets.tpch_query(query))
    rows = sum(batch.num_rows for batch in result)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": rows,
        "start_rss_mb": start,
        "retried": result.run.retried,
    }


def _duckdb(parquet: Path, query: int, limit: int, spill: Path) -> dict[str, object]:
    config = {"memory_limit": f"{limit // 2**20}MiB", "temp_directory": str(spill)}
    tables = {table: parquet / f"{table}.parquet" for table in datasets.TABLES}
    con = peers.duckdb_connection(tables, config)
    start = status_mb("VmRSS")
    started = time.perf_counter()
    rows = peers.duckdb_rows(con, datasets.tpch_query(query))
    return {"seconds": time.perf_counter() - started, "rows": rows, "start_rss_mb": start}


ENGINES = {
    "workbench": _workbench,
    "workbench-tuned": _workbench_tuned,
    "workbench-sort-merge": _workbench_sort_merge,
    "duckdb": _duckdb,
}


def main(argv: list[str]) -> int:
    from bench.harness import first_line

    engine, parquet, query, limit, spill = argv
    try:
        found = ENGINES[engine](Path(parquet), int(query), int(limit), Path(spill))
    except Exception as exc:  # noqa: BLE001  (the parent reports the failure as a result)
        found = {"error": first_line(exc)}
    found["peak_rss_mb"] = status_mb("VmHWM")
    print(PREFIX + json.dumps(found), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

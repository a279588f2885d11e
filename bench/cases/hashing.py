"""Content hashes of a large result: the Rust row hash against the old Python one.

All variants hash TPC-H ``lineitem`` (SF0.1, 600,572 rows; SF0.01 with ``--quick``):

* ``rust content_hash`` (baseline): ``workbench.hashing.content_hash`` of the
  table already in memory, so only the hashing is timed;
* ``python json row hash (before)``: the algorithm ``workbench/hashing.py`` used
  before the Rust one, kept here as the baseline to beat: per row, SHA-256 of its
  JSON with sorted keys, summed modulo 2**256 (same table in memory);
* ``rust content_hash, streamed``: ``content_hash`` of ``SELECT * FROM lineitem``
  through a session, scan included: what an artifact export pays.

The two algorithms encode rows differently, so their digests differ; each
variant reports rows per second.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

import workbench
from bench.harness import Case, Sample
from workbench import datasets
from workbench.hashing import content_hash

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import pyarrow as pa

RUST = "rust content_hash"
PYTHON = "python json row hash (before)"
STREAMED = "rust content_hash, streamed"


def _python_json_hash(batches: Iterable[pa.RecordBatch]) -> tuple[str, int]:
    """The pre-Rust content hash (workbench/hashing.py before issue 11), verbatim."""
    total, rows = 0, 0
    for batch in batches:
        for row in batch.to_pylist():
            text = json.dumps(row, sort_keys=True, default=str, separators=(",", ":"))
            total = (total + int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")) % 2**256
            rows += 1
    return hashlib.sha256(f"{rows}:{total:064x}".encode()).hexdigest(), rows


def _rows_per_second(hash_rows: Callable[[], int]) -> Callable[[], Sample]:
    def run() -> Sample:
        started = time.perf_counter()
        rows = hash_rows()
        seconds = time.perf_counter() - started
        return Sample(seconds, metrics={"rows_per_s": round(rows / seconds)}, value=rows)

    return run


def cases(quick: bool) -> list[Case]:  # noqa: FBT001
    data = datasets.tpch(0.01 if quick else 0.1)
    table = pq.read_table(data.parquet("lineitem"))
    session = workbench.RuntimeProfile().session()
    data.register(session)

    def same_rows(last: dict[str, Any]) -> None:
        assert set(last.values()) == {table.num_rows}, last

    return [
        Case(
            name=f"content hash of lineitem ({table.num_rows:,} rows)",
            group="hashing",
            baseline=RUST,
            variants={
                RUST: _rows_per_second(lambda: content_hash(table).rows),
                PYTHON: _rows_per_second(lambda: _python_json_hash(table.to_batches())[1]),
                STREAMED: _rows_per_second(
                    lambda: content_hash(session.sql("SELECT * FROM lineitem")).rows
                ),
            },
            repeats=1 if quick else 3,
            note="ratio of the python json row hash = how many times slower the old hash is",
            check=same_rows,
            subject=RUST,
        )
    ]

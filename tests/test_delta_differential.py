"""Differential test: every query through ``register_delta`` returns exactly deltalake's rows.

Generated Delta tables (seeded, so the same on every run): partitioned and not; ints,
strings, dates, timestamps with a time zone, decimals, NULLs; appends, updates, deletes,
an overwrite and schema evolution; read at the latest and at an earlier version. Each
generated predicate runs through the workbench's Delta provider and, as the reference,
over ``deltalake.DeltaTable(...).to_pyarrow_table()`` (deltalake's own reader) loaded into
a plain DataFusion context. Results are compared as multisets (order-free content hash).
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import datafusion
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

import workbench
from workbench.hashing import content_hash

if TYPE_CHECKING:
    from pathlib import Path

SEEDS = range(6)
PREDICATES_PER_TABLE = 25
_WORDS = ["a", "b", "c", "delta", "Ωmega", ""]
_BASE_DAY = dt.date(2024, 1, 1)
_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("s", pa.string()),
        ("d", pa.date32()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("amount", pa.decimal128(10, 2)),
        ("p", pa.string()),
    ]
)


def _rows(rng: random.Random, first_id: int, count: int) -> pa.Table:
    ids = list(range(first_id, first_id + count))
    return pa.table(
        {
            "id": ids,
            "s": [rng.choice([*_WORDS, None]) for _ in ids],
            "d": [_BASE_DAY + dt.timedelta(days=rng.randrange(120)) for _ in ids],
            "ts": [
                None
                if rng.random() < 0.1
                else dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
                + dt.timedelta(hours=rng.randrange(2000))
                for _ in ids
            ],
            "amount": [decimal.Decimal(rng.randrange(-5000, 50000)) / 100 for _ in ids],
            "p": [rng.choice(["x", "y", "z"]) for _ in ids],
        },
        schema=_SCHEMA,
    )


@dataclass(frozen=True)
class Scenario:
    seed: int
    uri: str
    versions: tuple[int, ...]
    """The versions the cases read: the latest and one before it."""


def _build(seed: int, root: Path) -> Scenario:
    rng = random.Random(seed)
    uri = str(root / f"table-{seed}")
    partition_by = ["p"] if seed % 2 == 0 else None
    next_id = 0
    for _ in range(3):  # several files per version
        count = rng.randrange(30, 120)
        write_deltalake(uri, _rows(rng, next_id, count), partition_by=partition_by, mode="append")
        next_id += count
    table = DeltaTable(uri)
    table.update(updates={"amount": "amount + 1"}, predicate=f"id < {rng.randrange(next_id)}")
    table.delete(f"s = '{rng.choice(_WORDS)}'")
    if seed % 3 == 0:  # an overwrite: the older files are removed from the table
        write_deltalake(uri, _rows(rng, next_id, 80), partition_by=partition_by, mode="overwrite")
        next_id += 80
    if seed % 3 == 1:  # schema evolution: a new column, null in the older files
        extra = _rows(rng, next_id, 40).append_column("extra", pa.array(range(40), pa.int64()))
        write_deltalake(uri, extra, partition_by=partition_by, mode="append", schema_mode="merge")
        next_id += 40
    latest = DeltaTable(uri).version()
    return Scenario(seed, uri, (latest, rng.randrange(1, latest)))


def _predicates(seed: int) -> list[str]:
    rng = random.Random(1000 + seed)
    day = lambda: _BASE_DAY + dt.timedelta(days=rng.randrange(130))  # noqa: E731
    hour = lambda: dt.datetime(2024, 1, 1) + dt.timedelta(hours=rng.randrange(2100))  # noqa: E731
    templates = [
        lambda: f"id < {rng.randrange(300)}",
        lambda: f"id BETWEEN {(lo := rng.randrange(250))} AND {lo + rng.randrange(60)}",
        lambda: f"s = '{rng.choice(_WORDS)}'",
        lambda: "s IS NULL",
        lambda: f"s IN ('{rng.choice(_WORDS)}', '{rng.choice(_WORDS)}')",
        lambda: f"d >= DATE '{day()}'",
        lambda: f"d = DATE '{day()}'",
        lambda: f"ts < TIMESTAMP '{hour():%Y-%m-%dT%H:%M:%S}Z'",
        lambda: "ts IS NULL",
        lambda: f"amount > {decimal.Decimal(rng.randrange(-5000, 50000)) / 100}",
        lambda: f"p = '{rng.choice('xyz')}'",
        lambda: f"p IN ('x', '{rng.choice('yz')}')",
        lambda: f"p <> '{rng.choice('xyz')}' AND id > {rng.randrange(200)}",
        lambda: f"(p = 'x' OR s = '{rng.choice(_WORDS)}') AND d < DATE '{day()}'",
        lambda: f"NOT (id < {rng.randrange(300)}) AND amount < 100",
        lambda: f"id % {rng.randrange(2, 7)} = 0",
        lambda: "true",
    ]
    return [rng.choice(templates)() for _ in range(PREDICATES_PER_TABLE)]


CASES = [
    pytest.param(seed, which, index, id=f"seed{seed}-{which}-{index}")
    for seed in SEEDS
    for which in ("latest", "earlier")
    for index in range(PREDICATES_PER_TABLE)
]


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory) -> dict[int, Scenario]:
    root = tmp_path_factory.mktemp("delta-differential")
    return {seed: _build(seed, root) for seed in SEEDS}


@pytest.fixture(scope="module")
def sessions(
    scenarios,
) -> dict[tuple[int, str], tuple[workbench.Session, datafusion.SessionContext]]:
    """Per (table, version): the workbench with the provider, and the reference context."""
    out = {}
    for seed, scenario in scenarios.items():
        for which, version in zip(("latest", "earlier"), scenario.versions, strict=True):
            session = workbench.RuntimeProfile(batch_size=64, target_partitions=2).session()
            session.register_delta("t", scenario.uri, version=version)
            reference = datafusion.SessionContext()
            rows = DeltaTable(scenario.uri, version=version).to_pyarrow_table()
            reference.register_record_batches("t", [rows.to_batches() or []])
            out[seed, which] = (session, reference)
    return out


@pytest.mark.parametrize(("seed", "which", "index"), CASES)
def test_provider_rows_equal_deltalakes_own_reader(sessions, seed, which, index):
    predicate = _predicates(seed)[index]
    session, reference = sessions[seed, which]
    query = f"SELECT * FROM t WHERE {predicate}"
    got = session.sql(query).to_pyarrow()
    expected = reference.sql(query).to_arrow_table()
    assert got.num_rows == expected.num_rows, predicate
    assert content_hash(got) == content_hash(expected), predicate


def test_the_generated_tables_cover_what_the_cases_claim(scenarios):
    """Guards the generator: partitioned and not, several files, deletes, evolution, travel."""
    partitioned = {
        s for s, sc in scenarios.items() if DeltaTable(sc.uri).metadata().partition_columns
    }
    assert partitioned
    assert partitioned != set(scenarios)
    for scenario in scenarios.values():
        latest, earlier = scenario.versions
        assert earlier < latest
        history = {h["operation"] for h in DeltaTable(scenario.uri).history()}
        assert {"WRITE", "UPDATE", "DELETE"} <= history
        assert len(DeltaTable(scenario.uri, version=earlier).file_uris()) >= 2
    evolved = [sc for s, sc in scenarios.items() if s % 3 == 1]
    assert all("extra" in DeltaTable(sc.uri).schema().to_arrow().names for sc in evolved)

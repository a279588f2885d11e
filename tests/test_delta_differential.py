"""Differential test: every query through ``register_delta`` returns exactly deltalake's rows.

Generated Delta tables (seeded, so the same on every run): unpartitioned, or partitioned
by a string (with "" and NULL, both NULL by the protocol), an int with NULLs, or a float (with -0.0 and 0.0) and a bool with NULLs; ints,
strings, dates, timestamps with a time zone, decimals, floats (with -0.0, NaN), booleans,
NULLs; appends, updates, deletes, an overwrite, schema evolution and column mapping; read
at the latest and at an earlier version, and unpinned while another writer commits. Each
generated query (rows, a projection, count(*), ORDER BY ... LIMIT, a grouped function of a
column; predicates with functions of literal arguments) runs through the workbench's Delta
provider and, as the reference, over ``deltalake.DeltaTable(...).to_pyarrow_table()``
(deltalake's own reader) loaded into a plain DataFusion context. Results are compared as
multisets (order-free content hash).
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
from deltalake import DeltaTable, QueryBuilder, write_deltalake

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
        ("f", pa.float64()),
        ("b", pa.bool_()),
        ("p", pa.string()),
        ("pi", pa.int32()),
        ("pf", pa.float64()),
        ("pb", pa.bool_()),
    ]
)
_FLOATS = [-0.0, 0.0, 2.5, -1.0, float("nan"), None]
# Per seed % 4: the partition columns (float and bool ones hold -0.0 and NULL).
_PARTITIONS: list[list[str] | None] = [["p"], None, ["pi"], ["pf", "pb"]]


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
            "f": [rng.choice(_FLOATS) for _ in ids],
            "b": [rng.choice([True, False, None]) for _ in ids],
            "p": [rng.choice(["x", "y", "z", "", None]) for _ in ids],
            "pi": [rng.choice([0, 1, 2, None]) for _ in ids],
            "pf": [rng.choice([-0.0, 0.0, 1.5, None]) for _ in ids],
            "pb": [rng.choice([True, False, None]) for _ in ids],
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
    partition_by = _PARTITIONS[seed % 4]
    # Column mapping on one table: the log's statistics and files use physical names.
    configuration = {"delta.columnMapping.mode": "name"} if seed == 5 else None
    next_id = 0
    for _ in range(3):  # several files per version
        count = rng.randrange(30, 120)
        write_deltalake(
            uri,
            _rows(rng, next_id, count),
            partition_by=partition_by,
            mode="append",
            configuration=configuration,
        )
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
    # An earlier version with several files (an update or delete may rewrite into one).
    earlier = [v for v in range(1, latest) if len(DeltaTable(uri, version=v).file_uris()) >= 2]
    return Scenario(seed, uri, (latest, rng.choice(earlier)))


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
        lambda: rng.choice(["p IS NULL", "p = ''", "p IS NOT NULL AND id < 100", "length(p) = 0"]),
        lambda: f"p <> '{rng.choice('xyz')}' AND id > {rng.randrange(200)}",
        lambda: f"(p = 'x' OR s = '{rng.choice(_WORDS)}') AND d < DATE '{day()}'",
        lambda: f"NOT (id < {rng.randrange(300)}) AND amount < 100",
        lambda: f"id % {rng.randrange(2, 7)} = 0",
        lambda: "true",
        lambda: f"f {rng.choice(['=', '>=', '<=', '<', '>'])} {rng.choice(['0', '-0.0', '2.5'])}",
        lambda: rng.choice(["f IS NULL", "isnan(f)", "f IN (0, 2.5)"]),
        lambda: rng.choice(["b", "NOT b", "b IS NULL", "b = false AND id > 20"]),
        lambda: rng.choice(["pi = 1", "pi IS NULL", "pi IN (0, 2)", "pi > 0", "pi <> 1"]),
        lambda: rng.choice(["pf = 0", "pf >= 0", "pf IN (0, 7)", "pf = -0.0", "pf < 1"]),
        lambda: rng.choice(["pb", "NOT pb", "pb IS NULL", "pb IS NOT NULL AND pf = 0"]),
        lambda: f"date_trunc('month', d) = DATE '2024-0{rng.randrange(1, 5)}-01'",
        lambda: f"date_part('hour', ts) < {rng.randrange(24)}",
        lambda: f"encode(s, 'hex') = '{rng.choice(['61', '62', '64656c7461'])}'",
        lambda: f"date_bin(INTERVAL '7 days', d, DATE '2024-01-01') = DATE '{day()}'",
        lambda: f"s LIKE '{rng.choice(['d%', '%a', 'Ω%'])}' OR p LIKE 'x%'",
    ]
    return [rng.choice(templates)() for _ in range(PREDICATES_PER_TABLE)]


# The query shapes each predicate runs in: rows, a projection, a count, a top-N, a grouping.
_SHAPES = [
    "SELECT * FROM t WHERE {p}",
    "SELECT id, s, pf FROM t WHERE {p}",
    "SELECT count(*) AS n FROM t WHERE {p}",
    "SELECT id FROM t WHERE {p} ORDER BY id DESC LIMIT 7",
    (
        "SELECT date_trunc('month', d) AS m, count(*) AS n, sum(amount) AS a FROM t WHERE {p} "
        "GROUP BY 1"
    ),
]


def _query(seed: int, index: int, predicate: str) -> str:
    return _SHAPES[(seed + index) % len(_SHAPES)].format(p=predicate)


def _deltalake_rows(table: DeltaTable) -> pa.Table:
    """The table's rows as deltalake reads them.

    Its pyarrow reader returns every value NULL on a column-mapped table (deltalake 1.6.6
    reads the physical column names as if they were the logical ones), so such a table is
    read through deltalake's DataFusion reader (``QueryBuilder``), which maps them.
    """
    if table.metadata().configuration.get("delta.columnMapping.mode", "none") == "none":
        return table.to_pyarrow_table()
    reader = QueryBuilder().register("t", table).execute("SELECT * FROM t")
    return pa.table(reader.read_all())


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
            rows = _deltalake_rows(DeltaTable(scenario.uri, version=version))
            reference.register_record_batches("t", [rows.to_batches() or []])
            out[seed, which] = (session, reference)
    return out


@pytest.mark.parametrize(("seed", "which", "index"), CASES)
def test_provider_rows_equal_deltalakes_own_reader(sessions, seed, which, index):
    predicate = _predicates(seed)[index]
    session, reference = sessions[seed, which]
    query = _query(seed, index, predicate)
    got = session.sql(query).to_pyarrow()
    expected = reference.sql(query).to_arrow_table()
    assert got.num_rows == expected.num_rows, query
    assert content_hash(got) == content_hash(expected), query


def test_an_unpinned_table_follows_each_commit_of_another_writer(tmp_path):
    """Refresh: after every commit, the next query reads exactly the new version."""
    rng = random.Random(99)
    uri = str(tmp_path / "moving")
    write_deltalake(uri, _rows(rng, 0, 50), partition_by=["pi"])
    session = workbench.RuntimeProfile(batch_size=64, target_partitions=2).session()
    session.register_delta("t", uri)
    session.sql("CREATE VIEW recent AS SELECT * FROM t WHERE id >= 20")
    commits = [
        lambda: write_deltalake(uri, _rows(rng, 50, 30), mode="append"),
        lambda: DeltaTable(uri).delete("id % 3 = 0"),
        lambda: DeltaTable(uri).update(updates={"s": "'moved'"}, predicate="pi = 1"),
        lambda: write_deltalake(uri, _rows(rng, 80, 20), mode="overwrite", partition_by=["pi"]),
    ]
    for commit in [lambda: None, *commits]:
        commit()
        reference = datafusion.SessionContext()
        rows = DeltaTable(uri).to_pyarrow_table()
        reference.register_record_batches("t", [rows.to_batches() or []])
        for query in [
            "SELECT * FROM t WHERE pi = 1",
            "SELECT count(*) AS n FROM t",
            "SELECT id, s FROM recent",
        ]:
            expected_query = query.replace("recent", "t WHERE id >= 20")
            got = session.sql(query).to_pyarrow()
            expected = reference.sql(expected_query).to_arrow_table()
            assert content_hash(got) == content_hash(expected), (query, DeltaTable(uri).version())


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
    partitions = {
        tuple(DeltaTable(sc.uri).metadata().partition_columns) for sc in scenarios.values()
    }
    assert partitions == {(), ("p",), ("pi",), ("pf", "pb")}
    mapped = DeltaTable(scenarios[5].uri).metadata().configuration
    assert mapped.get("delta.columnMapping.mode") == "name"
    floats = DeltaTable(scenarios[3].uri).to_pyarrow_table().column("pf").to_pylist()
    assert any(str(v) == "-0.0" for v in floats)

"""Content hashes: the documented row encoding, order-free, streamed from Rust."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench import canonical
from workbench.errors import ArgumentError
from workbench.hashing import ContentHash, content_hash

from .conftest import run_python

if TYPE_CHECKING:
    import workbench
    from workbench import datasets

ROW_DOMAIN = b"workbench.row.v1\0"
CONTENT_DOMAIN = b"workbench.content.v1\0"


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def i128(n: int) -> bytes:
    return n.to_bytes(16, "big", signed=True)


def name(text: str) -> bytes:
    return u64(len(text.encode())) + text.encode()


def expected(*rows: bytes) -> ContentHash:
    """The documented digest of rows given as hand-written encodings."""
    total = sum(int.from_bytes(hashlib.sha256(ROW_DOMAIN + row).digest(), "big") for row in rows)
    payload = u64(len(rows)) + (total % 2**256).to_bytes(32, "big")
    return ContentHash(hashlib.sha256(CONTENT_DOMAIN + payload).hexdigest(), len(rows))


def test_one_row_digest_follows_the_documented_encoding():
    row = b"\x0c" + u64(1) + name("k") + b"\x02" + i128(1)
    assert content_hash(pa.table({"k": [1]})) == expected(row)


def test_two_rows_sum_their_hashes_with_columns_sorted_by_name():
    table = pa.table({"s": ["a", None], "n": pa.array([1, 2], pa.int8())})
    first = b"\x0c" + u64(2) + name("n") + b"\x02" + i128(1) + name("s") + b"\x04" + u64(1) + b"a"
    second = b"\x0c" + u64(2) + name("n") + b"\x02" + i128(2) + name("s") + b"\x00"
    assert content_hash(table) == expected(first, second)


def test_nested_values_follow_the_documented_encoding():
    table = pa.table(
        {
            "l": pa.array([[1, None]], pa.list_(pa.int64())),
            "st": pa.array(
                [{"b": True, "a": "x"}], pa.struct([("b", pa.bool_()), ("a", pa.string())])
            ),
        }
    )
    items = b"\x0b" + u64(2) + b"\x02" + i128(1) + b"\x00"
    fields = b"\x0c" + u64(2) + name("a") + b"\x04" + u64(1) + b"x" + name("b") + b"\x01\x01"
    row = b"\x0c" + u64(2) + name("l") + items + name("st") + fields
    assert content_hash(table) == expected(row)


def test_types_without_canonical_encoding_hash_their_display_string():
    table = pa.table({"i": pa.array([pa.MonthDayNano([1, 2, 3])], pa.month_day_nano_interval())})
    text = b"1 mons 2 days 0.000000003 secs"
    row = b"\x0c" + u64(1) + name("i") + b"\xff" + u64(len(text)) + text
    assert content_hash(table) == expected(row)


def test_empty_result_has_one_digest_whatever_its_columns():
    empty = expected()
    assert empty.digest == hashlib.sha256(CONTENT_DOMAIN + bytes(8 + 32)).hexdigest()
    assert content_hash(pa.table({"a": pa.array([], pa.string())})) == empty
    assert content_hash(pa.table({"b": pa.array([], pa.int64())})) == empty
    assert content_hash([]) == empty


def test_row_order_does_not_matter():
    table = pa.table({"k": list(range(1000)), "s": [str(i % 7) for i in range(1000)]})
    order = [(i * 389) % 1000 for i in range(1000)]  # 389 is prime to 1000: a permutation
    assert content_hash(table) == content_hash(table.take(order))


def test_duplicates_count():
    table = pa.table({"k": [1, 2]})
    doubled = pa.concat_tables([table, table])
    assert content_hash(doubled) != content_hash(table)
    assert content_hash(doubled).rows == 4
    assert content_hash(pa.table({"k": [1, 1]})) != content_hash(pa.table({"k": [1]}))


def test_batch_boundaries_do_not_matter():
    table = pa.table({"k": list(range(10_000))})
    assert content_hash(table) == content_hash(table.to_batches(max_chunksize=7))


def test_layouts_and_integer_widths_do_not_matter():
    plain = pa.table({"n": pa.array([1, -2], pa.int64()), "s": ["x", "yé"], "b": [b"\x00", b""]})
    other = pa.table(
        {
            "n": pa.array([1, -2], pa.int8()),
            "s": pa.array(["x", "yé"], pa.string_view()),
            "b": pa.array([b"\x00", b""], pa.binary_view()),
        }
    )
    large = pa.table(
        {
            "n": pa.array([1, -2], pa.int32()),
            "s": pa.array(["x", "yé"], pa.large_string()),
            "b": pa.array([b"\x00", b""], pa.large_binary()),
        }
    )
    assert content_hash(plain) == content_hash(other) == content_hash(large)


def test_column_order_does_not_matter_but_names_do():
    table = pa.table({"a": [1, 2], "b": ["x", "y"]})
    assert content_hash(table) == content_hash(table.select(["b", "a"]))
    assert content_hash(table) != content_hash(table.rename_columns(["a", "c"]))


def test_nested_types_ignore_row_order_and_layout():
    lists = pa.table(
        {
            "a": pa.array([[1], [2, 3]], pa.list_(pa.int64())),
            "m": [{"x": 1}, {"x": 2}],
            "mp": pa.array([[("k", 1)], []], pa.map_(pa.string(), pa.int64())),
        }
    )
    other = pa.table(
        {
            "a": pa.array([[2, 3], [1]], pa.large_list(pa.int32())),
            "m": [{"x": 2}, {"x": 1}],
            "mp": pa.array([[], [("k", 1)]], pa.map_(pa.string(), pa.int64())),
        }
    )
    assert content_hash(lists) == content_hash(other)
    assert content_hash(lists) != content_hash(lists.slice(0, 1))


def test_every_source_kind_gives_the_same_hash(session: workbench.Session):
    sql = "SELECT value AS v FROM generate_series(1, 5000)"
    table = session.ctx.sql(sql).to_arrow_table()
    want = content_hash(table)
    assert want.rows == 5000
    assert content_hash(table.to_batches()) == want
    assert content_hash(iter(table.to_batches(max_chunksize=999))) == want
    assert content_hash(pa.RecordBatchReader.from_batches(table.schema, table.to_batches())) == want
    assert content_hash(session.ctx.sql(sql)) == want
    assert content_hash(session.sql(sql)) == want


def test_rust_matches_the_python_reference_on_tpch_rows(tpch: datasets.TpchData):
    # An independent implementation of the documented row: workbench.canonical
    # encodes a dict as a struct with its keys sorted.
    sample = pq.read_table(tpch.parquet("lineitem")).slice(1000, 3000)
    rows = [canonical.encode(row) for row in sample.to_pylist()]
    assert content_hash(sample) == expected(*rows)


@pytest.mark.parametrize("failing_row", [3, 50_000], ids=["first batch", "later batch"])
def test_an_error_in_the_stream_reaches_the_caller(session: workbench.Session, failing_row: int):
    sql = f"SELECT 10 / (value - {failing_row}) AS x FROM generate_series(1, 100000)"
    with pytest.raises(Exception, match="Divide by zero"):
        content_hash(session.ctx.sql(sql))


def test_a_source_that_is_not_a_stream_is_refused():
    with pytest.raises(ArgumentError, match="not int"):
        content_hash(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("source", ["session.ctx.sql(SQL)", "session.sql(SQL)"])
def test_a_large_stream_is_hashed_without_materialising(source: str):
    code = f"""
        import resource, workbench
        from workbench.hashing import content_hash
        session = workbench.RuntimeProfile().session()
        SQL = "SELECT value, value * 3 AS v3 FROM generate_series(1, 10000)"
        content_hash({source})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        SQL = "SELECT value, value * 3 AS v3 FROM generate_series(1, 10000000)"
        rows = content_hash({source}).rows
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, rows)
    """
    grown_kib, rows = map(int, run_python(code).split())
    assert rows == 10_000_000
    # The rows are 160 MB as Arrow; hashing them streams a few batches at a time.
    assert grown_kib < 40 * 1024, f"peak RSS grew by {grown_kib} KiB"

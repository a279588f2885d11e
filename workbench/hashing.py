"""Order-free content hashes of query results.

A result's content hash identifies its rows as a multiset: row order, batch
boundaries, column order, Arrow layouts (Utf8 vs LargeUtf8 vs Utf8View) and
integer widths do not change it; duplicates do; nested types work. Bundles
record it at export and replay compares it.

The work happens in Rust (``workbench._ext.content_hash``, ``rust/src/hashing.rs``),
which reads an Arrow C stream one batch at a time with the GIL released, so a
result of any size is hashed in the memory of a few batches. Each row is the
canonical encoding (``docs/canonical-encoding.md``) of a struct of its columns,
fields sorted by name; values of types without a canonical encoding (intervals,
maps, unions) are hashed as Arrow's display string under a tag of their own.
Row hashes are ``SHA-256("workbench.row.v1\\0" || row)``, summed modulo 2**256;
the digest is ``SHA-256("workbench.content.v1\\0" || u64 rows || sum)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import datafusion
import pyarrow as pa

from workbench import extension
from workbench.errors import ArgumentError

if TYPE_CHECKING:
    from collections.abc import Iterable


ALGORITHM = "workbench.content.v1"
"""Name of the content-hash algorithm above; bundles record it and replay checks it."""


@runtime_checkable
class ArrowStream(Protocol):
    """Anything that exports an Arrow C stream (the Arrow PyCapsule protocol)."""

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any: ...


@dataclass(frozen=True)
class ContentHash:
    """An order-independent digest of a result's rows, and how many rows it covered."""

    digest: str
    """64 lowercase hex digits."""
    rows: int


def content_hash(source: ArrowStream | Iterable[pa.RecordBatch]) -> ContentHash:
    """Hash rows without materialising them or depending on their order.

    ``source`` is anything with ``__arrow_c_stream__`` (a ``pa.Table``, a
    ``pa.RecordBatchReader``, a datafusion ``DataFrame``, a workbench ``Result``)
    or an iterable of ``pa.RecordBatch`` sharing one schema. A stream is consumed.
    """
    digest, rows = extension.load().content_hash(_stream(source))
    return ContentHash(str(digest), int(rows))


def _stream(source: ArrowStream | Iterable[pa.RecordBatch]) -> ArrowStream:
    """``source`` as an object with ``__arrow_c_stream__``."""
    if isinstance(source, datafusion.DataFrame):
        # A DataFrame's own C stream reads its partitions one after another while
        # the others run ahead into buffers (about a quarter of a generate_series
        # result here); its coalesced stream holds a few batches at a time.
        source = (batch.to_pyarrow() for batch in source.execute_stream())
    elif isinstance(source, ArrowStream):
        return source
    try:
        batches = iter(source)
    except TypeError:
        msg = (
            f"content_hash takes an Arrow stream or an iterable of RecordBatch, "
            f"not {type(source).__name__}"
        )
        raise ArgumentError(msg) from None
    first = next(batches, None)
    schema = pa.schema([]) if first is None else first.schema
    rest = [] if first is None else itertools.chain([first], batches)
    return cast("ArrowStream", pa.RecordBatchReader.from_batches(schema, rest))

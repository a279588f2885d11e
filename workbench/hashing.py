"""Order-free content hashes of query results.

A result's content hash identifies its rows as a multiset: row order, batch
boundaries and Arrow layouts (Utf8 vs Utf8View) do not change it, duplicates
do, and nested types work. Bundles record it at export and replay compares it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from collections.abc import Iterable

_MOD = 2**256


@dataclass(frozen=True)
class ContentHash:
    """An order-independent digest of a result's rows, and how many rows it covered."""

    digest: str
    rows: int


def content_hash(batches: Iterable[pa.RecordBatch] | pa.Table) -> ContentHash:
    """Hash rows without materialising them or depending on their order.

    Each row is hashed (SHA-256 of its JSON with sorted keys; decimals, dates
    and bytes as text) and the row hashes are summed modulo 2**256.
    """
    source = batches.to_batches() if isinstance(batches, pa.Table) else batches
    total, rows = 0, 0
    for batch in source:
        for row in batch.to_pylist():
            text = json.dumps(row, sort_keys=True, default=str, separators=(",", ":"))
            total = (total + int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")) % _MOD
            rows += 1
    return ContentHash(hashlib.sha256(f"{rows}:{total:064x}".encode()).hexdigest(), rows)

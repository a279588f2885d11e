"""Reference implementation of the canonical value encoding (version 1).

The Rust UDFs ``stable_id`` and ``prefixed_hash64`` (``rust/src/canonical.rs``)
hash this encoding; this module computes the same ids in pure Python so the
algorithm is documented in executable form, checked against the extension in
the tests, and usable where the extension is not (the UDF benchmark uses it as
the "equivalent Python UDF").

Encoding of one value: a type-family tag byte, then a payload
(big-endian throughout)::

    NULL 0x00 | bool 0x01 b | int 0x02 i128 | float 0x03 f64 bits (-0.0 -> 0.0,
    NaN -> 0x7ff8000000000000) | string 0x04 u64 len + UTF-8 | binary 0x05
    u64 len + bytes | decimal 0x06 i8 scale + i128 unscaled (trailing zeros
    stripped) | date 0x07 i64 days | timestamp 0x08 i128 ns since epoch (UTC)

``stable_id(*v)`` = first 16 bytes, hex, of
SHA-256(b"workbench.stable_id.v1\\0" + enc(v1) + enc(v2) + ...).
``prefixed_hash64(p, v)`` = ``p + ":" +`` first 8 bytes, hex, of
SHA-256(b"workbench.hash64.v1\\0" + enc(v)); NULL prefix gives NULL.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import math
import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

STABLE_ID_DOMAIN = b"workbench.stable_id.v1\0"
HASH64_DOMAIN = b"workbench.hash64.v1\0"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CANONICAL_NAN = 0x7FF8000000000000


def _float_bits(value: float) -> int:
    if math.isnan(value):
        return _CANONICAL_NAN
    if value == 0.0:
        return 0
    return int(struct.unpack(">Q", struct.pack(">d", value))[0])


def _with_length(tag: bytes, raw: bytes) -> bytes:
    return tag + len(raw).to_bytes(8, "big") + raw


def _encode_timestamp(value: dt.datetime) -> bytes:
    delta = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)) - _EPOCH
    nanos = (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000
    return b"\x08" + nanos.to_bytes(16, "big", signed=True)


def _encode_date(value: dt.date) -> bytes:
    return b"\x07" + (value - dt.date(1970, 1, 1)).days.to_bytes(8, "big", signed=True)


def _encode_decimal(value: decimal.Decimal) -> bytes:
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        msg = f"no canonical encoding for the decimal {value}"
        raise TypeError(msg)
    unscaled = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    scale = -exponent
    while scale < 0:
        unscaled *= 10
        scale += 1
    while scale > 0 and unscaled % 10 == 0:
        unscaled //= 10
        scale -= 1
    if unscaled == 0:
        scale = 0
    return (
        b"\x06" + scale.to_bytes(1, "big", signed=True) + unscaled.to_bytes(16, "big", signed=True)
    )


# Order matters: bool is an int, datetime is a date.
_ENCODERS: tuple[tuple[type | tuple[type, ...], Callable[[Any], bytes]], ...] = (
    (bool, lambda v: b"\x01" + (b"\x01" if v else b"\x00")),
    (int, lambda v: b"\x02" + v.to_bytes(16, "big", signed=True)),
    (float, lambda v: b"\x03" + _float_bits(v).to_bytes(8, "big")),
    (str, lambda v: _with_length(b"\x04", v.encode())),
    ((bytes, bytearray, memoryview), lambda v: _with_length(b"\x05", bytes(v))),
    (decimal.Decimal, _encode_decimal),
    (dt.datetime, _encode_timestamp),
    (dt.date, _encode_date),
)


def encode(value: object) -> bytes:
    """Canonical bytes of one Python value, as the UDFs encode the SQL value."""
    if value is None:
        return b"\x00"
    for kind, encoder in _ENCODERS:
        if isinstance(value, kind):
            return encoder(value)
    msg = f"no canonical encoding for {type(value).__name__}; convert it to str first"
    raise TypeError(msg)


def stable_id(*values: object) -> str:
    """The id ``stable_id(...)`` computes in SQL for these values."""
    payload = b"".join(encode(v) for v in values)
    return hashlib.sha256(STABLE_ID_DOMAIN + payload).hexdigest()[:32]


def prefixed_hash64(prefix: str | None, value: object) -> str | None:
    """The string ``prefixed_hash64(prefix, value)`` computes in SQL."""
    if prefix is None:
        return None
    return f"{prefix}:{hashlib.sha256(HASH64_DOMAIN + encode(value)).hexdigest()[:16]}"

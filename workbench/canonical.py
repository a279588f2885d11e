"""Reference implementation of the canonical value encoding (version 1).

The Rust UDFs ``stable_id`` and ``prefixed_hash64`` (``rust/src/canonical.rs``)
hash this encoding; this module computes the same ids in pure Python so the
algorithm is documented in executable form, checked against the extension in
the tests, and usable where the extension is not (the UDF benchmark uses it as
the "equivalent Python UDF"). ``docs/canonical-encoding.md`` is the
specification and ``tests/fixtures/canonical_v1.json`` pins it.

Encoding of one value: a type-family tag byte, then a payload
(big-endian throughout)::

    NULL 0x00 | bool 0x01 b | int 0x02 i128 | float 0x03 f64 bits (-0.0 -> 0.0,
    NaN -> 0x7ff8000000000000) | string 0x04 u64 len + UTF-8 | binary 0x05
    u64 len + bytes | decimal 0x06 i8 scale + i128 unscaled (negative scale
    multiplied out to 0, trailing zeros stripped while scale > 0, zero at
    scale 0) | date 0x07 i64 days | timestamp 0x08 i128 ns since epoch (UTC) |
    time of day 0x09 i128 ns since midnight | duration 0x0A i128 ns |
    list 0x0B u64 count + elements | struct 0x0C u64 count + per field, sorted
    by name: u64 len + UTF-8 name + value

Values are either Python values (``None``, ``bool``, ``int``, ``float``,
``str``, ``bytes``, ``Decimal``, ``date``, ``datetime`` (naive is UTC),
``time``, ``timedelta``, ``list``/``tuple``, ``dict`` with ``str`` keys as a
struct) or ``pyarrow`` scalars, which are encoded by their Arrow type: exact
to the nanosecond, and the way to name a type the Python value does not
carry (a Duration, a Time64). A type without an encoding is a ``TypeError``.

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

import pyarrow as pa

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

STABLE_ID_DOMAIN = b"workbench.stable_id.v1\0"
HASH64_DOMAIN = b"workbench.hash64.v1\0"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CANONICAL_NAN = 0x7FF8000000000000
_MAX_DECIMAL_DIGITS = 38
_NANOS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_MILLIS_PER_DAY = 86_400_000
_NULL = b"\x00"


def _float_bits(value: float) -> int:
    if math.isnan(value):
        return _CANONICAL_NAN
    if value == 0.0:
        return 0
    return int(struct.unpack(">Q", struct.pack(">d", value))[0])


def _with_length(tag: bytes, raw: bytes) -> bytes:
    return tag + len(raw).to_bytes(8, "big") + raw


def _i128(tag: bytes, value: int) -> bytes:
    return tag + value.to_bytes(16, "big", signed=True)


def _encode_timestamp(value: dt.datetime) -> bytes:
    delta = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)) - _EPOCH
    return _i128(b"\x08", _timedelta_nanos(delta))


def _timedelta_nanos(value: dt.timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 10**9 + value.microseconds * 1_000


def _encode_time(value: dt.time) -> bytes:
    seconds = value.hour * 3_600 + value.minute * 60 + value.second
    return _i128(b"\x09", seconds * 10**9 + value.microsecond * 1_000)


def _encode_date(value: dt.date) -> bytes:
    return _encode_days((value - dt.date(1970, 1, 1)).days)


def _encode_days(days: int) -> bytes:
    return b"\x07" + days.to_bytes(8, "big", signed=True)


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
    if len(str(abs(unscaled))) > _MAX_DECIMAL_DIGITS:
        msg = f"no canonical encoding for the decimal {value}: more than 38 digits at scale 0"
        raise TypeError(msg)
    return (
        b"\x06" + scale.to_bytes(1, "big", signed=True) + unscaled.to_bytes(16, "big", signed=True)
    )


def _encode_list(items: Iterable[object]) -> bytes:
    encoded = [encode(item) for item in items]
    return b"\x0b" + len(encoded).to_bytes(8, "big") + b"".join(encoded)


def _encode_struct(fields: Iterable[tuple[str, object]]) -> bytes:
    # Sorting str by code point is sorting UTF-8 bytes: the Rust side sorts bytes.
    ordered = sorted(fields, key=lambda field: field[0])
    parts = [_with_length(b"", name.encode()) + encode(value) for name, value in ordered]
    return b"\x0c" + len(parts).to_bytes(8, "big") + b"".join(parts)


def _encode_dict(value: dict[Any, Any]) -> bytes:
    if not all(isinstance(key, str) for key in value):
        msg = "no canonical encoding for a dict with keys that are not str (a struct's names)"
        raise TypeError(msg)
    return _encode_struct(value.items())


# Order matters: bool is an int, datetime is a date.
_ENCODERS: tuple[tuple[type | tuple[type, ...], Callable[[Any], bytes]], ...] = (
    (bool, lambda v: b"\x01" + (b"\x01" if v else b"\x00")),
    (int, lambda v: _i128(b"\x02", v)),
    (float, lambda v: b"\x03" + _float_bits(v).to_bytes(8, "big")),
    (str, lambda v: _with_length(b"\x04", v.encode())),
    ((bytes, bytearray, memoryview), lambda v: _with_length(b"\x05", bytes(v))),
    (decimal.Decimal, _encode_decimal),
    (dt.datetime, _encode_timestamp),
    (dt.date, _encode_date),
    (dt.time, _encode_time),
    (dt.timedelta, lambda v: _i128(b"\x0a", _timedelta_nanos(v))),
    ((list, tuple), _encode_list),
    (dict, _encode_dict),
)


def _is_list(kind: pa.DataType) -> bool:
    return any(
        is_kind(kind)
        for is_kind in (
            pa.types.is_list,
            pa.types.is_large_list,
            pa.types.is_list_view,
            pa.types.is_large_list_view,
            pa.types.is_fixed_size_list,
        )
    )


def _is_decimal_that_fits(kind: pa.DataType) -> bool:
    # Decimal256, or a negative scale wide enough to pass 38 digits at scale 0, has none.
    return (
        pa.types.is_decimal(kind)
        and not pa.types.is_decimal256(kind)
        and kind.precision - kind.scale <= _MAX_DECIMAL_DIGITS
    )


def _has_python_value(kind: pa.DataType) -> bool:
    """Whether ``as_py()`` loses nothing the encoding needs for this type."""
    return _is_decimal_that_fits(kind) or any(
        is_kind(kind)
        for is_kind in (
            pa.types.is_null,
            pa.types.is_boolean,
            pa.types.is_integer,
            pa.types.is_floating,
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_string_view,
            pa.types.is_binary,
            pa.types.is_large_binary,
            pa.types.is_binary_view,
            pa.types.is_fixed_size_binary,
        )
    )


def _nanos(tag: bytes) -> Callable[[Any], bytes]:
    return lambda scalar: _i128(tag, scalar.value * _NANOS[scalar.type.unit])


# Valid (non-NULL) scalars of types whose Python value would lose something, then the rest.
_SCALAR_ENCODERS: tuple[tuple[Callable[[pa.DataType], bool], Callable[[Any], bytes]], ...] = (
    (pa.types.is_date32, lambda s: _encode_days(s.value)),
    (pa.types.is_date64, lambda s: _encode_days(s.value // _MILLIS_PER_DAY)),
    (pa.types.is_timestamp, _nanos(b"\x08")),
    (pa.types.is_time, _nanos(b"\x09")),
    (pa.types.is_duration, _nanos(b"\x0a")),
    (_is_list, lambda s: _encode_list(s.values)),
    (
        pa.types.is_struct,
        lambda s: _encode_struct((s.type.field(i).name, s[i]) for i in range(s.type.num_fields)),
    ),
    (_has_python_value, lambda s: encode(s.as_py())),
)


def _encode_scalar(scalar: pa.Scalar) -> bytes:
    """Canonical bytes of an Arrow scalar, by its type (see the module docs)."""
    kind = scalar.type
    if pa.types.is_dictionary(kind) or pa.types.is_run_end_encoded(kind):
        return _encode_scalar(scalar.value) if scalar.is_valid else _NULL
    if not scalar.is_valid:
        return _NULL
    for is_kind, encoder in _SCALAR_ENCODERS:
        if is_kind(kind):
            return encoder(scalar)
    msg = f"no canonical encoding for the Arrow type {kind}; cast it to a string first"
    raise TypeError(msg)


def encode(value: object) -> bytes:
    """Canonical bytes of one value, as the UDFs encode the SQL value."""
    if value is None:
        return _NULL
    for kind, encoder in _ENCODERS:
        if isinstance(value, kind):
            return encoder(value)
    if isinstance(value, pa.Scalar):
        return _encode_scalar(value)
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

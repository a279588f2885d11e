"""The UDF ladder's last rung: Python UDFs, registered behind a performance policy.

Compute should use a built-in first, then a Rust function of the extension, and Python only
by choice. :func:`decide` measures a Python UDF before the session takes it:

- on a sample of its input types (the caller's, or generated: 20,000 rows), how many rows
  per second it computes inside DataFusion;
- whether a built-in or Rust function of the same arity returns exactly the same values on
  that sample (every scalar function ``information_schema.routines`` lists is tried), and
  how fast that one is.

Under the ``warn`` policy a UDF that has an equivalent, or computes fewer rows per second
than the profile's threshold, is registered with a warning; ``strict`` refuses it; ``off``
measures nothing. Every decision is kept (``Session.udf_decisions``, the
``wb_udf_decisions`` table).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import datafusion
import numpy as np
import pyarrow as pa
from sqlglot import exp

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

SAMPLE_ROWS = 20_000
POLICIES = ("warn", "strict", "off")
_VOLATILE = frozenset({"random", "uuid", "now", "current_time", "current_date", "to_char"})


class UdfPolicyError(WorkbenchError):
    """A strict profile refused a Python UDF (a built-in or Rust function would do, or slow)."""


class UdfPolicyWarning(UserWarning):
    """A Python UDF was registered although a built-in would do, or it is slow."""


@dataclass(frozen=True)
class UdfDecision:
    """What the policy made of one Python UDF."""

    name: str
    verdict: str
    """``registered``, ``registered with a warning``, ``refused`` or ``not measured``."""
    reason: str
    rows_per_second: float | None
    equivalent: str | None
    """A built-in or Rust function giving the same values on the sample."""
    equivalent_rows_per_second: float | None
    sample_rows: int
    decided_at: dt.datetime


def sample_for(types: Sequence[pa.DataType], rows: int = SAMPLE_ROWS, seed: int = 7) -> pa.Table:
    """Rows of the given Arrow types (columns ``c0``, ``c1``...), NULL-free, reproducible."""
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    for i, kind in enumerate(types):
        if pa.types.is_integer(kind):
            values: Any = rng.integers(-1000, 1000, rows)
        elif pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            values = np.round(rng.normal(0, 100, rows), 2)
        elif pa.types.is_boolean(kind):
            values = rng.integers(0, 2, rows).astype(bool)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            words = ["alpha", "Beta", " gamma ", "delta-7", "EPSILON", "zeta zeta", "", "éta"]
            values = [words[j] + str(j % 13) for j in rng.integers(0, len(words), rows)]
        elif pa.types.is_date(kind):
            values = (np.datetime64("2020-01-01") + rng.integers(0, 2000, rows)).astype(
                "datetime64[D]"
            )
        elif pa.types.is_timestamp(kind):
            values = np.datetime64("2020-01-01T00:00:00") + rng.integers(0, 10**8, rows).astype(
                "timedelta64[s]"
            )
        else:
            msg = f"no sample for Arrow type {kind}: pass sample= with rows of this type"
            raise UdfPolicyError(msg)
        columns[f"c{i}"] = pa.array(values).cast(kind)
    return pa.table(columns)


def _timed(ctx: datafusion.SessionContext, sql: str, repeat: int = 3) -> tuple[pa.Table, float]:
    """The result of ``sql`` and the median seconds of ``repeat`` runs."""
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = ctx.sql(sql).to_arrow_table()
        times.append(time.perf_counter() - start)
    assert result is not None
    return result, statistics.median(times)


def _select(name: str, arity: int) -> str:
    """``SELECT name(c0, ...) AS v FROM sample``; ``name`` is a function the context lists."""
    # Quoted: a function registered under "PlusOne" is found as written.
    function = exp.to_identifier(name, quoted=True)
    call = exp.Anonymous(this=function, expressions=[exp.column(f"c{i}") for i in range(arity)])
    return (
        exp.select(exp.alias_(call, "v")).from_("sample").sql("postgres", normalize_functions=False)
    )


def _candidates(ctx: datafusion.SessionContext, arity: int, exclude: str) -> list[str]:
    routines = ctx.sql(
        "SELECT r.routine_name AS name, max(p.ordinal_position) AS arity "
        "FROM information_schema.routines r JOIN information_schema.parameters p "
        "ON r.specific_name = p.specific_name AND p.parameter_mode = 'IN' "
        "WHERE r.function_type = 'SCALAR' GROUP BY r.routine_name, p.rid"
    ).to_pydict()
    names = {
        str(name)
        for name, n in zip(routines["name"], routines["arity"], strict=True)
        if n == arity and name != exclude and name not in _VOLATILE
    }
    return sorted(names)


def _equivalent(
    ctx: datafusion.SessionContext, name: str, arity: int, expected: pa.Array
) -> tuple[str | None, float | None]:
    """A function of ``ctx`` (other than ``name``) returning ``expected`` on the sample."""
    for candidate in _candidates(ctx, arity, name):
        try:
            got = ctx.sql(_select(candidate, arity)).to_arrow_table()
        except Exception:  # noqa: BLE001, S112  (a candidate that does not take these types)
            continue
        column = got.column("v").combine_chunks()
        if column.type != expected.type:
            try:
                column = column.cast(expected.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
        if column.equals(expected):
            _, seconds = _timed(ctx, _select(candidate, arity))
            return candidate, len(expected) / seconds
    return None, None


def decide(
    udf: datafusion.ScalarUDF,
    name: str,
    input_types: Sequence[pa.DataType],
    *,
    policy: str,
    min_rows_per_second: float,
    sample: pa.Table | None,
    install: Callable[[datafusion.SessionContext], object],
) -> UdfDecision:
    """Measure ``udf`` in a private context (``install`` adds the Rust functions) and decide."""
    now = dt.datetime.now(dt.UTC)
    if policy == "off":
        return UdfDecision(name, "not measured", "policy off", None, None, None, 0, now)
    table = sample if sample is not None else sample_for(input_types)
    table = table.rename_columns([f"c{i}" for i in range(table.num_columns)])
    # One partition: rows come back in sample order, and both sides use one core.
    config = datafusion.SessionConfig().with_information_schema(enabled=True)
    ctx = datafusion.SessionContext(config.with_target_partitions(1))
    install(ctx)
    ctx.register_record_batches("sample", [table.to_batches()])
    ctx.register_udf(udf)
    try:
        result, seconds = _timed(ctx, _select(name, len(input_types)))
    except Exception as exc:  # noqa: BLE001  (the UDF's own failure, reported with its cause)
        first = str(exc).removeprefix("DataFusion error: ").splitlines()[0]
        msg = (
            f"Python UDF {name} failed on a sample of its input types ({first}); fix it, "
            "or pass sample= with rows it accepts"
        )
        raise UdfPolicyError(msg) from None
    rate = table.num_rows / seconds if seconds > 0 else float("inf")
    expected = result.column("v").combine_chunks()
    equivalent, equivalent_rate = _equivalent(ctx, name, len(input_types), expected)
    problems = []
    if equivalent is not None:
        speed = f", at {equivalent_rate / rate:.1f}x its speed" if equivalent_rate else ""
        problems.append(
            f"{equivalent}() returns the same values on {table.num_rows:,} sample rows{speed}"
        )
    if rate < min_rows_per_second:
        problems.append(
            f"it computes {rate:,.0f} rows/s, below the profile's "
            f"{min_rows_per_second:,.0f} (python_udf_min_rows_per_s)"
        )
    if not problems:
        reason = f"{rate:,.0f} rows/s; no built-in or Rust function gives the same values"
        return UdfDecision(name, "registered", reason, rate, None, None, table.num_rows, now)
    reason = "; ".join(problems)
    verdict = "refused" if policy == "strict" else "registered with a warning"
    return UdfDecision(
        name, verdict, reason, rate, equivalent, equivalent_rate, table.num_rows, now
    )


def enforce(decision: UdfDecision) -> None:
    """Raise for a refused UDF, warn for one registered with a warning."""
    if decision.verdict == "refused":
        msg = (
            f"Python UDF {decision.name} refused by the strict profile: {decision.reason}; "
            "use the built-in or Rust function, or a profile with udf_policy='warn'"
        )
        raise UdfPolicyError(msg)
    if decision.verdict == "registered with a warning":
        warnings.warn(
            f"Python UDF {decision.name}: {decision.reason}", UdfPolicyWarning, stacklevel=3
        )


DECISIONS_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("verdict", pa.string()),
        ("reason", pa.string()),
        ("rows_per_second", pa.float64()),
        ("equivalent", pa.string()),
        ("equivalent_rows_per_second", pa.float64()),
        ("sample_rows", pa.int64()),
        ("decided_at", pa.timestamp("us", tz="UTC")),
    ]
)

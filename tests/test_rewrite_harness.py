"""Rewrite regression harness (issue 15, item 5): the gate's canonical SQL keeps the meaning.

Every case is a data file in ``tests/fixtures/rewrite/`` (format in the README there):
tables, one query and the rows it must return, written by hand. The original and the
canonical SQL each run in DataFusion and in SQLGlot's Python executor, and all four runs
must give those rows. Two independent engines and a hand-written expectation mean that a
rewrite which changes the answer cannot hide behind one engine agreeing with itself.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datafusion
import pyarrow as pa
import pytest
from sqlglot.executor import execute

from workbench.ingress import gate

FIXTURES = Path(__file__).parent / "fixtures" / "rewrite"
NAMES = sorted(path.stem for path in FIXTURES.glob("*.sql"))

_DIRECTIVE = re.compile(
    r"^--\s*(table|types|expect|ordered|executor|datafusion)\b\s*(\w*)\s*:\s*(.*)$"
)
# Shaped like a directive (a lowercase word, maybe a table name, a colon): descriptions
# start with a capital or hold more words before any colon.
_DIRECTIVE_SHAPE = re.compile(r"^--\s*[a-z]+(\s+\w+)?\s*:")
_DECIMAL = re.compile(r"^decimal128\((\d+),\s*(\d+)\)$")


@dataclass(frozen=True)
class Case:
    """One fixture file: its tables, query, expected rows and known engine faults."""

    name: str
    tables: dict[str, pa.Table]
    query: str
    expect: list[list[Any]]
    ordered: bool
    executor_skip: str | None
    """Why SQLGlot's executor cannot run the query (both of its runs must then fail)."""
    datafusion_differs: str | None
    """Why DataFusion answers the original SQL wrongly (that run must then fail, the
    canonical one still pass): a known DataFusion bug the gate's rewrite happens to avoid."""


def _arrow_type(name: str) -> pa.DataType:
    if match := _DECIMAL.match(name):
        return pa.decimal128(int(match[1]), int(match[2]))
    return pa.type_for_alias(name)


def _table(columns: dict[str, list[Any]], types: dict[str, str]) -> pa.Table:
    arrays = {}
    for column, values in columns.items():
        array = pa.array(values)
        if column in types:
            # Decimals and dates are written as strings; Arrow's casts parse them.
            array = array.cast(_arrow_type(types[column]))
        arrays[column] = array
    return pa.table(arrays)


def _read(path: Path) -> tuple[list[tuple[str, str, str]], str]:
    """The directives (name, table, value) of a fixture file, and its query."""
    lines = path.read_text().splitlines()
    header = next((i for i, line in enumerate(lines) if not line.startswith("--")), len(lines))
    directives = []
    for number, line in enumerate(lines[:header], start=1):
        if match := _DIRECTIVE.match(line):
            directive, table, value = match.groups()
            directives.append((directive, table or "", value))
        elif _DIRECTIVE_SHAPE.match(line):
            raise ValueError(f"{path}:{number}: unknown directive {line!r}")
    return directives, "\n".join(lines[header:]).strip()


def _note(path: Path, directives: list[tuple[str, str, str]], name: str, form: str) -> str | None:
    """The reason of a ``-- name: form <reason>`` note, or ``None`` without one."""
    values = [value for directive, _, value in directives if directive == name]
    if not values:
        return None
    reason = values[-1].removeprefix(form).strip()
    if len(values) > 1 or not values[-1].startswith(f"{form} ") or not reason:
        raise ValueError(f"{path}: write one '-- {name}: {form} <reason>'")
    return reason


@functools.cache
def load(name: str) -> Case:
    """The case in ``tests/fixtures/rewrite/<name>.sql``."""
    path = FIXTURES / f"{name}.sql"
    directives, query = _read(path)
    columns = {table: json.loads(value) for kind, table, value in directives if kind == "table"}
    types = {table: json.loads(value) for kind, table, value in directives if kind == "types"}
    expects = [json.loads(value) for kind, _, value in directives if kind == "expect"]
    ordered = [json.loads(value) for kind, _, value in directives if kind == "ordered"]
    if len(expects) != 1 or not columns or not query:
        raise ValueError(f"{path}: a case needs tables, one expect line and a query")
    if unknown := set(types) - set(columns):
        raise ValueError(f"{path}: types for tables that are not there: {sorted(unknown)}")
    return Case(
        name,
        {table: _table(cols, types.get(table, {})) for table, cols in columns.items()},
        query,
        expects[0],
        ordered == [True],
        _note(path, directives, "executor", "skip"),
        _note(path, directives, "datafusion", "original differs"),
    )


@functools.cache
def context(name: str) -> datafusion.SessionContext:
    """A DataFusion session holding the tables of case ``name`` (shared; the queries only read)."""
    ctx = datafusion.SessionContext(
        datafusion.SessionConfig().with_information_schema(enabled=True)
    )
    for table, data in load(name).tables.items():
        ctx.register_record_batches(table, [data.to_batches()])
    return ctx


@functools.cache
def verdict(name: str) -> gate.GateResult:
    ctx = context(name)
    return gate.check(load(name).query, gate.live_schema(ctx))


def canonical_sql(name: str) -> str:
    canonical = verdict(name).canonical
    assert canonical is not None, verdict(name)
    return canonical


def run_datafusion(name: str, sql: str) -> list[tuple[Any, ...]]:
    table = context(name).sql(sql).to_arrow_table()
    # By position: a join may give two columns one name, and a dict would fold them.
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))


def run_executor(name: str, sql: str) -> list[tuple[Any, ...]]:
    # The executor gets the live schema too: it would otherwise guess types from the first
    # row, and a NULL there would leave the column untyped.
    tables = {table: data.to_pylist() for table, data in load(name).tables.items()}
    schema = gate.live_schema(context(name))
    return list(execute(sql, schema=schema, dialect="postgres", tables=tables).rows)


def _value(value: Any) -> Any:
    """A result value in the expectation's terms: numbers as floats, dates as ISO strings."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, float):
        return math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12)
    return type(expected) is type(actual) and expected == actual


def _same_row(expected: list[Any], actual: tuple[Any, ...]) -> bool:
    return len(expected) == len(actual) and all(map(_same, expected, actual))


def mismatch(case: Case, rows: list[tuple[Any, ...]]) -> str | None:
    """What differs between ``rows`` and the case's expectation, or ``None`` if nothing."""
    actual = [tuple(map(_value, row)) for row in rows]
    if case.ordered:
        if len(actual) == len(case.expect) and all(map(_same_row, case.expect, actual)):
            return None
        return f"expected, in order, {case.expect}\n     got {rows}"
    # A multiset comparison by matching (floats are compared with a tolerance, so no sort).
    left = list(range(len(actual)))
    missing = []
    for row in case.expect:
        hit = next((i for i in left if _same_row(row, actual[i])), None)
        if hit is None:
            missing.append(row)
        else:
            left.remove(hit)
    if not missing and not left:
        return None
    unexpected = [rows[i] for i in left]
    return f"expected rows not returned: {missing}\n     unexpected rows: {unexpected}"


def _check(name: str, engine: str, sql: str) -> str | None:
    """The mismatch of one run, with an error counted as one."""
    run = run_datafusion if engine == "datafusion" else run_executor
    try:
        rows = run(name, sql)
    except Exception as exc:  # noqa: BLE001  (a failing run is a result to report)
        return f"{type(exc).__name__}: {exc}"
    return mismatch(load(name), rows)


def _report(name: str, engine: str, sqls: dict[str, str]) -> list[str]:
    failures = []
    for which, sql in sqls.items():
        problem = _check(name, engine, sql)
        if problem is not None:
            failures.append(f"{engine} on the {which} SQL:\n  {sql}\n  {problem}")
    return failures


@pytest.mark.parametrize("name", NAMES)
def test_the_gate_qualifies_each_case_without_diagnostics_or_gaps(name):
    result = verdict(name)
    assert result.diagnostics == ()
    assert result.gaps == ()
    assert result.canonical is not None


@pytest.mark.parametrize("name", NAMES)
def test_datafusion_gives_the_expected_rows_for_original_and_canonical_sql(name):
    case = load(name)
    assert _report(name, "datafusion", {"canonical": canonical_sql(name)}) == []
    original = _report(name, "datafusion", {"original": case.query})
    if case.datafusion_differs is None:
        assert original == []
    else:
        # Honest only while DataFusion still gets the original wrong.
        assert original != [], f"DataFusion now answers it right: drop the note of {name}"


@pytest.mark.parametrize("name", NAMES)
def test_sqlglot_executor_gives_the_expected_rows_for_original_and_canonical_sql(name):
    case = load(name)
    sqls = {"original": case.query, "canonical": canonical_sql(name)}
    failures = _report(name, "executor", sqls)
    if case.executor_skip is None:
        assert failures == []
    else:
        # The skip is honest only while the executor still gets it wrong.
        assert len(failures) == len(sqls), f"the executor now runs it: drop the skip of {name}"


# Wrong rewrites the harness must catch: (case, correct fragment, wrong fragment).
WRONG_REWRITES = [
    ("nested_subquery_shadowing", '"t"."x" > 1', '"t"."x" >= 1'),
    ("left_join_nulls", "LEFT JOIN", "JOIN"),
    ("distinct_rows", "SELECT DISTINCT", "SELECT"),
    ("set_operation_precedence", "INTERSECT", "EXCEPT"),
    ("order_by_alias_shadowing", 'ORDER BY "a"', 'ORDER BY "b"'),
    ("correlated_scalar", "COUNT(*)", "SUM(1)"),  # the count bug: 0 becomes NULL
    ("full_join_using", 'COALESCE("l"."k", "r"."k")', '"l"."k"'),  # what DataFusion does
]


@pytest.mark.parametrize(("name", "right", "wrong"), WRONG_REWRITES)
def test_the_harness_fails_a_wrong_canonical_sql(name, right, wrong):
    canonical = canonical_sql(name)
    assert canonical.count(right) == 1, canonical
    broken = canonical.replace(right, wrong)
    for engine in ("datafusion", "executor"):
        assert _report(name, engine, {"canonical": canonical}) == []
        assert _report(name, engine, {"wrong": broken}) != [], (engine, broken)


def test_a_misspelt_directive_is_an_error_not_a_silently_dropped_check(tmp_path, monkeypatch):
    (tmp_path / "typo.sql").write_text(
        '-- table t: {"a": [1]}\n-- expcet: [[2]]\n-- expect: [[1]]\nSELECT a FROM t\n'
    )
    monkeypatch.setattr(f"{__name__}.FIXTURES", tmp_path)
    with pytest.raises(ValueError, match="unknown directive"):
        load.__wrapped__("typo")

"""The Rust FFI UDFs: deterministic, documented, guarded by DataFusion major.

The golden vectors in ``tests/fixtures/canonical_v1.json`` pin encoding v1: each
case is checked against the Python reference and, through a real session, the
SQL UDFs (``cargo test`` checks the same file against the Rust functions).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import struct
from typing import TYPE_CHECKING, Any

import datafusion
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import workbench
from workbench import canonical, extension
from workbench.errors import ExtensionError, SqlError

from .conftest import REPO, run_python

if TYPE_CHECKING:
    from collections.abc import Callable

ISSUE_EXAMPLE = "SELECT stable_id('a', 1, NULL) AS id, prefixed_hash64('file', 42) AS h"


def test_components_are_registered_by_default(session):
    assert session.registered == tuple(extension.COMPONENT_KINDS)
    caps = workbench.capabilities(session)
    assert caps.extension_built
    assert caps.built_for_datafusion_major == int(datafusion.__version__.split(".")[0])
    assert caps.provided == tuple(extension.COMPONENT_KINDS)
    assert caps.registered == session.registered
    assert caps.problem is None


def test_issue_example_matches_python_reference(session):
    row = session.sql(ISSUE_EXAMPLE).to_pyarrow().to_pylist()[0]
    assert row["id"] == canonical.stable_id("a", 1, None)
    assert row["h"] == canonical.prefixed_hash64("file", 42)
    assert len(row["id"]) == 32
    assert row["h"].startswith("file:")
    assert len(row["h"]) == len("file:") + 16


def test_same_values_in_two_separate_processes():
    code = f"""
        import json, workbench
        row = workbench.RuntimeProfile().session().sql({ISSUE_EXAMPLE!r}).to_pyarrow().to_pylist()[0]
        print(json.dumps(row))
    """
    first, second = json.loads(run_python(code)), json.loads(run_python(code))
    assert first == second
    assert first["id"] == canonical.stable_id("a", 1, None)


@pytest.mark.parametrize(
    ("sql_value", "python_value"),
    [
        ("CAST(7 AS TINYINT)", 7),
        ("CAST(-7 AS INT)", -7),
        ("CAST(18446744073709551615 AS BIGINT UNSIGNED)", 18446744073709551615),
        ("CAST(1.5 AS DOUBLE)", 1.5),
        ("CAST(-0.0 AS DOUBLE)", 0.0),
        ("CAST(1.5 AS REAL)", 1.5),
        ("true", True),
        ("'héllo'", "héllo"),
        ("arrow_cast('x', 'Utf8View')", "x"),
        ("arrow_cast('x', 'LargeUtf8')", "x"),
        ("X'00ff'", b"\x00\xff"),
        ("CAST(1.50 AS DECIMAL(10, 2))", decimal.Decimal("1.5")),
        ("DATE '2024-02-29'", dt.date(2024, 2, 29)),
        ("TIMESTAMP '2024-02-29 12:00:00.123456'", dt.datetime(2024, 2, 29, 12, 0, 0, 123456)),
        ("NULL", None),
    ],
)
def test_each_type_family_matches_the_reference(session, sql_value, python_value):
    sql = f"SELECT stable_id({sql_value}) AS id, prefixed_hash64('p', {sql_value}) AS h"
    row = session.sql(sql).to_pyarrow().to_pylist()[0]
    assert row["id"] == canonical.stable_id(python_value)
    assert row["h"] == canonical.prefixed_hash64("p", python_value)


def test_integer_width_does_not_change_the_id(session):
    row = session.sql(
        "SELECT stable_id(CAST(5 AS SMALLINT)) = stable_id(CAST(5 AS BIGINT)) AS same"
    ).to_pyarrow()
    assert row.column("same").to_pylist() == [True]


def test_ids_are_computed_per_row_over_columns(session):
    result = session.sql(
        "SELECT value, stable_id(value, 'x') AS id FROM generate_series(1, 20000)"
    ).to_pyarrow()
    values, ids = result.column("value").to_pylist(), result.column("id").to_pylist()
    assert ids == [canonical.stable_id(v, "x") for v in values]
    assert len(set(ids)) == len(ids)


def test_null_prefix_gives_null(session):
    rows = session.sql("SELECT prefixed_hash64(CAST(NULL AS VARCHAR), 1) AS h").to_pyarrow()
    assert rows.column("h").to_pylist() == [None]


def test_unsupported_type_is_refused_with_the_fix(session):
    with pytest.raises(SqlError, match=r"argument 1 has type Interval.*cast it to VARCHAR"):
        session.sql("SELECT stable_id(INTERVAL '1 day')")


def test_lists_and_structs_from_sql_match_the_reference(session):
    sql = (
        "SELECT stable_id(make_array(1, 2)) AS l, stable_id(named_struct('b', 1, 'a', 'x')) AS s, "
        "stable_id(named_struct('a', 'x', 'b', 1)) AS swapped"
    )
    row = session.sql(sql).to_pyarrow().to_pylist()[0]
    assert row["l"] == canonical.stable_id([1, 2])
    assert row["s"] == canonical.stable_id({"a": "x", "b": 1})
    assert row["swapped"] == row["s"]


def test_negative_scale_decimal_from_sql_is_its_integer_value(session):
    sql = (
        "SELECT stable_id(arrow_cast(12300, 'Decimal128(5, -2)')) AS negative, "
        "stable_id(CAST(12300 AS DECIMAL(5, 0))) AS plain"
    )
    row = session.sql(sql).to_pyarrow().to_pylist()[0]
    assert row["negative"] == row["plain"] == canonical.stable_id(decimal.Decimal(12300))


def test_non_string_prefix_is_refused(session):
    with pytest.raises(SqlError, match="prefix \\(argument 1\\) must be a string"):
        session.sql("SELECT prefixed_hash64(1, 2)")


def test_version_guard_refuses_another_major(monkeypatch):
    monkeypatch.setattr(datafusion, "__version__", "54.1.0")
    with pytest.raises(ExtensionError, match=r"built for datafusion 55\.x but datafusion 54\.1\.0"):
        workbench.RuntimeProfile().session()
    caps = workbench.capabilities()
    assert caps.problem is not None
    assert "54.1.0" in caps.problem


def test_unknown_component_is_named():
    with pytest.raises(ExtensionError, match="unknown extension component 'nope'"):
        workbench.RuntimeProfile(extensions=("nope",)).session()


def test_session_without_components_has_no_udfs():
    session = workbench.RuntimeProfile(extensions=()).session()
    assert session.registered == ()
    with pytest.raises(SqlError, match="stable_id"):
        session.sql("SELECT stable_id(1)")


def test_extension_major_matches_cargo_manifest():
    import tomllib

    from .conftest import REPO

    manifest = tomllib.loads((REPO / "rust" / "Cargo.toml").read_text())
    entry = manifest["dependencies"]["datafusion-ffi"]
    wanted = entry if isinstance(entry, str) else entry["version"]
    assert int(extension.load().DATAFUSION_MAJOR) == int(wanted.split(".")[0])


# -- golden vectors ------------------------------------------------------------

GOLDEN = json.loads((REPO / "tests" / "fixtures" / "canonical_v1.json").read_text())
ENCODED = [case for case in GOLDEN["cases"] if "encoding" in case]
REFUSED = [case for case in GOLDEN["cases"] if "refused" in case]
PREFIX = GOLDEN["prefix"]

_SCALAR_TYPES = {
    "null": pa.null(),
    "bool": pa.bool_(),
    **{
        f"{sign}int{bits}": getattr(pa, f"{sign}int{bits}")()
        for sign in ("", "u")
        for bits in (8, 16, 32, 64)
    },
    "float16": pa.float16(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "utf8": pa.string(),
    "large_utf8": pa.large_string(),
    "utf8_view": pa.string_view(),
    "binary": pa.binary(),
    "large_binary": pa.large_binary(),
    "binary_view": pa.binary_view(),
    "date32": pa.date32(),
    "date64": pa.date64(),
}


_PARAMETRIC_TYPES: dict[str, Callable[[list[str]], pa.DataType]] = {
    "fixed_size_binary": lambda args: pa.binary(int(args[0])),
    "decimal32": lambda args: pa.decimal32(int(args[0]), int(args[1])),
    "decimal64": lambda args: pa.decimal64(int(args[0]), int(args[1])),
    "decimal128": lambda args: pa.decimal128(int(args[0]), int(args[1])),
    "decimal256": lambda args: pa.decimal256(int(args[0]), int(args[1])),
    "timestamp": lambda args: pa.timestamp(args[0], tz=args[1] if len(args) > 1 else None),
    "time32": lambda args: pa.time32(args[0]),
    "time64": lambda args: pa.time64(args[0]),
    "duration": lambda args: pa.duration(args[0]),
    "interval": lambda args: {"month_day_nano": pa.month_day_nano_interval()}[args[0]],
}


def arrow_type(spec: Any) -> pa.DataType:
    """The Arrow type a fixture type names (see the fixture's "about")."""
    if isinstance(spec, str):
        name, _, rest = spec.partition("(")
        if not rest:
            return _SCALAR_TYPES[name]
        return _PARAMETRIC_TYPES[name]([arg.strip() for arg in rest.rstrip(")").split(",")])
    kind, inner = next(iter(spec.items()))
    nested = {
        "list": lambda: pa.list_(arrow_type(inner)),
        "large_list": lambda: pa.large_list(arrow_type(inner)),
        "list_view": lambda: pa.list_view(arrow_type(inner)),
        "large_list_view": lambda: pa.large_list_view(arrow_type(inner)),
        "fixed_size_list": lambda: pa.list_(arrow_type(inner), spec["size"]),
        "struct": lambda: pa.struct([(name, arrow_type(t)) for name, t in inner]),
        "dictionary": lambda: pa.dictionary(pa.int32(), arrow_type(inner)),
        "run_end_encoded": lambda: pa.run_end_encoded(pa.int32(), arrow_type(inner)),
        "map": lambda: pa.map_(arrow_type(inner[0]), arrow_type(inner[1])),
    }
    return nested[kind]()


def _float(value: Any) -> float:
    if isinstance(value, str) and value.startswith("bits:"):
        return float(struct.unpack(">d", bytes.fromhex(value.removeprefix("bits:")))[0])
    return float(value)


def _is_binary(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_binary_view(kind)
        or pa.types.is_fixed_size_binary(kind)
    )


def _is_list(kind: pa.DataType) -> bool:
    return pa.types.is_nested(kind) and hasattr(kind, "value_type") and not pa.types.is_map(kind)


# How a fixture's JSON value becomes the Python value pyarrow builds the type from.
_CONVERTERS = (
    (pa.types.is_floating, lambda _kind, value: _float(value)),
    (_is_binary, lambda _kind, value: bytes.fromhex(value)),
    # Exact at any precision (Decimal arithmetic would round to 28 digits).
    (pa.types.is_decimal, lambda kind, value: decimal.Decimal(f"{value}E{-kind.scale}")),
    (pa.types.is_interval, lambda _kind, value: pa.MonthDayNano(value)),
    (
        pa.types.is_map,
        lambda kind, value: [
            (python_value(kind.key_type, k), python_value(kind.item_type, v)) for k, v in value
        ],
    ),
    (
        pa.types.is_struct,
        lambda kind, value: {f.name: python_value(f.type, value.get(f.name)) for f in kind},
    ),
    (_is_list, lambda kind, value: [python_value(kind.value_type, item) for item in value]),
    (pa.types.is_dictionary, lambda kind, value: python_value(kind.value_type, value)),
)


def python_value(kind: pa.DataType, value: Any) -> Any:
    """The fixture's JSON value as the Python value pyarrow builds ``kind`` from."""
    if value is None:
        return None
    for is_kind, convert in _CONVERTERS:
        if is_kind(kind):
            return convert(kind, value)
    return value


def golden_column(arg: dict[str, Any]) -> pa.Array:
    """A one-row array of the argument's exact Arrow type."""
    kind = arrow_type(arg["type"])
    if pa.types.is_run_end_encoded(kind):
        values = pa.array([python_value(kind.value_type, arg["value"])], kind.value_type)
        column = pc.run_end_encode(values, run_end_type=kind.run_end_type)
    else:
        column = pa.array([python_value(kind, arg["value"])], type=kind)
    assert column.type == kind
    return column


def golden_sql(session: workbench.Session, case: dict[str, Any]) -> str:
    """Registers the case's arguments as table columns c0, c1, ...; returns the query."""
    table = f"golden_{GOLDEN['cases'].index(case)}"
    columns = {f"c{i}": golden_column(arg) for i, arg in enumerate(case["args"])}
    session.ctx.from_arrow(pa.table(columns), name=table)
    hash64 = f", prefixed_hash64('{PREFIX}', c0) AS h" if len(columns) == 1 else ""
    return f"SELECT stable_id({', '.join(columns)}) AS id{hash64} FROM {table}"


@pytest.fixture(scope="module")
def golden_session() -> workbench.Session:
    return workbench.RuntimeProfile().session()


def _names(cases: list[dict[str, Any]]) -> list[str]:
    return [case["name"] for case in cases]


def test_golden_cases_are_named_uniquely_and_cover_every_tag():
    names = _names(GOLDEN["cases"])
    assert len(names) == len(set(names))
    tags = {bytes.fromhex(case["encoding"].replace(" ", ""))[0] for case in ENCODED}
    assert tags == set(range(0x0D))


@pytest.mark.parametrize("case", ENCODED, ids=_names(ENCODED))
def test_golden_vector_matches_the_python_reference(case):
    scalars = [golden_column(arg)[0] for arg in case["args"]]
    assert b"".join(canonical.encode(s) for s in scalars).hex() == case["encoding"].replace(" ", "")
    assert canonical.stable_id(*scalars) == case["stable_id"]
    if "hash64" in case:
        assert canonical.prefixed_hash64(PREFIX, scalars[0]) == f"{PREFIX}:{case['hash64']}"


@pytest.mark.parametrize("case", ENCODED, ids=_names(ENCODED))
def test_golden_vector_matches_the_sql_udfs(golden_session, case):
    row = golden_session.ctx.sql(golden_sql(golden_session, case)).to_pylist()[0]
    assert row["id"] == case["stable_id"]
    if "hash64" in case:
        assert row["h"] == f"{PREFIX}:{case['hash64']}"


@pytest.mark.parametrize("case", REFUSED, ids=_names(REFUSED))
def test_golden_refusal_is_a_planning_error_naming_argument_and_fix(golden_session, case):
    with pytest.raises(Exception, match="Error during planning") as refused:
        golden_session.ctx.sql(golden_sql(golden_session, case))
    for part in case["refused"]:
        assert part in str(refused.value)


@pytest.mark.parametrize("case", REFUSED, ids=_names(REFUSED))
def test_golden_refusal_is_refused_by_the_python_reference(case):
    scalars = [golden_column(arg)[0] for arg in case["args"]]
    with pytest.raises(TypeError, match="no canonical encoding"):
        canonical.stable_id(*scalars)

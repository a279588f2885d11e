"""The Rust FFI UDFs: deterministic, documented, guarded by DataFusion major."""

from __future__ import annotations

import datetime as dt
import decimal
import json

import datafusion
import pytest

import workbench
from workbench import canonical, extension
from workbench.errors import ExtensionError, SqlError

from .conftest import run_python

ISSUE_EXAMPLE = "SELECT stable_id('a', 1, NULL) AS id, prefixed_hash64('file', 42) AS h"


def test_components_are_registered_by_default(session):
    assert session.registered == ("stable_id", "prefixed_hash64")
    caps = workbench.capabilities(session)
    assert caps.extension_built
    assert caps.built_for_datafusion_major == int(datafusion.__version__.split(".")[0])
    assert caps.provided == ("stable_id", "prefixed_hash64")
    assert caps.registered == ("stable_id", "prefixed_hash64")
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
    with pytest.raises(SqlError, match=r"argument 1 has type List.*cast it to VARCHAR"):
        session.sql("SELECT stable_id(make_array(1, 2))")


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
    wanted = manifest["dependencies"]["datafusion-ffi"]["version"]
    assert int(extension.load().DATAFUSION_MAJOR) == int(wanted.split(".")[0])

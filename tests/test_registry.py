"""The DDL-first registry (%wb tables, %wb describe), wb_functions and the Python UDF policy."""

from __future__ import annotations

import warnings

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

import workbench
from workbench import datasets, registry
from workbench.registry import RegistryError
from workbench.udf_policy import UdfPolicyError, UdfPolicyWarning


def _columns(session: workbench.Session, name: str) -> list[tuple]:
    rows = session.ctx.sql(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_name = $n ORDER BY ordinal_position",
        param_values={"n": name},
    ).to_pydict()
    return list(zip(*rows.values(), strict=True))


def _same_table_in_a_fresh_session(session: workbench.Session, name: str) -> None:
    described = registry.describe(session, name)
    fresh = workbench.RuntimeProfile().session()
    fresh.sql(described.ddl)
    again = registry.describe(fresh, name)
    assert _columns(fresh, name) == _columns(session, name)
    assert [c.partition for c in again.columns] == [c.partition for c in described.columns]
    assert again.registration is not None
    assert described.registration is not None
    assert again.registration.options == described.registration.options
    assert again.registration.format == described.registration.format
    assert (again.files, again.rows) == (described.files, described.rows)
    query = f'SELECT * FROM "{name}" ORDER BY 1, 2'
    assert fresh.sql(query).to_pyarrow() == session.sql(query).to_pyarrow()


@pytest.fixture
def session() -> workbench.Session:
    return workbench.RuntimeProfile().session()


def test_a_parquet_table_describes_itself_and_its_ddl_registers_the_same_table(session, tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", "b", None]}), path, row_group_size=2)
    session.sql(f"CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{path}'")
    described = registry.describe(session, "t")
    assert (described.files, described.rows) == (1, 3)
    assert described.registration is not None
    assert described.registration.source == "sql"
    assert described.registration.format == "PARQUET"
    _same_table_in_a_fresh_session(session, "t")


def test_a_csv_table_keeps_its_options(session, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id;name\n1;x\n2;y\n")
    session.sql(
        f"CREATE EXTERNAL TABLE c (id BIGINT, name VARCHAR) STORED AS CSV LOCATION '{path}' "
        "OPTIONS ('format.has_header' 'true', 'format.delimiter' ';')"
    )
    described = registry.describe(session, "c")
    assert described.registration is not None
    assert dict(described.registration.options) == {
        "format.has_header": "true",
        "format.delimiter": ";",
    }
    assert described.rows is None  # not counted: that would read the data
    _same_table_in_a_fresh_session(session, "c")


def test_a_partitioned_table_keeps_partitioned_by_which_show_create_table_drops(session, tmp_path):
    for year in (2020, 2021):
        folder = tmp_path / "ev" / f"year={year}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"id": [year, year + 1], "v": ["a", "b"]}), folder / "p.parquet")
    session.sql(
        "CREATE EXTERNAL TABLE ev (id BIGINT, v VARCHAR, year INT) STORED AS PARQUET "
        f"PARTITIONED BY (year) LOCATION '{tmp_path / 'ev'}/'"
    )
    described = registry.describe(session, "ev")
    assert [c.name for c in described.columns if c.partition] == ["year"]
    assert (described.files, described.rows) == (2, 4)
    assert "PARTITIONED BY (year)" in described.ddl
    shown = session.sql("SHOW CREATE TABLE ev").to_pyarrow().column(-1)[0].as_py()
    assert "PARTITIONED BY" not in (shown or "").upper()  # why the registry keeps the DDL
    _same_table_in_a_fresh_session(session, "ev")


def test_a_delta_table_describes_its_snapshot_and_its_ddl(session, tmp_path):
    data = pa.table({"id": [1, 2, 3, 4], "part": ["x", "x", "y", "y"]})
    write_deltalake(tmp_path / "d", data, partition_by=["part"])
    session.register_delta("d", str(tmp_path / "d"))
    described = registry.describe(session, "d")
    assert [c.name for c in described.columns if c.partition] == ["part"]
    assert (described.files, described.rows) == (2, 4)
    assert described.registration is not None
    assert described.registration.source == "api"
    assert described.registration.by.startswith("register_delta('d'")
    _same_table_in_a_fresh_session(session, "d")


def test_wb_tables_lists_every_table_with_its_provenance(session):
    datasets.tpch(0.01).register(session)
    session.sql("CREATE TABLE made AS SELECT 1 AS n")
    rows = {r["name"]: r for r in session.sql("SELECT * FROM wb_tables").to_pyarrow().to_pylist()}
    assert rows["lineitem"]["format"] == "PARQUET"
    assert rows["lineitem"]["source"] == "sql"
    assert rows["made"]["source"] == "sql"
    assert rows["made"]["registered_by"] == "CREATE TABLE made AS SELECT 1 AS n"
    session.sql("DROP TABLE made")
    names = session.sql("SELECT name FROM wb_tables").to_pyarrow().column(0).to_pylist()
    assert "made" not in names


def test_describing_an_unknown_table_lists_the_tables(session):
    session.sql("CREATE TABLE here AS SELECT 1 AS n")
    with pytest.raises(RegistryError, match=r"no table 'nowhere' .*here"):
        registry.describe(session, "nowhere")


def test_wb_functions_gives_every_function_its_origin(session):
    session.sql("CREATE FUNCTION twice(x BIGINT) RETURNS BIGINT AS x * 2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UdfPolicyWarning)
        session.register_udf(lambda a: pc.add(pc.multiply(a, 3), 1), [pa.int64()], pa.int64(), "f3")
    rows = session.sql("SELECT name, kind, origin, signatures FROM wb_functions").to_pyarrow()
    origin = {(r["name"], r["kind"]): r["origin"] for r in rows.to_pylist()}
    assert origin[("twice", "scalar")] == "SQL macro"
    assert origin[("f3", "scalar")] == "Python"
    assert origin[("prefixed_hash64", "scalar")] == "Rust"
    assert origin[("table_changes", "table")] == "Rust"
    assert origin[("sum", "aggregate")] == "built-in"
    assert origin[("row_number", "window")] == "built-in"


def test_a_python_udf_that_a_builtin_replaces_is_registered_with_a_warning(session):
    def shout(a):
        return pc.utf8_upper(a)

    with pytest.warns(UdfPolicyWarning, match=r"upper\(\) returns the same values"):
        decision = session.register_udf(shout, [pa.string()], pa.string())
    assert decision.equivalent == "upper"
    assert session.sql("SELECT shout('abc') AS s").to_pyarrow().to_pylist() == [{"s": "ABC"}]
    recorded = session.sql("SELECT name, verdict, equivalent FROM wb_udf_decisions").to_pyarrow()
    assert recorded.to_pylist() == [
        {"name": "shout", "verdict": "registered with a warning", "equivalent": "upper"}
    ]


def test_a_strict_profile_refuses_it_and_records_why():
    session = workbench.RuntimeProfile(udf_policy="strict").session()
    with pytest.raises(UdfPolicyError, match="refused by the strict profile"):
        session.register_udf(pc.utf8_lower, [pa.string()], pa.string(), "quiet")
    with pytest.raises(Exception, match="quiet"):
        session.sql("SELECT quiet('A')")
    assert [d.verdict for d in session.udf_decisions] == ["refused"]


def test_a_slow_python_udf_is_flagged_and_a_useful_one_is_not():
    session = workbench.RuntimeProfile(python_udf_min_rows_per_s=1e12).session()

    def row_by_row(a):
        return pa.array([None if v is None else v * 7 % 5 for v in a.to_pylist()], pa.int64())

    with pytest.warns(UdfPolicyWarning, match="rows/s, below the profile's"):
        session.register_udf(row_by_row, [pa.int64()], pa.int64())
    relaxed = workbench.RuntimeProfile(python_udf_min_rows_per_s=0).session()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UdfPolicyWarning)
        decision = relaxed.register_udf(row_by_row, [pa.int64()], pa.int64())
    assert decision.verdict == "registered"
    assert decision.rows_per_second is not None
    assert decision.rows_per_second > 0


def test_a_python_udf_that_fails_on_its_sample_is_a_clear_error_and_is_not_registered(session):
    def broken(_values):
        msg = "no"
        raise ValueError(msg)

    with pytest.raises(UdfPolicyError, match="failed on a sample of its input types"):
        session.register_udf(broken, [pa.int64()], pa.int64())
    assert "broken" not in session.python_functions


def test_the_wb_magic_shows_tables_a_description_and_functions(ipython, tmp_path):
    ipython.run_line_magic("wb", "profile")  # the magics' session, whatever a test left
    wb = ipython.user_ns["wb"]
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"id": [1, 2]}), path)
    ipython.run_cell_magic(
        "dfsql", "", f"CREATE EXTERNAL TABLE Magic STORED AS PARQUET LOCATION '{path}'"
    )
    tables = ipython.run_line_magic("wb", "tables").to_pyarrow()
    assert "magic" in tables.column("name").to_pylist()
    described = ipython.run_line_magic("wb", "describe Magic")  # folded, as SQL folds it
    assert described.name == "magic"
    assert (described.files, described.rows) == (1, 2)
    assert "<script" not in described._repr_html_()
    rust = ipython.run_line_magic("wb", "functions Rust").to_pyarrow()
    assert set(rust.column("origin").to_pylist()) == {"Rust"}
    assert "prefixed_hash64" in rust.column("name").to_pylist()
    assert wb is ipython.user_ns["wb"]


def test_a_description_escapes_what_it_renders_as_html(session):
    session.sql('CREATE TABLE "<i>odd" AS SELECT 1 AS "<b>"')
    shown = registry.describe(session, '"<i>odd"')._repr_html_()
    assert "&lt;i&gt;odd" in shown
    assert "&lt;b&gt;" in shown
    assert "<i>" not in shown
    assert "<b>" not in shown.replace("<b>&lt;i&gt;odd</b>", "")


def test_a_statement_without_columns_displays_as_done_not_as_rows(session):
    shown = session.sql("CREATE VIEW v AS SELECT 1 AS x")._repr_mimebundle_()["text/plain"]
    assert shown.startswith("done: the statement returns no columns")
    assert "rows shown" not in shown


def test_every_run_records_the_cache_settings_in_effect():
    session = workbench.RuntimeProfile(
        cache=workbench.CachePolicy(metadata_limit_bytes=8 << 20)
    ).session()
    run = session.sql("SELECT 1").run
    assert "metadata_cache_limit=8M" in run.cache_settings
    session.sql("SET datafusion.runtime.metadata_cache_limit = '16M'")
    after = session.sql("SELECT 2").run
    assert "metadata_cache_limit=16M" in after.cache_settings
    shown = session.sql(
        "SELECT cache_settings FROM wb_runs WHERE run_id = $id", params={"id": after.run_id}
    ).to_pyarrow()
    assert "metadata_cache_limit=16M" in shown.column(0).to_pylist()[0]


def test_a_json_table_describes_itself_and_its_ddl_registers_the_same_table(session, tmp_path):
    path = tmp_path / "t.json"
    path.write_text('{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n')
    session.sql(f"CREATE EXTERNAL TABLE j STORED AS JSON LOCATION '{path}'")
    described = registry.describe(session, "j")
    assert described.registration is not None
    assert described.registration.format == "JSON"
    assert (described.files, described.rows) == (1, None)
    _same_table_in_a_fresh_session(session, "j")


def test_describe_finds_a_quoted_mixed_case_table(ipython):
    ipython.run_line_magic("wb", "profile")
    ipython.run_cell_magic("dfsql", "", 'CREATE TABLE "Events" AS SELECT 1 AS n')
    assert ipython.run_line_magic("wb", 'describe "Events"').name == "Events"


def test_a_python_udf_cannot_take_a_macros_name_and_mixed_case_names_work(session):
    session.sql("CREATE FUNCTION dbl(x BIGINT) RETURNS BIGINT AS x * 2")
    with pytest.raises(UdfPolicyError, match="is a SQL macro"):
        session.register_udf(pc.negate, [pa.int64()], pa.int64(), "dbl")
    decision = session.register_udf(
        lambda a: pc.add(pc.multiply(a, 7), 1), [pa.int64()], pa.int64(), "PlusSeven"
    )
    assert decision.verdict == "registered"
    assert session.sql('SELECT "PlusSeven"(1) AS v').to_pyarrow().to_pylist() == [{"v": 8}]


def test_wb_config_shows_the_profile_and_the_settings_that_differ(ipython):
    ipython.run_line_magic("wb", "profile batch_size=4096")
    shown = ipython.run_line_magic("wb", "config").to_pyarrow().to_pylist()
    by_name = {row["name"]: row for row in shown}
    assert by_name["workbench.batch_size"]["value"] == "4096"
    assert by_name["datafusion.execution.batch_size"]["value"] == "4096"
    assert by_name["datafusion.execution.batch_size"]["datafusion_default"] == "8192"
    assert by_name["datafusion.execution.batch_size"]["differs"] is True
    assert all(row["differs"] is not False for row in shown)
    everything = ipython.run_line_magic("wb", "config all").to_pyarrow()
    assert everything.num_rows > len(shown)
    ipython.run_line_magic("wb", "profile batch_size=8192")

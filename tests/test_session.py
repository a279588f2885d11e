"""RuntimeProfile -> Session: settings, fresh listings, read-only, bound parameters."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import workbench
from workbench.errors import ParameterError, ReadOnlyError, SqlError
from workbench.session import ConfigError


def _setting(session: workbench.Session, name: str) -> str:
    rows = session.sql(
        "SELECT value FROM information_schema.df_settings WHERE name = $name",
        params={"name": name},
    ).to_pyarrow()
    return str(rows.column("value")[0].as_py())


def test_profile_settings_reach_the_context(tmp_path):
    profile = workbench.RuntimeProfile(
        target_partitions=3, batch_size=1000, spill_dir=str(tmp_path)
    )
    session = profile.session()
    assert _setting(session, "datafusion.execution.target_partitions") == "3"
    assert _setting(session, "datafusion.execution.batch_size") == "1000"
    assert _setting(session, "datafusion.catalog.information_schema") == "true"
    assert _setting(session, "datafusion.runtime.list_files_cache_limit") == "0"
    assert _setting(session, "datafusion.runtime.temp_directory").startswith(f"{tmp_path}/")


def test_profile_is_frozen_and_validated():
    profile = workbench.RuntimeProfile()
    with pytest.raises(AttributeError):
        profile.read_only = True  # type: ignore[misc]
    with pytest.raises(ConfigError, match="target_partitions=0 is out of range"):
        workbench.RuntimeProfile(target_partitions=0)


def test_default_cache_policy_sees_added_deleted_and_overwritten_files(session, tmp_path):
    pq.write_table(pa.table({"x": list(range(10))}), tmp_path / "a.parquet")
    session.ctx.register_parquet("t", str(tmp_path))

    def count_and_sum() -> tuple[int, int]:
        row = session.sql("SELECT count(*) AS c, sum(x) AS s FROM t").to_pyarrow().to_pylist()[0]
        return row["c"], row["s"]

    assert count_and_sum() == (10, 45)
    pq.write_table(pa.table({"x": list(range(5))}), tmp_path / "b.parquet")
    assert count_and_sum() == (15, 55)
    (tmp_path / "a.parquet").unlink()
    assert count_and_sum() == (5, 10)
    pq.write_table(pa.table({"x": list(range(100, 1000))}), tmp_path / "b.parquet")
    assert count_and_sum() == (900, sum(range(100, 1000)))


def test_opting_into_the_listing_cache_is_possible(tmp_path):
    cached = workbench.RuntimeProfile(
        cache=workbench.CachePolicy(list_files_limit_bytes=1 << 20)
    ).session()
    pq.write_table(pa.table({"x": [1]}), tmp_path / "a.parquet")
    cached.ctx.register_parquet("t", str(tmp_path))
    assert cached.sql("SELECT count(*) AS c FROM t").to_pyarrow().column("c")[0].as_py() == 1
    pq.write_table(pa.table({"x": [2]}), tmp_path / "b.parquet")
    # The trap the default avoids: a cached listing does not see the new file.
    assert cached.sql("SELECT count(*) AS c FROM t").to_pyarrow().column("c")[0].as_py() == 1


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("CREATE TABLE t AS SELECT 1 AS x", "DDL"),
        ("CREATE VIEW v AS SELECT 1 AS x", "DDL"),
        ("INSERT INTO existing VALUES (2)", "DML"),
        ("SET datafusion.execution.batch_size = 10", "Statement"),
    ],
)
def test_read_only_refuses_ddl_dml_and_set(statement, kind):
    session = workbench.RuntimeProfile(read_only=True).session()
    session.ctx.from_pydict({"x": [1]}, name="existing")
    with pytest.raises(ReadOnlyError, match=f"read-only, so {kind}"):
        session.sql(statement)
    assert (
        session.sql("SELECT count(*) AS n FROM existing").to_pyarrow().column("n")[0].as_py() == 1
    )


def test_read_only_still_allows_queries_and_explain():
    session = workbench.RuntimeProfile(read_only=True).session()
    assert session.sql("SELECT 41 + 1 AS x").to_pyarrow().column("x").to_pylist() == [42]
    assert session.sql("EXPLAIN SELECT 1").to_pyarrow().num_rows > 0


def test_parameters_are_bound_not_spliced(session):
    hostile = "x'; DROP TABLE t; --"
    session.ctx.from_pydict({"name": [hostile, "other"]}, name="t")
    result = session.sql("SELECT count(*) AS n FROM t WHERE name = $name", params={"name": hostile})
    assert result.to_pyarrow().column("n").to_pylist() == [1]
    assert "t" in session.tables()


def test_missing_parameter_names_the_placeholder_and_position(session):
    with pytest.raises(ParameterError, match=r"line 2, column 23: parameter \$limit has no value"):
        session.sql("SELECT 1\nFROM (SELECT 1) WHERE $limit > 0")


def test_unbindable_parameter_is_refused(session):
    with pytest.raises(ParameterError, match="is a list"):
        session.sql("SELECT $x", params={"x": [1, 2]})


def test_several_statements_run_in_order_and_the_last_query_is_the_result(session):
    result = session.sql(
        "CREATE TABLE t (x INT); INSERT INTO t VALUES (1), (2); INSERT INTO t VALUES (3);\n"
        "SELECT sum(x) AS s FROM t"
    )
    assert result.to_pyarrow().column("s").to_pylist() == [6]


def test_statements_after_the_result_query_still_run(session):
    result = session.sql("CREATE VIEW v AS SELECT 5 AS x; SELECT x * 2 AS y FROM v; DROP VIEW v")
    assert result.to_pyarrow().column("y").to_pylist() == [10]
    assert "v" not in session.tables()


def test_error_in_a_later_statement_names_it(session):
    with pytest.raises(SqlError) as info:
        session.sql("SELECT 1;\nSELECT nope FROM (SELECT 1 AS yes)")
    assert info.value.statement == 2
    assert info.value.location is not None
    assert (info.value.location.line, info.value.location.column) == (2, 8)


def test_empty_sql_is_a_clear_error(session):
    with pytest.raises(SqlError, match="holds no statement"):
        session.sql("  -- only a comment\n")


def test_a_lone_dml_statement_runs_once_even_if_never_read(session):
    session.sql("CREATE TABLE t (x INT)")
    inserted = session.sql("INSERT INTO t VALUES (1), (2)")
    assert session.sql("SELECT count(*) AS n FROM t").to_pyarrow().column("n").to_pylist() == [2]
    assert inserted.to_pyarrow().column(0).to_pylist() == [2]
    inserted.preview()
    assert session.sql("SELECT count(*) AS n FROM t").to_pyarrow().column("n").to_pylist() == [2]


def test_a_missing_parameter_is_caught_before_any_statement_runs(session):
    session.sql("CREATE TABLE t (x INT)")
    with pytest.raises(ParameterError, match=r"\$y"):
        session.sql("INSERT INTO t VALUES (1); SELECT * FROM t WHERE x = $y")
    assert session.sql("SELECT count(*) AS n FROM t").to_pyarrow().column("n").to_pylist() == [0]


@pytest.mark.parametrize(
    ("sql", "row"),
    [
        ("SELECT '$usd' AS label", {"label": "$usd"}),
        ('SELECT 1 AS "$total"', {"$total": 1}),
        ("SELECT 1 AS one -- $note", {"one": 1}),
        ("SELECT $$ $x {y} $$ AS body", {"body": " $x {y} "}),
    ],
)
def test_dollar_words_in_literals_and_comments_are_not_placeholders(session, sql, row):
    assert session.sql(sql).to_pyarrow().to_pylist() == [row]


def test_small_cache_limits_round_up_instead_of_disabling():
    policy = workbench.CachePolicy(list_files_limit_bytes=100)
    assert "list_files_cache_limit = '1K'" in policy.statements()[0]


def test_spill_dir_expands_the_home_folder_and_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    session = workbench.RuntimeProfile(spill_dir="~/spill", memory_limit_bytes=1 << 30).session()
    assert (tmp_path / "spill").is_dir()
    assert _setting(session, "datafusion.runtime.temp_directory").startswith(f"{tmp_path}/spill/")


def test_an_unusable_spill_dir_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot create"):
        workbench.RuntimeProfile(spill_dir="/proc/no/spill").session()

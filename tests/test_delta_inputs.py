"""Regressions of the Delta review (docs/known-issues.md 7-14, 16): what users type.

Names, DDL text, versions and timestamps, storage options, ``files=`` and the arguments of
``wb_delta_files`` and ``%prune``: each wrong input is a clear error (what, where, what to
do) and each right one means what SQL says it means. Tables are real, written by deltalake.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from IPython.utils.capture import capture_output

import workbench
from workbench import artifacts
from workbench.delta import DeltaError, DeltaOptions, PruningReport, is_delta_ddl, parse_delta_ddl
from workbench.delta import ddl as delta_ddl
from workbench.errors import ReadOnlyError, SqlError


def _rows(session: workbench.Session, sql: str) -> list[dict]:
    return list(session.sql(sql).to_pyarrow().to_pylist())


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _count(session: workbench.Session, table_sql: str) -> int:
    return int(_rows(session, f"SELECT count(*) AS n FROM {table_sql}")[0]["n"])


@pytest.fixture
def regions(tmp_path) -> str:
    """Three partitions (one file each) of a table partitioned by ``region``; version 0."""
    uri = str(tmp_path / "regions")
    table = pa.table({"id": [1, 2, 3, 4, 5, 6], "region": ["eu", "eu", "us", "us", "ap", "ap"]})
    write_deltalake(uri, table, partition_by=["region"])
    return uri


@pytest.fixture
def dated(tmp_path) -> str:
    """Versions 0, 1, 2 committed (by their log files' times) on 1 January 2020, 2021, 2022 UTC."""
    uri = tmp_path / "dated"
    for version in range(3):
        write_deltalake(str(uri), pa.table({"id": [version]}), mode="append")
    for version, year in enumerate((2020, 2021, 2022)):
        moment = dt.datetime(year, 1, 1, tzinfo=dt.UTC).timestamp()
        os.utime(uri / "_delta_log" / f"{version:020}.json", (moment, moment))
    return str(uri)


# 7. Names resolve as in SQL ---------------------------------------------------------------


def test_a_capitalised_name_folds_to_lower_case_and_prune_analyze_finds_it(session, regions):
    table = session.register_delta("Events", regions)
    assert table.name == "events"
    assert list(session.delta_tables) == ["events"]
    assert _count(session, "Events") == _count(session, "events") == 6
    report = session.prune("Events", "region = 'us'", analyze=True)
    assert (report.table, report.matching_rows) == ("events", 2)


def test_a_quoted_ddl_name_keeps_its_case_for_queries_prune_and_the_file_index(session, regions):
    session.sql(f"""CREATE EXTERNAL TABLE "Cur2" STORED AS DELTA LOCATION '{regions}'""")
    assert list(session.delta_tables) == ["Cur2"]
    assert _count(session, '"Cur2"') == 6
    report = session.prune('"Cur2"', "id > 4", analyze=True)
    assert (report.table, report.matching_rows) == ("Cur2", 2)
    files = _rows(session, """SELECT path FROM wb_delta_files('"Cur2"')""")
    assert len(files) == 3
    # Unquoted, the name folds to cur2, which is another table: the error says how to quote.
    with pytest.raises(DeltaError, match=r"no Delta table named 'Cur2'.*write \"Cur2\""):
        session.prune("Cur2", "id > 4")


def test_a_dotted_name_is_a_table_when_quoted_and_a_schema_when_not(session, regions):
    session.register_delta('"x.y"', regions)
    assert _count(session, '"x.y"') == 6
    assert session.prune('"x.y"', "id > 4").table == "x.y"
    with pytest.raises(
        DeltaError, match=r"x\.y: Delta tables are registered in the default schema"
    ):
        session.register_delta("x.y", regions)
    session.register_delta("public.Pub", regions)
    assert "pub" in session.delta_tables
    assert _count(session, "datafusion.public.pub") == 6


def test_text_that_is_no_sql_name_is_the_exact_name_and_broken_quotes_are_refused(session, regions):
    session.register_delta("my table", regions)
    assert _count(session, '"my table"') == 6
    assert session.prune("my table", "id > 4").table == "my table"
    for bad in ("", "   ", '"unclosed', 'a "b" c'):
        with pytest.raises(DeltaError, match=r"table name|non-empty"):
            session.register_delta(bad, regions)


# 8. The recorded DDL quotes the name and replays -------------------------------------------


@pytest.mark.parametrize("name", ["my table", 'a"b', "Cur2", "select", "événements"])
def test_the_recorded_ddl_quotes_the_name_and_registers_the_same_table_again(
    session, regions, name
):
    table = session.register_delta(_quoted(name), regions)
    assert table.name == name
    ddl = table.ddl()
    assert session.registrations[name] == ddl
    again = workbench.RuntimeProfile().session()
    again.sql(ddl)
    assert list(again.delta_tables) == [name]
    assert again.delta_tables[name].ddl() == ddl


# 9. Remote stores are refused, secrets never recorded --------------------------------------


@pytest.mark.parametrize("uri", ["s3://bucket/events", "gs://b/e", "az://c/e", "https://h/e"])
def test_a_remote_uri_is_refused_saying_remote_stores_are_not_built_in(session, uri):
    with pytest.raises(DeltaError, match=r"remote object stores .* are not built into"):
        session.register_delta("ev", uri)
    with pytest.raises(SqlError, match=r"remote object stores .* are not built into"):
        session.sql(f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{uri}'")
    assert "ev" not in session.delta_tables


def test_a_file_url_is_a_local_table(session, regions):
    session.register_delta("ev", Path(regions).as_uri())
    assert _count(session, "ev") == 6


def test_storage_options_are_refused_without_echoing_their_values(session, regions):
    secret = "wJalrXUtnFEMI-SECRET"  # noqa: S105  (a made-up secret that must not leak)
    with pytest.raises(DeltaError, match="aws_secret_access_key") as raised:
        session.register_delta("ev", regions, storage_options={"aws_secret_access_key": secret})
    assert "not built into this workbench" in str(raised.value)
    assert secret not in str(raised.value)
    with pytest.raises(SqlError, match=r"storage\.aws_secret_access_key") as raised_sql:
        session.sql(
            f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{regions}' "
            f"OPTIONS ('storage.aws_secret_access_key' '{secret}')"
        )
    assert "not built into this workbench" in str(raised_sql.value)
    assert "ev" not in session.delta_tables
    assert "ev" not in session.registrations
    # Nothing can carry them into a table's DDL any more.
    assert "storage_options" not in {f.name for f in dataclasses.fields(DeltaOptions)}


# 10. version= ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [-1, 1.5, "2", True, 2**64])
def test_a_version_that_is_no_whole_number_in_range_is_a_clear_error(session, regions, version):
    with pytest.raises(DeltaError, match=r"version=.*(whole number >= 0|below 2\*\*64)"):
        session.register_delta("ev", regions, version=version)
    assert "ev" not in session.delta_tables


@pytest.mark.parametrize("version", ["-1", "1.5", "x"])
def test_a_ddl_version_that_is_no_whole_number_is_a_clear_error(session, regions, version):
    with pytest.raises(SqlError, match="option 'version' is a whole number >= 0"):
        session.sql(
            f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{regions}' "
            f"OPTIONS ('version' '{version}')"
        )


@pytest.mark.parametrize("version", [2**64 - 1, 10**6])
def test_a_version_past_the_newest_is_refused_quickly_naming_the_newest(session, dated, version):
    started = time.monotonic()
    with pytest.raises(DeltaError, match=f"has no version {version}: its newest version is 2"):
        session.register_delta("ev", dated, version=version)
    assert time.monotonic() - started < 10


# 11. timestamp= ------------------------------------------------------------------------------


def test_a_naive_datetime_is_utc_whatever_the_local_zone(session, dated, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # UTC+9: read as local time, 00:30 would be 2020
    time.tzset()
    try:
        table = session.register_delta("ev", dated, timestamp=dt.datetime(2021, 1, 1, 0, 30))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert table.version == 1
    assert table.options.timestamp == "2021-01-01T00:30:00+00:00"
    assert "'timestamp' '2021-01-01T00:30:00+00:00'" in table.ddl()


def test_an_aware_datetime_keeps_its_zone(session, dated):
    tokyo = dt.timezone(dt.timedelta(hours=9))
    # 08:30 in Tokyo is 23:30 UTC the day before version 1: version 0.
    early = session.register_delta(
        "ev", dated, timestamp=dt.datetime(2021, 1, 1, 8, 30, tzinfo=tokyo)
    )
    assert early.version == 0
    late = session.register_delta(
        "ev", dated, timestamp=dt.datetime(2021, 1, 1, 9, 30, tzinfo=tokyo)
    )
    assert late.version == 1


def test_version_and_timestamp_together_are_refused_before_opening(session, dated):
    with pytest.raises(DeltaError, match="give version or timestamp, not both"):
        DeltaOptions(version=1, timestamp="2021-06-01T00:00:00Z")  # no table opened
    with pytest.raises(DeltaError, match="give version or timestamp, not both"):
        session.register_delta("ev", dated, version=1, timestamp=dt.datetime(2021, 6, 1))
    with pytest.raises(SqlError, match="give version or timestamp, not both"):
        session.sql(
            f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{dated}' "
            "OPTIONS ('version' '1', 'timestamp' '2021-06-01T00:00:00Z')"
        )
    assert "ev" not in session.delta_tables


def test_a_timestamp_before_the_first_commit_is_refused(session, dated):
    with pytest.raises(DeltaError, match=r"did not exist at 2019-06-01.*first version \(0\)"):
        session.register_delta("ev", dated, timestamp=dt.datetime(2019, 6, 1))


def test_a_timestamp_of_another_type_is_a_clear_error(session, dated):
    with pytest.raises(DeltaError, match=r"timestamp=.*give a datetime .* or RFC 3339 text"):
        session.register_delta("ev", dated, timestamp=dt.date(2021, 6, 1))


# 12. Delta DDL is read with SQL's tokens ----------------------------------------------------

# Every form is a Delta CREATE (so it never reaches DataFusion's "Unable to find factory").
DELTA_FORMS = [
    "-- note\nCREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '/x'",
    "/* a\ncomment */ CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '/x'",
    "create or replace external table if not exists t stored as delta location '/x'",
    'CREATE EXTERNAL TABLE "a""b" STORED AS DELTA LOCATION \'/x\'',
    "CREATE EXTERNAL TABLE public.t STORED AS DELTA LOCATION '/x'",
    "CREATE EXTERNAL TABLE other.t STORED AS DELTA LOCATION '/x'",
    "CREATE EXTERNAL TABLE t (a INT) STORED AS DELTA LOCATION '/x'",
    "CREATE EXTERNAL TABLE t LOCATION '/x' STORED AS DELTA",
    "CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '/x' PARTITIONED BY (a)",
    "CREATE UNBOUNDED EXTERNAL TABLE t STORED AS DELTA LOCATION '/x'",
]
NOT_DELTA = [
    "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/delta'",
    "SELECT 'CREATE EXTERNAL TABLE t STORED AS DELTA' AS delta",
    "-- CREATE EXTERNAL TABLE t STORED AS DELTA\nSELECT 1",
    'CREATE TABLE delta AS SELECT 1 AS "STORED AS DELTA"',
]


@pytest.mark.parametrize("statement", DELTA_FORMS)
def test_every_form_of_a_delta_create_is_recognised(statement):
    assert is_delta_ddl(statement)


@pytest.mark.parametrize("statement", NOT_DELTA)
def test_other_statements_mentioning_delta_are_not(statement):
    assert not is_delta_ddl(statement)


@pytest.mark.parametrize("separator", ["", ";\nSELECT 1 AS after"])
@pytest.mark.parametrize("comment", ["-- note\n", "/* note */ "])
def test_a_delta_create_after_a_comment_registers_the_table(session, regions, comment, separator):
    session.sql(
        f"{comment}CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{regions}'{separator}"
    )
    assert _count(session, "ev") == 6
    # The recorded DDL is the canonical one: no comment to swallow a bundle's ";".
    assert session.registrations["ev"].startswith('CREATE EXTERNAL TABLE "ev"')


def test_doubled_quotes_in_a_ddl_name_stand_for_one_quote(session, regions):
    session.sql(f"""CREATE EXTERNAL TABLE "a""b" STORED AS DELTA LOCATION '{regions}'""")
    assert list(session.delta_tables) == ['a"b']
    assert _count(session, '"a""b"') == 6


def test_a_schema_qualified_ddl_name_is_the_default_schema_or_refused(session, regions):
    ddl = parse_delta_ddl(f"CREATE EXTERNAL TABLE public.Ev STORED AS DELTA LOCATION '{regions}'")
    assert ddl.name == "ev"
    with pytest.raises(SqlError, match=r"other\.ev: Delta tables are registered in the default"):
        session.sql(f"CREATE EXTERNAL TABLE other.ev STORED AS DELTA LOCATION '{regions}'")


def test_a_column_list_is_refused_where_it_is(session, regions):
    with pytest.raises(SqlError, match="takes its columns from its Delta log") as raised:
        session.sql(f"CREATE EXTERNAL TABLE ev (id BIGINT) STORED AS DELTA LOCATION '{regions}'")
    assert raised.value.location is not None
    assert raised.value.location.column == len("CREATE EXTERNAL TABLE ev ") + 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("('version' '0', 'version' '0')", "option 'version' is given twice"),
        ("('files' 'a', 'FILES' 'b')", "option 'files' is given twice"),
        ("('version' '0') OPTIONS ('files' 'a')", "OPTIONS is given twice"),
        ("('versoin' '0')", "unknown Delta option 'versoin'"),
        ("('wrap_partition_values' 'yes')", "is true or false, not 'yes'"),
        ("(version)", "OPTIONS takes quoted pairs"),
    ],
)
def test_bad_options_are_errors_never_last_wins(session, regions, options, message):
    with pytest.raises(SqlError, match=message):
        session.sql(
            f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{regions}' OPTIONS {options}"
        )
    assert "ev" not in session.delta_tables


def test_unquoted_option_keys_and_number_values_are_read(session, regions):
    session.sql(
        f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{regions}' OPTIONS (version 0)"
    )
    assert session.delta_tables["ev"].version == 0


def test_a_single_statement_ddl_error_is_wrapped_once_and_read_only_stays_read_only(
    tmp_path, session, regions
):
    with pytest.raises(SqlError) as raised:
        session.sql(
            f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{regions}' OPTIONS ('x' '1')"
        )
    assert str(raised.value).count("unknown Delta option") == 1
    assert str(raised.value).count("line 1") == 1
    read_only = workbench.RuntimeProfile(read_only=True, artifact_dir=str(tmp_path)).session()
    with pytest.raises(ReadOnlyError, match="read-only"):
        read_only.sql(f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{regions}'")


# 13. wb_delta_files arguments and files= ----------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("", "takes one argument, the Delta table's name, not 0"),
        ("'a', 'b'", "takes one argument, the Delta table's name, not 2"),
        ("NULL", r"wb_delta_files\(NULL\): the argument is the Delta table's name"),
        ("42", r"wb_delta_files\(42\): the argument is the Delta table's name"),
        ("id", r"wb_delta_files\(id\): the argument is not a constant string"),
    ],
)
def test_wrong_wb_delta_files_arguments_are_clear_errors(session, arguments, message):
    with pytest.raises(SqlError, match=message) as raised:
        session.sql(f"SELECT * FROM wb_delta_files({arguments})")
    assert "PyErr" not in str(raised.value)
    assert "Traceback" not in str(raised.value)


def test_non_ascii_and_quoted_names_are_shown_intact_in_wb_delta_files_errors(session, regions):
    session.register_delta('"Événements"', regions)
    assert len(_rows(session, "SELECT * FROM wb_delta_files('Événements')")) == 3
    with pytest.raises(SqlError) as raised:
        session.sql("SELECT * FROM wb_delta_files('événements ''x''')")
    shown = str(raised.value)
    assert "wb_delta_files(\"événements 'x'\"): no Delta table of that name" in shown
    assert 'registered: "Événements"' in shown
    assert "Ã" not in shown
    assert "PyErr" not in shown


def test_files_not_in_the_table_are_refused_at_registration_naming_them(session, regions):
    session.register_delta("all", regions)
    paths = [r["path"] for r in _rows(session, "SELECT path FROM wb_delta_files('all')")]
    session.register_delta("some", regions, files=paths[:1])
    assert _count(session, "some") == 2
    with pytest.raises(
        DeltaError, match=r"files names 2 data file\(s\).*'nope\.parquet'"
    ) as raised:
        session.register_delta("bad", regions, files=[paths[0], "nope.parquet", "x/y.parquet"])
    assert paths[0] not in str(raised.value)
    assert "wb_delta_files('bad')" in str(raised.value)
    with pytest.raises(SqlError, match=r"files names 1 data file\(s\).*'nope\.parquet'"):
        session.sql(
            f"CREATE EXTERNAL TABLE bad STORED AS DELTA LOCATION '{regions}' "
            f"OPTIONS ('files' '{paths[0]},nope.parquet')"
        )
    with pytest.raises(DeltaError, match="give a list of data file paths"):
        session.register_delta("bad", regions, files=paths[0])
    assert "bad" not in session.delta_tables


# 14. %prune reads the table name with SQL quoting -------------------------------------------


def test_prune_magic_reads_a_quoted_name_with_a_space(ipython, regions):
    ipython.user_ns["wb"].register_delta('"My regions"', regions)
    report = ipython.run_line_magic("prune", "\"My regions\" WHERE region = 'us' --analyze")
    assert isinstance(report, PruningReport)
    assert (report.table, report.candidate_files, report.matching_rows) == ("My regions", 1, 2)
    bare = ipython.run_line_magic("prune", '"My regions"id > 4')
    assert bare.candidate_files == 1


def test_prune_magic_without_a_name_first_is_a_short_usage_error(ipython):
    with capture_output() as captured:
        outcome = ipython.run_cell("%prune 'quoted string' id > 1")
    assert outcome.error_in_exec is not None
    shown = captured.stdout + captured.stderr
    assert "expected a table name first" in shown
    assert "Traceback" not in shown


# 16. The "answered from the log" note needs evidence in the plan ------------------------------


def test_the_log_note_is_shown_only_when_the_plan_shows_the_log_answered(session, regions):
    session.register_delta("regions", regions)
    from_statistics = session.prune("regions", "region = 'us'", analyze=True)
    assert "answered from the Delta log's statistics" in (from_statistics.note or "")
    assert "without reading a data file" in (from_statistics.note or "")
    # Folded away by the optimizer: nothing was asked of the log, and the note says so.
    never = session.prune("regions", "1 = 0", analyze=True)
    assert never.matching_rows == 0
    assert "never true" in (never.note or "")
    assert "Delta log" not in (never.note or "")
    # A metadata-only scan (a partition filter DataFusion keeps above the scan).
    counted = session.prune("regions", "region LIKE 'u%'", analyze=True)
    assert counted.matching_rows == 2
    assert "DeltaScanMetaExec" in (counted.note or "")
    # Parquet was read: the funnel shows it, and there is no note.
    read = session.prune("regions", "id > 4", analyze=True)
    assert "row groups" in [s.stage for s in read.funnel]
    assert read.note is None


# Second review (issue 13 again): names, secrets, missing folders, relative paths ---------------

# A Delta table replaced or dropped by SQL the way DataFusion reads the name: leading
# comments, non-ASCII letters (only ASCII folds) and doubled quotes.
REPLACED_BY_SQL = [
    ("t", "t", "-- now a memory table\nCREATE OR REPLACE TABLE t AS SELECT 'memory' AS x"),
    ("Ünïcode", "Ünïcode", "/* x */ CREATE OR REPLACE TABLE Ünïcode AS SELECT 'memory' AS x"),
    ('"a""b"', 'a"b', 'CREATE OR REPLACE TABLE "a""b" AS SELECT \'memory\' AS x'),
]
DROPPED_BY_SQL = [
    ("t", "t", "/* x */ DROP TABLE t"),
    ("Ünïcode", "Ünïcode", "DROP TABLE Ünïcode"),
    ('"a""b"', 'a"b', '-- gone\nDROP TABLE IF EXISTS "a""b"'),
]


@pytest.mark.parametrize(("given", "name", "statement"), REPLACED_BY_SQL)
def test_a_delta_table_replaced_by_sql_is_no_delta_table_for_any_tool(
    session, regions, given, name, statement
):
    session.register_delta(given, regions)
    session.sql(statement)
    assert _rows(session, f"SELECT x FROM {_quoted(name)}") == [{"x": "memory"}]
    assert name not in session.delta_tables
    # What a bundle's tables.sql records: the statement, without the comment before it.
    assert session.registrations[name] == statement[statement.index("CREATE") :]
    argument = _quoted(name).replace("'", "''")
    with pytest.raises(SqlError, match="no Delta table of that name"):
        session.sql(f"SELECT path FROM wb_delta_files('{argument}')")
    with pytest.raises(DeltaError, match="no Delta table named"):
        session.prune(_quoted(name), "x > 'a'")


@pytest.mark.parametrize(("given", "name", "statement"), DROPPED_BY_SQL)
def test_a_delta_table_dropped_by_sql_leaves_no_registration(
    session, regions, given, name, statement
):
    session.register_delta(given, regions)
    session.sql(statement)
    assert name not in session.delta_tables
    assert name not in session.registrations


def test_a_cell_reads_a_quoted_non_ascii_table_it_creates_above_by_its_unquoted_name(session):
    # Only ASCII folds: "Ünïcode" and Ünïcode are one table, so the SELECT depends on the
    # CREATE and is planned after it runs.
    cell = 'CREATE TABLE "Ünïcode" AS SELECT 1 AS x; SELECT x FROM Ünïcode'
    assert _rows(session, cell) == [{"x": 1}]


SECRET = "SUPERSECRET"  # noqa: S105  (a made-up secret that must not leak)
# Refused Delta CREATEs that hold a secret, each with a place the message points at.
SECRET_DDL = [
    (
        "CREATE EXTERNAL TABLE d4 STORED AS DELTA LOCATION '{uri}' "
        "OPTIONS ('storage.aws_secret_access_key' '{secret}')"
    ),
    (
        "CREATE EXTERNAL TABLE d5 STORED AS DELTA LOCATION 's3://bucket/t' "
        "OPTIONS ('storage.aws_secret_access_key' '{secret}')"
    ),
    (
        "CREATE EXTERNAL TABLE d6 STORED AS DELTA LOCATION '{uri}' "
        "OPTIONS ('version' '0', 'aws_secret_access_key' '{secret}')"
    ),
    (
        "SELECT 1 AS one;\nCREATE EXTERNAL TABLE d7 STORED AS DELTA LOCATION '{uri}' "
        "OPTIONS (storage.sas_token {secret}, 'files' 'x')"
    ),
    (
        "CREATE EXTERNAL TABLE d8 STORED AS DELTA "
        "LOCATION 'https://u:{secret}@acct.blob.core.windows.net/c/t?sv=1&sig={secret}'"
    ),
]


@pytest.mark.parametrize("template", SECRET_DDL)
def test_a_secret_in_a_refused_delta_create_reaches_no_message_record_or_bundle(
    session, regions, tmp_path, template
):
    with pytest.raises(SqlError) as raised:
        session.sql(template.format(uri=regions, secret=SECRET))
    assert SECRET not in str(raised.value)
    assert "<redacted>" in str(raised.value)  # the statement under the message, redacted
    runs = _rows(session, "SELECT run_id, sql, error FROM wb_runs")
    assert SECRET not in str(runs)
    failed = next(row["run_id"] for row in runs if "<redacted>" in row["sql"])
    bundle = artifacts.export(session, [failed], tmp_path / "bundle")
    files = [p for p in bundle.rglob("*") if p.is_file()]
    assert {"cell.sql", "run.json", "sqlglot_ast.json"} <= {p.name for p in files}
    assert [p.name for p in files if SECRET.encode() in p.read_bytes()] == []


def test_redaction_leaves_known_delta_options_and_other_statements_as_written(session, regions):
    parquet = "CREATE EXTERNAL TABLE p STORED AS PARQUET LOCATION '/x' OPTIONS ('a.key' 'v')"
    delta = f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION '{regions}' OPTIONS (version 0)"
    assert delta_ddl.redact(f"{parquet};\n{delta}") == f"{parquet};\n{delta}"
    session.sql(delta)
    assert session.delta_tables["ev"].version == 0


def test_a_missing_folder_a_file_or_a_folder_without_a_log_is_a_clear_error(session, tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "file.parquet").write_bytes(b"PAR1")
    cases = {
        "missing": "that folder does not exist",
        "plain": "the folder has no _delta_log",
        "file.parquet": "it is a file, not a folder",
    }
    for folder, problem in cases.items():
        path = tmp_path / folder
        with pytest.raises(DeltaError) as raised:
            session.register_delta("m", str(path))
        with pytest.raises(SqlError) as raised_sql:
            session.sql(f"CREATE EXTERNAL TABLE m STORED AS DELTA LOCATION '{path}'")
        for shown in (str(raised.value), str(raised_sql.value)):
            assert f"m: {path} is not a Delta table: {problem}" in shown
            assert "the one that holds its _delta_log" in shown  # what to do
            assert "Os {" not in shown
            assert "NotFound" not in shown


def test_a_relative_path_is_recorded_absolute_and_replays_from_another_directory(
    session, regions, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    session.register_delta("r", "regions")
    session.sql("CREATE EXTERNAL TABLE r2 STORED AS DELTA LOCATION 'regions/../regions'")
    session.sql("CREATE EXTERNAL TABLE r3 STORED AS DELTA LOCATION '~/regions'")
    for name in ("r", "r2", "r3"):
        assert session.delta_tables[name].uri == regions
        assert f"LOCATION '{regions}'" in session.registrations[name]
    run = session.sql("SELECT count(*) AS n FROM r").run.run_id
    bundle = artifacts.export(session, [run], tmp_path / "bundle")
    # Another directory with another table of that relative name.
    elsewhere = tmp_path / "elsewhere"
    write_deltalake(str(elsewhere / "regions"), pa.table({"id": [99]}))
    monkeypatch.chdir(elsewhere)
    fresh = workbench.RuntimeProfile().session()
    fresh.sql(session.registrations["r"])
    assert _count(fresh, "r") == 6
    assert artifacts.replay(bundle, fresh).ok

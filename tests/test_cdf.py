"""``table_changes(table, start [, end])``: a Delta table's change data feed in SQL.

The differential test writes seeded histories (appends, updates, deletes, merges) to
change-data-feed tables and checks every generated range, by version and by timestamp,
against deltalake's own ``load_cdf``.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from workbench.errors import SqlError

from .notebook_cells import code_cell, errors, outputs, tagged_to_fail

if TYPE_CHECKING:
    from pathlib import Path

    import workbench

_CDF = {"delta.enableChangeDataFeed": "true"}
SEEDS = range(4)
RANGES_PER_TABLE = 12


def _changes(rows: list[dict]) -> list[tuple]:
    """Rows as sorted tuples of the columns both readers have, timestamps in ms."""
    out = []
    for row in rows:
        stamp = row["_commit_timestamp"]
        millis = int(stamp.replace(tzinfo=dt.UTC).timestamp() * 1000) if stamp else None
        out.append((row["id"], row["v"], row["_change_type"], int(row["_commit_version"]), millis))
    return sorted(out, key=repr)


def _history(seed: int, root: Path) -> str:
    rng = random.Random(seed)
    uri = str(root / f"changes-{seed}")
    ids = list(range(20))
    write_deltalake(uri, pa.table({"id": ids, "v": [f"v{i}" for i in ids]}), configuration=_CDF)
    next_id = 20
    for _ in range(rng.randrange(4, 8)):
        table = DeltaTable(uri)
        kind = rng.choice(["append", "update", "delete", "merge"])
        if kind == "append":
            new = list(range(next_id, next_id + rng.randrange(1, 6)))
            next_id = new[-1] + 1
            write_deltalake(uri, pa.table({"id": new, "v": [f"v{i}" for i in new]}), mode="append")
        elif kind == "update":
            table.update(
                updates={"v": f"'u{rng.randrange(99)}'"}, predicate=f"id % 5 = {rng.randrange(5)}"
            )
        elif kind == "delete":
            table.delete(f"id % 7 = {rng.randrange(7)}")
        else:
            keys = rng.sample(range(next_id + 3), 4)
            source = pa.table({"id": keys, "v": [f"m{k}" for k in keys]})
            (
                table.merge(source, "t.id = s.id", source_alias="s", target_alias="t")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
            next_id = max(next_id, max(keys) + 1)
    return uri


@pytest.fixture(scope="module")
def histories(tmp_path_factory) -> dict[int, str]:
    root = tmp_path_factory.mktemp("cdf")
    return {seed: _history(seed, root) for seed in SEEDS}


def _ranges(seed: int, uri: str) -> list[tuple[str, dict[str, int | str]]]:
    """(SQL arguments, load_cdf keywords) for generated ranges of the table at ``uri``."""
    rng = random.Random(500 + seed)
    table = DeltaTable(uri)
    latest = table.version()
    stamps = {h["version"]: h["timestamp"] for h in table.history()}
    out: list[tuple[str, dict[str, int | str]]] = []
    for _ in range(RANGES_PER_TABLE):
        start = rng.randrange(latest + 1)
        end = rng.randrange(start, latest + 1)
        shape = rng.choice(["open", "closed", "latest", "time"])
        if shape == "open":
            out.append((f"{start}", {"starting_version": start}))
        elif shape in ("closed", "latest"):
            end = latest if shape == "latest" else end
            out.append((f"{start}, {end}", {"starting_version": start, "ending_version": end}))
        else:
            lo = dt.datetime.fromtimestamp(stamps[start] / 1000, dt.UTC)
            hi = dt.datetime.fromtimestamp(stamps[end] / 1000, dt.UTC)
            out.append(
                (
                    f"'{lo.isoformat()}', '{hi.isoformat()}'",
                    {"starting_timestamp": lo.isoformat(), "ending_timestamp": hi.isoformat()},
                )
            )
    return out


CASES = [
    pytest.param(seed, index, id=f"seed{seed}-{index}")
    for seed in SEEDS
    for index in range(RANGES_PER_TABLE)
]


@pytest.mark.parametrize(("seed", "index"), CASES)
def test_table_changes_equal_deltalakes_load_cdf(session, histories, seed, index):
    uri = histories[seed]
    session.register_delta("t", uri)
    arguments, keywords = _ranges(seed, uri)[index]
    got = session.sql(f"SELECT * FROM table_changes('t', {arguments})").to_pyarrow()
    expected = pa.table(DeltaTable(uri).load_cdf(**keywords))
    assert _changes(got.to_pylist()) == _changes(expected.to_pylist()), arguments


def test_the_generated_histories_hold_every_kind_of_change(histories):
    kinds = set()
    for uri in histories.values():
        kinds |= set(
            pa.table(DeltaTable(uri).load_cdf(starting_version=0))["_change_type"].to_pylist()
        )
        assert DeltaTable(uri).version() >= 4
    assert kinds == {"insert", "delete", "update_preimage", "update_postimage"}


def _table(session: workbench.Session, tmp_path: Path, *, cdf: bool = True) -> str:
    uri = str(tmp_path / "t")
    write_deltalake(
        uri, pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]}), configuration=_CDF if cdf else None
    )
    write_deltalake(uri, pa.table({"id": [4], "v": ["d"]}), mode="append")
    DeltaTable(uri).update(updates={"v": "'B'"}, predicate="id = 2")
    DeltaTable(uri).delete("id = 3")
    session.register_delta("t", uri)
    return uri


def test_filters_and_projections_apply_like_any_scan(session, tmp_path):
    _table(session, tmp_path)
    rows = session.sql(
        "SELECT id, _change_type FROM table_changes('t', 2, 3) "
        "WHERE _change_type <> 'update_preimage' ORDER BY id"
    ).to_pyarrow()
    assert rows.column_names == ["id", "_change_type"]
    assert rows.to_pylist() == [
        {"id": 2, "_change_type": "update_postimage"},
        {"id": 3, "_change_type": "delete"},
    ]
    per_version = session.sql(
        "SELECT _commit_version AS version, count(*) AS n FROM table_changes('t', 0) "
        "GROUP BY 1 ORDER BY 1"
    ).to_pyarrow()
    assert per_version.to_pylist() == [
        {"version": 0, "n": 3},
        {"version": 1, "n": 1},
        {"version": 2, "n": 2},
        {"version": 3, "n": 1},
    ]


def test_a_table_path_works_as_well_as_a_registered_name(session, tmp_path):
    uri = _table(session, tmp_path)
    by_path = session.sql(f"SELECT count(*) AS n FROM table_changes('{uri}', 0)").to_pyarrow()
    assert by_path.to_pylist() == [{"n": 7}]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("table_changes('t', 9)", "the start version 9 is past the newest version of the table, 3"),
        (
            "table_changes('t', 1, 9)",
            "the end version 9 is past the newest version of the table, 3",
        ),
        ("table_changes('t', 3, 1)", "the start version 3 is after the end version 1"),
        ("table_changes('t', -1)", "the start version -1 is negative"),
        ("table_changes('nope', 0)", "no Delta table named 'nope' in this session"),
        ("table_changes('t')", "got 1 arguments"),
        ("table_changes('t', 'soon')", "is neither a version nor a timestamp"),
        ("table_changes('t', 2.5)", "the start version 2.5 is not a whole number"),
    ],
)
def test_bad_ranges_are_clear_errors(session, tmp_path, call, message):
    _table(session, tmp_path)
    with pytest.raises(SqlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        session.sql(f"SELECT * FROM {call}").to_pyarrow()
    assert session.sql("SELECT count(*) AS n FROM t").to_pyarrow().to_pylist() == [{"n": 3}]


def test_a_table_without_change_data_feed_is_a_clear_error(session, tmp_path):
    _table(session, tmp_path, cdf=False)
    with pytest.raises(SqlError, match="change data feed is not enabled"):
        session.sql("SELECT * FROM table_changes('t', 0)").to_pyarrow()


def test_a_dropped_delta_table_is_no_longer_a_name_for_table_changes(session, tmp_path):
    _table(session, tmp_path)
    session.sql("DROP TABLE t")
    with pytest.raises(SqlError, match="no Delta table named 't'"):
        session.sql("SELECT * FROM table_changes('t', 0)").to_pyarrow()


def test_a_range_before_the_feed_was_turned_on_names_the_version_that_turned_it_on(
    session, tmp_path
):
    uri = str(tmp_path / "late")
    write_deltalake(uri, pa.table({"id": [1], "v": ["a"]}))
    DeltaTable(uri).alter.set_table_properties(_CDF)
    write_deltalake(uri, pa.table({"id": [2], "v": ["b"]}), mode="append")
    session.register_delta("late", uri)
    with pytest.raises(SqlError, match="turned on at version 1: start at 1 or later"):
        session.sql("SELECT * FROM table_changes('late', 0)").to_pyarrow()
    rows = session.sql("SELECT id FROM table_changes('late', 2)").to_pyarrow().to_pylist()
    assert rows == [{"id": 2}]


# Net changes and %cdf ---------------------------------------------------------------------


@pytest.fixture
def story(session, tmp_path):
    """One commit per case of the net semantics (see workbench.delta.cdf), keys 1-9."""
    uri = str(tmp_path / "story")
    rows = {"id": [1, 2, 3, 4, 7, 8], "v": ["a", "b", "c", "d", "g", "h"]}
    write_deltalake(uri, pa.table(rows), configuration=_CDF)  # v0: keys existing before
    write_deltalake(uri, pa.table({"id": [5, 6], "v": ["e", "f"]}), mode="append")  # v1
    table = lambda: DeltaTable(uri)  # noqa: E731
    table().update(updates={"v": "'B'"}, predicate="id = 2")  # v2: 2 updated
    table().delete("id = 3 OR id = 6")  # v3: 3 deleted (existed), 6 deleted (inserted in range)
    table().update(updates={"v": "'D'"}, predicate="id = 4")  # v4: 4 updated ...
    table().update(updates={"v": "'d'"}, predicate="id = 4")  # v5: ... and back: a no-op
    table().update(updates={"v": "'E'"}, predicate="id = 5")  # v6: 5 inserted, then updated
    table().delete("id = 7")  # v7: 7 deleted ...
    write_deltalake(uri, pa.table({"id": [7, 9], "v": ["g", "i"]}), mode="append")  # v8: ... back
    table().delete("id = 8")  # v9: 8 deleted ...
    write_deltalake(uri, pa.table({"id": [8], "v": ["H"]}), mode="append")  # v10: ... other values
    session.register_delta("story", uri)
    return uri


@pytest.mark.usefixtures("story")
def test_net_changes_follow_the_documented_semantics_case_by_case(session):
    net = session.changes("story", 1, net=["id"]).to_pyarrow().to_pylist()
    assert sorted((r["id"], r["v"], r["_change_type"]) for r in net) == [
        (2, "B", "update_postimage"),  # updated: its last post-image
        (3, "c", "delete"),  # existed and deleted
        (5, "E", "insert"),  # inserted then updated: an insert with the last values
        (8, "H", "update_postimage"),  # deleted and inserted with other values: an update
        (9, "i", "insert"),  # inserted
    ]  # 4 (updated and back), 6 (inserted, deleted) and 7 (deleted, same row back) are hidden


@pytest.mark.usefixtures("story")
def test_net_of_one_change_is_that_change_and_types_filter_after_netting(session):
    only = session.changes("story", 3, 3, net=["id"]).to_pyarrow().to_pylist()
    assert sorted((r["id"], r["_change_type"]) for r in only) == [(3, "delete"), (6, "delete")]
    kept = session.changes("story", 1, net=["id"], types=["insert"]).to_pyarrow().to_pylist()
    assert sorted(r["id"] for r in kept) == [5, 9]


@pytest.mark.usefixtures("story")
def test_changes_keep_types_columns_and_where_and_show_the_timeline(session):
    changes = session.changes("story", 2, 3, types=["delete"], columns=["id"], where="id < 6")
    rows = changes.to_pyarrow()
    assert rows.column_names == ["id", "_change_type", "_commit_version", "_commit_timestamp"]
    assert rows.to_pylist()[0]["id"] == 3
    assert rows.num_rows == 1
    assert changes.timeline.to_pylist() == [
        {"version": 2, "type": "update_postimage", "rows": 1},
        {"version": 2, "type": "update_preimage", "rows": 1},
        {"version": 3, "type": "delete", "rows": 1},
    ]
    text = changes.timeline_text()
    assert "v2: 1 update_postimage, 1 update_preimage" in text
    assert "v3: 1 delete" in text
    bundle = changes._repr_mimebundle_()
    assert (
        '<img alt="story: changes per commit" src="data:image/svg+xml;base64,'
        in bundle["text/html"]
    )


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"types": ["upsert"]}, "unknown change type upsert"),
        ({"columns": ["nope"]}, "columns: no column nope"),
        ({"net": ["nope"]}, "net: no column nope"),
        ({"start": -1}, "the start version -1 is negative"),
        ({"start": "soon"}, "neither a version nor a timestamp"),
    ],
)
@pytest.mark.usefixtures("story")
def test_bad_change_requests_are_clear_errors(session, keywords, message):
    from workbench.delta import DeltaError

    start = keywords.pop("start", 0)
    with pytest.raises(DeltaError, match=message):
        session.changes("story", start, **keywords)


def test_cdf_magic_reads_the_feed_and_binds_the_result(ipython, tmp_path):
    uri = str(tmp_path / "magic")
    write_deltalake(uri, pa.table({"id": [1, 2], "v": ["a", "b"]}), configuration=_CDF)
    DeltaTable(uri).delete("id = 1")
    ipython.user_ns["wb"].register_delta("magic_t", uri)
    changes = ipython.run_line_magic(
        "cdf", 'magic_t --from 0 --types delete --where "id < 5" -o gone'
    )
    assert ipython.user_ns["gone"] is changes
    assert [(r["id"], r["_change_type"]) for r in changes.to_pyarrow().to_pylist()] == [
        (1, "delete")
    ]
    net = ipython.run_line_magic("cdf", "magic_t --from 0 --net id")
    assert [(r["id"], r["_change_type"]) for r in net.to_pyarrow().to_pylist()] == [(2, "insert")]


def test_cdf_magic_errors_are_short_messages(ipython, tmp_path):
    from IPython.utils.capture import capture_output

    uri = str(tmp_path / "magic")
    write_deltalake(uri, pa.table({"id": [1]}), configuration=_CDF)
    ipython.user_ns["wb"].register_delta("magic_e", uri)
    with capture_output() as captured:
        ipython.run_cell("%cdf magic_e --from 7")
    shown = captured.stdout + captured.stderr
    assert "the start version 7 is past the newest version of the table, 0" in shown
    assert "Traceback" not in shown


@pytest.fixture(scope="module")
def cdf_notebook(tmp_path_factory):
    import nbformat

    from workbench.tour import execute_notebook

    from .conftest import REPO

    out = tmp_path_factory.mktemp("nb") / "cdf.ipynb"
    return nbformat.read(execute_notebook(REPO / "notebooks" / "cdf.ipynb", out), as_version=4)


def _notebook_outputs(notebook, starts: str) -> str:
    return outputs(code_cell(notebook, starts))


@pytest.mark.kernel
def test_the_cdf_notebook_shows_the_feed_timeline_net_errors_and_the_kept_aggregate(cdf_notebook):
    sql = _notebook_outputs(cdf_notebook, "%%dfsql\nSELECT _commit_version")
    assert "update_postimage" in sql
    assert "delete" in sql
    feed = _notebook_outputs(cdf_notebook, "%cdf orders_cdf --from 1 --types")
    assert "v3: " in feed
    assert " delete" in feed
    assert '<img alt="orders_cdf: changes per commit" src="data:image/svg+xml;base64,' in feed
    net = _notebook_outputs(cdf_notebook, "net.timeline_text()")
    assert "net by o_orderkey" in net
    assert "'update_postimage'" in net
    error = _notebook_outputs(cdf_notebook, "%cdf orders_cdf --from 99")
    assert "the start version 99 is past the newest version of the table, 4" in error
    assert "Traceback" not in error
    kept = _notebook_outputs(cdf_notebook, "kept = ")
    assert "'incremental equals full recompute:', True" in kept
    runs = _notebook_outputs(cdf_notebook, "lineitem = pq.read_table")
    assert "[(0, 0), (1, 2), (3, 4)]" in runs  # three consumes, each of the commits since
    items = _notebook_outputs(cdf_notebook, "kept_items = ")
    assert "'lineitem: incremental equals full recompute:', True" in items
    assert [o for c, o in errors(cdf_notebook) if not tagged_to_fail(c)] == []


# Second look at --net -------------------------------------------------------------------


def _cdf_table(session, tmp_path, rows: dict, name: str = "k") -> str:
    uri = str(tmp_path / name)
    write_deltalake(uri, pa.table(rows), configuration=_CDF)
    session.register_delta(name, uri)
    return uri


def test_net_of_an_update_that_changes_the_key_is_a_delete_and_an_insert(session, tmp_path):
    uri = _cdf_table(session, tmp_path, {"id": [1, 2], "v": ["a", "b"]})
    DeltaTable(uri).update(updates={"id": "10"}, predicate="id = 1")
    net = session.changes("k", 1, net=["id"]).to_pyarrow().to_pylist()
    assert sorted((r["id"], r["v"], r["_change_type"]) for r in net) == [
        (1, "a", "delete"),
        (10, "a", "insert"),
    ]
    # A key inserted in the range and then moved away leaves nothing behind.
    whole = session.changes("k", 0, net=["id"]).to_pyarrow().to_pylist()
    assert sorted((r["id"], r["_change_type"]) for r in whole) == [(2, "insert"), (10, "insert")]


def test_rows_with_a_null_key_pass_through_unnetted(session, tmp_path):
    uri = _cdf_table(session, tmp_path, {"id": [1], "v": ["a"]})
    write_deltalake(
        uri, pa.table({"id": pa.array([None, None], pa.int64()), "v": ["x", "y"]}), mode="append"
    )
    net = session.changes("k", 1, net=["id"]).to_pyarrow().to_pylist()
    assert sorted((r["v"], r["_change_type"]) for r in net) == [("x", "insert"), ("y", "insert")]


def test_reserved_and_change_column_names_and_a_commented_where_are_handled(session, tmp_path):
    from workbench.delta import DeltaError

    _cdf_table(session, tmp_path, {"id": [1], "__wb_order": [5]}, name="r")
    with pytest.raises(DeltaError, match="starts with __wb_, which --net reserves"):
        session.changes("r", 0, net=["id"])
    with pytest.raises(DeltaError, match="_commit_version is a change column, which always comes"):
        session.changes("r", 0, columns=["_commit_version"])
    rows = session.changes("r", 0, where="id > 0 -- every row").to_pyarrow()
    assert rows.num_rows == 1


def test_timestamp_ranges_are_checked_against_the_commit_times(session, tmp_path):
    uri = _table(session, tmp_path)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    with pytest.raises(SqlError, match="is after the newest commit \\(version 3, at "):
        session.sql(f"SELECT * FROM table_changes('t', '{later}')").to_pyarrow()
    early = "2000-01-01T00:00:00+00:00"
    with pytest.raises(
        SqlError, match="the start version 3 was committed after the end 2000-01-01"
    ):
        session.sql(f"SELECT * FROM table_changes('t', 3, '{early}')").to_pyarrow()
    time.sleep(1.2)  # the checks allow a second between a commit's file time and its stamp
    write_deltalake(uri, pa.table({"id": [5], "v": ["e"]}), mode="append")  # version 4
    stamps = {h["version"]: h["timestamp"] for h in DeltaTable(uri).history()}
    fourth = dt.datetime.fromtimestamp(stamps[4] / 1000, dt.UTC).isoformat()
    with pytest.raises(SqlError, match="is after the end version 1 was committed"):
        session.sql(f"SELECT * FROM table_changes('t', '{fourth}', 1)").to_pyarrow()
    # At a commit's own stamp the range is deltalake's to decide, and holds that commit.
    rows = session.sql(f"SELECT id FROM table_changes('t', '{fourth}', '{fourth}')").to_pyarrow()
    assert rows.to_pylist() == [{"id": 5}]

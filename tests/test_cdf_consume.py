"""Exactly-once consumers of a change data feed: crashes anywhere, conflicts, wrong applies.

The crash test keeps an aggregate (total amount per group) current from the feed of a source
table that random commits change (appends, updates, deletes, merges), with crashes injected
before the apply, inside it before its commit, and after its commit. Applying a change twice
or skipping one would make a total wrong, so after every run the target must equal a full
recompute of the source.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from workbench.delta import DeltaError
from workbench.delta.cursors import CursorConflictError, CursorStore, app_id

if TYPE_CHECKING:
    from pathlib import Path

    import workbench

_CDF = {"delta.enableChangeDataFeed": "true"}
_SIGN = {"insert": 1, "update_postimage": 1, "delete": -1, "update_preimage": -1}
_TARGET_SCHEMA = pa.schema([("grp", pa.string()), ("total", pa.int64())])


class CrashError(Exception):
    """An injected crash."""


def _recompute(source: str) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for row in DeltaTable(source).to_pyarrow_table().to_pylist():
        totals[row["grp"]] += row["amount"]
    return {g: t for g, t in totals.items() if t}


def _target_totals(target: str) -> dict[str, int]:
    rows = DeltaTable(target).to_pyarrow_table().to_pylist()
    return {r["grp"]: r["total"] for r in rows if r["total"]}


def _aggregate_apply(target: str, crash_at: str | None):
    """An apply that adds the changes' amounts to the totals, in one commit."""

    def apply(changes: Any, commit: Any) -> None:
        if crash_at == "before":
            raise CrashError(crash_at)
        totals = defaultdict(int, _target_totals(target))
        for batch in changes:  # streamed, as an apply over a large range would
            for row in batch.to_pylist():
                totals[row["grp"]] += _SIGN[row["_change_type"]] * row["amount"]
        if crash_at == "inside":
            raise CrashError(crash_at)
        table = pa.table(
            {"grp": list(totals), "total": list(totals.values())}, schema=_TARGET_SCHEMA
        )
        write_deltalake(target, table, mode="overwrite", commit_properties=commit)
        if crash_at == "after":
            raise CrashError(crash_at)

    return apply


def _commit(rng: random.Random, source: str, next_id: int) -> int:
    table = DeltaTable(source)
    kind = rng.choice(["append", "update", "delete", "merge"])
    if kind == "append":
        ids = list(range(next_id, next_id + rng.randrange(1, 5)))
        rows = {
            "id": ids,
            "grp": [rng.choice("abc") for _ in ids],
            "amount": [rng.randrange(1, 100) for _ in ids],
        }
        write_deltalake(source, pa.table(rows), mode="append")
        return ids[-1] + 1
    if kind == "update":
        table.update(updates={"amount": "amount + 7"}, predicate=f"id % 4 = {rng.randrange(4)}")
    elif kind == "delete":
        table.delete(f"id % 5 = {rng.randrange(5)}")
    else:
        keys = rng.sample(range(next_id + 2), 3)
        rows = {
            "id": keys,
            "grp": [rng.choice("abc") for _ in keys],
            "amount": [rng.randrange(1, 100) for _ in keys],
        }
        (
            table.merge(pa.table(rows), "t.id = s.id", source_alias="s", target_alias="t")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )
        next_id = max(next_id, max(keys) + 1)
    return next_id


def _setup(session: workbench.Session, tmp_path: Path) -> tuple[str, str]:
    source, target = str(tmp_path / "source"), str(tmp_path / "target")
    rows = {"id": [0, 1, 2], "grp": ["a", "b", "c"], "amount": [5, 6, 7]}
    write_deltalake(source, pa.table(rows), configuration=_CDF)
    write_deltalake(target, _TARGET_SCHEMA.empty_table())
    session.register_delta("source", source)
    return source, target


@pytest.mark.parametrize("seed", range(12))
def test_crashes_anywhere_never_apply_twice_or_skip(session, tmp_path, seed):
    rng = random.Random(seed)
    source, target = _setup(session, tmp_path)
    store = CursorStore(tmp_path / "state")
    next_id, crashed = 3, set()
    for step in range(8):
        next_id = _commit(rng, source, next_id)
        # Every seed crashes at every point: before the apply, inside it, after its commit.
        crash_at = (None, "before", "inside", "after")[(seed + step) % 4]
        try:
            session.consume(
                "totals", "source", _aggregate_apply(target, crash_at), target=target, store=store
            )
        except CrashError:
            crashed.add(crash_at)
        if crash_at in (None, "after"):  # the output and the cursor were committed together
            assert _target_totals(target) == _recompute(source)
    assert crashed == {"before", "inside", "after"}
    done = session.consume(
        "totals", "source", _aggregate_apply(target, None), target=target, store=store
    )
    assert _target_totals(target) == _recompute(source)
    assert done.cursor == DeltaTable(source).version()
    assert store.position("totals", source) == done.cursor
    again = session.consume(
        "totals", "source", _aggregate_apply(target, None), target=target, store=store
    )
    assert not again.applied  # nothing new: nothing read, nothing applied


def test_a_second_run_of_the_same_consumer_at_once_gets_a_conflict(session, tmp_path):
    source, target = _setup(session, tmp_path)
    store = CursorStore(tmp_path / "state")
    seen: list[str] = []

    def nested(changes: Any, commit: Any) -> None:
        with pytest.raises(
            CursorConflictError, match=r"consumer 'totals' of '.*/source' is being run by"
        ):
            session.consume(
                "totals", "source", _aggregate_apply(target, None), target=target, store=store
            )
        seen.append("conflict")
        _aggregate_apply(target, None)(changes, commit)

    session.consume("totals", "source", nested, target=target, store=store)
    assert seen == ["conflict"]
    assert _target_totals(target) == _recompute(source)
    # Another consumer of the same table has a cursor (and an output) of its own.
    second = str(tmp_path / "second")
    write_deltalake(second, _TARGET_SCHEMA.empty_table())
    other = session.consume(
        "other", "source", _aggregate_apply(second, None), target=second, store=store
    )
    assert (other.start, other.end) == (0, 0)
    assert _target_totals(second) == _recompute(source)


def test_an_apply_that_does_not_commit_with_the_properties_leaves_the_cursor(session, tmp_path):
    source, target = _setup(session, tmp_path)
    store = CursorStore(tmp_path / "state")

    def forgetful(changes: Any, commit: Any) -> None:  # noqa: ARG001  (the mistake tested)
        write_deltalake(target, _TARGET_SCHEMA.empty_table(), mode="append")

    with pytest.raises(
        DeltaError,
        match="without the commit properties it was given, so versions 0-0 of source are written ",
    ):
        session.consume("totals", "source", forgetful, target=target, store=store)
    assert store.position("totals", source) is None
    done = session.consume(
        "totals", "source", _aggregate_apply(target, None), target=target, store=store
    )
    assert (done.start, done.end) == (0, 0)
    assert _target_totals(target) == _recompute(source)


def test_cdf_magic_shows_what_a_consumer_has_not_applied(ipython, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STATE_DIR", str(tmp_path / "state"))
    session = ipython.user_ns["wb"]
    source, target = _setup(session, tmp_path)
    session.consume("totals", "source", _aggregate_apply(target, None), target=target)
    write_deltalake(source, pa.table({"id": [9], "grp": ["z"], "amount": [1]}), mode="append")
    pending = ipython.run_line_magic("cdf", "source --consume totals")
    assert [(r["id"], r["_commit_version"]) for r in pending.to_pyarrow().to_pylist()] == [(9, 1)]
    fresh = ipython.run_line_magic("cdf", "source --consume nobody_yet")
    assert fresh.to_pyarrow().num_rows == 4  # a consumer without a cursor starts at 0


def test_cdf_magic_consumes_with_a_notebook_function_exactly_once(ipython, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STATE_DIR", str(tmp_path / "state"))
    session = ipython.user_ns["wb"]
    source, target = _setup(session, tmp_path)
    ipython.user_ns["add_up"] = _aggregate_apply(target, None)
    first = ipython.run_line_magic(
        "cdf", f"source --consume totals --apply add_up --target {target}"
    )
    assert (first.start, first.end) == (0, 0)
    again = ipython.run_line_magic(
        "cdf", f"source --consume totals --apply add_up --target {target}"
    )
    assert not again.applied
    assert _target_totals(target) == _recompute(source)
    from workbench.errors import UsageError

    with pytest.raises(UsageError, match="--apply and --target go together"):
        ipython.run_line_magic("cdf", "source --consume totals --apply add_up")
    with pytest.raises(UsageError, match="is not a function in this notebook"):
        ipython.run_line_magic("cdf", f"source --consume totals --apply nothing --target {target}")


def test_a_new_consumer_starts_where_the_feed_was_turned_on(session, tmp_path):
    source, target = str(tmp_path / "late"), str(tmp_path / "target")
    write_deltalake(source, pa.table({"id": [0], "grp": ["a"], "amount": [3]}))
    DeltaTable(source).alter.set_table_properties({"delta.enableChangeDataFeed": "true"})
    write_deltalake(source, pa.table({"id": [1], "grp": ["b"], "amount": [4]}), mode="append")
    write_deltalake(target, _TARGET_SCHEMA.empty_table())
    session.register_delta("late", source)
    store = CursorStore(tmp_path / "state")
    done = session.consume(
        "totals", "late", _aggregate_apply(target, None), target=target, store=store
    )
    assert (done.start, done.end) == (1, 2)
    assert _target_totals(target) == {"b": 4}  # the changes since the feed was turned on


def test_a_range_without_data_changes_advances_the_cursor(session, tmp_path):
    source, target = _setup(session, tmp_path)
    store = CursorStore(tmp_path / "state")
    session.consume("totals", "source", _aggregate_apply(target, None), target=target, store=store)
    DeltaTable(source).alter.set_table_properties(
        {"delta.logRetentionDuration": "interval 31 days"}
    )

    def nothing_to_write(changes: Any, commit: Any) -> None:  # noqa: ARG001
        assert changes.to_pyarrow().num_rows == 0

    done = session.consume("totals", "source", nothing_to_write, target=target, store=store)
    assert (done.start, done.end) == (1, 1)
    assert DeltaTable(target).transaction_version(app_id("totals", source)) == 1


def test_two_names_of_one_table_share_one_cursor(session, tmp_path):
    source, target = _setup(session, tmp_path)
    session.register_delta("source_again", source)
    store = CursorStore(tmp_path / "state")
    first = session.consume(
        "totals", "source", _aggregate_apply(target, None), target=target, store=store
    )
    second = session.consume(
        "totals", "source_again", _aggregate_apply(target, None), target=target, store=store
    )
    assert first.applied
    assert not second.applied
    assert _target_totals(target) == _recompute(source)


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over(session, tmp_path):
    import socket
    import sqlite3

    source, target = _setup(session, tmp_path)
    store = CursorStore(tmp_path / "state")
    dead = f"{socket.gethostname()}:999999999:deadbeef"
    with sqlite3.connect(store.path) as db:
        db.execute(
            "INSERT INTO cursors (consumer, source, owner, lease_until) VALUES (?, ?, ?, ?)",
            ("totals", source, dead, 1e12),
        )
    done = session.consume(
        "totals", "source", _aggregate_apply(target, None), target=target, store=store
    )
    assert done.applied


def test_a_long_apply_keeps_its_lease_so_a_second_run_is_refused(session, tmp_path):
    import threading
    import time

    source, target = _setup(session, tmp_path)
    store = CursorStore(tmp_path / "state")
    inside, release = threading.Event(), threading.Event()
    outcome: list[BaseException | None] = []

    def slow(changes: Any, commit: Any) -> None:
        inside.set()
        release.wait(10)
        _aggregate_apply(target, None)(changes, commit)

    def first_run() -> None:
        try:
            session.consume("totals", "source", slow, target=target, store=store, lease_seconds=0.3)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            outcome.append(exc)

    runner = threading.Thread(target=first_run)
    runner.start()
    assert inside.wait(10)
    time.sleep(1.0)  # more than three leases: the heartbeat renews it
    second = workbench_session_like(session)
    with pytest.raises(CursorConflictError):
        second.consume(
            "totals", "source", _aggregate_apply(target, None), target=target, store=store
        )
    release.set()
    runner.join(10)
    assert outcome == [None]
    assert _target_totals(target) == _recompute(source)


def workbench_session_like(session: workbench.Session) -> workbench.Session:
    """Another session over the same Delta table (as a second notebook would have)."""
    import workbench as wb

    other = wb.RuntimeProfile().session()
    other.register_delta("source", session.delta_tables["source"].uri)
    return other

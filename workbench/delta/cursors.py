"""Cursors over a Delta table's change data feed: exactly-once incremental consumers.

``Session.consume(consumer, table, apply, target=URI)`` reads the changes of ``table`` after
the consumer's cursor up to the newest version ``end``, and calls ``apply(changes, commit)``.
``apply`` writes its output to the Delta table at ``target`` in ONE commit made with
``commit_properties=commit`` (``write_deltalake``, ``merge``, ``delete`` and ``update`` all
take it): that commit carries a Delta transaction action ``(app_id, end)``, so the output
and the cursor advance together, atomically, in the target's log. Hence:

- a crash before that commit (while reading, inside ``apply``) changes nothing: the next run
  reads the same range again;
- a crash after it (before the workbench has looked) loses nothing and applies nothing
  twice: the next run starts after ``end``, which the target's log says was applied.

The cursor's truth is the target's ``transaction_version(app_id)``; a small SQLite store
under the state directory keeps a lease per (consumer, table), so two runs of one consumer
at once do not both read and apply (the second gets :class:`CursorConflictError`), and a mirror
of each cursor for ``%cdf TABLE --consume NAME`` (the changes still pending for a consumer).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.delta.table import DeltaError

if TYPE_CHECKING:
    from collections.abc import Iterator

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (
    consumer TEXT NOT NULL,
    source TEXT NOT NULL,
    version INTEGER,
    owner TEXT,
    lease_until REAL,
    PRIMARY KEY (consumer, source)
)
"""


class CursorConflictError(DeltaError):
    """Another run of the same consumer holds the cursor."""


def state_dir() -> Path:
    """Where the workbench keeps state: ``$WORKBENCH_STATE_DIR`` or ``~/.cache/workbench/state``."""
    configured = os.environ.get("WORKBENCH_STATE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache/workbench/state"


def app_id(consumer: str, source: str) -> str:
    """The Delta transaction id under which ``consumer`` records what it applied of ``source``.

    ``source`` is the table's location, so two names for one table share a cursor and two
    tables of one name do not; JSON keeps ("a/b", "c") apart from ("a", "b/c").
    """
    return "workbench-cdf:" + json.dumps([consumer, source], ensure_ascii=False)


def feed_starts(location: str) -> int:
    """The first version of the newest run of commits with the change data feed on.

    Read from the commit files' ``metaData`` actions of the local table at ``location``
    (0 when the log holds no such action, e.g. after a checkpoint-only cleanup).
    """
    log = Path(location.removeprefix("file://")) / "_delta_log"
    start = 0
    enabled = False
    for commit in sorted(log.glob("[0-9]" * 20 + ".json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line) if line.strip() else {}
            if "metaData" not in action:
                continue
            on = action["metaData"].get("configuration", {}).get("delta.enableChangeDataFeed")
            now = str(on).lower() == "true"
            if now and not enabled:
                start = int(commit.stem)
            enabled = now
    return start


@dataclass(frozen=True)
class Consumed:
    """What one ``consume`` did: the range it applied (``None`` when nothing was new)."""

    consumer: str
    table: str
    start: int | None
    end: int | None
    cursor: int | None
    """The last version applied, after this run."""

    @property
    def applied(self) -> bool:
        return self.end is not None


def _alive(owner: str) -> bool:
    """Whether the process holding a lease may still run (a dead one on this host may not)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CursorStore:
    """Leases and cursor mirrors in SQLite (``cursors.sqlite`` under ``directory``)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or state_dir()) / "cursors.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def lease(self, consumer: str, source: str, seconds: float) -> Iterator[None]:
        """Hold the cursor of (consumer, source) for this block, or raise CursorConflictError."""
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        now = time.time()
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT owner, lease_until FROM cursors WHERE consumer = ? AND source = ?",
                (consumer, source),
            ).fetchone()
            if (
                row is not None
                and row[0] is not None
                and row[1] is not None
                and row[1] > now
                and _alive(row[0])
            ):
                db.execute("ROLLBACK")
                until = time.strftime("%H:%M:%S", time.localtime(row[1]))
                msg = (
                    f"consumer {consumer!r} of {source!r} is being run by {row[0]} (its lease "
                    f"lasts until {until}); wait for it to finish, or, if it died, run again "
                    "after the lease ends"
                )
                raise CursorConflictError(msg)
            db.execute(
                "INSERT INTO cursors (consumer, source, owner, lease_until) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (consumer, source) DO UPDATE SET owner = excluded.owner, "
                "lease_until = excluded.lease_until",
                (consumer, source, owner, now + seconds),
            )
            db.execute("COMMIT")
        # A heartbeat renews the lease while this process runs, so only a process that died
        # (or stalled for a whole lease) loses it: a long apply keeps its cursor.
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(seconds / 3):
                with self._connect() as db:
                    db.execute(
                        "UPDATE cursors SET lease_until = ? "
                        "WHERE consumer = ? AND source = ? AND owner = ?",
                        (time.time() + seconds, consumer, source, owner),
                    )

        heartbeat = threading.Thread(target=renew, name="workbench-cursor-lease", daemon=True)
        heartbeat.start()
        try:
            yield
        finally:
            stop.set()
            heartbeat.join()
            with self._connect() as db:
                db.execute(
                    "UPDATE cursors SET owner = NULL, lease_until = NULL "
                    "WHERE consumer = ? AND source = ? AND owner = ?",
                    (consumer, source, owner),
                )

    def record(self, consumer: str, source: str, version: int | None) -> None:
        """Mirror the cursor (the target's log is its truth)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO cursors (consumer, source, version) VALUES (?, ?, ?) "
                "ON CONFLICT (consumer, source) DO UPDATE SET version = excluded.version",
                (consumer, source, version),
            )

    def position(self, consumer: str, source: str) -> int | None:
        """The mirrored cursor: the last version the consumer applied, if any."""
        with self._connect() as db:
            row = db.execute(
                "SELECT version FROM cursors WHERE consumer = ? AND source = ?",
                (consumer, source),
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

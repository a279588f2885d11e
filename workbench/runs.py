"""Run records: what happened to one execution, as a value.

A :class:`RunRecord` is a frozen snapshot; the Result that owns the run
updates a private tracker as batches arrive, so ``result.run`` always tells
the rows and batches read *so far* and the status (planned, running,
finished, failed, cancelled).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


class RunStatus(StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


def new_run_id() -> str:
    """Sortable by start time, unique within and across processes."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class DeltaFiles:
    """How many data files of one Delta table a run read, out of its snapshot's files."""

    table: str
    version: int | None
    files_total: int
    files_scanned: int | None


@dataclass(frozen=True)
class RunRecord:
    """One execution: identity, SQL, timing, volume and outcome."""

    run_id: str
    sql: str
    label: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    elapsed_s: float
    """Seconds from submission to finish, or to the latest read while running."""
    rows: int
    batches: int
    bytes: int
    """Arrow buffer bytes of the batches read so far."""
    status: RunStatus
    error: str | None = None
    delta_files: tuple[DeltaFiles, ...] = ()
    """Per Delta table scanned: files in its snapshot and files read (set when the run ends)."""
    lane: str = "sql"
    """How the query was built: ``sql``, ``ibis`` (direct lane) or ``ibis-sql`` (fallback)."""
    lane_gaps: tuple[str, ...] = ()
    """For ``ibis-sql``: the Ibis operations the direct lane does not cover."""
    policy_hash: str | None = None
    """The hash of the SQL gate's policy the statement passed under."""
    canonical_sql: str | None = None
    """The gate's canonical SQL of the statement (``None``: SQLGlot could not get there)."""
    gate_gaps: tuple[str, ...] = ()
    """What SQLGlot could not handle in the statement (recorded, never held against it)."""
    rewrites: tuple[str, ...] = ()
    """What the gate rewrote: macros, named arguments, domain operators."""
    plan_cache: str | None = None
    """``hit`` or ``miss`` of the plan cache; ``None`` when the plan is not cacheable."""
    cache_settings: tuple[str, ...] = ()
    """The runtime cache settings in effect (``name=value``, from ``df_settings``)."""
    engine: str = "local"
    """Where the query ran: ``local``, ``ballista:standalone`` or ``ballista://host:port``."""
    retried: str | None = None
    """Set when the run ran out of memory before its first batch and ran again with a plan
    that spills (sort-merge joins): the error of the first attempt."""


class RunTracker:
    """Mutable side of a run; hands out :class:`RunRecord` snapshots."""

    def __init__(
        self,
        sql: str,
        label: str | None = None,
        on_event: Callable[[RunRecord, str], None] | None = None,
        on_end: Callable[[RunRecord], RunRecord] | None = None,
    ) -> None:
        self._on_event = on_event
        self._on_end = on_end
        self._started = time.perf_counter()
        self._record = RunRecord(
            run_id=new_run_id(),
            sql=sql,
            label=label,
            started_at=dt.datetime.now(dt.UTC),
            finished_at=None,
            elapsed_s=0.0,
            rows=0,
            batches=0,
            bytes=0,
            status=RunStatus.PLANNED,
        )
        if on_event is not None:
            on_event(self._record, "start")

    @property
    def record(self) -> RunRecord:
        return self._record

    def _elapsed(self) -> float:
        return time.perf_counter() - self._started

    @property
    def ended(self) -> bool:
        """Whether the run is closed (finished, failed, cancelled, or closed as planned)."""
        return self._record.finished_at is not None

    def note(self, **facts: object) -> None:
        """Add facts known once the statement is planned (gate verdict, lane, cache)."""
        self._record = replace(self._record, **facts)  # type: ignore[arg-type]
        if self._on_event is not None:
            self._on_event(self._record, "planned")

    def batch(self, rows: int, nbytes: int) -> None:
        if self.ended:
            return  # a batch that raced a cancel: the run is over
        r = self._record
        self._record = replace(
            r,
            rows=r.rows + rows,
            batches=r.batches + 1,
            bytes=r.bytes + nbytes,
            status=RunStatus.RUNNING,
            elapsed_s=self._elapsed(),
        )

    def end(self, status: RunStatus, error: str | None = None) -> None:
        """Close the run with ``status`` (PLANNED for a plan-only run); later calls are ignored."""
        if self.ended:
            return
        self._record = replace(
            self._record,
            status=status,
            error=error,
            finished_at=dt.datetime.now(dt.UTC),
            elapsed_s=self._elapsed(),
        )
        if self._on_end is not None:
            # Facts only known at the end, such as the files a Delta scan read.
            self._record = self._on_end(self._record)
        if self._on_event is not None:
            self._on_event(self._record, "finish")

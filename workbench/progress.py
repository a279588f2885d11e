"""Live progress of a running query, from metrics that update while it streams.

``DataFrame.execution_plan()`` returns the plan ``execute_stream()`` is
running, and its operators' metrics are live counters. A :class:`Watcher`
polls them from a background thread while the main thread waits for the
next batch, and hands :class:`Progress` values to a callback (the notebook
view). Short queries show nothing: the first report comes after ``delay_s``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from datafusion.plan import ExecutionPlan

    from workbench.result import Result


@dataclass(frozen=True)
class Progress:
    """How far a run has got."""

    run_id: str
    elapsed_s: float
    rows_out: int
    """Rows the plan's root has produced so far."""
    rows_scanned: int
    """Rows the plan's sources (its leaves: file scans, generators) have produced so far."""
    done: bool = False
    engine: str = "local"
    """Where the query runs (``run.engine``)."""
    job: str | None = None
    """On a cluster: the job's id and state, e.g. ``038GQ4 running, stages 2/5``."""


def _scanned(plan: ExecutionPlan) -> int:
    total = 0
    stack = [plan]
    while stack:
        node = stack.pop()
        children = node.children()
        if not children:
            metrics = node.metrics()
            total += (metrics.output_rows or 0) if metrics is not None else 0
        stack.extend(children)
    return total


def snapshot(result: Result, *, done: bool = False) -> Progress:
    """The run's progress as of now, read from the live plan (a cluster job's from the
    scheduler: its stages; its rows arrive when the job has ended)."""
    job = result.cluster_job
    if job is not None:
        return Progress(
            run_id=result.run.run_id,
            elapsed_s=time.perf_counter() - result.started,
            rows_out=result.run.rows,
            rows_scanned=0,
            done=done,
            engine=result.run.engine,
            job=job.progress(),
        )
    plan = result.dataframe.execution_plan()
    metrics = plan.metrics()
    return Progress(
        run_id=result.run.run_id,
        elapsed_s=time.perf_counter() - result.started,
        rows_out=(metrics.output_rows or 0) if metrics is not None else 0,
        rows_scanned=_scanned(plan),
        done=done,
    )


class Watcher:
    """Reports ``snapshot(result)`` to ``report`` every ``interval_s`` after ``delay_s``."""

    def __init__(
        self,
        result: Result,
        report: Callable[[Progress], None],
        *,
        delay_s: float = 0.5,
        interval_s: float = 0.25,
    ) -> None:
        self._result = result
        self._report = report
        self._delay_s = delay_s
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="workbench-progress", daemon=True)
        self.reported = 0

    def _run(self) -> None:
        if self._stop.wait(self._delay_s):
            return
        while not self._stop.is_set():
            try:
                self._report(snapshot(self._result))
            except Exception:  # noqa: BLE001  (progress is best effort; the query goes on)
                return
            self.reported += 1
            self._stop.wait(self._interval_s)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        if self.reported:
            # Settle the view on the final numbers, without masking the query's own error.
            try:
                self._report(snapshot(self._result, done=True))
            except Exception:
                if exc is None:
                    raise

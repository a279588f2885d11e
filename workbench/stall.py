"""Stall watch: a query that waits with the process idle is interrupted, to run again.

DataFusion 55 can deadlock under a memory limit: when ``RepartitionExec`` spills, its
reader may wait on one spill file for a batch that sits in another, and every worker parks
(apache/datafusion#24883, fixed in #24891 after 55). The query then neither returns nor
fails. No setting avoids that path while keeping partitions, so the workbench watches for
it: while the main thread waits for a batch, a monitor thread samples the process's CPU
time, and a wait of ``window_s`` during which the process used under ``idle_share`` of one
core is a stall. A deadlocked plan uses none; ``idle_share`` is a tenth of a core because an
in-process Ballista cluster (``ballista:standalone``) keeps a process busy at about 7% when
idle: its executor asks for work every 50 ms (on threads named ``wb-standalone``, not counted)
and an unnamed thread of Ballista's ticks (3.4%, counted). The monitor then interrupts the
main thread (as Ctrl-C does; DataFusion's wait checks for signals), and the Result runs the
query again on one partition, where no ``RepartitionExec`` is planned.

Only the main thread can be interrupted: a pull on another thread is not watched.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

_NOT_THE_QUERY = "wb-standalone"
"""Thread name of the standalone Ballista cluster's runtime (rust/src/engine/client.rs)."""
_TASKS = Path("/proc/self/task")
_TICK_S = 0.25
_IDLE_EXIT_S = 5.0
"""A monitor with no pull to watch for this long ends (a session is not a thread forever)."""


def _cpu_s() -> float:
    """CPU seconds of this process, without the standalone cluster's threads."""
    used = time.process_time()
    if not _TASKS.is_dir():
        return used
    ticks = 0
    for task in _TASKS.iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if name.startswith(_NOT_THE_QUERY):
            values = fields.split()
            ticks += int(values[11]) + int(values[12])  # utime, stime
    return used - ticks / os.sysconf("SC_CLK_TCK")


class StallWatch:
    """Watches pulls on the main thread; ``stalled`` says whether it interrupted the last."""

    def __init__(self, window_s: float, idle_share: float = 0.1) -> None:
        self.window_s = window_s
        self.idle_share = idle_share
        self.stalled = False
        self._pulling = False
        self._samples: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()
        self._monitor: threading.Thread | None = None

    @contextlib.contextmanager
    def pulling(self) -> Iterator[None]:
        """The block waits for a batch: watch it (on the main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        with self._lock:
            self.stalled = False
            self._samples.clear()
            self._samples.append((time.monotonic(), _cpu_s()))
            self._pulling = True
            if self._monitor is None or not self._monitor.is_alive():
                self._monitor = threading.Thread(target=self._watch, name="wb-stall", daemon=True)
                self._monitor.start()
        try:
            yield
        finally:
            with self._lock:
                self._pulling = False

    def _watch(self) -> None:
        idle_since = time.monotonic()
        while True:
            time.sleep(_TICK_S)
            with self._lock:
                if not self._pulling:
                    if time.monotonic() - idle_since > _IDLE_EXIT_S:
                        self._monitor = None  # the next pull starts another
                        return
                    continue
                idle_since = time.monotonic()
                now, cpu = time.monotonic(), _cpu_s()
                self._samples.append((now, cpu))
                while len(self._samples) > 1 and now - self._samples[1][0] >= self.window_s:
                    self._samples.popleft()  # keep one sample at least a window old
                first_at, first_cpu = self._samples[0]
                if now - first_at < self.window_s:
                    continue
                if (cpu - first_cpu) / (now - first_at) >= self.idle_share:
                    continue
                self.stalled = True
                self._pulling = False
            _thread.interrupt_main()

"""A cluster on this machine: a scheduler and executors as child processes on free
loopback ports (``python -m workbench.cluster``), for tests, bench/ and a notebook.

    with LocalCluster(executors=2) as cluster:
        session = RuntimeProfile(engine=cluster.engine).session()
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from workbench.cluster import ClusterError, parse_engine, rest

if TYPE_CHECKING:
    import os

START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port nothing listens on now (the OS's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """One scheduler and ``executors`` executors of ``slots`` task slots each; their logs
    (Ballista's, at ``log`` level) go to files in ``log_dir``."""

    def __init__(
        self,
        executors: int = 2,
        *,
        slots: int = 1,
        log: str = "info",
        executor_timeout_s: int = 20,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.engine = f"ballista://127.0.0.1:{self.port}"
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="wb-cluster-"))
        self._log = log
        self._timeout = executor_timeout_s
        self._executors = executors
        self._slots = slots
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.executors: list[subprocess.Popen[bytes]] = []

    def _start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        out = (self.log_dir / f"{name}.log").open("wb")
        command = [sys.executable, "-m", "workbench.cluster", *args, "--log", self._log]
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def executor_log(self, index: int) -> str:
        return (self.log_dir / f"executor-{index}.log").read_text(errors="replace")

    def api(self, path: str) -> Any:
        """The scheduler's REST API (``/api/executors``, ``/api/job/ID``, ...)."""
        return rest(parse_engine(self.engine), path, 5.0)

    def start(self) -> Self:
        self.scheduler = self._start(
            "scheduler",
            "scheduler",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--executor-timeout",
            str(self._timeout),
        )
        self._wait(lambda: self.api("/api/version"), "the scheduler")
        for index in range(self._executors):
            flight = free_port()
            self.executors.append(
                self._start(
                    f"executor-{index}",
                    "executor",
                    "--scheduler",
                    f"127.0.0.1:{self.port}",
                    "--bind",
                    f"127.0.0.1:{flight}",
                    "--grpc-port",
                    str(free_port()),
                    "--slots",
                    str(self._slots),
                )
            )
        self._wait(lambda: len(self.api("/api/executors")) >= self._executors or None, "executors")
        return self

    def _wait(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for process in [self.scheduler, *self.executors]:
                if process is not None and process.poll() is not None:
                    self.stop()
                    msg = f"{what} of the local cluster exited: see {self.log_dir}"
                    raise ClusterError(msg)
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        msg = f"{what} of the local cluster did not start in {START_TIMEOUT_S:g} s"
        msg += f": see {self.log_dir}"
        raise ClusterError(msg)

    def kill_executor(self, index: int) -> None:
        """Kill an executor at once (SIGKILL), as a crashed machine would go."""
        self.executors[index].send_signal(signal.SIGKILL)
        self.executors[index].wait()

    def stop(self) -> None:
        for process in [*self.executors, self.scheduler]:
            if process is not None and process.poll() is None:
                process.kill()  # an executor asked to stop waits for its running tasks
                process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

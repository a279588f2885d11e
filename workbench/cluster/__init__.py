"""Scale-out on Apache Ballista 55: which engine runs a query, and shipping it there.

The workbench session stays the user's catalog: DDL, SET and the plans of queries are made
there. A query for a cluster engine goes as its logical plan (datafusion-proto bytes) to a
Ballista client in the extension, which submits it as a job; its rows come back as record
batches when the job has succeeded. Engines:

* ``local``: the session's own DataFusion (the default);
* ``ballista://host:port``: a scheduler started with ``python -m workbench.cluster
  scheduler`` (port 50050 if not given);
* ``ballista:standalone``: a scheduler and an executor inside this process, for laptops
  and tests.

What a cluster can run: tables whose data it can read by path (``CREATE EXTERNAL TABLE``
over Parquet/CSV/JSON files on storage every executor sees), DataFusion's functions and the
workbench's Rust functions. In-memory tables, Delta tables, table functions and Python UDFs
live in this process only: a query using one is refused before it is sent, with its name.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from workbench import extension
from workbench.cluster.stages import ran, stage_tree
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import datafusion

    from workbench.plans import PlanTree

LOCAL = "local"
STANDALONE = "ballista:standalone"
DEFAULT_PORT = 50050
PROBE_TIMEOUT_S = 3.0
POLL_MS = 200
"""How long one wait for a batch lasts: Ctrl-C is seen between waits."""


class ClusterError(WorkbenchError):
    """A cluster could not be reached, refused a query, or its job failed."""


@dataclass(frozen=True)
class Engine:
    """Where queries run: ``local``, ``standalone`` or ``remote`` (with its address)."""

    kind: str
    host: str | None = None
    port: int | None = None

    @property
    def name(self) -> str:
        """The engine as written in a profile and recorded on runs."""
        if self.kind == "remote":
            return f"ballista://{self.host}:{self.port}"
        return STANDALONE if self.kind == "standalone" else LOCAL

    @property
    def url(self) -> str | None:
        """The scheduler's gRPC (and REST) address, for a remote engine."""
        return f"http://{self.host}:{self.port}" if self.kind == "remote" else None


_REMOTE = re.compile(r"ballista://(?P<host>\[[0-9A-Fa-f:.]+\]|[\w.-]+)(?::(?P<port>\d+))?/?")


def parse_engine(text: str) -> Engine:
    """``local``, ``ballista:standalone`` or ``ballista://host[:port]``."""
    given = text.strip()
    if given.lower() == LOCAL:
        return Engine("local")
    if given.lower() == STANDALONE:
        return Engine("standalone")
    found = _REMOTE.fullmatch(given)
    port = int(found["port"]) if found and found["port"] else DEFAULT_PORT
    if found is None or not 0 < port < 65536:
        msg = (
            f"engine {text!r}: use 'local', 'ballista:standalone' or 'ballista://HOST:PORT' "
            "(a scheduler started with `python -m workbench.cluster scheduler`)"
        )
        raise ClusterError(msg)
    return Engine("remote", found["host"], port)


# -- errors -----------------------------------------------------------------------------

_VERSION = re.compile(
    r"Ballista client (\S+) cannot be used with scheduler (\d[\w.-]*?)\.?(?:\s|$)"
)
_NO_HEADER = re.compile(r"cannot be used with scheduler older than")
_JOB_FAILED = re.compile(r"Job (\S+) failed: (.*)", re.DOTALL)
_NO_FUNCTION = re.compile(r"(?:no UDF|no UDAF|no UDWF|function) named ['\"]?(\w+)", re.IGNORECASE)
_UNREACHABLE = ("ConnectError", "Connection refused", "tcp connect error", "transport error")


def _where(engine: Engine) -> str:
    return f"the Ballista scheduler at {engine.host}:{engine.port}"


def worded(engine: Engine, message: str) -> str:
    """Ballista's error (often a Debug dump of a gRPC status) as what happened and what to do."""
    if _NO_HEADER.search(message):
        return (
            f"{_where(engine)} runs a Ballista older than 55 (it sends no version): start a "
            "scheduler of this workbench's build (`python -m workbench.cluster scheduler`)"
        )
    version = _VERSION.search(message)
    if version is not None:
        return (
            f"{_where(engine)} runs Ballista {version[2]}, and this workbench speaks Ballista "
            f"{version[1]}: their major versions must match. Start a scheduler of this "
            "workbench's build (`python -m workbench.cluster scheduler`), or use "
            "`--engine local`"
        )
    if any(sign in message for sign in _UNREACHABLE):
        return _unreachable(engine, _first_reason(message))
    missing = _NO_FUNCTION.search(message)
    if "could not be decoded" in message and missing is not None:
        return (
            f"function {missing[1]} is not known to the cluster: only DataFusion's and the "
            "workbench's Rust functions run there. Run this query with `--engine local`"
        )
    failed = _JOB_FAILED.search(message)
    if failed is not None:
        return f"the cluster's job {failed[1]} failed: {_first_reason(failed[2])}"
    return message


def _unreachable(engine: Engine, reason: str) -> str:
    if engine.kind != "remote":
        return (
            f"the standalone scheduler of this process does not answer ({reason}): restart "
            "the kernel, or run the cell with `--engine local`"
        )
    return (
        f"{_where(engine)} does not answer ({reason}): start it with "
        f"`python -m workbench.cluster scheduler --bind {engine.host}:{engine.port}`, "
        "or run the cell with `--engine local`"
    )


def _first_reason(message: str) -> str:
    """The innermost readable reason of a nested Debug dump."""
    for pattern in (r'message: "((?:[^"\\]|\\.)*)"', r"ConnectError\(\"([^\"]+)\"", r"kind: (\w+)"):
        found = re.search(pattern, message)
        if found is not None and found[1]:
            return found[1].replace('\\"', '"')
    first = message.strip().splitlines()[0].rstrip('")') if message.strip() else ""
    return first[:300] or "no reason given"


def rest(engine: Engine, path: str, timeout_s: float) -> Any:
    """The JSON a remote engine's scheduler answers at ``path`` of its REST API."""
    assert engine.url is not None, "only a remote scheduler has a REST API"
    with urllib.request.urlopen(engine.url + path, timeout=timeout_s) as reply:  # noqa: S310  (http URL built by parse_engine)
        return json.loads(reply.read())


def probe(engine: Engine, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """The Ballista version of a remote engine's scheduler (its REST API, on the gRPC port).

    Raises :class:`ClusterError` saying what is wrong: nothing listens, something else
    listens, or the scheduler's major version is not this build's.
    """
    version: str | None = None
    for path in ("/api/version", "/api/state"):  # /api/state: schedulers before 55
        try:
            version = rest(engine, path, timeout_s).get("version")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                continue
            version = None
        except (urllib.error.URLError, OSError) as exc:
            raise ClusterError(_unreachable(engine, str(getattr(exc, "reason", exc)))) from None
        except ValueError:
            version = None
        break
    if not isinstance(version, str):
        msg = (
            f"{engine.host}:{engine.port} answers, but not as a Ballista scheduler (no "
            "version at /api/version): check the address"
        )
        raise ClusterError(msg)
    ours = extension.module().BALLISTA_VERSION
    if version.split(".")[0] != ours.split(".")[0]:
        msg = worded(engine, f"Ballista client {ours} cannot be used with scheduler {version}")
        raise ClusterError(msg)
    return version


# -- shipping a query ---------------------------------------------------------------------


def _scans(plan: datafusion.LogicalPlan) -> Iterator[str]:
    """The table names the plan scans (sub-queries included)."""
    variant = plan.to_variant()
    if type(variant).__name__ == "TableScan":
        yield variant.table_name()
    for child in plan.inputs():
        yield from _scans(child)


def _functions_called(plan_text: str, names: Iterable[str]) -> list[str]:
    lowered = plan_text.lower()
    return sorted(n for n in names if re.search(rf"\b{re.escape(n.lower())}\(", lowered))


class Cluster:
    """One engine's client: probed at the first query, then reused by the session."""

    def __init__(self, engine: Engine, settings: dict[str, str], slots: int) -> None:
        self.engine = engine
        self._settings = sorted(settings.items())
        self._slots = slots
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            ext = extension.module()
            try:
                if self.engine.kind == "standalone":
                    self._client = ext.ClusterClient.standalone(self._slots, self._settings)
                else:
                    probe(self.engine)
                    self._client = ext.ClusterClient(self.engine.url, self._settings)
            except ext.ClusterError as exc:
                raise ClusterError(worded(self.engine, str(exc))) from None
        return self._client

    def plan_bytes(
        self,
        df: datafusion.DataFrame,
        ctx: datafusion.SessionContext,
        *,
        local_tables: dict[str, str],
        python_functions: Iterable[str],
    ) -> bytes | None:
        """The query's logical plan as bytes for the cluster; ``None`` for a query that
        reads only the session's catalog and diagnostics (``information_schema``,
        ``wb_runs``...), which runs here, as Ballista runs ``information_schema`` queries.
        A query reading any other table of this process (in memory, Delta) or calling a
        Python function is refused with a :class:`ClusterError` naming it."""
        # Optimized: datafusion-proto cannot write sub-queries, which the optimizer turns
        # into joins. The scheduler optimizes it again for the cluster.
        plan = df.optimized_logical_plan()
        scanned = list(dict.fromkeys(_scans(plan)))
        if scanned and all(_is_catalog(t) for t in scanned):
            return None
        for table in scanned:
            why = local_tables.get(table) or (_CATALOG if _is_catalog(table) else None)
            if why is not None:
                raise ClusterError(self._refused(table, why))
        called = _functions_called(plan.display_indent(), python_functions)
        if called:
            msg = (
                f"{', '.join(called)} {'is a' if len(called) == 1 else 'are'} Python "
                f"function{'s' if len(called) > 1 else ''} of this session and cannot run on "
                f"{self.engine.name}: the executors know DataFusion's and the workbench's Rust "
                "functions only. Run the query with `--engine local`"
            )
            raise ClusterError(msg)
        try:
            return plan.to_bytes(ctx)
        except Exception as exc:  # noqa: BLE001  (datafusion-proto's refusal, worded)
            # Only now is each table tried alone, to name the one that cannot travel.
            for table in scanned:
                if not _travels(ctx, table):
                    raise ClusterError(self._refused(table, _IN_PROCESS)) from None
            text = str(exc).removeprefix("DataFusion error: ").splitlines()[0]
            msg = f"the query's plan cannot be sent to {self.engine.name}: {text}"
            raise ClusterError(msg) from None

    def _refused(self, table: str, why: str) -> str:
        return (
            f"table {table} cannot run on {self.engine.name}: {why}. A cluster reads "
            "tables by path: CREATE EXTERNAL TABLE over files every executor can read "
            "(shared storage or an object store), or run the query with `--engine local`"
        )

    def submit(self, plan: bytes) -> ClusterStream:
        client = self.client()
        ext = extension.module()
        try:
            query = client.submit(plan)
        except ext.ClusterError as exc:
            raise ClusterError(worded(self.engine, str(exc))) from None
        return ClusterStream(self.engine, query)


_CATALOG = "it is this session's catalog or diagnostics"
_IN_PROCESS = "it lives in this process (in memory, or a provider only this session has)"


def _is_catalog(table: str) -> bool:
    """A table of the session's catalog or diagnostics, which only this process has."""
    parts = table.lower().split(".")
    return "information_schema" in parts or parts[-1].startswith("wb_")


def _travels(ctx: datafusion.SessionContext, table: str) -> bool:
    """Whether a scan of ``table`` can be written into a plan (its provider encodes)."""
    try:
        ctx.table(table).logical_plan().to_bytes(ctx)
    except Exception:  # noqa: BLE001  (any encoding failure means it stays here)
        return False
    return True


class ClusterStream:
    """The batches of one cluster job, as the Result pulls them; ``cancel`` stops the job."""

    def __init__(self, engine: Engine, query: Any) -> None:
        self.engine = engine
        self._query = query
        self._plan: PlanTree | None = None

    @property
    def job_id(self) -> str | None:
        return self._query.job_id  # type: ignore[no-any-return]

    def __iter__(self) -> ClusterStream:
        return self

    def __next__(self) -> pa.RecordBatch:
        ext = extension.module()
        while True:
            try:
                done, batch = self._query.next_batch(POLL_MS)
            except ext.ClusterError as exc:
                raise ClusterError(worded(self.engine, str(exc))) from None
            if done:
                raise StopIteration
            if batch is not None:
                return pa.RecordBatchReader.from_stream(batch).read_next_batch()

    def cancel(self) -> str | None:
        """Cancel the job on the cluster (tasks running on push-staged executors stop);
        the job id cancelled, if the scheduler had accepted the job."""
        ext = extension.module()
        try:
            return self._query.cancel()  # type: ignore[no-any-return]
        except ext.ClusterError:
            return None  # the scheduler is gone: nothing runs there to stop

    def progress(self) -> str | None:
        """The job's id and state as the scheduler's REST API reports them (a remote
        scheduler; the standalone one has no REST API): ``ID running, stages 2/5``."""
        job = self.job_id
        if job is None or self.engine.url is None:
            return job
        try:
            state = rest(self.engine, f"/api/job/{job}", 1.0)
        except (OSError, ValueError):
            return job
        status = str(state.get("status", "")).lower() or "submitted"
        return f"{job} {status}, stages {state.get('completed_stages')}/{state.get('num_stages')}"

    def plan(self, *, sql: str = "", run_id: str | None = None) -> PlanTree:
        """The stages that ran, with their operators' metrics, as a PlanTree."""
        if self._plan is None:
            ext = extension.module()
            try:
                stages = self._query.stages()
            except ext.ClusterError as exc:
                raise ClusterError(worded(self.engine, str(exc))) from None
            job = f"{self.job_id} on {self.engine.name}"
            self._plan = stage_tree(job, ran(stages), analyzed=True, sql=sql, run_id=run_id)
        return self._plan

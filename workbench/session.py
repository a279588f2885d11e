"""RuntimeProfile -> Session: a configured DataFusion SessionContext.

A :class:`RuntimeProfile` is a frozen value that says how a session runs
(partitions, memory, spill, caches, read-only, extension components);
``profile.session()`` builds the ``datafusion.SessionContext``, registers
the Rust components and validates them.

Cache policy: DataFusion's list-files cache makes a long-lived session blind
to files added, deleted or overwritten under a registered directory. The
default :class:`CachePolicy` therefore turns that cache off; metadata and
statistics caches keep DataFusion's defaults (they are keyed by file size and
modification time). Opt into listing caches with ``CachePolicy(list_files_limit_bytes=...)``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shlex
import threading
import time
import warnings
import weakref
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datafusion
import pyarrow.dataset
from datafusion import RuntimeEnvBuilder, SessionConfig, SessionContext, SQLOptions
from datafusion.catalog import Table
from datafusion.expr import Expr

from workbench import extension, functions, plans, udf_policy
from workbench.cluster import Cluster, ClusterError, ClusterStream, Engine, parse_engine
from workbench.delta import (
    DeltaError,
    DeltaOptions,
    DeltaTable,
    PruningReport,
    cdf,
    cursors,
    is_delta_ddl,
    parse_delta_ddl,
)
from workbench.delta import names as delta_names
from workbench.delta.ddl import redact as redact_delta_secrets
from workbench.delta.table import no_remote_stores
from workbench.diagnostics import DiagnosticsSink
from workbench.errors import (
    ArgumentError,
    ParameterError,
    QueryCancelledError,
    ReadOnlyError,
    SqlError,
    SqlLocation,
    WorkbenchError,
    python_error_text,
)
from workbench.ingress import Statement, locate_error, split_statements
from workbench.ingress.gate import Diagnostic, Gate, Prepared, is_function_ddl
from workbench.ingress.macros import GateError
from workbench.ingress.params import check_value, missing_placeholders
from workbench.ingress.statements import Kind, position
from workbench.plan_cache import PlanCache, cache_key, normal_form
from workbench.registry import Registry
from workbench.result import Result, StalledError
from workbench.runs import DeltaFiles, RunRecord, RunStatus, RunTracker, new_run_id
from workbench.stall import StallWatch

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Iterable, Mapping, Sequence

    import pyarrow as pa
    from datafusion.record_batch import RecordBatchStream

    from workbench.plans import PlanTree

DEFAULT_EXTENSIONS = tuple(extension.COMPONENT_KINDS)
_DEFAULT_ARTIFACTS = Path("~/.cache/workbench/artifacts")
_REMEMBERED_RUNS = 200
_BUILD_SIDE_HOLDERS = ("HashJoinExec: mode=CollectLeft", "CrossJoinExec", "NestedLoopJoinExec")
"""Operators whose executed plan keeps the build side it collected once for all partitions
(measured: a kept CollectLeft join held 7 MB of a 12 MB pool and failed the next query; a
partitioned one held nothing)."""
_LET_GO_MIN_BYTES = 8 << 20
"""Without a memory limit, an ended run's plan is let go of when its build sides hold this
much: below it the plan tree's capture (2-4 ms) costs more than the memory is worth."""


def _held_build_bytes(df: datafusion.DataFrame) -> int:
    """Bytes of build sides ``df``'s executed plan keeps (``build_mem_used``; ~0.2 ms)."""
    try:
        plan = df.execution_plan()
    except Exception:  # noqa: BLE001  (a run that failed to plan has nothing to let go)
        return 0
    held, stack = 0, [plan]
    while stack:
        node = stack.pop()
        stack.extend(node.children())
        if node.display().startswith(_BUILD_SIDE_HOLDERS):
            metrics = node.metrics()
            held += int(metrics.sum_by_name("build_mem_used") or 0) if metrics else 1
    return held


_REFUSED = re.compile(r"(DDL|DML|Statement) not supported: (\w+)")
_PARSER_POSITION = re.compile(r" at Line: \d+, Column: \d+")
_PARSER_ERROR = re.compile(r'^SQL error: ParserError\("(.*)"\)$', re.DOTALL)


@dataclass(frozen=True)
class _Remembered:
    """A recent run: its planned DataFrame, tracker, result statement and bound values."""

    df: datafusion.DataFrame
    tracker: RunTracker
    statement: str
    params: Mapping[str, Any]
    prepared: Prepared | None = None
    """The gate's verdict on the statement (its canonical AST goes into bundles)."""
    plan_key: str | None = None
    """The plan cache key of the statement (dropped from the cache if the run fails)."""
    expr: Any = None
    """The Ibis expression of a direct-lane run (its SQL is written only for bundles)."""
    tree: PlanTree | None = None
    """The plan with its final metrics, kept when the executed plan was let go."""
    result: weakref.ref[Result] | None = None
    """The run's Result, while the user holds it."""
    cluster_job: ClusterStream | None = None
    """The run's job on a cluster engine, once its stream was opened (its stages)."""


@dataclass
class _Cell:
    """The statements of one ``Session.sql`` call while they run (mutable, short-lived)."""

    sql: str
    statements: list[Statement]
    target: Statement
    bound: dict[str, Any]
    options: SQLOptions | None
    ran: list[Statement] = field(default_factory=list)
    current: Statement | None = None
    prepared: dict[int, Prepared] = field(default_factory=dict)
    """The gate's verdict on each statement planned so far, by index."""
    cache: dict[int, str] = field(default_factory=dict)
    """``hit`` or ``miss`` of the plan cache, by statement index (cacheable ones only)."""
    keys: dict[int, str] = field(default_factory=dict)
    """The plan cache key of each cacheable statement, by index."""
    engine: Engine = field(default_factory=lambda: Engine("local"))
    """Where the cell's result query runs."""

    def ran_text(self) -> str:
        """Which statements of the cell changed something so far, for messages."""
        if not self.ran:
            return "no statement of the cell ran; nothing changed"
        numbers = ", ".join(str(s.index + 1) for s in self.ran)
        if len(self.ran) == 1:
            return f"statement {numbers} of the cell ran; its changes stay"
        return f"statements {numbers} of the cell ran; their changes stay"


class ConfigError(WorkbenchError):
    """A RuntimeProfile value is out of range."""


_KINDS = (
    (re.compile(r"SQL syntax error|ParserError", re.IGNORECASE), "parse"),
    (re.compile(r"Ambiguous reference", re.IGNORECASE), "ambiguous column"),
    (re.compile(r"No field named|not found in schema", re.IGNORECASE), "unknown column"),
    (re.compile(r"table '[^']*' not found", re.IGNORECASE), "unknown table"),
    (re.compile(r"Invalid function|Unknown function", re.IGNORECASE), "unknown function"),
    (re.compile(r"non-aggregate values|must appear in the GROUP BY", re.IGNORECASE), "grouping"),
    (
        re.compile(
            r"coerce|common type|Cannot infer|Cannot cast|Cast error|No function matches|"
            r"does not support|not supported for|Unsupported (?:data )?type|signature|"
            r"expected .* got|type mismatch|Cannot get result type|Invalid argument error",
            re.IGNORECASE,
        ),
        "type",
    ),
)


def _kind_of(message: str) -> str | None:
    """The kind of a DataFusion error, read from its message (``None``: unknown)."""
    return next((kind for pattern, kind in _KINDS if pattern.search(message)), None)


def _shorten_field_list(message: str, keep: int = 8) -> str:
    """DataFusion lists every field of a wide table; a few make the point."""
    lines = []
    for line in message.splitlines():
        fields = line.removeprefix("Valid fields are ").rstrip(".").split(", ")
        if line.startswith("Valid fields are ") and len(fields) > keep:
            lines.append(f"Valid fields are {', '.join(fields[:keep])}, … ({len(fields)} in all).")
        else:
            lines.append(line)
    return "\n".join(lines)


def _size(nbytes: int) -> str:
    # DataFusion's runtime settings take K/M/G suffixes. Round up, so a small
    # positive limit never silently becomes 0 (which disables the cache).
    return f"{-(-nbytes // 1024)}K"


@dataclass(frozen=True)
class CachePolicy:
    """DataFusion runtime caches. ``None`` keeps DataFusion's default; 0 disables."""

    list_files_limit_bytes: int | None = 0
    list_files_ttl_s: int | None = None
    metadata_limit_bytes: int | None = None
    statistics_limit_bytes: int | None = None

    def statements(self) -> list[str]:
        """The ``SET datafusion.runtime.*`` statements that apply this policy."""
        settings = {
            "list_files_cache_limit": self.list_files_limit_bytes,
            "metadata_cache_limit": self.metadata_limit_bytes,
            "file_statistics_cache_limit": self.statistics_limit_bytes,
        }
        out = [
            f"SET datafusion.runtime.{name} = '{_size(value)}'"
            for name, value in settings.items()
            if value is not None
        ]
        if self.list_files_ttl_s is not None:
            out.append(f"SET datafusion.runtime.list_files_cache_ttl = '{self.list_files_ttl_s}s'")
        return out


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SETTING_ALIASES = {
    "memory_limit": "memory_limit_bytes",
    "max_materialize": "max_materialize_bytes",
}
# The fields a line of text can set, and what their values may be.
_SETTABLE: dict[str, tuple[str, ...]] = {
    "target_partitions": ("count", "none"),
    "batch_size": ("count",),
    "join_single_partition_bytes": ("size", "none"),
    "join_single_partition_rows": ("count", "none"),
    "memory_limit_bytes": ("size", "none"),
    "spill_dir": ("text", "none"),
    "read_only": ("bool",),
    "max_materialize_bytes": ("size",),
    "preview_rows": ("count",),
    "telemetry": ("text", "none"),
    "artifact_dir": ("text", "none"),
    "sql_gate": ("bool",),
    "plan_cache": ("bool",),
    "udf_policy": ("text",),
    "tuning": ("text",),
    "engine": ("text",),
}
_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _setting_value(name: str, value: str, kinds: tuple[str, ...]) -> Any:
    if "none" in kinds and value.lower() in {"none", "default", ""}:
        return None
    if "bool" in kinds and value.lower() in _BOOLS:
        return _BOOLS[value.lower()]
    if "count" in kinds and value.isdigit():
        return int(value)
    size = _SIZE.match(value) if "size" in kinds else None
    if size is not None:
        return int(float(size.group(1)) * _SIZE_UNITS[size.group(2).upper()])
    if "text" in kinds and value:
        return value
    expected = {"count": "a whole number", "size": "a size such as 2GB", "bool": "true or false"}
    wanted = " or ".join(expected.get(k, k) for k in kinds if k != "text") or "a value"
    msg = f"profile setting {name}={value!r}: expected {wanted}"
    raise ConfigError(msg)


@dataclass(frozen=True)
class MachineTuning:
    """The settings the workbench derives from the machine (docs/performance.md has the
    measurements behind each): where a field is ``None`` DataFusion's default stands."""

    cores: int
    memory_bytes: int
    target_partitions: int | None
    join_single_partition_bytes: int | None
    join_single_partition_rows: int | None


_SPILLING_JOINS = {
    "datafusion.optimizer.prefer_hash_join": "false",
    "datafusion.optimizer.hash_join_single_partition_threshold": "0",
    "datafusion.optimizer.hash_join_single_partition_threshold_rows": "0",
}
"""A retry's settings after a hash join ran out of memory: sort-merge joins everywhere."""
_ONE_PARTITION = {"datafusion.execution.target_partitions": "1"}
"""A retry's settings after a stall: no RepartitionExec."""
_SORT_SPILL_RESERVATION = 10 << 20
"""DataFusion's ``sort_spill_reservation_bytes``."""
_SORT_RESERVATION_SHARE = 32
"""A sort's merge reservation is at most this share of the memory pool (1/32)."""
_JOIN_MIN_MEMORY = 8 << 30
"""Single-partition hash joins up to 64 MiB / 4M rows need this much memory in the machine."""


@functools.cache
def machine_tuning() -> MachineTuning:
    """Defaults for this machine, from its cores and memory (read once per process).

    * ``target_partitions``: two per core up to four partitions, then one per core
      (DataFusion's default). Measured at 2 cores: 4 partitions with the joins below gave a
      TPC-H SF1 geometric mean of 0.90 against DataFusion's defaults.
    * Hash joins whose build side is under 64 MiB / 4M rows run in a single partition
      (``CollectLeft``) instead of repartitioning both sides: measured 0.97 alone, 0.62 on
      q07. DataFusion's own thresholds are 1 MiB / 128K rows. Only with 8 GiB or more, since
      every partition probes the one build table and a query may hold several.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = max(1, cores or 1)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    partitions = max(cores, min(2 * cores, 4))
    joins = memory >= _JOIN_MIN_MEMORY
    return MachineTuning(
        cores=cores,
        memory_bytes=memory,
        target_partitions=partitions if partitions != cores else None,
        join_single_partition_bytes=64 << 20 if joins else None,
        join_single_partition_rows=4_000_000 if joins else None,
    )


@dataclass(frozen=True)
class RuntimeProfile:
    """How a session runs. Sizes are bytes; ``None`` means DataFusion's default.

    The engine settings default to :func:`machine_tuning`'s; ``RuntimeProfile.datafusion()``
    (``tuning="datafusion"``) is the profile with DataFusion's own (the bench's baseline).
    """

    target_partitions: int | None = None
    """Partitions of a plan; ``None``: as ``tuning`` says."""
    join_single_partition_bytes: int | None = None
    """A hash join whose build side is estimated under this many bytes runs in one partition
    (``datafusion.optimizer.hash_join_single_partition_threshold``); ``None``: as ``tuning``
    says."""
    join_single_partition_rows: int | None = None
    """The same threshold in rows (``..._threshold_rows``); ``None``: as ``tuning`` says."""
    tuning: str = "machine"
    """Where the engine settings left ``None`` come from: ``machine`` (the workbench's,
    :func:`machine_tuning`; under a ``memory_limit_bytes``, DataFusion's) or ``datafusion``."""
    batch_size: int = 8192
    memory_limit_bytes: int | None = None
    """What the session's queries may take, in all. DataFusion's memory pool gets
    ``memory_pool_share`` of it; the rest is for what the pool does not count (the process
    itself, Parquet decoding, batches in flight). A query whose hash join runs out of it
    before its first batch runs again with sort-merge joins, which spill."""
    memory_pool_share: float = 0.75
    stall_s: float | None = 20.0
    """Under a memory limit, a wait for a batch this long with the process idle is a stall
    (DataFusion's deadlock when RepartitionExec spills, :mod:`workbench.stall`): the query
    runs again on one partition. ``None`` turns the watch off."""
    spill_dir: str | None = None
    cache: CachePolicy = field(default_factory=CachePolicy)
    read_only: bool = False
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    max_materialize_bytes: int = 1 << 30
    """Largest result ``Result.to_pyarrow()``/``to_polars()`` will build in memory."""
    preview_rows: int = 20
    telemetry: str | None = None
    """OpenTelemetry export of every finished run: "json:PATH", "otlp:http://HOST:PORT", or
    "otlp" (endpoint and headers from the standard ``OTEL_EXPORTER_OTLP_*`` variables)."""
    artifact_dir: str | None = None
    """Where run logs and artifacts go; default ``$WORKBENCH_ARTIFACT_DIR`` or
    ``~/.cache/workbench/artifacts``, one sub-directory per session."""
    sql_gate: bool = True
    """Pass every statement through the SQL gate (off: no diagnostics, macros or named
    arguments of the workbench's functions; bench/ measures the gate's cost with it)."""
    plan_cache: bool = True
    """Keep the plans of queries for reuse (see :mod:`workbench.plan_cache`)."""
    udf_policy: str = "warn"
    """What ``Session.register_udf`` does with a Python UDF that a built-in or Rust function
    would replace, or that is slow: ``warn``, ``strict`` (refuse) or ``off`` (no measuring)."""
    python_udf_min_rows_per_s: float = 2_000_000
    """Below this rate on its sample, a Python UDF is slow for the policy."""
    engine: str = "local"
    """Where queries run: ``local`` (this process), ``ballista://host:port`` (a Ballista
    cluster started with ``python -m workbench.cluster``) or ``ballista:standalone`` (a
    scheduler and an executor in this process). DDL and the catalog stay in the session;
    see :mod:`workbench.cluster`."""

    def __post_init__(self) -> None:
        checks = {
            "target_partitions": self.target_partitions is None or self.target_partitions >= 1,
            "join_single_partition_bytes": (self.join_single_partition_bytes or 0) >= 0,
            "join_single_partition_rows": (self.join_single_partition_rows or 0) >= 0,
            "batch_size": self.batch_size >= 1,
            "memory_limit_bytes": self.memory_limit_bytes is None or self.memory_limit_bytes > 0,
            "memory_pool_share": 0 < self.memory_pool_share <= 1,
            "stall_s": self.stall_s is None or self.stall_s > 0,
            "tuning": self.tuning in {"machine", "datafusion"},
            "max_materialize_bytes": self.max_materialize_bytes >= 0,
            "preview_rows": self.preview_rows >= 0,
            "udf_policy": self.udf_policy in udf_policy.POLICIES,
            "python_udf_min_rows_per_s": self.python_udf_min_rows_per_s >= 0,
        }
        telemetry_ok = self.telemetry is None or (
            self.telemetry == "otlp" or self.telemetry.startswith(("json:", "otlp:http"))
        )
        if not telemetry_ok:
            msg = (
                f"RuntimeProfile.telemetry={self.telemetry!r}: use 'json:PATH', "
                "'otlp:http://HOST:PORT' or 'otlp' (configured by the OTEL_* variables)"
            )
            raise ConfigError(msg)
        try:
            parse_engine(self.engine)
        except ClusterError as exc:
            raise ConfigError(f"RuntimeProfile.{exc}") from None
        for name, ok in checks.items():
            if not ok:
                msg = f"RuntimeProfile.{name}={getattr(self, name)!r} is out of range"
                raise ConfigError(msg)

    @classmethod
    def datafusion(cls, **changes: Any) -> RuntimeProfile:
        """A profile with DataFusion's own engine defaults instead of the machine's tuning."""
        return cls(**{"tuning": "datafusion", **changes})

    def engine_settings(self) -> dict[str, int]:
        """The engine settings this profile sets (the rest stay DataFusion's defaults).

        Under a memory limit the machine's tuning steps back to DataFusion's values: one
        partition per core and small single-partition joins hold the limit better (TPC-H
        SF10 under 2 GiB, q21: 2.25 GB peak against 2.87 GB; docs/performance.md).
        """
        tuned = self.tuning == "machine" and self.memory_limit_bytes is None
        machine = machine_tuning()
        chosen = {
            "datafusion.execution.target_partitions": (
                self.target_partitions,
                machine.target_partitions,
            ),
            "datafusion.optimizer.hash_join_single_partition_threshold": (
                self.join_single_partition_bytes,
                machine.join_single_partition_bytes,
            ),
            "datafusion.optimizer.hash_join_single_partition_threshold_rows": (
                self.join_single_partition_rows,
                machine.join_single_partition_rows,
            ),
        }
        settings = {}
        for name, (given, derived) in chosen.items():
            value = given if given is not None else derived if tuned else None
            if value is not None:
                settings[name] = value
        if self.memory_limit_bytes is not None:
            # Every sort reserves this up front to merge its spills (DataFusion: 10 MiB); a
            # small pool gets a share of itself, so a sort can run at all.
            pool = int(self.memory_limit_bytes * self.memory_pool_share)
            reserve = min(_SORT_SPILL_RESERVATION, pool // _SORT_RESERVATION_SHARE)
            settings["datafusion.execution.sort_spill_reservation_bytes"] = reserve
        return settings

    def session(self) -> Session:
        """A new Session with this profile's settings and extension components."""
        return Session(self)

    def with_settings(self, text: str) -> RuntimeProfile:
        """This profile with fields changed by ``key=value`` words, as typed in a notebook.

        ``"read_only=true memory_limit=2GB target_partitions=4"``: keys are the
        field names (``memory_limit`` and ``max_materialize`` may drop
        ``_bytes``); sizes take KB/MB/GB/TB (powers of 1024) or KiB/MiB/GiB;
        ``none`` restores DataFusion's default where a field allows it. The
        ``%wb profile`` magic and ``$WORKBENCH_PROFILE`` use this.
        """
        changes: dict[str, Any] = {}
        for word in shlex.split(text):
            key, equals, value = word.partition("=")
            name = _SETTING_ALIASES.get(key, key)
            kinds = _SETTABLE.get(name)
            if not equals or kinds is None:
                known = ", ".join(sorted(_SETTABLE))
                msg = f"profile setting {word!r}: use key=value with a key among {known}"
                raise ConfigError(msg)
            changes[name] = _setting_value(name, value, kinds)
        return replace(self, **changes)


@functools.cache
def _datafusion_defaults() -> dict[str, str | None]:
    """DataFusion's own settings (a plain context's ``df_settings``), read once."""
    plain = SessionContext(SessionConfig().with_information_schema(enabled=True))
    rows = plain.sql("SELECT name, value FROM information_schema.df_settings").to_pydict()
    return dict(zip(rows["name"], rows["value"], strict=True))


def _runtime(p: RuntimeProfile) -> RuntimeEnvBuilder:
    """The runtime of a profile: spill directory (created) and memory pool."""
    runtime = RuntimeEnvBuilder()
    if p.spill_dir is not None:
        spill = Path(p.spill_dir).expanduser()
        try:
            spill.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"RuntimeProfile.spill_dir={p.spill_dir!r}: cannot create {spill}: {exc}"
            raise ConfigError(msg) from exc
        runtime = runtime.with_disk_manager_specified(str(spill))
    if p.memory_limit_bytes is not None:
        runtime = runtime.with_fair_spill_pool(int(p.memory_limit_bytes * p.memory_pool_share))
    return runtime


class Session:
    """A DataFusion SessionContext configured by a RuntimeProfile."""

    def __init__(self, profile: RuntimeProfile | None = None) -> None:
        self.profile = profile or RuntimeProfile()
        p = self.profile
        config = SessionConfig().with_information_schema(enabled=True).with_batch_size(p.batch_size)
        for name, value in p.engine_settings().items():
            config = config.set(name, str(value))
        try:
            self.ctx = SessionContext(config, _runtime(p))
        except Exception as exc:
            msg = f"DataFusion refused this profile: {str(exc).removeprefix('DataFusion error: ')}"
            raise ConfigError(msg) from exc
        for statement in p.cache.statements():
            self.ctx.sql(statement)
        self.registered: tuple[str, ...] = extension.install(self.ctx, p.extensions, p.cache)
        self.session_id = new_run_id()
        base = Path(
            p.artifact_dir or os.environ.get("WORKBENCH_ARTIFACT_DIR") or _DEFAULT_ARTIFACTS
        )
        self.diagnostics = DiagnosticsSink(self.ctx, base.expanduser() / self.session_id)
        self.diagnostics.publish()  # so information_schema lists the tables from the start
        # Recent runs by id, for plans and export after the Result is gone. A DataFrame
        # holds a plan, not rows, so keeping a bounded number of them is cheap.
        self._runs: OrderedDict[str, _Remembered] = OrderedDict()
        self._executed: deque[str] = deque()
        """Runs whose DataFrames may hold an executed plan, oldest first."""
        self._runs_lock = threading.Lock()
        self._let_go_worker: ThreadPoolExecutor | None = None
        self._plan_options = (
            SQLOptions()
            .with_allow_ddl(allow=False)
            .with_allow_dml(allow=False)
            .with_allow_statements(allow=False)
        )
        self.stall_watch = (
            StallWatch(p.stall_s)
            if p.memory_limit_bytes is not None and p.stall_s is not None
            else None
        )
        """Watches queries for DataFusion's deadlock under a memory limit (``stall_s``)."""
        self.registry = Registry()
        """How each table was registered: DDL, provenance, format, partitions, options."""
        self.delta_tables: dict[str, DeltaTable] = {}
        """Delta tables registered by ``register_delta`` or ``CREATE EXTERNAL TABLE ... DELTA``."""
        self.ctx.register_udtf(datafusion.udtf(self._delta_files, "wb_delta_files"))
        self._table_changes = extension.module().TableChanges()
        """``table_changes(table, start [, end])``: told this session's Delta tables by name."""
        self.ctx.register_udtf(datafusion.udtf(self._table_changes, "table_changes"))
        self.gate = Gate(self.ctx)
        """The SQL gate every statement passes (policy, macros, catalog version)."""
        self.plan_cache = PlanCache()
        self._ibis: Any = None
        self.cache_settings = self._read_cache_settings()
        """The runtime cache settings in effect; every run records them."""
        self.udf_decisions: list[udf_policy.UdfDecision] = []
        """What the UDF policy decided for each Python UDF (also ``wb_udf_decisions``)."""
        self.engine = parse_engine(p.engine)
        """Where queries run unless a call says otherwise (``RuntimeProfile.engine``)."""
        self._clusters: dict[str, Cluster] = {}
        self.python_functions: set[str] = {"wb_delta_files"}
        """Functions written in Python: ``register_udf``'s, the workbench's, Ibis' helpers."""
        self.rust_functions: set[str] = {*self.registered, "table_changes"}
        """Functions of the Rust extension registered in this session."""
        self._options = (
            SQLOptions()
            .with_allow_ddl(allow=False)
            .with_allow_dml(allow=False)
            .with_allow_statements(allow=False)
            if p.read_only
            else None
        )

    def sql(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
        plan_only: bool = False,
        on_planned: Callable[[Statement, datafusion.DataFrame], None] | None = None,
        lane: tuple[str, tuple[str, ...]] = ("sql", ()),
        engine: str | None = None,
    ) -> Result:
        """Run ``query`` (one or more statements); the last query's rows are the Result.

        Statements run in the order written, and each sees exactly the effects
        of the statements before it: DDL, DML and SET run to completion where
        they stand; the result query's stream is opened at its place, so a
        later statement of the cell does not change its rows; other queries
        are planned (so their errors show) but not run.

        All or nothing where possible: every statement is parsed, and every one
        that does not depend on an earlier one (a table it creates or drops, a
        SET) is planned, before any runs. If a statement still fails, the
        error says which statements ran before it.

        ``params`` bind ``$name`` placeholders through DataFusion's
        ``param_values``; values are never spliced into the SQL text.
        ``plan_only`` refuses anything but queries, so planning never changes data.
        ``on_planned(statement, df)`` is called when the result query is planned,
        before any later statement runs (``%explain --verbose`` uses it).
        ``lane`` (how the SQL was made, and what the direct Ibis lane lacked) is recorded
        on the run; :meth:`run` sets it for the Ibis expressions that fall back to SQL.
        ``engine`` runs the result query elsewhere than ``RuntimeProfile.engine`` says
        (``local``, ``ballista:standalone``, ``ballista://host:port``); everything else
        of the cell runs in the session. Ctrl-C raises :class:`QueryCancelledError` saying what ran.
        """
        bound = {name: check_value(name, value) for name, value in (params or {}).items()}
        chosen = parse_engine(engine) if engine is not None else self.engine
        # Before anything runs, records or shows it: a secret in a (refused) Delta CREATE.
        query = redact_delta_secrets(query)
        statements = split_statements(query)
        if not statements:
            raise SqlError("nothing to run: the SQL holds no statement", sql=query)
        queries = [s for s in statements if s.is_query]
        target = queries[-1] if queries else statements[-1]
        for statement in statements:  # all of them first: a bad one must not follow a DML
            self._check_placeholders(statement, bound, query)
        options = self._plan_options if plan_only else self._options
        cell = _Cell(query, statements, target, bound, options, engine=chosen)
        tracker = RunTracker(
            query, label, self._on_run_event, self._with_delta_files if self.delta_tables else None
        )
        if "wb_" in query.lower():
            self.diagnostics.publish()  # after the tracker: a query of wb_runs sees itself
            self._publish_catalog(query.lower())
        try:
            planned = self._preflight(cell) if len(statements) > 1 else {}
            result_df, stream, executed = self._run_in_order(cell, planned, on_planned)
        except KeyboardInterrupt:
            where = cell.current.label if cell.current is not None else "the cell"
            error = QueryCancelledError(f"interrupted during {where}; {cell.ran_text()}")
            tracker.end(RunStatus.CANCELLED, str(error))
            raise error from None
        except (SqlError, ClusterError) as error:
            tracker.end(RunStatus.FAILED, str(error))
            for key in cell.keys.values():
                self.plan_cache.discard(key)  # a cached plan that failed is planned afresh
            raise
        self._note_gate(tracker, cell, target, lane)
        opener = None
        if executed is None:  # DDL/DML as the result ran in the session
            opener = self._route(tracker, chosen, result_df, opened=stream is not None or plan_only)
        prepared = cell.prepared.get(target.index)
        # What DataFusion ran: a statement the gate rewrote (a macro...) replays as rewritten.
        ran_text = prepared.text if prepared is not None and prepared.rewrites else target.text
        plan_key = cell.keys.get(target.index)
        return self._remember(
            _Remembered(result_df, tracker, ran_text, bound, prepared, plan_key),
            stream=stream,
            executed=executed,
            statement=target,
            cell=query,
            ran=cell.ran_text() if len(statements) > 1 else None,
            opener=opener,
        )

    def _route(
        self, tracker: RunTracker, engine: Engine, df: datafusion.DataFrame, *, opened: bool
    ) -> Callable[[], ClusterStream] | None:
        """Record where the result query runs; for a cluster not yet ``opened``, how the
        Result opens it there (``None``: here). A query the cluster cannot run fails the run."""
        if engine.kind == "local":
            return None
        tracker.note(engine=engine.name)
        if opened:
            return None
        try:
            opener = self._cluster_opener(engine, df)
        except ClusterError as error:
            tracker.end(RunStatus.FAILED, str(error))
            raise
        if opener is None:  # the session's catalog only: it runs here
            tracker.note(engine="local")
        return opener

    def _cluster(self, engine: Engine) -> Cluster:
        """The session's client of ``engine``, made at its first query."""
        found = self._clusters.get(engine.name)
        if found is None:
            settings = {
                "datafusion.execution.batch_size": str(self.profile.batch_size),
                **{name: str(value) for name, value in self.profile.engine_settings().items()},
            }
            slots = os.cpu_count() or 1  # the standalone executor's; a remote one has its own
            found = self._clusters[engine.name] = Cluster(engine, settings, slots)
        return found

    def _cluster_opener(
        self, engine: Engine, df: datafusion.DataFrame
    ) -> Callable[[], ClusterStream] | None:
        """How a Result opens ``df``'s rows on ``engine``: the plan is checked and encoded
        now (a table or function the cluster cannot have is refused before anything runs)
        and submitted as a job when the rows are first read. ``None``: the query reads only
        this session's own tables (``wb_runs``, the catalog) and runs here."""
        cluster = self._cluster(engine)
        plan = self._cluster_plan(cluster, df)
        if plan is None:
            return None
        return lambda: cluster.submit(plan)

    def _cluster_plan(self, cluster: Cluster, df: datafusion.DataFrame) -> bytes | None:
        delta = "it is a Delta table, read through this session's Delta provider"
        return cluster.plan_bytes(
            df,
            self.ctx,
            local_tables=dict.fromkeys(self.delta_tables, delta),
            python_functions=self.python_functions,
        )

    def distributed_plan(
        self, statement: str, params: Mapping[str, Any] | None, engine: Engine
    ) -> dict[str, str]:
        """``EXPLAIN`` of the query ``statement`` on ``engine``'s cluster, not run: its
        plans by type, ``distributed_plan`` among them (Ballista's stages and shuffles)."""
        df = self.ctx.sql(f"EXPLAIN {statement}", param_values=dict(params or {}) or None)
        cluster = self._cluster(engine)
        plan = self._cluster_plan(cluster, df)
        if plan is None:
            msg = "this query reads only the session's catalog: it runs here, not on a cluster"
            raise ClusterError(msg)
        rows = (row for batch in cluster.submit(plan) for row in batch.to_pylist())
        return {str(row["plan_type"]): str(row["plan"]) for row in rows}

    def _recovery(
        self, df: datafusion.DataFrame, run_id: str
    ) -> Callable[[Exception, bool], tuple[datafusion.DataFrame, bool]]:
        """What a Result does when ``df`` fails while running: ``recover(error, may_retry)``
        returns the plan to keep instead, and whether to run it now.

        A failed DataFrame holds the memory its operators had reserved (DataFusion keeps the
        executed plan on it), so the plan kept is always a fresh one of the same query: a
        failure frees its memory. Under a memory limit, a hash join that ran out of memory
        before the first batch (``may_retry``) gets its plan with sort-merge joins to run
        instead: DataFusion's hash join cannot spill, the sorts under a sort-merge join can.
        """
        plan = df.logical_plan()

        def recover(error: Exception, may_retry: bool) -> tuple[datafusion.DataFrame, bool]:  # noqa: FBT001
            text = str(error)
            stalled = isinstance(error, StalledError)
            wanted = _ONE_PARTITION if stalled else _SPILLING_JOINS
            retry = (
                may_retry
                and self.profile.memory_limit_bytes is not None
                and (stalled or ("Resources exhausted" in text and "HashJoin" in text))
            )
            current = self._settings(wanted) if retry else wanted
            if retry and current != wanted:
                # A DataFrame keeps the settings it was made under: set, make, set back.
                self._set(wanted)
                try:
                    fresh = self.ctx.create_dataframe_from_logical_plan(plan)
                finally:
                    self._set(current)
            else:
                retry = False
                fresh = self.ctx.create_dataframe_from_logical_plan(plan)
            with self._runs_lock:
                remembered = self._runs.get(run_id)
                if remembered is not None:
                    self._runs[run_id] = replace(remembered, df=fresh)
            return fresh, retry

        return recover

    def _settings(self, names: Iterable[str]) -> dict[str, str]:
        """The current values of DataFusion settings (``df_settings``)."""
        found = self.ctx.sql(
            "SELECT name, value FROM information_schema.df_settings WHERE array_has($names, name)",
            param_values={"names": sorted(names)},
        ).to_pydict()
        return dict(zip(found["name"], found["value"], strict=True))

    def _set(self, settings: Mapping[str, str]) -> None:
        for name, value in settings.items():
            self.ctx.sql(f"SET {name} = {value}")

    def _plan(
        self, cell: _Cell, statement: Statement, options: SQLOptions | None
    ) -> datafusion.DataFrame:
        """One statement through the gate to DataFusion; runs it too if it is DDL.

        A cacheable query whose plan is cached is built from the cached plan (a hit skips
        parsing, planning and analysis); else DataFusion plans it and the plan is stored.
        """
        started = time.perf_counter()
        if not self.profile.sql_gate:
            return self.ctx.sql(statement.text, options=options, param_values=cell.bound or None)
        prepared = self.gate.prepare(statement.text)
        cell.prepared[statement.index] = prepared
        if not (statement.is_query and prepared.cacheable and self.profile.plan_cache):
            return self._plan_prepared(cell, statement, prepared, options)
        form = normal_form(prepared.text)
        key = cache_key(form, self.gate.policy.hash, prepared.catalog_version, cell.bound)
        cell.keys[statement.index] = key
        cached = self.plan_cache.get(key)
        if cached is not None:
            cell.cache[statement.index] = "hit"
            return self.ctx.create_dataframe_from_logical_plan(cached.logical)
        df = self._plan_prepared(cell, statement, prepared, options)
        self.plan_cache.put(key, df, self.ctx, started)
        cell.cache[statement.index] = "miss"
        return df

    def _plan_prepared(
        self, cell: _Cell, statement: Statement, prepared: Prepared, options: SQLOptions | None
    ) -> datafusion.DataFrame:
        """``ctx.sql`` of the gate's text; if a rewritten text fails, the text as written.

        SQLGlot writes a rewritten statement back as PostgreSQL, which may miss a DataFusion
        construct; the statement as written still runs (its macros as their UDFs).
        """
        params = cell.bound or None
        try:
            return self.ctx.sql(prepared.text, options=options, param_values=params)
        except Exception:
            if not prepared.rewrites:
                raise
            with contextlib.suppress(Exception):  # the rewritten statement's error is shown
                return self.ctx.sql(statement.text, options=options, param_values=params)
            raise

    def _preflight(self, cell: _Cell) -> dict[int, datafusion.DataFrame]:
        """Parse every statement and plan those that depend on no earlier one; run nothing.

        Returns the planned DataFrames of independent queries, to be reused.
        """
        planned: dict[int, datafusion.DataFrame] = {}
        for statement in cell.statements:
            earlier = cell.statements[: statement.index]
            dependent = (
                any(statement.depends_on(e) for e in earlier)
                or (
                    # wb_delta_files('t') names its table in a string, which no token reads.
                    "wb_delta_files" in statement.text.lower()
                    and any(is_delta_ddl(e.text) for e in earlier)
                )
                or any(is_function_ddl(e.text) for e in earlier)  # it may call the function
            )
            if is_delta_ddl(statement.text):
                self._check_delta_ddl(statement, cell)
                continue
            if is_function_ddl(statement.text):
                self._check_function_ddl(statement, cell)
                continue
            try:
                df = self._plan(cell, statement, self._plan_options)
            except GateError as exc:
                if dependent:
                    continue  # a macro defined by an earlier statement of the cell
                raise self._error(exc, statement, cell, options=cell.options) from None
            except Exception as exc:
                message = str(exc)
                if _REFUSED.search(message) and cell.options is None:
                    continue  # parsed and planned; refused here only because it would run
                if dependent and "ParserError" not in message:
                    continue  # may plan once the statements it depends on have run
                raise self._error(exc, statement, cell, options=cell.options) from exc
            if not dependent:
                planned[statement.index] = df
        return planned

    def _check_delta_ddl(self, statement: Statement, cell: _Cell) -> None:
        """A Delta CREATE is parsed (and refused where DDL is) before anything runs."""
        # While the statement runs, _run_in_order turns what is raised here into the
        # SqlError; wrapping it here too would repeat the position and lose ReadOnlyError.
        running = cell.current is statement
        if cell.options is not None:
            refused = Exception("DDL not supported: CreateExternalTable")
            if running:
                raise refused
            raise self._error(refused, statement, cell, options=cell.options)
        try:
            parse_delta_ddl(statement.text)
        except DeltaError as exc:
            if running:
                raise
            raise self._error(exc, statement, cell, options=None) from None

    def _publish_catalog(self, query: str) -> None:
        """Register ``wb_tables`` / ``wb_functions`` anew when ``query`` names them."""
        from workbench import registry

        for name, rows in (
            ("wb_tables", lambda: registry.tables(self)),
            ("wb_functions", lambda: functions.catalog(self)),
            ("wb_config", self._config_rows),
        ):
            if name not in query:
                continue
            table = pyarrow.Table.from_pylist(rows())
            self.ctx.deregister_table(name)
            self.ctx.register_record_batches(name, [table.to_batches()])

    def _config_rows(self) -> list[dict[str, Any]]:
        """The effective settings: the profile's fields, and DataFusion's against its defaults."""
        query = "SELECT name, value FROM information_schema.df_settings ORDER BY name"
        defaults = _datafusion_defaults()
        rows = [
            {
                "name": f"workbench.{f.name}",
                "value": str(getattr(self.profile, f.name)),
                "datafusion_default": None,
                "differs": None,
            }
            for f in fields(self.profile)
        ]
        settings = self.ctx.sql(query).to_pydict()
        for name, value in zip(settings["name"], settings["value"], strict=True):
            default = defaults.get(name)
            rows.append(
                {
                    "name": name,
                    "value": value,
                    "datafusion_default": default,
                    "differs": value != default,
                }
            )
        return rows

    def register_udf(
        self,
        func: Callable[..., Any],
        input_types: Sequence[pa.DataType],
        return_type: pa.DataType,
        name: str | None = None,
        *,
        volatility: str = "immutable",
        sample: pa.Table | None = None,
    ) -> udf_policy.UdfDecision:
        """Register a Python scalar UDF behind the profile's UDF policy; returns its decision.

        ``func`` takes and returns Arrow arrays. The policy measures it on ``sample`` (or
        generated rows of ``input_types``) and looks for a built-in or Rust function that
        returns the same values: see :mod:`workbench.udf_policy`.
        """
        name = str(name or getattr(func, "__name__", "python_udf"))
        if name in self.gate.macros:
            msg = (
                f"{name} is a SQL macro of this session (CREATE FUNCTION); DROP FUNCTION {name} "
                "first, or give the Python UDF another name"
            )
            raise udf_policy.UdfPolicyError(msg)
        udf = datafusion.udf(func, list(input_types), return_type, volatility, name)
        decision = udf_policy.decide(
            udf,
            name,
            input_types,
            policy=self.profile.udf_policy,
            min_rows_per_second=self.profile.python_udf_min_rows_per_s,
            sample=sample,
            install=lambda ctx: extension.install(ctx, self.profile.extensions),
        )
        self.udf_decisions.append(decision)
        decisions = pyarrow.Table.from_pylist(
            [asdict(d) for d in self.udf_decisions], schema=udf_policy.DECISIONS_SCHEMA
        )
        self.ctx.deregister_table("wb_udf_decisions")
        self.ctx.register_record_batches("wb_udf_decisions", [decisions.to_batches()])
        udf_policy.enforce(decision)
        self.ctx.register_udf(udf)
        self.python_functions.add(name)
        self.gate.changed()
        return decision

    def ibis(self) -> Any:
        """An Ibis backend bound to this session's context (its tables, UDFs and settings)."""
        if self._ibis is None:
            from workbench import ibis_lane

            before = {row["name"] for row in functions.catalog(self)}
            self._ibis = ibis_lane.connect(self.ctx)
            # Ibis registers Python helpers (UDFs it compiles some operations to).
            self.python_functions |= {row["name"] for row in functions.catalog(self)} - before
        return self._ibis

    def run(self, expr: Any, *, label: str | None = None) -> Result:
        """Run the Ibis table expression ``expr``; the rows come as a streaming Result.

        The direct lane builds the plan with DataFusion's DataFrame API, generating no
        SQL text; its plan is cached by the expression. An expression using operations
        the direct lane does not cover goes the SQL lane (Ibis -> SQLGlot -> the gate ->
        DataFusion) instead, and the run records those operations (``wb_lane_gaps``).
        """
        import ibis.expr.types as ir

        from workbench import ibis_lane

        if not isinstance(expr, ir.Table):
            kind = type(expr).__name__
            msg = f"Session.run takes an Ibis table expression, not {kind}; for SQL use .sql()"
            raise ArgumentError(msg)
        backend = self.ibis()
        started = time.perf_counter()
        _, version = self.gate.catalog()
        key = cache_key(f"ibis:{hash(expr.op())}", self.gate.policy.hash, version, {})
        cached = self.plan_cache.get(key) if self.profile.plan_cache else None
        try:
            compiled = None if cached is not None else ibis_lane.compile(expr, self.ctx)
        except Exception as exc:  # noqa: BLE001  (DataFusion or Ibis refused: a short error)
            first = str(exc).removeprefix("DataFusion error: ").strip("'\"").splitlines()[0]
            msg = f"the Ibis expression does not plan in this session: {first}"
            raise SqlError(msg, kind=_kind_of(first)) from None
        if compiled is not None and not compiled.direct:
            ibis_lane.register_inputs(backend, expr)  # the memtables and UDFs the SQL names
            lane = ("ibis-sql", compiled.gaps)
            return self.sql(ibis_lane.sql_text(expr, typed=True), label=label, lane=lane)
        tracker = RunTracker(f"-- Ibis expression\n{expr!r}", label, self._on_run_event)
        if cached is not None:
            df = self.ctx.create_dataframe_from_logical_plan(cached.logical)
        else:
            assert compiled is not None
            assert compiled.df is not None
            df = compiled.df
            if self.profile.plan_cache:
                self.plan_cache.put(key, df, self.ctx, started)
        cache = None if not self.profile.plan_cache else "hit" if cached is not None else "miss"
        tracker.note(
            lane="ibis",
            policy_hash=self.gate.policy.hash,
            plan_cache=cache,
            cache_settings=self.cache_settings,
        )
        opener = self._route(tracker, self.engine, df, opened=False)
        remembered = _Remembered(df, tracker, tracker.record.sql, {}, None, key, expr)
        return self._remember(remembered, opener)

    def _check_function_ddl(self, statement: Statement, cell: _Cell) -> None:
        """CREATE/DROP FUNCTION is refused where DDL is (read-only, planning only)."""
        if cell.options is None:
            return
        refused = Exception("DDL not supported: CreateFunction")
        if cell.current is statement:
            raise refused
        raise self._error(refused, statement, cell, options=cell.options)

    def _function_ddl(self, statement: Statement) -> datafusion.DataFrame:
        """Run CREATE [OR REPLACE] FUNCTION or DROP FUNCTION; one row says what it did."""
        if not self.profile.sql_gate:
            msg = (
                "CREATE/DROP FUNCTION are the SQL gate's statements, and this session runs "
                "without it: use a profile with sql_gate=True"
            )
            raise GateError("parse", msg)
        if statement.text.lstrip().upper().startswith("DROP"):
            name = functions.drop(self.ctx, self.gate, statement.text)
            done = "dropped"
        else:
            name = functions.define(self.ctx, self.gate, statement.text).name
            done = "created"
        return self.ctx.sql(
            "SELECT $name AS function, $done AS done", param_values={"name": name, "done": done}
        )

    def _note_gate(
        self,
        tracker: RunTracker,
        cell: _Cell,
        statement: Statement,
        lane: tuple[str, tuple[str, ...]],
    ) -> None:
        """Record on the run its lane, what the gate made of it and whether its plan was cached."""
        prepared = cell.prepared.get(statement.index)
        if prepared is None:
            tracker.note(lane=lane[0], lane_gaps=lane[1], cache_settings=self.cache_settings)
            return
        tracker.note(
            lane=lane[0],
            lane_gaps=lane[1],
            cache_settings=self.cache_settings,
            policy_hash=prepared.verdict.policy_hash,
            canonical_sql=prepared.verdict.canonical,
            gate_gaps=prepared.verdict.gaps,
            rewrites=prepared.rewrites,
            plan_cache=cell.cache.get(statement.index),
        )

    def _run_in_order(
        self,
        cell: _Cell,
        planned: dict[int, datafusion.DataFrame],
        on_planned: Callable[[Statement, datafusion.DataFrame], None] | None,
    ) -> tuple[
        datafusion.DataFrame,
        RecordBatchStream | ClusterStream | None,
        list[pa.RecordBatch] | None,
    ]:
        result_df: datafusion.DataFrame | None = None
        stream = None
        executed = None
        for statement in cell.statements:
            cell.current = statement
            try:
                if statement.is_query:
                    df = planned.get(statement.index) or self._plan(cell, statement, cell.options)
                    if statement is cell.target:
                        result_df = df
                        if on_planned is not None:
                            on_planned(statement, df)
                        if any(not s.is_query for s in cell.statements[statement.index + 1 :]):
                            # Later statements write: open the stream (which snapshots
                            # the tables' data and file lists) before they run.
                            opener = (
                                self._cluster_opener(cell.engine, df)
                                if cell.engine.kind != "local"
                                else None
                            )
                            stream = opener() if opener else df.execute_stream()
                    continue
                df = self._plan_change(cell, statement)
                if statement is cell.target:
                    # DML/DDL as the result: run it exactly once, now; the Result
                    # replays what it returned (e.g. the inserted row count). Run through
                    # execute_stream, so the DataFrame keeps the executed plan's metrics.
                    result_df = df
                    executed = [batch.to_pyarrow() for batch in df.execute_stream()]
                else:
                    df.collect()
                cell.ran.append(statement)
                self._note_ddl(statement)
            except (KeyboardInterrupt, ClusterError):
                raise
            except Exception as exc:
                raise self._error(exc, statement, cell, options=cell.options) from exc
        assert result_df is not None
        return result_df, stream, executed

    def _plan_change(self, cell: _Cell, statement: Statement) -> datafusion.DataFrame:
        """The DataFrame of a statement that changes something (DDL runs here already)."""
        if is_delta_ddl(statement.text):
            self._check_delta_ddl(statement, cell)
            return self._create_delta(statement)
        if is_function_ddl(statement.text):
            self._check_function_ddl(statement, cell)
            if self.profile.sql_gate:  # the gate's own statement: recorded like any other
                cell.prepared[statement.index] = self.gate.prepare(statement.text)
            return self._function_ddl(statement)
        return self._plan(cell, statement, cell.options)

    def register_delta(
        self,
        name: str,
        uri: str,
        *,
        version: int | None = None,
        timestamp: str | dt.datetime | None = None,
        storage_options: Mapping[str, str] | None = None,
        file_column_name: str | None = None,
        wrap_partition_values: bool = True,
        enable_parquet_pushdown: bool = True,
        schema_force_view_types: bool = True,
        files: Sequence[str] | None = None,
        replace: bool = True,
    ) -> DeltaTable:
        """Register the Delta table at ``uri`` as ``name``, read by the extension's provider.

        Only the files of the snapshot's version are read, and filters reach the scan
        (partition, file-statistics, row-group and page pruning). ``version`` or
        ``timestamp`` (RFC 3339 or a datetime) travels in time; ``files`` restricts the
        scan to those data files; the other keywords are ``DeltaScanConfig``'s knobs (see
        :class:`workbench.delta.DeltaOptions`).

        Refresh on query: unless pinned (``version``, ``timestamp`` or ``files``), every
        scan of the table (a query, a view over it, a held DataFrame run again) first asks
        the Delta log for its newest version and reads that one, so commits by other
        writers are seen by the next query and no query answers from a stale snapshot
        (see :mod:`workbench.delta.table`). A table that needs a reader feature the
        provider does not support is refused with a :class:`DeltaError` naming it.

        ``name`` reads as in SQL (:mod:`workbench.delta.names`): ``"Events"`` registers
        ``events``, ``'"Events"'`` keeps the case. ``uri`` is a local path or file:// URL:
        remote object stores are not built in, so any other URL and any
        ``storage_options`` are refused. A relative path is made absolute (against the
        working directory), so the DDL recorded for bundles reads the same folder anywhere.
        """
        name = delta_names.table_name(name)
        if storage_options:
            keys = ", ".join(sorted(storage_options))  # never the values: they hold secrets
            raise no_remote_stores(f"register_delta({name!r}): storage_options ({keys})")
        if not replace and self.ctx.table_exist(delta_names.quoted(name)):
            msg = f"table {name} already exists; drop it first or register with replace=True"
            raise DeltaError(msg)
        options = DeltaOptions(
            version=version,
            timestamp=timestamp,
            file_column_name=file_column_name,
            wrap_partition_values=wrap_partition_values,
            enable_parquet_pushdown=enable_parquet_pushdown,
            schema_force_view_types=schema_force_view_types,
            files=files,
        )
        table = DeltaTable.open(name, uri, options)  # a local path is made absolute there
        self._install_delta(table)
        return table

    def prune(self, table: str, predicate: str, *, analyze: bool = False) -> PruningReport:
        """Which files of the Delta table ``table`` the SQL ``predicate`` skips, and why.

        Reads only the Delta log: every top-level ``AND`` term of ``predicate`` (a leading
        ``WHERE`` may stay) is decided on each file's statistics and partition values at
        the version a query would read now (an unpinned table is refreshed first), so the
        candidates are the files a scan has to open. The reasons are described in
        :mod:`workbench.delta.prune`. ``analyze=True`` also runs ``SELECT count(*) FROM
        table WHERE predicate`` (a run of its own in ``wb_runs``) and adds the funnel read
        from that scan's metrics: files, Parquet row groups and pages, rows.
        """
        delta = self._delta_table(table, "prune")
        text = re.sub(r"^\s*where\b", "", predicate, flags=re.IGNORECASE).strip()
        if not text:
            msg = f'prune {delta.name}: the predicate is empty; give one, e.g. "id > 5"'
            raise DeltaError(msg)
        delta.refresh()
        quoted = delta_names.quoted(delta.name)
        # The predicate is SQL the caller wrote: planned here as the WHERE of a query
        # (never run), so the candidates are the files this session's own scan would read.
        scan = f"SELECT * FROM {quoted} WHERE {text}"  # noqa: S608
        delta.provider.forget_last_scan()  # a plan that never scans the table reads no file
        try:
            self.ctx.sql(scan).execution_plan()
            planned = True
        except Exception:  # noqa: BLE001  (the provider plans it alone and says what is wrong)
            planned = False
        try:
            files, terms, version = delta.provider.prune(text, planned)
        except extension.module().DeltaError as exc:
            raise DeltaError(f"prune {delta.name}: {exc}") from None
        report = PruningReport.from_verdicts(delta.name, version, text, pyarrow.table(files), terms)
        if not analyze:
            return report
        query = f"SELECT count(*) AS matching FROM {quoted} WHERE {text}"  # noqa: S608
        result = self.sql(query, label=f"prune {delta.name}")
        matching = result.to_pyarrow().column("matching")[0].as_py()
        return report.with_scan(self.plan(result.run.run_id), int(matching))

    def changes(
        self,
        table: str,
        start: int | str | dt.datetime = 0,
        end: int | str | dt.datetime | None = None,
        *,
        types: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        where: str | None = None,
        net: Sequence[str] | None = None,
    ) -> cdf.Changes:
        """The change data feed of the Delta table ``table`` from ``start`` to ``end``.

        A streaming :class:`Result` over ``table_changes(table, start, end)`` (versions or
        timestamps, ``end`` inclusive and the newest version when absent), with the timeline
        of the range's commits; ``types`` keeps those change types, ``columns`` those data
        columns (the change columns always come), ``where`` is SQL over the table's columns
        that filters change rows, and ``net=KEYS`` collapses the range to the net change per
        key (semantics in :mod:`workbench.delta.cdf`).
        """
        delta = self._delta_table(table, "changes")
        feed = cdf.source(delta.name, cdf.edge(start, "start") or "0", cdf.edge(end, "end"))
        # The feed call is built from checked parts (see workbench.delta.cdf.source).
        planned = self.sql(
            f"SELECT * FROM {feed}",  # noqa: S608
            plan_only=True,
            label=f"changes {delta.name}",
        )
        names = planned.schema.names
        planned.close_planned()
        shown = cdf.check_columns(columns, names, "columns")
        keys = cdf.check_columns(net, names, "net")
        query = cdf.changes_query(
            feed, names, show=shown, where=where, types=cdf.check_types(types), net=keys
        )
        timeline_sql = (
            f"SELECT _commit_version AS version, _change_type AS type, count(*) AS rows "  # noqa: S608
            f"FROM {feed}{f' WHERE ({where}' + chr(10) + ')' if where else ''} "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        )
        timeline = self.sql(timeline_sql, label=f"changes {delta.name} timeline").to_pyarrow()
        range_text = f"from {cdf.edge(start, 'start') or '0'}" + (
            f" to {cdf.edge(end, 'end')}" if end is not None else " to the newest version"
        )
        result = self.sql(query, label=f"changes {delta.name}")
        return cdf.Changes(delta.name, range_text, result, timeline, tuple(keys))

    def consume(
        self,
        consumer: str,
        table: str,
        apply: Callable[[cdf.Changes, Any], None],
        *,
        target: str,
        net: Sequence[str] | None = None,
        start: int | None = None,
        lease_seconds: float = 600,
        store: cursors.CursorStore | None = None,
    ) -> cursors.Consumed:
        """Apply the changes of Delta table ``table`` after ``consumer``'s cursor, exactly once.

        ``apply(changes, commit)`` gets the :class:`~workbench.delta.cdf.Changes` from the
        version after the cursor to the newest (net per key with ``net=KEYS``) and must
        write its output to the Delta table at ``target`` in one commit made with
        ``commit_properties=commit``; that commit records the range as applied, atomically
        with the output, so a crash anywhere replays without applying twice and loses
        nothing (see :mod:`workbench.delta.cursors`). A second run of the same consumer at
        once gets :class:`~workbench.delta.cursors.CursorConflictError`.
        """
        from deltalake import CommitProperties, Transaction, write_deltalake
        from deltalake import DeltaTable as DeltalakeTable

        delta = self._delta_table(table, "consume")
        store = store or cursors.CursorStore()
        source = delta.uri
        app = cursors.app_id(consumer, source)

        def target_table() -> Any:
            try:
                return DeltalakeTable(target)
            except Exception as exc:  # noqa: BLE001  (deltalake's own error types vary)
                msg = f"consume {consumer!r}: the target {target} is not a Delta table: {exc}"
                raise DeltaError(msg) from None

        def applied() -> int | None:
            version = target_table().transaction_version(app)
            return None if version is None else int(version)

        with store.lease(consumer, source, lease_seconds):
            done = applied()
            store.record(consumer, source, done)
            first = cursors.feed_starts(source) if start is None else start
            begin = first if done is None else done + 1
            end = delta.refresh()
            if begin > end:
                return cursors.Consumed(consumer, delta.name, None, None, done)
            changes = self.changes(delta.name, begin, end, net=net)
            commit = CommitProperties(app_transactions=[Transaction(app, end)])
            before = target_table().version()
            apply(changes, commit)
            output = target_table()
            if output.transaction_version(app) != end:
                if output.version() != before:
                    msg = (
                        f"consume {consumer!r}: apply committed to {target} without the commit "
                        f"properties it was given, so versions {begin}-{end} of {delta.name} "
                        "are written but not recorded as applied: the next run applies them "
                        "again. Pass commit_properties=commit to the one write that holds the "
                        "output"
                    )
                    raise DeltaError(msg)
                # Nothing to write (no data change, or net changes that cancel): the range
                # is recorded by an empty commit of its own.
                empty = output.schema().to_arrow().empty_table()
                write_deltalake(target, empty, mode="append", commit_properties=commit)
            store.record(consumer, source, end)
            return cursors.Consumed(consumer, delta.name, begin, end, end)

    def cursor(self, consumer: str, table: str) -> int | None:
        """The last version of ``table`` that ``consumer`` applied, as last seen (or None)."""
        return cursors.CursorStore().position(consumer, self._delta_table(table, "cursor").uri)

    def _delta_table(self, table: str, where: str) -> DeltaTable:
        """The registered Delta table ``table`` names (as SQL reads it); errors start ``where``."""
        return delta_names.lookup(
            self.delta_tables,
            table,
            where=where,
            missing=f"no Delta table named {table!r}",
            registered=lambda name: self.ctx.table_exist(delta_names.quoted(name)),
        )

    def _delta_files(self, *args: Any) -> Table:
        """``wb_delta_files('name')``: the file index of a registered Delta table (SQL).

        The name reads as a table name in SQL (``'Events'`` is ``events``, ``'"Events"'``
        keeps the case), as PostgreSQL reads ``'Events'::regclass``. Every error is a
        :class:`DeltaError` (DataFusion shows a TypeError from here as a raw dump).
        """
        usage = "write wb_delta_files('table name'), one constant string"
        if len(args) != 1:
            msg = f"wb_delta_files takes one argument, the Delta table's name, not {len(args)}"
            raise DeltaError(f"{msg}: {usage}")
        argument = args[0] if isinstance(args[0], Expr) else Expr(args[0])
        try:
            scalar = argument.python_value()
        except Exception:  # noqa: BLE001  (a column or another expression that is no constant)
            shown = argument.canonical_name()
            msg = f"wb_delta_files({shown}): the argument is not a constant string; {usage}"
            raise DeltaError(msg) from None
        value = scalar.as_py() if hasattr(scalar, "as_py") else scalar
        if not isinstance(value, str):
            shown = "NULL" if value is None else str(value)
            msg = f"wb_delta_files({shown}): the argument is the Delta table's name; {usage}"
            raise DeltaError(msg)
        table = delta_names.lookup(
            self.delta_tables,
            value,
            where=f"wb_delta_files({value!r})",
            missing="no Delta table of that name",
            registered=lambda name: self.ctx.table_exist(delta_names.quoted(name)),
        )
        table.refresh()
        return Table(pyarrow.dataset.dataset(table.file_index()))

    def _install_delta(self, table: DeltaTable, *, by: str | None = None) -> None:
        """Register ``table``; ``by`` is the statement that asked (``None``: the API did)."""
        quoted = delta_names.quoted
        # Quoted, DataFusion registers exactly the resolved name (see workbench.delta.names).
        if self.ctx.table_exist(quoted(table.name)):
            self.ctx.deregister_table(quoted(table.name))
        self.ctx.register_table(quoted(table.name), table.provider)
        self.delta_tables[table.name] = table
        self._table_changes.register(table.name, table.provider)
        if by is None:
            call = f"register_delta({table.name!r}, {str(table.uri)!r})"
            self.record_registration(table.name, table.ddl(), source="api", by=call)
        else:
            self.record_registration(table.name, table.ddl(), source="sql", by=by)

    def _create_delta(self, statement: Statement) -> datafusion.DataFrame:
        """Run ``CREATE EXTERNAL TABLE ... STORED AS DELTA`` (DataFusion has no factory for it)."""
        ddl = parse_delta_ddl(statement.text)
        exists = self.ctx.table_exist(delta_names.quoted(ddl.name))
        if exists and ddl.if_not_exists:
            table = self.delta_tables.get(ddl.name)
        else:
            if exists and not ddl.replace:
                msg = f"table {ddl.name} already exists; use CREATE OR REPLACE EXTERNAL TABLE"
                raise DeltaError(msg)
            table = DeltaTable.open(ddl.name, ddl.uri, ddl.options)
            # Recorded by _install_delta as table.ddl(): canonical, so a comment in the
            # statement cannot swallow the ";" that follows it in a bundle's tables.sql.
            self._install_delta(table, by=statement.trimmed)
        version = table.version if table is not None else None
        return self.ctx.sql(
            "SELECT $name AS delta_table, $version AS version",
            param_values={"name": ddl.name, "version": version},
        )

    @property
    def registrations(self) -> dict[str, str]:
        """Table name -> the DDL that registers it again (for bundles), from the registry."""
        return self.registry.ddl()

    def record_registration(
        self, name: str, ddl: str | None, *, source: str = "api", by: str | None = None
    ) -> None:
        """Remember how table ``name`` was registered (``None``: it was dropped).

        ``name`` is exact, as SQL resolves it (``"Cur2"`` and ``cur2`` are two tables).
        ``ddl`` is SQL that registers the table again in another session, or a
        ``--`` comment saying why there is none (a Python object, say). ``source`` is
        ``sql`` or ``api`` and ``by`` the statement or call (``%wb tables`` shows them).
        """
        self.registry.record(name, ddl, source=source, by=by or ddl or "")
        self.gate.changed()

    def _read_cache_settings(self) -> tuple[str, ...]:
        rows = self.ctx.sql(
            "SELECT name, value FROM information_schema.df_settings "
            "WHERE name LIKE 'datafusion.runtime.%cache%' ORDER BY name"
        ).to_pydict()
        return tuple(
            f"{name.removeprefix('datafusion.runtime.')}={value if value is not None else ''}"
            for name, value in zip(rows["name"], rows["value"], strict=True)
        )

    def _note_ddl(self, statement: Statement) -> None:
        if statement.kind == Kind.SETTINGS:
            self.cache_settings = self._read_cache_settings()
        if statement.kind in (Kind.DDL, Kind.SETTINGS):
            self.gate.changed()  # a new catalog (or settings) version: cached plans go stale
        definition = statement.definition
        if definition is None or definition[0] == "ALTER" or is_delta_ddl(statement.text):
            return  # a Delta CREATE is recorded by _create_delta
        verb, name = definition
        self.delta_tables.pop(name, None)  # dropped, or replaced by a non-Delta table
        self._table_changes.forget(name)
        ddl = None if verb == "DROP" else statement.trimmed
        self.record_registration(name, ddl, source="sql", by=statement.trimmed)

    def _with_delta_files(self, record: RunRecord) -> RunRecord:
        """The record with the files each Delta scan of the run read (for wb_runs)."""
        remembered = self._runs.get(record.run_id)
        if remembered is None or record.status == RunStatus.FAILED:
            # Failed while planning (nothing was scanned) or while running (planning the
            # plan again for its counts would fail the same way).
            return record
        try:
            root = plans.physical_tree(remembered.df.execution_plan())
        except Exception as exc:  # noqa: BLE001  (the record without counts beats a failed run)
            warnings.warn(f"Delta file counts of run {record.run_id}: {exc}", stacklevel=2)
            return record
        counts = tuple(
            DeltaFiles(
                node.delta_table,
                node.delta_version,
                node.delta_files_total,
                node.delta_files_scanned,
            )
            for node in root.walk()
            if node.delta_table is not None and node.delta_files_total is not None
        )
        return replace(record, delta_files=counts)

    def _on_run_event(self, record: RunRecord, event: str) -> None:
        self.diagnostics.record(record, event)
        if event == "finish" and record.status == RunStatus.FAILED:
            run = self._runs.get(record.run_id)
            if run is not None and run.plan_key is not None:
                self.plan_cache.discard(run.plan_key)  # failed while streaming: plan afresh
        if event == "finish" and self.profile.telemetry is not None:
            self._export_telemetry(record)

    def _export_telemetry(self, record: RunRecord) -> None:
        from workbench import telemetry

        remembered = self._runs.get(record.run_id)
        if remembered is None:
            return  # failed while planning: nothing ran, no operators to report
        try:
            tree = self.plan(record.run_id)
            telemetry.export_run(str(self.profile.telemetry), record, tree)
        except WorkbenchError as exc:
            # A collector being down must not fail the user's query.
            warnings.warn(str(exc), stacklevel=2)

    def _remember(
        self,
        run: _Remembered,
        opener: Callable[[], ClusterStream] | None = None,
        **result_args: Any,
    ) -> Result:
        """The run's Result, with the session's recovery and stall watch; remembered.

        A run on a cluster (``opener``) has neither: its memory and its stalls are the
        cluster's, and its stream stays open while the job runs with no batch to show.
        """
        run_id = run.tracker.record.run_id
        stream = result_args.get("stream")
        local = opener is None and not isinstance(stream, ClusterStream)
        if isinstance(stream, ClusterStream):
            run = replace(run, cluster_job=stream)
        if opener is not None:
            opener = self._remembering_job(run_id, opener)
        result = Result(
            run.df,
            run.tracker,
            max_materialize_bytes=self.profile.max_materialize_bytes,
            preview_rows=self.profile.preview_rows,
            recover=self._recovery(run.df, run_id) if local else None,
            watch=self.stall_watch if local else None,
            opener=opener,
            **result_args,
        )
        with self._runs_lock:
            self._runs[run_id] = replace(run, result=weakref.ref(result))
            while len(self._runs) > _REMEMBERED_RUNS:
                self._runs.popitem(last=False)
        self._let_go_of_executed_plans()
        self._executed.append(run_id)
        return result

    def _remembering_job(
        self, run_id: str, opener: Callable[[], ClusterStream]
    ) -> Callable[[], ClusterStream]:
        """``opener``, keeping the job it opens with the run (for plans after the Result)."""

        def opened() -> ClusterStream:
            job = opener()
            with self._runs_lock:
                remembered = self._runs.get(run_id)
                if remembered is not None:
                    self._runs[run_id] = replace(remembered, cluster_job=job)
            return job

        return opened

    def _let_go_of_executed_plans(self) -> None:
        """Let go of the executed plans of ended runs that hold a build side.

        DataFusion keeps an executed plan on its DataFrame, and with it the build side of
        every join that builds once for all partitions (``HashJoinExec: mode=CollectLeft``,
        cross and nested-loop joins): a remembered run (or a Result in IPython's output
        history) held it, outside any query, for as long as it was remembered. Such an
        ended run keeps its plan tree with the final metrics (for ``%explain``, bundles and
        telemetry) and a DataFrame not yet executed instead. Capturing the tree takes 2-4 ms
        for a TPC-H plan: under a memory limit it is done for any build side, before the next
        run starts (which may need the memory); otherwise for build sides of 8 MiB or more,
        on a worker thread, off the next run's path.
        """
        for run_id in list(self._executed):
            run = self._runs.get(run_id)
            if run is not None and not run.tracker.ended:
                continue  # still streaming: its plan is in use
            self._executed.remove(run_id)
            if run is None or run.tracker.record.status == RunStatus.PLANNED:
                continue  # forgotten, or never executed (EXPLAIN): nothing is held
            limited = self.profile.memory_limit_bytes is not None
            held = _held_build_bytes(run.df)
            if held == 0 or (not limited and held < _LET_GO_MIN_BYTES):
                continue
            if limited:
                self._let_go(run_id, run)
            else:
                if self._let_go_worker is None:
                    self._let_go_worker = ThreadPoolExecutor(1, thread_name_prefix="wb-let-go")
                self._let_go_worker.submit(self._let_go, run_id, run)

    def _let_go(self, run_id: str, run: _Remembered) -> None:
        record = run.tracker.record
        try:
            tree = plans.capture(
                run.df,
                analyzed=record.status == RunStatus.FINISHED,
                sql=record.sql,
                run_id=run_id,
            )
            fresh = self.ctx.create_dataframe_from_logical_plan(run.df.logical_plan())
        except Exception:  # noqa: BLE001  (a plan that no longer renders stays as it is)
            return
        with self._runs_lock:
            if run_id not in self._runs:
                return  # forgotten meanwhile
            self._runs[run_id] = replace(self._runs[run_id], df=fresh, tree=tree)
        result = run.result() if run.result is not None else None
        if result is not None:
            result.let_go_of_plan(fresh, tree)

    def recent(self, run_id: str) -> tuple[datafusion.DataFrame, RunRecord]:
        """The DataFrame and current record of a recent run."""
        if run_id not in self._runs:
            known = ", ".join(list(self._runs)[-5:]) or "none yet"
            msg = f"no recent run {run_id!r} in this session (latest: {known})"
            raise WorkbenchError(msg)
        run = self._runs[run_id]
        return run.df, run.tracker.record

    def gate_verdict(self, run_id: str) -> Prepared | None:
        """What the SQL gate made of the run's statement (``None``: it did not see it)."""
        self.recent(run_id)
        return self._runs[run_id].prepared

    def statement(self, run_id: str) -> str:
        """The statement of the cell whose rows the run produced.

        For a run of the direct Ibis lane, which ran no SQL, it is the SQL Ibis writes for
        the expression, written now (bundles replay it as their SQL lane).
        """
        self.recent(run_id)
        run = self._runs[run_id]
        if run.expr is not None:
            from workbench import ibis_lane

            return ibis_lane.sql_text(run.expr)
        return run.statement

    def params(self, run_id: str) -> dict[str, Any]:
        """The parameter values the run's statement was bound with."""
        self.recent(run_id)
        return dict(self._runs[run_id].params)

    def plan(self, run_id: str) -> PlanTree:
        """The plan tree of a recent run, with its metrics as of now."""
        df, record = self.recent(run_id)
        run = self._runs[run_id]
        if run.tree is not None:
            return run.tree
        analyzed = record.status == RunStatus.FINISHED
        if run.cluster_job is not None and analyzed:
            return run.cluster_job.plan(sql=record.sql, run_id=run_id)
        return plans.capture(df, analyzed=analyzed, sql=record.sql, run_id=run_id)

    def run_ids(self) -> list[str]:
        """Ids of the runs this session recorded (as ``wb_runs`` lists them), oldest first."""
        return self.diagnostics.run_ids()

    @property
    def last_run_id(self) -> str | None:
        return next(reversed(self._runs), None)

    @staticmethod
    def _check_placeholders(statement: Statement, bound: Mapping[str, Any], cell: str) -> None:
        missing = missing_placeholders(statement.text, bound)
        if not missing:
            return
        name, line, column = missing[0]
        line, column = statement.cell_position(line, column)
        if name.isdigit():
            msg = (
                f"positional parameter ${name} has no value: the workbench binds parameters by "
                "name; write $name and pass params={'name': ...} (in %%dfsql: {name} binds "
                "the Python variable name)"
            )
        else:
            msg = (
                f"parameter ${name} has no value; pass params={{'{name}': ...}} (in %%dfsql: "
                f"write {{{name}}} with a Python variable {name}, or --params)"
            )
        raise ParameterError(msg, sql=cell, location=SqlLocation(line, column, len(name) + 1))

    def _error(
        self,
        exc: Exception,
        statement: Statement,
        cell: _Cell,
        *,
        options: SQLOptions | None,
    ) -> SqlError:
        if isinstance(exc, GateError):
            return self._gate_error(exc, statement, cell)
        message = str(exc).removeprefix("DataFusion error: ")
        # The optimizer rule's name adds nothing for a user: "type_coercion\ncaused by\n...".
        message = re.sub(r"^\w+\ncaused by\n", "", message)
        # A Python table function (wb_delta_files) or UDF refused: its own message.
        message = python_error_text(message)
        refused = _REFUSED.search(message)
        location = locate_error(message, statement.text)
        if location is not None:
            line, column = statement.cell_position(location.line, location.column)
            location = SqlLocation(line, column, location.length)
        message = _shorten_field_list(message)
        message = _PARSER_ERROR.sub(r"SQL syntax error: \1", _PARSER_POSITION.sub("", message))
        several = len(cell.statements) > 1
        error_class = SqlError
        kind = _kind_of(message)
        diagnostic = self._diagnostic(statement, cell, kind)
        suggestions: tuple[str, ...] = ()
        if diagnostic is not None:
            kind, suggestions = diagnostic.kind, diagnostic.suggestions
            if location is None and diagnostic.line is not None and diagnostic.column:
                line, column = statement.cell_position(diagnostic.line, diagnostic.column)
                location = SqlLocation(line, column, len(diagnostic.token or " "))
            if suggestions and "did you mean" not in message.lower():
                verb = "qualify it" if kind == "ambiguous column" else "did you mean"
                message = f"{message}\n{verb}: {' or '.join(suggestions)}?"
        if refused and options is not None:
            kind, what = refused.groups()
            if options is self._plan_options:
                message = (
                    f"planning only: {kind} ({what}) would change data or settings, so it is "
                    "not planned; run it in %%dfsql, or use %explain --analyze to run it"
                )
            else:
                error_class = ReadOnlyError
                message = (
                    f"this session is read-only, so {kind} ({what}) is refused; open a session "
                    "with RuntimeProfile(read_only=False) to change tables or settings"
                )
        return error_class(
            message,
            sql=cell.sql,
            location=location,
            statement=statement.index + 1 if several else None,
            ran=cell.ran_text() if several else None,
            kind=kind,
            suggestions=suggestions,
        )

    def _diagnostic(self, statement: Statement, cell: _Cell, kind: str | None) -> Diagnostic | None:
        """The gate's diagnostic for what DataFusion refused (``kind``), if it has one."""
        prepared = cell.prepared.get(statement.index)
        if prepared is None and not self.profile.sql_gate:
            return None
        if prepared is None:
            try:
                prepared = self.gate.prepare(statement.text)
            except Exception:  # noqa: BLE001  (the gate adds to errors; it never makes one)
                return None
        related = {
            None: None,
            "unknown column": {"unknown column", "ambiguous column"},
            "ambiguous column": {"ambiguous column", "unknown column"},
            "unknown table": {"unknown table"},
            "parse": {"parse"},
        }
        if kind not in related:
            return None
        wanted = related[kind]
        return next(
            (d for d in prepared.verdict.diagnostics if wanted is None or d.kind in wanted), None
        )

    def _gate_error(self, exc: GateError, statement: Statement, cell: _Cell) -> SqlError:
        """A statement the gate refused (a misused macro or named argument), placed."""
        location = None
        if exc.token:
            found = re.search(
                rf"(?<!\w){re.escape(exc.token)}(?!\w)", statement.text, re.IGNORECASE
            )
            if found is not None:
                line, column = statement.cell_position(*position(statement.text, found.start()))
                location = SqlLocation(line, column, len(exc.token))
        several = len(cell.statements) > 1
        return SqlError(
            str(exc),
            sql=cell.sql,
            location=location,
            statement=statement.index + 1 if several else None,
            ran=cell.ran_text() if several else None,
            kind=exc.kind,
        )

    def tables(self) -> list[str]:
        """Names of the tables registered in the default schema."""
        rows = self.ctx.sql(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' ORDER BY table_name"
        ).to_pydict()
        return [str(name) for name in rows["table_name"]]

    def __repr__(self) -> str:
        return f"<Session datafusion={datafusion.__version__} registered={list(self.registered)}>"

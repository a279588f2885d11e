"""Plan capture: DataFusion's logical and physical plans as trees of values.

A :class:`PhysicalNode` is built from an ``ExecutionPlan`` through the
``metrics()`` API (never by parsing EXPLAIN text). Read a plan *after* (or
while) it runs: ``DataFrame.execution_plan()`` returns the very plan
``execute_stream()`` is running, so its metrics are live.

Time: DataFusion's ``elapsed_compute`` is already the operator's own CPU time
(children excluded), so it is the node's exclusive time; scans record no
``elapsed_compute`` and use ``time_elapsed_processing`` instead. Shares are
each node's exclusive time over the tree's total, so they sum to 100%.

Two values are only visible in a metric's text, not its ``value``: pruning
counters ("4 total → 1 matched") and ``output_batches``. Those are parsed from
the metric's own text (``_parse_count``, ``_parse_pruning``), one value at a
time, and tested.

A Delta scan of the extension shows across FFI only as its operator name, so its facts
travel as metrics of its ``DeltaTableExec`` node: ``delta_files_total`` and
``delta_files_scanned``, labelled with the table's registered name and version.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    import datafusion
    from datafusion.plan import ExecutionPlan, LogicalPlan


_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
_COUNT = re.compile(r"^\s*([\d.]+)\s*([KMBT]?)\s*$")
_PRUNING = re.compile(r"([\d.]+)\s*([KMBT]?)\s*total\s*→\s*([\d.]+)\s*([KMBT]?)\s*matched")
_PRUNING_METRICS = (
    "files_ranges_pruned_statistics",
    "row_groups_pruned_statistics",
    "row_groups_pruned_bloom_filter",
    "page_index_pages_pruned",
    "page_index_rows_pruned",
    "limit_pruned_row_groups",
)
_SCAN_TIME = "time_elapsed_processing"
_DELTA_METRICS = ("delta_files_total", "delta_files_scanned")


def _number(digits: str, suffix: str) -> int:
    return round(float(digits) * _SUFFIX[suffix])


def _parse_count(text: str) -> int | None:
    """``"3"`` or ``"20.10 K"`` as an int (DataFusion rounds big counts to 4 digits)."""
    found = _COUNT.match(text)
    return _number(*found.groups()) if found else None


def _parse_pruning(text: str) -> tuple[int, int] | None:
    """``"4 total → 1 matched"`` as (total, matched)."""
    found = _PRUNING.search(text)
    if not found:
        return None
    total_digits, total_suffix, matched_digits, matched_suffix = found.groups()
    return _number(total_digits, total_suffix), _number(matched_digits, matched_suffix)


@dataclass(frozen=True)
class Spread:
    """A metric across partitions: min, median, max; skew = max / median."""

    partitions: int
    min: float
    median: float
    max: float

    @property
    def skew(self) -> float:
        return (
            self.max / self.median if self.median > 0 else (0.0 if self.max == 0 else float("inf"))
        )

    @staticmethod
    def of(values: list[float]) -> Spread | None:
        if not values:
            return None
        return Spread(len(values), min(values), statistics.median(values), max(values))


@dataclass(frozen=True)
class Pruning:
    """One pruning counter of a scan: how many candidates, how many were kept."""

    name: str
    total: int
    matched: int


@dataclass(frozen=True)
class PhysicalNode:
    """One operator of an executed (or planned) physical plan."""

    id: int
    """Pre-order position in the tree, stable for one plan."""
    operator: str
    details: str
    partitions: int
    children: tuple[PhysicalNode, ...]
    output_rows: int | None = None
    output_bytes: int | None = None
    output_batches: int | None = None
    exclusive_ns: int | None = None
    """The operator's own compute time in nanoseconds, summed across partitions."""
    share: float = 0.0
    """exclusive_ns over the whole tree's exclusive time (0..1); shares sum to 1."""
    spill_count: int = 0
    spilled_bytes: int = 0
    spilled_rows: int = 0
    rows_by_partition: Spread | None = None
    time_by_partition: Spread | None = None
    pruning: tuple[Pruning, ...] = ()
    bytes_scanned: int | None = None
    started_at: dt.datetime | None = None
    """When the operator's first partition started (UTC); None if it never ran."""
    ended_at: dt.datetime | None = None
    """When its last partition finished (UTC)."""
    metrics: tuple[tuple[str, int], ...] = ()
    """Every numeric metric, summed across partitions, by name."""
    delta_table: str | None = None
    """For a Delta scan (``DeltaTableExec``): the name the table is registered under."""
    delta_version: int | None = None
    """The Delta table version the scan reads."""
    delta_files_total: int | None = None
    """Data files in that version's snapshot."""
    delta_files_scanned: int | None = None
    """Files the scan reads after partition and file-statistics pruning."""

    def walk(self) -> Iterator[PhysicalNode]:
        yield self
        for child in self.children:
            yield from child.walk()

    @property
    def subtree_ns(self) -> int:
        return (self.exclusive_ns or 0) + sum(c.subtree_ns for c in self.children)

    @property
    def label(self) -> str:
        return f"#{self.id} {self.operator}"


@dataclass(frozen=True)
class LogicalNode:
    """One node of the optimized logical plan."""

    operator: str
    details: str
    children: tuple[LogicalNode, ...] = ()

    def walk(self) -> Iterator[LogicalNode]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class PlanTree:
    """A physical plan with its metrics, and the logical plan it came from."""

    physical: PhysicalNode
    logical: LogicalNode | None
    analyzed: bool
    """Whether the plan ran (metrics are meaningful) or was only planned."""
    sql: str = ""
    run_id: str | None = None
    hot_path: tuple[int, ...] = field(default=())
    """Node ids from the root down the child with the most subtree time."""
    views: tuple[str, ...] = ("physical",)
    """What the views show: "physical", "logical" or both."""
    verbose: str | None = None
    """``EXPLAIN VERBOSE`` text, when asked for."""

    @property
    def nodes(self) -> list[PhysicalNode]:
        return list(self.physical.walk())

    @property
    def total_ns(self) -> int:
        return self.physical.subtree_ns

    def node(self, node_id: int) -> PhysicalNode:
        return next(n for n in self.physical.walk() if n.id == node_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:  # noqa: ARG002
        from workbench.widgets.plan_tree import plan_bundle

        return plan_bundle(self)

    def text(self) -> str:
        from workbench.widgets.plan_tree import plan_text

        return plan_text(self)


_FOREIGN = "FFI_ExecutionPlan"


def _split_display(display: str) -> tuple[str, str]:
    first = display.strip()
    operator, _, details = first.partition(": ")
    if operator.strip() == _FOREIGN:
        # An operator of the Rust extension (a Delta scan, say): DataFusion shows only its
        # name across FFI ("FFI_ExecutionPlan: DeltaScanExec, number_of_children=1").
        return details.split(",", 1)[0].strip(), "in the workbench extension (FFI)"
    return operator.strip(), details.strip()


@dataclass
class _Tally:
    """Running totals over one MetricsSet (mutable; lives only while reading it)."""

    time_metric: str
    sums: dict[str, int] = field(default_factory=dict)
    rows_by_partition: dict[int, int] = field(default_factory=dict)
    time_by_partition: dict[int, int] = field(default_factory=dict)
    pruning: dict[str, list[int]] = field(default_factory=dict)
    starts: list[dt.datetime] = field(default_factory=list)
    ends: list[dt.datetime] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    """Labels of the Delta metrics (table, version)."""

    def add(self, metric: Any) -> None:
        name, value, partition = metric.name, metric.value, metric.partition
        if name in _DELTA_METRICS:
            self.labels.update(metric.labels())
        if name in _PRUNING_METRICS:
            parsed = _parse_pruning(str(metric))
            if parsed is not None:
                totals = self.pruning.setdefault(name, [0, 0])
                totals[0] += parsed[0]
                totals[1] += parsed[1]
        elif isinstance(value, dt.datetime):
            if name == "start_timestamp":
                self.starts.append(value)
            elif name == "end_timestamp":
                self.ends.append(value)
        else:
            self._add_number(name, partition, _parse_count(str(metric)) if value is None else value)

    def _add_number(self, name: str, partition: int | None, value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            return  # ratios and other non-counts
        self.sums[name] = self.sums.get(name, 0) + value
        if partition is None:
            return
        if name == "output_rows":
            self.rows_by_partition[partition] = self.rows_by_partition.get(partition, 0) + value
        if name == self.time_metric:
            self.time_by_partition[partition] = self.time_by_partition.get(partition, 0) + value

    def fields(self) -> dict[str, Any]:
        sums = self.sums
        return {
            "output_rows": sums.get("output_rows"),
            "output_bytes": sums.get("output_bytes"),
            "output_batches": sums.get("output_batches"),
            "exclusive_ns": sums.get(self.time_metric),
            "spill_count": sums.get("spill_count", 0),
            "spilled_bytes": sums.get("spilled_bytes", 0),
            "spilled_rows": sums.get("spilled_rows", 0),
            "rows_by_partition": Spread.of([float(v) for v in self.rows_by_partition.values()]),
            "time_by_partition": Spread.of([float(v) for v in self.time_by_partition.values()]),
            "pruning": tuple(Pruning(n, t, m) for n, (t, m) in sorted(self.pruning.items())),
            "bytes_scanned": sums.get("bytes_scanned"),
            "started_at": min(self.starts) if self.starts else None,
            "ended_at": max(self.ends) if self.ends else None,
            "metrics": tuple(sorted(sums.items())),
            **self._delta_fields(),
        }

    def _delta_fields(self) -> dict[str, Any]:
        if "delta_files_total" not in self.sums:
            return {}
        version = self.labels.get("version", "")
        return {
            "delta_table": self.labels.get("table"),
            "delta_version": int(version) if version.isdigit() else None,
            "delta_files_total": self.sums["delta_files_total"],
            "delta_files_scanned": self.sums.get("delta_files_scanned"),
        }


def _node_metrics(plan: ExecutionPlan) -> dict[str, Any]:
    """Everything the node's MetricsSet says, reduced to the PhysicalNode fields."""
    metrics_set = plan.metrics()
    if metrics_set is None:
        return {}
    metrics = metrics_set.metrics()
    # Scans leave elapsed_compute (nearly) unrecorded; their own time is processing time.
    time_metric = _SCAN_TIME if any(m.name == _SCAN_TIME for m in metrics) else "elapsed_compute"
    tally = _Tally(time_metric)
    for metric in metrics:
        tally.add(metric)
    return tally.fields()


def _build_physical(plan: ExecutionPlan, counter: list[int]) -> PhysicalNode:
    node_id = counter[0]
    counter[0] += 1
    operator, details = _split_display(plan.display())
    children = tuple(_build_physical(child, counter) for child in plan.children())
    return PhysicalNode(
        id=node_id,
        operator=operator,
        details=details,
        partitions=plan.partition_count,
        children=children,
        **_node_metrics(plan),
    )


def _with_shares(node: PhysicalNode, total: int) -> PhysicalNode:
    children = tuple(_with_shares(c, total) for c in node.children)
    share = (node.exclusive_ns or 0) / total if total > 0 else 0.0
    return replace(node, children=children, share=share)


def _hot_path(node: PhysicalNode) -> tuple[int, ...]:
    path = [node.id]
    while node.children:
        node = max(node.children, key=lambda c: c.subtree_ns)
        path.append(node.id)
    return tuple(path)


@dataclass(frozen=True)
class _Value:
    """A metric given as plain values (a cluster's stage metrics), read like DataFusion's."""

    name: str
    partition: int | None
    value: int

    def labels(self) -> dict[str, str]:
        return {}

    def __str__(self) -> str:
        return str(self.value)


def node_of(
    node_id: int,
    display: str,
    partitions: int,
    children: tuple[PhysicalNode, ...],
    values: list[tuple[str, int | None, int]],
) -> PhysicalNode:
    """A node from an operator's display text and its ``(metric, partition, value)`` list:
    the same reduction as for a plan of this process (a Ballista stage's operators)."""
    operator, details = _split_display(display)
    time_metric = _SCAN_TIME if any(v[0] == _SCAN_TIME for v in values) else "elapsed_compute"
    tally = _Tally(time_metric)
    for name, partition, value in values:
        tally.add(_Value(name, partition, value))
    return PhysicalNode(
        id=node_id,
        operator=operator,
        details=details,
        partitions=partitions,
        children=children,
        **(tally.fields() if values else {}),
    )


def tree_of(
    root: PhysicalNode, *, analyzed: bool, sql: str = "", run_id: str | None = None
) -> PlanTree:
    """A PlanTree over nodes built with :func:`node_of`, with time shares and hot path."""
    physical = _with_shares(root, root.subtree_ns)
    return PlanTree(
        physical=physical,
        logical=None,
        analyzed=analyzed,
        sql=sql,
        run_id=run_id,
        hot_path=_hot_path(physical),
    )


def physical_tree(plan: ExecutionPlan) -> PhysicalNode:
    """The physical plan as nodes with metrics and time shares."""
    root = _build_physical(plan, [0])
    return _with_shares(root, root.subtree_ns)


def logical_tree(plan: LogicalPlan) -> LogicalNode:
    """The (optimized) logical plan as nodes."""
    operator, details = _split_display(plan.display())
    return LogicalNode(operator, details, tuple(logical_tree(i) for i in plan.inputs()))


def capture(
    df: datafusion.DataFrame, *, analyzed: bool, sql: str = "", run_id: str | None = None
) -> PlanTree:
    """The plan tree of ``df``: call after (or while) it runs for live metrics."""
    physical = physical_tree(df.execution_plan())
    return PlanTree(
        physical=physical,
        logical=logical_tree(df.optimized_logical_plan()),
        analyzed=analyzed,
        sql=sql,
        run_id=run_id,
        hot_path=_hot_path(physical),
    )

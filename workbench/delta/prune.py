"""Pruning reports: which files of a Delta table a predicate skips, and why.

:meth:`workbench.Session.prune` asks the extension's provider to evaluate a predicate on
the Delta log alone: each top-level ``AND`` term becomes a DataFusion pruning predicate
over the per-file statistics (min, max, null counts) and partition values of the
registered version, so no data file is opened. A :class:`PruningReport` holds the counts
and one row per file with the reason it was kept or pruned:

- ``partition p = 'x' (file has p = 'y')`` when a term on partition columns excludes it;
- ``l_shipdate min 1996-01-02 > 1995-12-31``: the file's statistic that put it out of range;
- ``statistics overlap`` or ``missing statistics for <column>`` for a file kept.

With ``analyze=True`` the session also runs ``SELECT count(*) FROM table WHERE predicate``
and the report carries the funnel read from that scan's metrics: files in the snapshot,
files the Delta scan read, Parquet row groups and pages that survived their statistics,
and rows read against rows matching. When the plan reads no Parquet file, the report's
``note`` says why, from evidence in the plan (:func:`scan_note`). The report is a value:
it imports neither the session nor its views (``workbench.widgets.pruning`` renders it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from workbench.plans import LogicalNode, PhysicalNode, PlanTree

# Parquet counters of DataFusion's scan, in funnel order: (metric, stage, unit).
_PARQUET_STAGES = (
    ("files_ranges_pruned_statistics", "Parquet file ranges", "ranges"),
    ("row_groups_pruned_statistics", "row groups", "row groups"),
    ("page_index_pages_pruned", "pages", "pages"),
)
_SCANS = ("DeltaScanExec", "DeltaScanMetaExec")
_ROW_FILTER = "pushdown_rows_pruned"


@dataclass(frozen=True)
class Term:
    """One top-level ``AND`` term of the predicate."""

    sql: str
    decidable: bool
    """Whether file statistics can decide it; an undecidable term keeps every file."""


@dataclass(frozen=True)
class FunnelStage:
    """One step of the funnel: of ``total`` candidates, ``kept`` went on."""

    stage: str
    unit: str
    total: int
    kept: int
    source: str
    """``log`` (the report's own evaluation) or ``metrics`` (the analyzed scan)."""

    @property
    def share(self) -> float:
        """kept / total (1.0 for an empty stage)."""
        return self.kept / self.total if self.total else 1.0


@dataclass(frozen=True)
class PruningReport:
    """What a predicate prunes in one version of a Delta table."""

    table: str
    version: int
    predicate: str
    total_files: int
    candidate_files: int
    """Files the predicate cannot rule out from the log: the ones a scan must open."""
    total_bytes: int
    candidate_bytes: int
    files: pa.Table
    """One row per file: path, size_bytes, num_records, kept, reason (log order)."""
    terms: tuple[Term, ...] = ()
    funnel: tuple[FunnelStage, ...] = ()
    """From the log, plus the analyzed scan's stages with ``analyze=True``."""
    run_id: str | None = None
    """The analyzed run (``wb_runs``), when there is one."""
    matching_rows: int | None = None
    """``count(*)`` of the analyzed query."""
    note: str | None = None
    """What the analyzed run did not show, and why."""

    @classmethod
    def from_verdicts(
        cls,
        table: str,
        version: int,
        predicate: str,
        files: pa.Table,
        terms: Iterable[tuple[str, bool]],
    ) -> PruningReport:
        """The report of the extension's per-file verdicts (``DeltaProvider.prune``)."""
        kept = files.filter(pc.field("kept"))
        total_bytes = pc.sum(files["size_bytes"]).as_py() or 0
        candidate_bytes = pc.sum(kept["size_bytes"]).as_py() or 0
        report = cls(
            table=table,
            version=version,
            predicate=predicate,
            total_files=files.num_rows,
            candidate_files=kept.num_rows,
            total_bytes=int(total_bytes),
            candidate_bytes=int(candidate_bytes),
            files=files,
            terms=tuple(Term(sql, decidable) for sql, decidable in terms),
        )
        log = FunnelStage("Delta log", "files", files.num_rows, kept.num_rows, "log")
        return replace(report, funnel=(log,))

    @property
    def pruned_files(self) -> int:
        return self.total_files - self.candidate_files

    @property
    def analyzed(self) -> bool:
        return self.run_id is not None

    def with_scan(self, tree: PlanTree, matching_rows: int | None) -> PruningReport:
        """This report plus the funnel of the analyzed query's plan ``tree``."""
        return replace(
            self,
            funnel=(*self.funnel, *scan_funnel(tree, self.table, matching_rows)),
            run_id=tree.run_id,
            matching_rows=matching_rows,
            note=scan_note(tree, self.table),
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:  # noqa: ARG002
        from workbench.widgets.pruning import report_bundle

        return report_bundle(self)

    def text(self) -> str:
        from workbench.widgets.pruning import report_text

        return report_text(self)


def _delta_nodes(tree: PlanTree, table: str) -> list[PhysicalNode]:
    # Scans are labelled with the exact registered name ("Events" and "events" can differ).
    nodes = tree.physical.walk()
    return [n for n in nodes if n.delta_files_total is not None and n.delta_table == table]


def _logical_scan_of(node: LogicalNode, table: str) -> bool:
    """Whether ``node`` is the optimized logical plan's scan of ``table``."""
    # TableScan displays as "TableScan: <name> projection=[...], full_filters=[...]".
    return node.operator == "TableScan" and (
        node.details == table or node.details.startswith(f"{table} ")
    )


def scan_note(tree: PlanTree, table: str) -> str | None:
    """Why the analyzed plan of ``table`` shows no Parquet scan, read from the plan itself.

    Each note needs its own evidence in the plan, never the mere absence of a scan:

    - a ``DeltaScanMetaExec`` under the table's ``DeltaTableExec``, with no
      ``DataSourceExec`` below: deltalake counted the rows from the log's per-file
      statistics (a metadata-only scan), so the funnel stops at the Delta scan;
    - no scan of the table in the physical plan, while the optimized logical plan still
      has its ``TableScan`` and the physical plan a ``PlaceholderRowExec``: DataFusion's
      ``AggregateStatistics`` rule replaced ``count(*)`` with the exact row count of the
      scan's statistics, which the provider takes from the Delta log's record counts of
      the files the pushed-down filters keep, so the scan left the plan unread;
    - no ``TableScan`` of the table and an ``EmptyRelation`` in the logical plan: the
      optimizer proved the predicate never true and dropped the scan (``WHERE 1 = 0``).

    ``None`` when the plan reads Parquet (the funnel shows it); a neutral note when no
    scan of the table is left and none of the above explains why.
    """
    roots = _delta_nodes(tree, table)
    if roots:
        below = {d.operator for n in roots for d in n.walk()}
        if "DeltaScanMetaExec" in below and "DataSourceExec" not in below:
            return (
                "the rows were counted from the Delta log's statistics (a metadata-only "
                "scan, DeltaScanMetaExec) without reading a data file"
            )
        return None
    logical = list(tree.logical.walk()) if tree.logical is not None else []
    scanned = any(_logical_scan_of(n, table) for n in logical)
    if scanned and any(n.operator == "PlaceholderRowExec" for n in tree.physical.walk()):
        return (
            "the query was answered from the Delta log's statistics (its exact record "
            "counts) without reading a data file, so there is no scan to show"
        )
    if not scanned and any(n.operator == "EmptyRelation" for n in logical):
        return (
            "DataFusion found the predicate never true, so the query did not scan the "
            "table at all and there is no scan to show"
        )
    return f"the analyzed plan has no scan of {table}, so there is no scan to show"


def _sum_pruning(nodes: Sequence[PhysicalNode], metric: str) -> tuple[int, int] | None:
    found = [p for n in nodes for p in n.pruning if p.name == metric]
    if not found:
        return None
    return sum(p.total for p in found), sum(p.matched for p in found)


def _rows_read(nodes: Sequence[PhysicalNode]) -> int | None:
    """Rows the Parquet reader decoded: those it produced plus those its row filter dropped.

    Without a Parquet scan (every file pruned, or rows counted from the log by
    ``DeltaScanMetaExec``), the Delta scan's own output.
    """
    parquet = [n for n in nodes if n.operator == "DataSourceExec"]
    if parquet:
        return sum((n.output_rows or 0) + dict(n.metrics).get(_ROW_FILTER, 0) for n in parquet)
    scans = [n for n in nodes if n.operator in _SCANS]
    return sum(n.output_rows or 0 for n in scans) if scans else None


def scan_funnel(tree: PlanTree, table: str, matching_rows: int | None) -> tuple[FunnelStage, ...]:
    """The funnel of ``table``'s scans in an executed plan, from their metrics.

    Files in the snapshot -> files the Delta scan read (``DeltaTableExec``) -> Parquet
    file ranges, row groups and pages kept by their statistics (counters of the scan
    below) -> rows the Parquet reader decoded against ``matching_rows`` (the query's count).
    Empty when the plan has no scan of ``table`` (answered without reading it).
    """
    roots = _delta_nodes(tree, table)
    if not roots:
        return ()
    stages = [
        FunnelStage(
            "Delta scan",
            "files",
            sum(n.delta_files_total or 0 for n in roots),
            sum(n.delta_files_scanned or 0 for n in roots),
            "metrics",
        )
    ]
    below = [d for n in roots for d in n.walk()]
    for metric, stage, unit in _PARQUET_STAGES:
        counts = _sum_pruning(below, metric)
        if counts is not None and counts[0]:
            stages.append(FunnelStage(stage, unit, counts[0], counts[1], "metrics"))
    read = _rows_read(below)
    if read is not None and matching_rows is not None:
        stages.append(FunnelStage("rows", "rows", read, matching_rows, "metrics"))
    return tuple(stages)

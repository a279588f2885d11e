"""The plan-tree view: text, static HTML and an inline anywidget.

The widget gets a compact JSON payload (operator, truncated details, the
numbers) rather than the whole PlanTree, so even TPC-H's largest plans stay
well under 200 KB. The static HTML is the same tree as nested ``<details>``.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.plans import LogicalNode, PhysicalNode, PlanTree, Spread

_DETAILS_CHARS = 600
_SKEW_BADGE = 2.0
_PRUNING_LABELS = {
    "files_ranges_pruned_statistics": "files",
    "row_groups_pruned_statistics": "row groups",
    "row_groups_pruned_bloom_filter": "row groups (bloom)",
    "page_index_pages_pruned": "pages",
    "page_index_rows_pruned": "rows (page index)",
    "limit_pruned_row_groups": "row groups (limit)",
}


def _duration(ns: int | None) -> str:
    if ns is None:
        return "-"
    for unit, size in (("s", 10**9), ("ms", 10**6), ("µs", 10**3)):
        if ns >= size:
            return f"{ns / size:.1f} {unit}"
    return f"{ns} ns"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def delta_badge(node: PhysicalNode) -> str | None:
    """``Delta lineitem v0: 1/10 files`` for a Delta scan node, else None."""
    if node.delta_files_total is None:
        return None
    version = "" if node.delta_version is None else f" v{node.delta_version}"
    scanned = _count(node.delta_files_scanned)
    return f"Delta {node.delta_table or '?'}{version}: {scanned}/{node.delta_files_total:,} files"


def _badges(node: PhysicalNode) -> list[str]:
    badge = delta_badge(node)
    badges = [] if badge is None else [badge]
    if node.rows_by_partition and node.rows_by_partition.partitions > 1:
        skew = node.rows_by_partition.skew
        if skew >= _SKEW_BADGE:
            badges.append(f"skew {skew:.1f}x")
    for counter in node.pruning:
        if counter.total:
            label = _PRUNING_LABELS.get(counter.name, counter.name)
            badges.append(f"{label} {counter.matched:,}/{counter.total:,}")
    if node.spill_count:
        badges.append(f"spilled {node.spilled_bytes:,} B")
    return badges


def _spread(spread: Spread | None) -> list[float] | None:
    return None if spread is None else [spread.min, spread.median, spread.max]


def _payload_node(node: PhysicalNode) -> dict[str, Any]:
    details = node.details
    if len(details) > _DETAILS_CHARS:
        details = details[: _DETAILS_CHARS - 1] + "…"
    return {
        "id": node.id,
        "op": node.operator,
        "details": details,
        "rows": node.output_rows,
        "ns": node.exclusive_ns,
        "share": round(node.share, 4),
        "bytes": node.output_bytes,
        "batches": node.output_batches,
        "bytes_scanned": node.bytes_scanned,
        "partitions": node.partitions,
        "rows_spread": _spread(node.rows_by_partition),
        "time_spread": _spread(node.time_by_partition),
        "badges": _badges(node),
        "pruning": [[p.name, p.total, p.matched] for p in node.pruning],
        "spills": [node.spill_count, node.spilled_bytes, node.spilled_rows],
        "children": [_payload_node(c) for c in node.children],
    }


def payload(tree: PlanTree) -> dict[str, Any]:
    """The JSON the widget renders."""
    return {
        "sql": tree.sql[:4000],
        "analyzed": tree.analyzed,
        "run_id": tree.run_id,
        "total_ns": tree.total_ns,
        "hot": list(tree.hot_path),
        "root": _payload_node(tree.physical),
        "logical": logical_text(tree) if "logical" in tree.views else None,
        "show_physical": "physical" in tree.views,
    }


def logical_text(tree: PlanTree) -> str:
    """The optimized logical plan, one indented line per node."""
    if tree.logical is None:
        return ""
    lines: list[str] = []

    def visit(node: LogicalNode, depth: int) -> None:
        lines.append(f"{'  ' * depth}{node.operator}{': ' if node.details else ''}{node.details}")
        for child in node.children:
            visit(child, depth + 1)

    visit(tree.logical, 0)
    return "\n".join(lines)


def plan_text(tree: PlanTree) -> str:
    sections = []
    if "physical" in tree.views:
        sections.append(physical_text(tree))
    if "logical" in tree.views:
        sections.append("optimized logical plan\n" + logical_text(tree))
    if tree.verbose:
        sections.append("EXPLAIN VERBOSE\n" + tree.verbose)
    return "\n\n".join(sections)


def physical_text(tree: PlanTree) -> str:
    hot = set(tree.hot_path)
    state = "analyzed" if tree.analyzed else "planned only"
    run = "" if tree.run_id is None else f" run {tree.run_id}"
    lines = [f"physical plan ({state}; total {_duration(tree.total_ns)}){run}"]

    def visit(node: PhysicalNode, depth: int) -> None:
        parts = [f"{'  ' * depth}{node.label}"]
        if tree.analyzed:
            parts.append(f"rows={_count(node.output_rows)}")
            parts.append(f"time={_duration(node.exclusive_ns)} ({node.share:.1%})")
        parts += [f"[{b}]" for b in _badges(node)]
        if node.id in hot and tree.analyzed:
            parts.append("*hot*")
        lines.append(" ".join(parts))
        for child in node.children:
            visit(child, depth + 1)

    visit(tree.physical, 0)
    return "\n".join(lines)


_STYLE = (
    "<style>.wb-plan{font:12px/1.4 system-ui,sans-serif}.wb-plan details{margin-left:14px}"
    ".wb-plan summary{cursor:pointer;white-space:nowrap}.wb-plan .op{font-weight:600}"
    ".wb-plan .hot>summary .op{color:#c0392b}.wb-plan .bar{display:inline-block;height:8px;"
    "background:#e67e22;vertical-align:middle;margin:0 4px}.wb-plan .badge{background:#eef;"
    "border-radius:3px;padding:0 4px;margin-left:4px;font-size:11px}.wb-plan pre{white-space:"
    "pre-wrap;color:#555;margin:2px 0 4px 14px;font-size:11px}</style>"
)


def plan_html(tree: PlanTree) -> str:
    """The tree as nested, escaped ``<details>`` (works without JavaScript)."""
    e = html.escape
    hot = set(tree.hot_path)

    def visit(node: PhysicalNode) -> str:
        numbers = ""
        if tree.analyzed:
            width = max(1, round(node.share * 120)) if node.share else 0
            numbers = (
                f" rows {e(_count(node.output_rows))} · {e(_duration(node.exclusive_ns))}"
                f"<span class='bar' style='width:{width}px'></span>{node.share:.1%}"
            )
        badges = "".join(f"<span class='badge'>{e(b)}</span>" for b in _badges(node))
        css = " class='hot'" if node.id in hot and tree.analyzed else ""
        children = "".join(visit(c) for c in node.children)
        return (
            f"<details open{css}><summary><span class='op'>{e(node.label)}</span>{numbers}{badges}"
            f"</summary><pre>{e(node.details[:_DETAILS_CHARS])}</pre>{children}</details>"
        )

    parts = [f"<div class='wb-plan'>{_STYLE}"]
    if "physical" in tree.views:
        parts.append(f"<div>{e(physical_text(tree).splitlines()[0])}</div>{visit(tree.physical)}")
    if "logical" in tree.views:
        parts.append(f"<div>optimized logical plan</div><pre>{e(logical_text(tree))}</pre>")
    if tree.verbose:
        parts.append(
            f"<details><summary>EXPLAIN VERBOSE</summary><pre>{e(tree.verbose)}</pre></details>"
        )
    parts.append("</div>")
    return "".join(parts)


def plan_bundle(tree: PlanTree) -> dict[str, Any]:
    """Widget view (when a front end is there) plus static HTML and text."""
    bundle: dict[str, Any] = {"text/plain": plan_text(tree), "text/html": plan_html(tree)}
    try:
        widget = PlanTreeWidget(tree)
    except ImportError:  # anywidget missing: the static views still show the plan
        return bundle
    widget_bundle = widget._repr_mimebundle_()
    data = widget_bundle[0] if isinstance(widget_bundle, tuple) else widget_bundle
    return {**data, **bundle} if data else bundle


def PlanTreeWidget(tree: PlanTree) -> Any:  # noqa: N802  (a factory that reads like a class)
    """An anywidget showing ``tree``; import is lazy so the engine runs without it."""
    from workbench.widgets._plan_widget import PlanTreeView

    return PlanTreeView(data=payload(tree))

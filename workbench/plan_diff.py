"""Comparing plans: side-by-side operator deltas, and a CI guard against regressions.

``diff(a, b)`` aligns two physical plan trees node by node (children in
order, while operator names agree; a subtree whose operator changed counts as
removed from A and added in B) and reports rows, time and pruning deltas for
each matched pair. ``assert_no_regression(baseline, current)`` is meant for
pytest: it fails when the plan's shape changed, a scan keeps more files, row
groups or pages than before, or an operator spills that did not.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.plans import PhysicalNode, PlanTree, Pruning, Spread

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass(frozen=True)
class NodeDelta:
    """One row of a plan diff: a matched pair, or a node only one side has."""

    status: str
    """"matched", "removed" (only in A) or "added" (only in B)."""
    depth: int
    a: PhysicalNode | None
    b: PhysicalNode | None

    @property
    def operator(self) -> str:
        node = self.b or self.a
        assert node is not None
        return node.operator

    @property
    def rows_delta(self) -> int | None:
        if self.a is None or self.b is None or None in (self.a.output_rows, self.b.output_rows):
            return None
        return (self.b.output_rows or 0) - (self.a.output_rows or 0)

    @property
    def time_delta_ns(self) -> int | None:
        if self.a is None or self.b is None:
            return None
        return (self.b.exclusive_ns or 0) - (self.a.exclusive_ns or 0)


@dataclass(frozen=True)
class PlanDiff:
    a: PlanTree
    b: PlanTree
    rows: tuple[NodeDelta, ...]

    @property
    def same_shape(self) -> bool:
        return all(r.status == "matched" for r in self.rows)

    def text(self) -> str:
        lines = [f"plan diff: A run {self.a.run_id} vs B run {self.b.run_id}"]
        mark = {"matched": " ", "removed": "-", "added": "+"}
        for row in self.rows:
            detail = ""
            if row.status == "matched":
                detail = f" rows {_signed(row.rows_delta)} time {_signed_ms(row.time_delta_ns)}"
            lines.append(f"{mark[row.status]} {'  ' * row.depth}{row.operator}{detail}")
        return "\n".join(lines)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:  # noqa: ARG002
        e = html.escape
        css = {"matched": "", "removed": "background:#fdecea", "added": "background:#e8f6ec"}
        body = []
        for row in self.rows:
            a, b = row.a, row.b
            body.append(
                f"<tr style='{css[row.status]}'><td>{e(row.status)}</td>"
                f"<td style='padding-left:{row.depth * 12}px'>{e(row.operator)}</td>"
                f"<td>{e(_count(a))}</td><td>{e(_count(b))}</td><td>{e(_signed(row.rows_delta))}</td>"
                f"<td>{e(_ms(a))}</td><td>{e(_ms(b))}</td><td>{e(_signed_ms(row.time_delta_ns))}</td></tr>"
            )
        table = (
            "<table class='wb-diff'><thead><tr><th></th><th>operator</th><th>rows A</th>"
            "<th>rows B</th><th>Δ rows</th><th>time A</th><th>time B</th><th>Δ time</th></tr>"
            f"</thead><tbody>{''.join(body)}</tbody></table>"
        )
        return {"text/plain": self.text(), "text/html": table}


def _count(node: PhysicalNode | None) -> str:
    return "" if node is None or node.output_rows is None else f"{node.output_rows:,}"


def _ms(node: PhysicalNode | None) -> str:
    return "" if node is None or node.exclusive_ns is None else f"{node.exclusive_ns / 1e6:.2f} ms"


def _signed(value: int | None) -> str:
    return "" if value is None else f"{value:+,}"


def _signed_ms(value: int | None) -> str:
    return "" if value is None else f"{value / 1e6:+.2f} ms"


def _align(a: PhysicalNode | None, b: PhysicalNode | None, depth: int) -> Iterator[NodeDelta]:
    if a is not None and b is not None and a.operator == b.operator:
        yield NodeDelta("matched", depth, a, b)
        for index in range(max(len(a.children), len(b.children))):
            child_a = a.children[index] if index < len(a.children) else None
            child_b = b.children[index] if index < len(b.children) else None
            yield from _align(child_a, child_b, depth + 1)
        return
    if a is not None:
        for node, level in _walk(a, depth):
            yield NodeDelta("removed", level, node, None)
    if b is not None:
        for node, level in _walk(b, depth):
            yield NodeDelta("added", level, None, node)


def _walk(node: PhysicalNode, depth: int) -> Iterator[tuple[PhysicalNode, int]]:
    yield node, depth
    for child in node.children:
        yield from _walk(child, depth + 1)


def diff(a: PlanTree, b: PlanTree) -> PlanDiff:
    """Operator-by-operator comparison of two plan trees."""
    return PlanDiff(a, b, tuple(_align(a.physical, b.physical, 0)))


def _node_from_dict(data: dict[str, Any]) -> PhysicalNode:
    fields = dict(data)
    fields["children"] = tuple(_node_from_dict(c) for c in data["children"])
    fields["pruning"] = tuple(Pruning(**p) for p in data["pruning"])
    fields["metrics"] = tuple(tuple(m) for m in data["metrics"])
    for name in ("rows_by_partition", "time_by_partition"):
        fields[name] = Spread(**data[name]) if data[name] else None
    for name in ("started_at", "ended_at"):
        value = data.get(name)
        fields[name] = dt.datetime.fromisoformat(value) if value else None
    return PhysicalNode(**fields)


def load_tree(source: PlanTree | dict[str, Any] | str | Path) -> PlanTree:
    """A PlanTree from itself, its ``to_dict()``, or a ``metrics_tree.json`` file."""
    if isinstance(source, PlanTree):
        return source
    data = source if isinstance(source, dict) else json.loads(Path(source).read_text())
    return PlanTree(
        physical=_node_from_dict(data["physical"]),
        logical=None,
        analyzed=data["analyzed"],
        sql=data.get("sql", ""),
        run_id=data.get("run_id"),
        hot_path=tuple(data.get("hot_path", ())),
    )


def regressions(baseline: PlanTree, current: PlanTree) -> list[str]:
    """What got worse from ``baseline`` to ``current`` (empty: nothing)."""
    found = []
    compared = diff(baseline, current)
    if not compared.same_shape:
        changed = [f"{r.status} {r.operator}" for r in compared.rows if r.status != "matched"]
        found.append(f"plan shape changed: {', '.join(changed)}")
    for row in compared.rows:
        if row.status != "matched" or row.a is None or row.b is None:
            continue
        before = {p.name: p for p in row.a.pruning}
        for after in row.b.pruning:
            old = before.get(after.name)
            if (
                old
                and old.total
                and after.total
                and after.matched / after.total > old.matched / old.total
            ):
                found.append(
                    f"{row.b.label}: {after.name} keeps {after.matched}/{after.total}, "
                    f"was {old.matched}/{old.total}"
                )
        if row.b.spill_count and not row.a.spill_count:
            found.append(
                f"{row.b.label}: spills now ({row.b.spilled_bytes:,} bytes), did not before"
            )
    return found


def assert_no_regression(
    baseline: PlanTree | dict[str, Any] | str | Path,
    current: PlanTree | dict[str, Any] | str | Path,
) -> None:
    """Fail (AssertionError) on worse pruning, new spills or a changed plan shape."""
    problems = regressions(load_tree(baseline), load_tree(current))
    if problems:
        raise AssertionError("plan regressed:\n- " + "\n- ".join(problems))

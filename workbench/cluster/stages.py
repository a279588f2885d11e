"""A Ballista job's plan as a PlanTree grouped by stage: one node per stage under the job,
the stage's operators under it, so the plan views show where the shuffles cut the plan.

Two sources: the stages that ran, with every operator's metrics, as the scheduler recorded
them (``ClusterStream.stages()``, structured values), and, for a plan not run, the
``distributed_plan`` text of ``EXPLAIN`` on the cluster, read line by line (two spaces of
indent per level, one banner per stage; the only text this module reads).
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

from workbench.plans import PhysicalNode, PlanTree, node_of, tree_of

if TYPE_CHECKING:
    from collections.abc import Iterator

Metric = tuple[str, int | None, int]
Operator = tuple[int, str, str, list[Metric]]
"""``(depth, type, display, metrics)``, in pre-order."""
Stage = tuple[str, int, list[Operator]]
"""``(stage id, partitions, operators)``."""

_BANNER = re.compile(r"^=+(?P<state>\w+)\[stage_id=(?P<id>[\d.]+), (?P<what>\w+)=(?P<n>\d+)\]=+$")


def _nest(
    operators: list[Operator], ids: Iterator[int], partitions: int
) -> tuple[PhysicalNode, ...]:
    """The operators (pre-order, with depths) as trees; ids are handed out in pre-order."""
    at = 0

    def build() -> PhysicalNode:
        nonlocal at
        depth, _, display, metrics = operators[at]
        at += 1
        node_id = next(ids)
        children = []
        while at < len(operators) and operators[at][0] > depth:
            children.append(build())
        return node_of(node_id, display, partitions, tuple(children), metrics)

    roots = []
    while at < len(operators):
        roots.append(build())
    return tuple(roots)


def stage_tree(
    job: str, stages: list[Stage], *, analyzed: bool, sql: str = "", run_id: str | None = None
) -> PlanTree:
    """The job as a tree: ``BallistaJob`` > ``Stage N`` > the stage's operators."""
    ids = itertools.count()
    root_id = next(ids)
    nodes = []
    for stage_id, partitions, operators in stages:
        stage_node = next(ids)
        children = _nest(operators, ids, partitions)
        nodes.append(
            node_of(stage_node, f"Stage {stage_id}: {partitions} tasks", partitions, children, [])
        )
    root = node_of(root_id, f"BallistaJob: {job}, {len(stages)} stages", 1, tuple(nodes), [])
    return tree_of(root, analyzed=analyzed, sql=sql, run_id=run_id)


def ran(stages: list[tuple[int, int, list[Operator]]]) -> list[Stage]:
    """The scheduler's stages (``ClusterStream.stages()``) in stage order."""
    return [(str(sid), partitions, operators) for sid, partitions, operators in sorted(stages)]


def planned(text: str) -> list[Stage]:
    """The stages of ``EXPLAIN``'s ``distributed_plan`` text, in the order shown."""
    stages: list[Stage] = []
    for line in text.splitlines():
        banner = _BANNER.match(line.strip())
        if banner is not None:
            partitions = int(banner["n"]) if banner["what"] == "partitions" else 0
            stages.append((banner["id"].removesuffix(".0"), partitions, []))
            continue
        body = line.rstrip()
        if not body.strip() or not stages or body.startswith("Inputs{"):
            continue
        depth = (len(body) - len(body.lstrip(" "))) // 2
        display = body.strip()
        kind = re.split(r"[:,]", display, maxsplit=1)[0]
        stages[-1][2].append((depth, kind, display, []))
    return stages

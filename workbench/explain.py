"""``explain``: plan a query (or run it) through the session and capture its plan tree.

This is orchestration over the model in :mod:`workbench.plans`: it runs SQL
through :meth:`Session.sql`, so every explain has a run record like any other
query, and each statement of a cell runs at most once, in order.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from workbench.cluster import parse_engine
from workbench.cluster.stages import planned as stages_planned
from workbench.cluster.stages import stage_tree
from workbench.plans import PlanTree, capture
from workbench.progress import Watcher

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import datafusion

    from workbench.ingress import Statement
    from workbench.progress import Progress
    from workbench.session import Session


def explain(
    session: Session,
    sql: str,
    *,
    analyze: bool = False,
    views: tuple[str, ...] = ("physical",),
    verbose: bool = False,
    params: Mapping[str, Any] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    engine: str | None = None,
) -> PlanTree:
    """Plan ``sql`` (and with ``analyze`` run it, streaming its rows away) and capture the tree.

    ``sql`` may hold several statements, as in ``%%dfsql``: the tree is the
    result query's. Without ``analyze`` only queries are accepted and nothing
    runs. ``verbose`` adds ``EXPLAIN VERBOSE`` of the result query, planned at
    its place in the cell (after the statements before it, before those after).

    On a cluster engine (``engine``, or the session's) the tree is the job's, grouped by
    stage: without ``analyze`` Ballista's distributed plan (``EXPLAIN`` on the cluster),
    with it the stages that ran, with the metrics the scheduler recorded.
    """
    chosen = parse_engine(engine) if engine is not None else session.engine
    verbose_text: list[str] = []
    target: list[Statement] = []

    def planned(statement: Statement, _: datafusion.DataFrame) -> None:
        target.append(statement)
        if not verbose:
            return
        rows = session.ctx.sql(
            f"EXPLAIN VERBOSE {statement.text}", param_values=dict(params or {}) or None
        ).to_pydict()
        columns = list(rows.values())
        verbose_text.extend(
            f"{kind}:\n{text}" for kind, text in zip(columns[0], columns[1], strict=True)
        )

    result = session.sql(
        sql,
        params,
        label="explain --analyze" if analyze else "explain",
        plan_only=not analyze,
        on_planned=planned,
        engine=engine,
    )
    if analyze:
        with Watcher(result, on_progress or (lambda _: None)):
            for _ in result:
                pass  # run to the end; the rows are not kept
    if analyze and result.cluster_job is not None:
        tree = result.plan()
    elif not analyze and chosen.kind != "local" and target:
        plans = session.distributed_plan(target[0].text, params, chosen)
        job = f"planned on {chosen.name}"
        tree = stage_tree(job, stages_planned(plans["distributed_plan"]), analyzed=False, sql=sql)
        tree = replace(tree, run_id=result.run.run_id)
    else:
        tree = capture(result.dataframe, analyzed=analyze, sql=sql, run_id=result.run.run_id)
    if not analyze:
        result.close_planned()
    return replace(tree, views=views, verbose="\n\n".join(verbose_text) if verbose else None)

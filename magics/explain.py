"""``%explain`` / ``%%explain``: plan trees, optionally with run metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, line_cell_magic, magics_class

from magics.flags import Flag, Takes, documented, parse
from magics.progress import ProgressView
from workbench import plans
from workbench.errors import QueryCancelledError, UsageError
from workbench.explain import explain
from workbench.ingress import bind_template
from workbench.plan_diff import PlanDiff, diff
from workbench.result import Result

if TYPE_CHECKING:
    from magics.holder import SessionHolder

FLAGS = (
    Flag("--analyze", help="run the query; the tree carries its metrics"),
    Flag("--logical", help="show the optimized logical plan only"),
    Flag("--physical", help="show the physical plan only (default)"),
    Flag("--all", help="show both logical and physical plans"),
    Flag("--verbose", help="add EXPLAIN VERBOSE (every planning step)"),
    Flag(
        "--diff",
        Takes.TWO_WORDS,
        "compare two runs: run ids, or names of PlanTree/Result variables",
        metavar="A B",
    ),
    Flag(
        "--engine",
        Takes.WORD,
        "explain on: local, ballista:standalone or ballista://HOST:PORT (stages)",
        metavar="URL",
    ),
)


@magics_class
class ExplainMagics(Magics):
    """``%explain`` bound to the same session as ``%%dfsql``."""

    def __init__(self, shell: Any, holder: SessionHolder) -> None:
        super().__init__(shell)
        self.holder = holder

    @line_cell_magic
    @documented("%explain", FLAGS, "SQL")
    def explain(self, line: str, cell: str | None = None) -> plans.PlanTree | PlanDiff:
        """Show the plan of a query as a tree; returns the plan model (a PlanTree).

        Without --analyze the query is planned only. With it, the query runs to
        the end (rows are streamed away, not kept) and every physical operator
        carries rows, time, its share of the total, skew across partitions and
        pruning counters. A cell of several statements runs each at most once,
        in order, and explains the last query. {name} binds Python variables
        as in %%dfsql.

        Examples::

            %explain --analyze SELECT count(*) FROM lineitem WHERE l_quantity < 5
            %%explain --all
            SELECT ...
            %explain --diff before after      # two Results, PlanTrees or run ids
            %explain --engine ballista:standalone SELECT ...   # the job's stages

        On a cluster engine the tree is the job's, one node per stage: planned, Ballista's
        distributed plan; with --analyze, the stages that ran and their metrics.
        """
        args, rest = parse(line, FLAGS, magic="%explain", operand="SQL")
        if args["diff"]:
            return diff(*(self._tree(name) for name in args["diff"]))
        sql = cell if cell is not None else rest
        if cell is not None and rest.strip():
            msg = (
                f"%%explain: unexpected {rest.strip()!r} after the flags; the SQL is the cell body"
            )
            raise UsageError(msg)
        if not sql.strip():
            msg = "%explain needs a query: %explain [--analyze] SELECT ... or a %%explain body"
            raise UsageError(msg)
        if args["all"]:
            views: tuple[str, ...] = ("logical", "physical")
        elif args["logical"]:
            views = ("logical",)
        else:
            views = ("physical",)
        assert self.shell is not None
        bound_sql, params = bind_template(sql, self.shell.user_ns)
        try:
            return explain(
                self.holder.session,
                bound_sql,
                analyze=args["analyze"],
                views=views,
                verbose=args["verbose"],
                params=params,
                on_progress=ProgressView(),
                engine=args["engine"],
            )
        except KeyboardInterrupt:
            raise QueryCancelledError("explain --analyze interrupted") from None

    def _tree(self, name: str) -> plans.PlanTree:
        """A PlanTree from a notebook variable (PlanTree or Result) or a run id."""
        assert self.shell is not None
        value = self.shell.user_ns.get(name)
        if isinstance(value, plans.PlanTree):
            return value
        if isinstance(value, Result):
            return value.plan()
        return self.holder.session.plan(name)

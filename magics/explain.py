"""``%explain`` / ``%%explain``: plan trees, optionally with run metrics."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from magics.progress import ProgressView
from workbench import plans
from workbench.errors import QueryCancelledError, WorkbenchError
from workbench.ingress import bind_template
from workbench.plan_diff import PlanDiff, diff
from workbench.result import Result

if TYPE_CHECKING:
    from workbench.session import Session


# "--analyze" is a flag; "--" or "-- text" is a SQL comment.
_FLAG = re.compile(r"--[a-z][a-z-]*")


def _split_flags(line: str) -> tuple[str, str]:
    """Leading ``--flags`` and the raw SQL after them (quotes in SQL stay untouched)."""
    words = line.strip().split(" ")
    count = 0
    while count < len(words) and _FLAG.fullmatch(words[count]):
        count += 3 if words[count] == "--diff" else 1  # --diff takes two operands
    return " ".join(words[:count]), " ".join(words[count:])


@magics_class
class ExplainMagics(Magics):
    """``%explain`` bound to the same session as ``%%dfsql``."""

    def __init__(self, shell: Any, session: Session) -> None:
        super().__init__(shell)
        self.session = session

    @magic_arguments()
    @argument("--analyze", action="store_true", help="run the query; the tree carries its metrics")
    @argument("--logical", action="store_true", help="show the optimized logical plan only")
    @argument("--physical", action="store_true", help="show the physical plan only (default)")
    @argument("--all", action="store_true", help="show both logical and physical plans")
    @argument("--verbose", action="store_true", help="add EXPLAIN VERBOSE (every planning step)")
    @argument(
        "--diff",
        nargs=2,
        metavar=("A", "B"),
        help="compare two runs: run ids, or names of PlanTree/Result variables",
    )
    @line_cell_magic
    def explain(self, line: str, cell: str | None = None) -> plans.PlanTree | PlanDiff:
        """Show the plan of a query as a tree; returns the plan model (a PlanTree).

        Without --analyze the query is planned only. With it, the query runs to
        the end (rows are streamed away, not kept) and every physical operator
        carries rows, time, its share of the total, skew across partitions and
        pruning counters. {name} binds Python variables as in %%dfsql.

        Examples::

            %explain --analyze SELECT count(*) FROM lineitem WHERE l_quantity < 5
            %%explain --all
            SELECT ...
            %explain --diff before after      # two Results, PlanTrees or run ids
        """
        flags, rest = _split_flags(line)
        args = parse_argstring(self.explain, flags)
        if args.diff:
            return diff(*(self._tree(name) for name in args.diff))
        sql = cell if cell is not None else rest
        if not sql.strip():
            msg = "%explain needs a query: %explain [--analyze] SELECT ... or a %%explain body"
            raise WorkbenchError(msg)
        if args.all:
            views: tuple[str, ...] = ("logical", "physical")
        elif args.logical:
            views = ("logical",)
        else:
            views = ("physical",)
        assert self.shell is not None
        bound_sql, params = bind_template(sql, self.shell.user_ns)
        try:
            return plans.explain(
                self.session,
                bound_sql,
                analyze=args.analyze,
                views=views,
                verbose=args.verbose,
                params=params,
                on_progress=ProgressView(),
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
        return self.session.plan(name)

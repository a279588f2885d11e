"""``%prune TABLE [WHERE] PREDICATE [--analyze]``: which Delta files a predicate skips, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand

from magics.flags import Flag, Takes, documented, parse, usage
from workbench.delta import DeltaError
from workbench.delta.names import leading_name
from workbench.errors import QueryCancelledError, UsageError

if TYPE_CHECKING:
    from magics.holder import SessionHolder
    from workbench.delta import PruningReport

OPERAND = "TABLE [WHERE] PREDICATE"
FLAGS = (
    Flag(
        "--analyze",
        help="also run SELECT count(*) ... WHERE PREDICATE and show its scan's funnel",
    ),
)


def _trailing_flags(text: str) -> tuple[str, str]:
    """Split flags written after the predicate (``... x > 5 --analyze``) off its end.

    A predicate never ends in a flag word, so the last words that are flags of this magic
    are taken as flags; they go through the shared parser like leading ones.
    """
    names = {f.name for f in FLAGS if f.takes == Takes.NOTHING}
    head, flags = text.rstrip(), list[str]()
    while len(parts := head.rsplit(None, 1)) == 2 and parts[1] in names:
        head = parts[0].rstrip()
        flags.insert(0, parts[1])
    return head, " ".join(flags)


@magics_class
class PruneMagics(Magics):
    """``%prune`` bound to the same session as ``%%dfsql``."""

    def __init__(self, shell: Any, holder: SessionHolder) -> None:
        super().__init__(shell)
        self.holder = holder

    @no_var_expand  # the predicate is SQL: braces and $ in it are not Python's
    @line_magic
    @documented("%prune", FLAGS, OPERAND)
    def prune(self, line: str) -> PruningReport:
        """Show which files of a Delta table a predicate prunes, and why; returns the report.

        Reads only the Delta log: every top-level AND term of the predicate is decided on
        each file's statistics and partition values, so the candidates are the files a
        scan must open. Each file gets its reason (the partition value or the statistics
        bound that excluded it, or why it stays). With --analyze the query runs too
        (count(*) of the matching rows) and the funnel adds what its scan read: files,
        Parquet row groups, pages, rows.

        The table name is read as SQL reads it: double-quote one with spaces or capitals.

        Examples::

            %prune lineitem WHERE l_shipdate < '1992-06-01'
            %prune "my table" WHERE id > 5
            %prune lineitem l_shipdate BETWEEN '1995-01-01' AND '1995-01-31' --analyze
        """
        args, rest = parse(line, FLAGS, magic="%prune", operand=OPERAND)
        rest, trailing = _trailing_flags(rest)
        if trailing:
            late, _ = parse(trailing, FLAGS, magic="%prune")
            args = {k: v or late[k] for k, v in args.items()}
        # The table is SQL: a name written "my table" (or public.t) ends where SQL says.
        try:
            table, predicate = leading_name(rest) if rest.strip() else ("", "")
        except DeltaError as exc:
            raise UsageError(f"%prune: {exc}\n{usage('%prune', FLAGS, OPERAND)}") from None
        if not table or not predicate.strip():
            example = "%prune lineitem WHERE l_shipdate < '1995-01-01'"
            msg = f"%prune needs a Delta table and a predicate, e.g. {example}\n"
            msg += usage("%prune", FLAGS, OPERAND)
            raise UsageError(msg)
        try:
            return self.holder.session.prune(table, predicate, analyze=args["analyze"])
        except KeyboardInterrupt:
            raise QueryCancelledError("%prune --analyze interrupted") from None

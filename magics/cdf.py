"""``%cdf TABLE [--from V|TS] [--to V|TS] [--types ...] [--columns ...] [--where PRED] ...``.

The rest: ``[--net KEY,...] [-o NAME]``; see :mod:`workbench.delta.cdf`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand

from magics.flags import Flag, Takes, documented, parse, usage
from workbench.delta import DeltaError
from workbench.delta.names import leading_name
from workbench.errors import UsageError

if TYPE_CHECKING:
    from magics.holder import SessionHolder
    from workbench.delta.cdf import Changes
    from workbench.delta.cursors import Consumed

OPERAND = "TABLE"
FLAGS = (
    Flag("--from", Takes.WORD, "first version or timestamp (default: 0)", metavar="V|TS"),
    Flag("--to", Takes.WORD, "last version or timestamp (default: the newest)", metavar="V|TS"),
    Flag(
        "--types",
        Takes.WORD,
        "change types to keep, comma separated (insert, update_preimage, ...)",
        metavar="T,...",
    ),
    Flag("--columns", Takes.WORD, "data columns to show, comma separated", metavar="C,..."),
    Flag("--where", Takes.WORD, 'filter the change rows, quoted: --where "id > 5"', metavar="PRED"),
    Flag("--net", Takes.WORD, "net change per key over the range", metavar="KEY,..."),
    Flag(
        "--consume",
        Takes.WORD,
        "start after consumer NAME's cursor (the changes it has not applied yet)",
        metavar="NAME",
    ),
    Flag(
        "--apply",
        Takes.WORD,
        "with --consume: apply FUNC(changes, commit) to the changes and advance the cursor",
        metavar="FUNC",
    ),
    Flag("--target", Takes.WORD, "with --apply: the Delta table FUNC commits to", metavar="URI"),
    Flag("--out", Takes.WORD, "bind the Changes to NAME", short="-o", metavar="NAME"),
)


def _listed(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",")]


def _edge(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value


@magics_class
class CdfMagics(Magics):
    """``%cdf`` bound to the same session as ``%%dfsql``."""

    def __init__(self, shell: Any, holder: SessionHolder) -> None:
        super().__init__(shell)
        self.holder = holder

    @no_var_expand  # --where is SQL: braces and $ in it are not Python's
    @line_magic
    @documented("%cdf", FLAGS, OPERAND)
    def cdf(self, line: str) -> Changes | Consumed:
        """Read a Delta table's change data feed: a streaming Result with the commit timeline.

        Over table_changes(TABLE, FROM, TO) in SQL: every changed row with _change_type,
        _commit_version and _commit_timestamp. Ranges are checked against the table's
        history first. --net KEYS collapses the range to one row per key: inserts, deletes
        and last post-images; an insert then a delete cancel, no-op updates are hidden.

        Examples::

            %cdf orders --from 3
            %cdf orders --from 2026-11-25T10:00:00Z --types insert,delete
            %cdf orders --from 1 --to 5 --net o_orderkey -o changed
            %cdf orders --consume totals    # what consumer totals has not applied yet
            %cdf orders --consume totals --apply add_up --target /data/totals

        With --apply FUNC --target URI the changes after the cursor go to FUNC(changes,
        commit), which writes its output to the Delta table URI in one commit made with
        commit_properties=commit; the cursor advances with that commit, exactly once (as
        wb.consume(consumer, table, FUNC, target=URI)).
        """
        try:
            table, rest = leading_name(line) if line.strip() else ("", "")
        except DeltaError as exc:
            raise UsageError(f"%cdf: {exc}\n{usage('%cdf', FLAGS, OPERAND)}") from None
        if not table:
            example = "%cdf orders --from 3"
            msg = f"%cdf needs a Delta table, e.g. {example}\n{usage('%cdf', FLAGS, OPERAND)}"
            raise UsageError(msg)
        args, _ = parse(rest, FLAGS, magic="%cdf")
        if args["apply"] or args["target"]:
            return self._consume(table, args)
        start = _edge(args["from"]) or 0
        if args["consume"]:
            if args["from"] is not None:
                raise UsageError("%cdf: give --from or --consume, not both")
            start = self._pending_from(args["consume"], table)
        changes = self.holder.session.changes(
            table,
            start,
            _edge(args["to"]),
            types=_listed(args["types"]),
            columns=_listed(args["columns"]),
            where=args["where"],
            net=_listed(args["net"]),
        )
        if args["out"]:
            assert self.shell is not None, "magics are registered on a shell"
            self.shell.user_ns[args["out"]] = changes
        return changes

    def _pending_from(self, consumer: str, table: str) -> int:
        """The first version ``consumer`` has not applied (its cursor as last seen)."""
        applied = self.holder.session.cursor(consumer, table)
        return 0 if applied is None else applied + 1

    def _consume(self, table: str, args: dict[str, Any]) -> Consumed:
        if not (args["consume"] and args["apply"] and args["target"]):
            msg = "%cdf: --apply and --target go together, with --consume NAME"
            raise UsageError(f"{msg}\n{usage('%cdf', FLAGS, OPERAND)}")
        assert self.shell is not None, "magics are registered on a shell"
        apply = self.shell.user_ns.get(args["apply"])
        if not callable(apply):
            msg = f"%cdf: --apply {args['apply']} is not a function in this notebook"
            raise UsageError(msg)
        return self.holder.session.consume(args["consume"], table, apply, target=args["target"])

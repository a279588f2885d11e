"""Tab-completion of SQL in ``%%dfsql`` and ``%%explain`` cells and after ``%explain``.

One matcher joins IPython's completer (matcher API v2, so it sees the whole cell and
the cursor, as the kernel's ``complete_request`` sends them). It acts only on SQL: the
body of a ``%%dfsql`` or ``%%explain`` cell, or the query after ``%explain`` and its
flags; anywhere else IPython completes Python as before. The names come from
:func:`workbench.completion.complete` over a snapshot of the magics' session read at
each request, so a table the previous cell created is offered at once.

Inside SQL the matcher asks IPython to drop the other matchers' results (Python names
are noise there). IPython grants that only to a matcher with results, so where no SQL
name fits, the word typed is the one completion: Tab then changes nothing. Inside a
string literal it steps aside, and IPython's file matcher completes paths
(``LOCATION '...'``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from IPython.core.completer import (
    CompletionContext,
    SimpleCompletion,
    SimpleMatcherResult,
    context_matcher,
)

from workbench.completion import Catalog, complete

if TYPE_CHECKING:
    from magics.holder import SessionHolder

IDENTIFIER = "workbench.sql"
# Ahead of IPython's own matchers (all at 0), so theirs are skipped when SQL suppresses them.
PRIORITY = 10
_CELL_MAGIC = re.compile(r"\s*%%(?:dfsql|explain)(?:[ \t][^\n]*)?\n")
_LINE_MAGIC = re.compile(r"[ \t]*%explain(?=[ \t])")
_FLAG = re.compile(r"[ \t]+(--?[\w-]+)")


def register(ipython: Any, holder: SessionHolder) -> None:
    """Add the SQL matcher to ``ipython``'s completer (replacing one added before)."""
    matchers = ipython.Completer.custom_matchers
    matchers[:] = [m for m in matchers if getattr(m, "matcher_identifier", None) != IDENTIFIER]
    matchers.append(sql_matcher(ipython, holder))


def sql_matcher(ipython: Any, holder: SessionHolder) -> Any:
    """The matcher: SQL names from ``holder``'s session, variables from ``ipython``."""

    @context_matcher(priority=PRIORITY, identifier=IDENTIFIER)
    def match_sql(context: CompletionContext) -> SimpleMatcherResult:
        lines = context.full_text.split("\n")
        cursor = sum(len(line) + 1 for line in lines[: context.cursor_line])
        cursor += context.cursor_position
        span = sql_span(context.full_text, cursor)
        if span is None:
            return SimpleMatcherResult(completions=[], suppress=False)
        start, end = span
        hidden = ipython.user_ns_hidden
        variables = sorted(
            n for n in ipython.user_ns if n.isidentifier() and n[0] != "_" and n not in hidden
        )
        sql = context.full_text[start:end]
        found = complete(sql, cursor - start, Catalog.read(holder.session.ctx), variables)
        if found.place == "string":
            return SimpleMatcherResult(completions=[], suppress=False)
        typed = sql[found.start : cursor - start]
        items = [SimpleCompletion(c.text, type=c.kind) for c in found.items]
        return SimpleMatcherResult(
            completions=items or [SimpleCompletion(typed, type="sql")],
            matched_fragment=typed,
            suppress=True,
            ordered=True,
        )

    return match_sql


def sql_span(text: str, cursor: int) -> tuple[int, int] | None:
    """Where the SQL holding ``cursor`` lies in the cell ``text``: (start, end), or None."""
    if cell := _CELL_MAGIC.match(text):
        return (cell.end(), len(text)) if cursor >= cell.end() else None
    line_start = text.rfind("\n", 0, cursor) + 1
    line_end = text.find("\n", cursor)
    line_end = len(text) if line_end < 0 else line_end
    magic = _LINE_MAGIC.match(text, line_start, line_end)
    if magic is None:
        return None
    start = magic.end()
    while flag := _FLAG.match(text, start, line_end):
        if flag.group(1) == "--diff":  # its operands are Python names or run ids
            return None
        start = flag.end()
    # The SQL starts after a blank: with the cursor right after a flag, the flag is typed.
    return (start, line_end) if cursor > start else None

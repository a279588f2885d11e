"""One exception hierarchy for the workbench.

Every message says what was wrong, where (statement, line and column, table,
file) and what to do. In IPython, ``_render_traceback_`` makes a user error
show as that short message instead of a traceback; the kernel keeps working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class WorkbenchError(Exception):
    """Base class: a user-facing error with a short, complete message."""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing the traceback.
        return [f"{type(self).__name__}: {self}"]


class ExtensionError(WorkbenchError):
    """The Rust extension is missing, or was built for another DataFusion major."""


class ResultTooLargeError(WorkbenchError):
    """Materialising a result would pass the profile's size limit."""


class ResultConsumedError(WorkbenchError):
    """The rows asked for were already streamed out and not kept."""


class QueryCancelledError(WorkbenchError):
    """The query was interrupted (Ctrl-C or ``Result.cancel()``)."""


class ArgumentError(WorkbenchError, ValueError):
    """A call's argument is out of range or of the wrong kind (a ``ValueError`` too)."""


class UsageError(WorkbenchError):
    """A magic or command was called with flags or arguments it does not take."""


class OutputError(WorkbenchError):
    """A result could not be written where asked (a folder, a read-only place...)."""


class DatasetError(WorkbenchError):
    """Demo data could not be generated or registered."""


@dataclass(frozen=True)
class SqlLocation:
    """Where in the submitted text an error points (1-based line and column)."""

    line: int
    column: int
    length: int = 1


class SqlError(WorkbenchError):
    """DataFusion refused a statement; carries the position when it is known."""

    def __init__(
        self,
        message: str,
        *,
        sql: str = "",
        location: SqlLocation | None = None,
        statement: int | None = None,
        ran: str | None = None,
        kind: str | None = None,
        suggestions: tuple[str, ...] = (),
    ) -> None:
        self.message = message
        self.sql = sql
        self.location = location
        self.statement = statement
        self.ran = ran
        """For a cell of several statements: which ran before the failing one."""
        self.kind = kind
        """What went wrong, as the SQL gate names it: ``parse``, ``unknown table``,
        ``unknown column``, ``ambiguous column``, ``type``, ``unknown function``... or
        ``None`` when neither the gate nor DataFusion's message tells."""
        self.suggestions = suggestions
        """The closest existing names (or qualified names, for an ambiguous column)."""
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.statement is not None:
            where.append(f"statement {self.statement}")
        if self.location is not None:
            where.append(f"line {self.location.line}, column {self.location.column}")
        first, *rest = self.message.splitlines() or [""]
        head = first if not where else f"{', '.join(where)}: {first}"
        caret = self.caret()
        ran = [f"({self.ran})"] if self.ran else []
        return "\n".join([head, *([caret] if caret else []), *rest, *ran])

    def caret(self) -> str:
        """The offending source line with ``^`` under the token, or ``""``."""
        if self.location is None:
            return ""
        lines = self.sql.splitlines()
        if not 1 <= self.location.line <= len(lines):
            return ""
        source = lines[self.location.line - 1]
        pad = " " * (self.location.column - 1)
        return f"  {source}\n  {pad}{'^' * max(1, self.location.length)}"


class ReadOnlyError(SqlError):
    """A read-only session refused DDL, DML or a SET statement."""


class ParameterError(SqlError):
    """A SQL parameter could not be bound (missing name, unsupported value).

    A placeholder without a value carries its position (``location``) like any
    SQL error; a value that cannot be bound has none.
    """


_PYTHON_ERROR = re.compile(
    r"PyErr \{ type: <class '[\w.]+'>, value: \w+\("
    r"(?:\"(?P<message>(?:[^\"\\]|\\.)*)\"|'(?P<quoted>(?:[^'\\]|\\.)*)')\)"
)


def python_error_text(message: str) -> str:
    """The message a Python UDF or table function raised inside DataFusion's error text.

    DataFusion wraps it as ``PyErr { type: ..., value: ValueError("..."), traceback: ... }``;
    the user needs the message, not the wrapper and the traceback. Other text is returned as is.
    """
    raised = _PYTHON_ERROR.search(message)
    if raised is None:
        return message
    said = raised.group("message") or raised.group("quoted") or ""
    return said.encode().decode("unicode_escape")

"""Splitting a cell into statements, each with its position and what it touches.

A :class:`Statement` knows its kind (query, DML, DDL, settings), the table
names it creates or drops, and every name it mentions, so the session can
tell which statements of a cell can be planned before any of them runs and
which depend on an earlier one (a SELECT from a table created above it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING

from sqlglot import TokenType
from sqlglot.errors import TokenError

from workbench.ingress.names import in_default_schema, name_parts, word
from workbench.ingress.tokens import LITERALS, tokenize

if TYPE_CHECKING:
    from sqlglot import Token


class Kind(StrEnum):
    """What a statement does when it runs."""

    QUERY = "query"
    """Produces rows (SELECT, WITH, VALUES, EXPLAIN, SHOW, DESCRIBE...)."""
    DML = "dml"
    """Changes rows of existing tables (INSERT, UPDATE, DELETE, COPY)."""
    DDL = "ddl"
    """Changes the catalog (CREATE, DROP, ALTER...)."""
    SETTINGS = "settings"
    """Changes session settings (SET, RESET)."""


_QUERY_WORDS = frozenset(
    {"SELECT", "WITH", "VALUES", "TABLE", "FROM", "EXPLAIN", "SHOW", "DESCRIBE", "DESC"}
)
_DML_WORDS = frozenset({"INSERT", "UPDATE", "DELETE", "COPY", "MERGE", "TRUNCATE"})
_SETTINGS_WORDS = frozenset({"SET", "RESET"})
ANY_NAME = "*"
"""In ``Statement.defines``: the statement may change any name (e.g. SET, CREATE SCHEMA)."""

_DEFINING_VERBS = frozenset({"CREATE", "DROP", "ALTER"})
_NOT_KEYWORDS = LITERALS | {TokenType.IDENTIFIER}
_SKIP = r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*"
_FIRST_WORD = re.compile(rf"^{_SKIP}(\(|\w+)", re.DOTALL)
# EXPLAIN [ANALYZE] [VERBOSE] [FORMAT f] <statement>: what follows decides what it does.
_EXPLAINED = re.compile(
    rf"^{_SKIP}EXPLAIN\s+(?P<analyze>ANALYZE\s+)?(?:VERBOSE\s+)?(?:FORMAT\s+\w+\s+)?"
    rf"{_SKIP}(?P<word>\w+)",
    re.IGNORECASE | re.DOTALL,
)


def _past(words: list[str], at: int, *sequence: str) -> int:
    """The index after ``sequence`` when ``words`` has it at ``at``, else ``at``."""
    end = at + len(sequence)
    return end if tuple(words[at:end]) == sequence else at


def _definition(text: str) -> tuple[str, str] | None:
    """(verb, table) of a CREATE, DROP or ALTER of a table or view of the default schema.

    ``CREATE [OR REPLACE] [UNBOUNDED] [EXTERNAL] [TEMP] TABLE|VIEW [IF [NOT] EXISTS] name``
    and the like; None for any other statement. Read from tokens, so comments anywhere are
    skipped and the name is resolved by :mod:`workbench.ingress.names`, exactly as the
    Delta table names are.
    """
    try:
        tokens = tokenize(text)
    except TokenError:
        return None  # broken quoting: DataFusion refuses the statement anyway
    words = [t.text.upper() if t.token_type not in _NOT_KEYWORDS else "" for t in tokens]
    if not words or words[0] not in _DEFINING_VERBS:
        return None
    at = _past(words, 1, "OR", "REPLACE")
    for optional in ("UNBOUNDED", "EXTERNAL", "TEMP", "TEMPORARY"):
        at = _past(words, at, optional)
    if at >= len(words) or words[at] not in {"TABLE", "VIEW"}:
        return None
    at = _past(words, _past(words, at + 1, "IF", "EXISTS"), "IF", "NOT", "EXISTS")
    parts, _ = name_parts(tokens, at)
    # Another schema's table is not the default schema's one of that name (nor recorded).
    return (words[0], parts[-1]) if parts and in_default_schema(parts) else None


@dataclass(frozen=True)
class Statement:
    """One statement of a cell: its text and where it starts in the cell (1-based)."""

    index: int
    text: str
    line: int
    column: int
    kind: Kind
    names: frozenset[str] = field(default=frozenset())
    """Words the statement mentions outside literals (tables, columns, functions), each as the
    name it would be: ASCII-folded unless quoted (:func:`workbench.ingress.names.word`)."""

    @property
    def is_query(self) -> bool:
        return self.kind == Kind.QUERY

    @cached_property
    def definition(self) -> tuple[str, str] | None:
        """For DDL on a table or view: (``CREATE``/``DROP``/``ALTER``, its name as resolved).

        The name is exact, as DataFusion resolves it (:mod:`workbench.ingress.names`);
        ``None`` for other DDL and for a table of another schema than the default one.
        """
        return _definition(self.text) if self.kind == Kind.DDL else None

    @property
    def defines(self) -> frozenset[str]:
        """Names (exact, as resolved) this statement creates, drops or alters, or ``{ANY_NAME}``."""
        if self.kind == Kind.SETTINGS:
            return frozenset({ANY_NAME})
        if self.kind != Kind.DDL:
            return frozenset()
        definition = self.definition
        return frozenset({definition[1]}) if definition else frozenset({ANY_NAME})

    def depends_on(self, earlier: Statement) -> bool:
        """Whether running ``earlier`` can change how this statement plans."""
        defined = earlier.defines
        return ANY_NAME in defined or not defined.isdisjoint(self.names)

    def cell_position(self, line: int, column: int) -> tuple[int, int]:
        """Map a 1-based (line, column) inside this statement to the whole cell."""
        return self.line + line - 1, column + (self.column - 1 if line == 1 else 0)

    @property
    def trimmed(self) -> str:
        """The text from its first token to its last: no comment before or after it.

        What a bundle records of DDL, where a leading ``--`` would read as a note and a
        trailing one would swallow the ``;`` that follows.
        """
        try:
            tokens = tokenize(self.text)
        except TokenError:
            tokens = []
        return self.text[tokens[0].start : tokens[-1].end + 1] if tokens else self.text.strip()

    @property
    def label(self) -> str:
        """A short description for messages: number and first words."""
        words = " ".join(self.text.split())
        return f"statement {self.index + 1} ({words[:40]}{'…' if len(words) > 40 else ''})"


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _kind(first_word: str, text: str) -> Kind:
    word = first_word.upper()
    if word == "EXPLAIN":
        # EXPLAIN ANALYZE of a write runs the write: it is that write, at its place.
        explained = _EXPLAINED.match(text)
        if explained and explained["analyze"] and _kind(explained["word"], "") != Kind.QUERY:
            return Kind.DML
        return Kind.QUERY
    if word == "(" or word in _QUERY_WORDS:
        return Kind.QUERY
    if word in _DML_WORDS:
        return Kind.DML
    if word in _SETTINGS_WORDS:
        return Kind.SETTINGS
    return Kind.DDL


def split_statements(sql: str) -> list[Statement]:
    """Statements of ``sql`` in order; ``;`` inside strings or comments does not split."""
    body = sql.strip().removesuffix(";")
    first = _FIRST_WORD.match(body)
    if ";" not in body and first:
        # One statement (the common cell): no tokenizing, which costs ~1 ms per kB of SQL.
        # Nothing comes before it, so the names it mentions are not needed.
        return [
            _statement(sql, 0, body, sql.find(body), _kind(first.group(1), body), names=frozenset())
        ]
    try:
        tokens = tokenize(sql)
    except TokenError:
        # Unbalanced quotes and the like: DataFusion's parser gives the better message.
        stripped = sql.strip()
        if not stripped:
            return []
        return [_statement(sql, 0, stripped, sql.find(stripped), Kind.QUERY, names=frozenset())]
    statements: list[Statement] = []
    group: list[Token] = []
    for token in [*tokens, None]:
        if token is not None and token.token_type != TokenType.SEMICOLON:
            group.append(token)
            continue
        if group:
            start, end = group[0].start, group[-1].end + 1
            # As DataFusion resolves them, so they compare with Statement.defines.
            names = frozenset(word(t) for t in group if t.token_type not in LITERALS)
            statements.append(
                _statement(
                    sql,
                    len(statements),
                    sql[start:end],
                    start,
                    _kind(group[0].text, sql[start:end]),
                    names=names,
                )
            )
        group = []
    return statements


def _statement(
    cell: str, index: int, text: str, offset: int, kind: Kind, *, names: frozenset[str]
) -> Statement:
    line, column = position(cell, offset)
    return Statement(index=index, text=text, line=line, column=column, kind=kind, names=names)

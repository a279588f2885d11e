"""Splitting a cell into statements, each with its position in the cell."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import Token, Tokenizer, TokenType
from sqlglot.errors import TokenError

# First tokens of statements that produce rows worth showing. Anything else
# (DDL, DML, SET) runs to completion where it stands.
_QUERY_STARTS = frozenset(
    {
        TokenType.SELECT,
        TokenType.WITH,
        TokenType.VALUES,
        TokenType.L_PAREN,
        TokenType.TABLE,
        TokenType.FROM,
        TokenType.SHOW,
        TokenType.DESCRIBE,
    }
)
_QUERY_WORDS = frozenset({"EXPLAIN", "SHOW", "DESCRIBE"})
_QUERY_KEYWORDS = frozenset({"SELECT", "WITH", "VALUES", "TABLE", "FROM"})


@dataclass(frozen=True)
class Statement:
    """One statement of a cell: its text and where it starts in the cell (1-based)."""

    index: int
    text: str
    line: int
    column: int
    is_query: bool

    def cell_position(self, line: int, column: int) -> tuple[int, int]:
        """Map a 1-based (line, column) inside this statement to the whole cell."""
        return self.line + line - 1, column + (self.column - 1 if line == 1 else 0)


_FIRST_WORD = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*(\(|\w+)", re.DOTALL)


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _starts_a_query(text: str) -> bool:
    """Whether ``text``'s first word (after comments) starts a query; no tokenizer needed."""
    found = _FIRST_WORD.match(text)
    if not found:
        return False
    word = found.group(1).upper()
    return word == "(" or word in _QUERY_WORDS or word in _QUERY_KEYWORDS


def _is_query(first: Token) -> bool:
    return first.token_type in _QUERY_STARTS or first.text.upper() in _QUERY_WORDS


def split_statements(sql: str) -> list[Statement]:
    """Statements of ``sql`` in order; ``;`` inside strings or comments does not split."""
    body = sql.strip().removesuffix(";")
    if ";" not in body and _FIRST_WORD.match(body):
        # One statement (the common cell): no tokenizing, which costs ~1 ms per kB of SQL.
        # Whether it is a query does not matter: a lone statement is the result either way.
        return [_statement(sql, 0, body, sql.find(body), is_query=_starts_a_query(body))]
    try:
        tokens = Tokenizer().tokenize(sql)
    except TokenError:
        # Unbalanced quotes and the like: DataFusion's parser gives the better message.
        stripped = sql.strip()
        return [_statement(sql, 0, stripped, sql.find(stripped), is_query=True)] if stripped else []
    statements: list[Statement] = []
    group: list[Token] = []
    for token in [*tokens, None]:
        if token is not None and token.token_type != TokenType.SEMICOLON:
            group.append(token)
            continue
        if group:
            start, end = group[0].start, group[-1].end + 1
            statements.append(
                _statement(
                    sql, len(statements), sql[start:end], start, is_query=_is_query(group[0])
                )
            )
        group = []
    return statements


def _statement(cell: str, index: int, text: str, offset: int, *, is_query: bool) -> Statement:
    line, column = position(cell, offset)
    return Statement(index=index, text=text, line=line, column=column, is_query=is_query)

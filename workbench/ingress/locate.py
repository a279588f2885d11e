"""Pointing a DataFusion error at the token it is about.

DataFusion's parser reports ``Line: L, Column: C``; its planner names the
offending identifier instead ("No field named nme", "table 'x' not found").
The identifier is found among the statement's tokens, so the caret lands on
the token even when the same letters appear inside a string or a comment.
"""

from __future__ import annotations

import re

from sqlglot import Tokenizer, TokenType
from sqlglot.errors import TokenError

from workbench.errors import SqlLocation
from workbench.ingress.statements import position

_LINE_COLUMN = re.compile(r"Line: (\d+), Column: (\d+)")
_NAMED = (
    re.compile(r"No field named (?P<name>\"[^\"]+\"|[^\s.,]+(?:\.[^\s.,]+)*)"),
    re.compile(r"table '(?P<name>[^']+)' not found"),
    re.compile(r"Invalid function '(?P<name>[^']+)'"),
    re.compile(r"[Ff]unction '(?P<name>[^']+)'"),
    re.compile(r"column '(?P<name>[^']+)'"),
    re.compile(r"'(?P<name>[A-Za-z_][\w.]*)\(\w"),
)
# Tokens that carry data, not names: a name spelled inside a literal is not the culprit.
_LITERALS = frozenset(
    {TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.RAW_STRING, TokenType.NUMBER}
)


def locate_error(message: str, statement: str) -> SqlLocation | None:
    """Position (within ``statement``) of what ``message`` complains about."""
    found = _LINE_COLUMN.search(message)
    if found:
        return SqlLocation(int(found.group(1)), int(found.group(2)))
    if "found: EOF" in message:
        # The statement ended too early: point just past its last character.
        lines = statement.rstrip().splitlines() or [""]
        return SqlLocation(len(lines), len(lines[-1]) + 1)
    for pattern in _NAMED:
        named = pattern.search(message)
        if named:
            location = _find_identifier(statement, named.group("name"))
            if location is not None:
                return location
    return None


def _find_identifier(sql: str, qualified: str) -> SqlLocation | None:
    # "datafusion.public.orders" or "t.nme": the caret goes on the last part.
    name = qualified.strip('"').rsplit(".", 1)[-1].strip('"').lower()
    try:
        tokens = Tokenizer().tokenize(sql)
    except TokenError:
        return None
    for token in tokens:
        if token.token_type not in _LITERALS and token.text.lower() == name:
            line, column = position(sql, token.start)
            return SqlLocation(line, column, token.end - token.start + 1)
    return None

"""The one tokenizer the ingress uses: SQLGlot's, in its Postgres flavour.

Postgres is the closest SQLGlot dialect to DataFusion's SQL, and its tokenizer
knows dollar-quoted strings (``$$ ... $$``, ``$tag$ ... $tag$``), which
DataFusion accepts as string literals: braces, semicolons and dollars inside
them are data. It splits a placeholder ``$name`` into a PARAMETER token
followed by the name; :func:`placeholders` puts them back together.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from sqlglot import TokenType
from sqlglot.dialects.postgres import Postgres

if TYPE_CHECKING:
    from sqlglot import Token

# Tokens that carry data, not names.
LITERALS = frozenset(
    {
        TokenType.STRING,
        TokenType.NATIONAL_STRING,
        TokenType.RAW_STRING,
        TokenType.HEREDOC_STRING,
        TokenType.BYTE_STRING,
        TokenType.BIT_STRING,
        TokenType.HEX_STRING,
        TokenType.NUMBER,
    }
)


@cache
def _tokenizer() -> Postgres.Tokenizer:
    return Postgres.Tokenizer()


def tokenize(sql: str) -> list[Token]:
    """SQLGlot tokens of ``sql``; raises ``sqlglot.errors.TokenError`` on broken quoting."""
    return list(_tokenizer().tokenize(sql))


@dataclass(frozen=True)
class Placeholder:
    """A ``$name`` or ``$1`` placeholder: its name and character span in the text."""

    name: str
    start: int
    end: int
    """Offset one past its last character."""


def placeholders(tokens: list[Token]) -> list[Placeholder]:
    """The ``$name``/``$1`` placeholders among ``tokens``, in order."""
    found = []
    for dollar, name in itertools.pairwise(tokens):
        if (
            dollar.token_type == TokenType.PARAMETER
            and dollar.text == "$"
            and name.start == dollar.end + 1
            and name.token_type not in LITERALS - {TokenType.NUMBER}
            and (name.text.isidentifier() or name.text.isdigit())
        ):
            found.append(Placeholder(name.text, dollar.start, name.end + 1))
    return found

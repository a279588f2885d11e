"""SQL names as DataFusion's parser reads them, from SQLGlot's tokens.

An unquoted name folds to lower case, and only its ASCII letters fold (``Ünïcode`` is
the table ``Ünïcode``, ``Events`` is ``events``), as DataFusion folds identifiers; a
double-quoted name is taken as written, ``""`` inside standing for one ``"`` (the
tokenizer has already undoubled it). Every place that asks which table a statement
names reads it here: the statements a cell creates or drops
(:attr:`workbench.ingress.statements.Statement.definition`) and the Delta table names of
:mod:`workbench.delta.names`, so a ``DROP TABLE`` always drops the table a registration
recorded.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlglot import TokenType

from workbench.ingress.tokens import LITERALS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlglot import Token

DEFAULT_CATALOG = "datafusion"
DEFAULT_SCHEMA = "public"
_WORD = re.compile(r"[^\W\d][\w$]*")
_ASCII_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(word: str) -> str:
    """``word`` as an unquoted identifier means it: ASCII letters lower-cased, others kept."""
    return word.translate(_ASCII_UPPER)


def word(token: Token) -> str:
    """The name a token spells, were it a name: quoted kept, anything else folded."""
    return token.text if token.token_type == TokenType.IDENTIFIER else fold(token.text)


def _part(token: Token) -> str | None:
    """The name part a token spells (quoted kept, unquoted ASCII-folded), or None."""
    if token.token_type == TokenType.IDENTIFIER:
        return token.text
    if token.token_type not in LITERALS and _WORD.fullmatch(token.text):
        return fold(token.text)
    return None


def name_parts(tokens: Sequence[Token], at: int) -> tuple[list[str], int]:
    """The parts of the (possibly qualified) name starting at ``tokens[at]``, and the index after.

    No parts when ``tokens[at]`` starts no name.
    """
    parts: list[str] = []
    while at < len(tokens) and (part := _part(tokens[at])) is not None:
        parts.append(part)
        at += 1
        dotted = at + 1 < len(tokens) and tokens[at].token_type == TokenType.DOT
        if not dotted or _part(tokens[at + 1]) is None:
            break
        at += 1
    return parts, at


def in_default_schema(parts: Sequence[str]) -> bool:
    """Whether the name ``parts`` is a table of the default schema (``t``, ``public.t``...)."""
    *qualifiers, _ = parts
    default = [DEFAULT_CATALOG, DEFAULT_SCHEMA][-len(qualifiers) :] if qualifiers else []
    return len(qualifiers) <= 2 and qualifiers == default

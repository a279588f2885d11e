"""``{name}`` templates: Python variables bound as DataFusion parameters."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TYPE_CHECKING, Any

from sqlglot import TokenType
from sqlglot.errors import TokenError

from workbench.errors import ParameterError
from workbench.ingress.statements import position
from workbench.ingress.tokens import LITERALS, placeholders, tokenize

if TYPE_CHECKING:
    from collections.abc import Mapping

_BINDABLE = (str, int, float, bool, bytes, decimal.Decimal, dt.date, dt.datetime, dt.time)


def bind_template(sql: str, namespace: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Rewrite ``{name}`` to ``$name`` and look each name up in ``namespace``.

    Any Python identifier binds, SQL keywords included (``{limit}``, ``{date}``).
    Braces inside string literals (dollar-quoted ones too), quoted identifiers
    and comments are left alone. Values are returned for ``param_values``;
    nothing is pasted into SQL.
    """
    if "{" not in sql:
        return sql, {}
    try:
        tokens = tokenize(sql)
    except TokenError:
        return sql, {}
    pieces: list[str] = []
    params: dict[str, Any] = {}
    cursor = 0
    for left, name, right in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if not (
            left.token_type == TokenType.L_BRACE
            and right.token_type == TokenType.R_BRACE
            and name.token_type not in LITERALS
            and name.token_type != TokenType.IDENTIFIER  # "quoted" is not a Python name
            and name.text.isidentifier()
        ):
            continue
        if name.text not in namespace:
            msg = (
                f"{{{name.text}}} at line {name.line} names no Python variable; define "
                f"{name.text} in the notebook or pass it with --params"
            )
            raise ParameterError(msg)
        params[name.text] = check_value(name.text, namespace[name.text])
        # "$name " is exactly as long as "{name}": error columns stay right.
        pieces += [sql[cursor : left.start], f"${name.text} "]
        cursor = right.end + 1
    pieces.append(sql[cursor:])
    return "".join(pieces), params


def check_value(name: str, value: Any) -> Any:
    """``value`` if DataFusion can bind it as a scalar parameter, else a clear error."""
    if value is None or isinstance(value, _BINDABLE):
        return value
    msg = (
        f"parameter ${name} is a {type(value).__name__}, which cannot be bound as a SQL "
        "scalar; pass a str, int, float, bool, bytes, Decimal, date, datetime or None "
        "(for a list, register it as a table and join or use IN (SELECT ...))"
    )
    raise ParameterError(msg)


def missing_placeholders(statement: str, bound: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """``$name`` placeholders of ``statement`` with no value: (name, line, column)."""
    if "$" not in statement:
        return []
    try:
        tokens = tokenize(statement)
    except TokenError:
        return []
    return [
        (found.name, *position(statement, found.start))
        for found in placeholders(tokens)
        if found.name not in bound
    ]

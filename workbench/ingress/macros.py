"""The gate's rewrites: SQL macros, named arguments and the domain operators.

DataFusion's Python API exposes no ``FunctionFactory``, so
``CREATE [OR REPLACE] FUNCTION name(arg type, ...) RETURNS type AS expression`` is the
gate's own statement: it defines a :class:`Macro`, and every later call ``name(...)`` is
replaced by its body (arguments cast to their declared types, the whole cast to the return
type) before DataFusion plans the query, so the optimizer sees plain expressions.

Named arguments (``f(a => 1)``) are rewritten to positional calls for the workbench's own
functions (:data:`WORKBENCH_FUNCTIONS` and the macros): DataFusion supports named arguments,
but a UDF that crosses the FFI boundary loses its parameter names (datafusion-ffi 55 sends a
``user_defined`` signature), and Python table functions never had them. Built-ins keep
DataFusion's own support.

Domain operators (:data:`OPERATORS`) are PostgreSQL operators DataFusion does not plan:
``a ^@ b`` (starts with) and ``a <-> b`` (edit distance between strings).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import sqlglot
from sqlglot import TokenType, exp
from sqlglot.errors import ParseError

from workbench.errors import WorkbenchError
from workbench.ingress.tokens import LITERALS, tokenize

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sqlglot import Token

_V = TypeVar("_V")

DIALECT = "postgres"


class GateError(WorkbenchError):
    """A statement the gate's rewrites refuse (a bad macro, an unknown argument name)."""

    def __init__(self, kind: str, message: str, token: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.token = token


@dataclass(frozen=True)
class Parameters:
    """The parameter names of a function, and how many of them a call must give."""

    names: tuple[str, ...]
    required: int


WORKBENCH_FUNCTIONS: dict[str, Parameters] = {
    "prefixed_hash64": Parameters(("prefix", "value"), 2),
    "table_changes": Parameters(("table", "start", "end"), 2),
    "wb_delta_files": Parameters(("table",), 1),
    "sessionize": Parameters(("ts", "gap"), 2),
    "wb_parquet_metadata": Parameters(("path",), 1),
}
"""The workbench's functions that take named arguments through the gate."""

OPERATORS: dict[type[exp.Expr], str] = {
    exp.StartsWith: "starts_with",
    exp.Distance: "levenshtein",
}
"""Domain operator (as SQLGlot parses it) -> the function it becomes: ``^@``, ``<->``."""


@dataclass(frozen=True)
class Macro:
    """A function defined by ``CREATE FUNCTION``: its parameters, return type and body."""

    name: str
    params: tuple[tuple[str, str], ...]
    """(name, SQL type) of each parameter, in order."""
    returns: str
    body: exp.Expr
    """The body with calls to earlier macros already expanded."""
    sql: str
    """The statement that defined it (bundles record it with the tables)."""

    @property
    def parameters(self) -> Parameters:
        names = tuple(name for name, _ in self.params)
        return Parameters(names, len(names))

    def expand(self, args: list[exp.Expr]) -> exp.Expr:
        """The body with ``args`` in place of the parameters, cast to the return type."""
        values = {
            name: exp.cast(arg.copy(), exp.DataType.build(sql_type, dialect=DIALECT))
            for (name, sql_type), arg in zip(self.params, args, strict=True)
        }

        def put(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Column) and not node.table:
                value = values.get(_folded(node.this))
                if value is not None:
                    return value.copy()
            return node

        body = self.body.copy().transform(put)
        return exp.cast(exp.paren(body), exp.DataType.build(self.returns, dialect=DIALECT))


def _folded(identifier: exp.Expr) -> str:
    """A name as SQL reads it: unquoted folds to lower case, quoted stays as written."""
    quoted = isinstance(identifier, exp.Identifier) and identifier.quoted
    return str(identifier.name) if quoted else str(identifier.name).lower()


def is_create_function(tree: exp.Expr | None) -> bool:
    return isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "FUNCTION"


def is_drop_function(tree: exp.Expr | None) -> bool:
    return isinstance(tree, exp.Drop) and str(tree.args.get("kind", "")).upper() == "FUNCTION"


_USAGE = "write CREATE [OR REPLACE] FUNCTION name(arg type, ...) RETURNS type AS expression"


def parse_create_function(
    tree: exp.Create, sql: str, macros: Mapping[str, Macro]
) -> tuple[Macro, bool]:
    """The macro ``tree`` defines and whether it says ``OR REPLACE``."""
    signature = tree.this
    if not isinstance(signature, exp.UserDefinedFunction):
        raise GateError("parse", f"CREATE FUNCTION without a name and arguments: {_USAGE}")
    name = signature.this.name.lower()
    params = _parameters(name, signature)
    returns = next((p.this for p in tree.find_all(exp.ReturnsProperty) if p.this is not None), None)
    if returns is None or tree.expression is None:
        message = f"function {name} needs RETURNS type and AS expression; {_USAGE}"
        raise GateError("parse", message, name)
    body = _body(name, tree.expression, {p for p, _ in params})
    expanded, _ = rewrite(body.copy(), macros)
    replace = bool(tree.args.get("replace"))
    return Macro(name, params, returns.sql(DIALECT), expanded, sql), replace


def _parameters(name: str, signature: exp.UserDefinedFunction) -> tuple[tuple[str, str], ...]:
    params: list[tuple[str, str]] = []
    for column in signature.expressions:
        if not isinstance(column, exp.ColumnDef) or column.args.get("kind") is None:
            shown = column.sql(DIALECT)
            message = f"function {name}: argument {shown!r} has no type; {_USAGE}"
            raise GateError("parse", message, name)
        params.append((_folded(column.this), column.args["kind"].sql(DIALECT)))
    seen = [p for p, _ in params]
    twice = sorted({p for p in seen if seen.count(p) > 1})
    if twice:
        raise GateError("parse", f"function {name}: argument {twice[0]} is named twice", twice[0])
    return tuple(params)


def _body(name: str, body: exp.Expr, params: set[str]) -> exp.Expr:
    """The body as one expression that reads only the parameters."""
    if isinstance(body, exp.Literal) and body.is_string:
        # AS 'expression' (PostgreSQL quotes bodies): the text inside is the expression.
        try:
            body = sqlglot.parse_one(f"SELECT {body.this}", read=DIALECT).expressions[0]
        except ParseError as exc:
            message = f"function {name}: its body does not parse: {exc}"
            raise GateError("parse", message, name) from None
    if isinstance(body, exp.Select | exp.Subquery) or body.find(exp.Select):
        message = f"function {name}: the body must be one expression, not a query"
        raise GateError("parse", message, name)
    for column in body.find_all(exp.Column):
        if column.table or _folded(column.this) not in params:
            known = ", ".join(sorted(params)) or "none"
            message = (
                f"function {name}: the body reads {column.sql(DIALECT)!r}, which is not one of "
                f"its arguments ({known})"
            )
            raise GateError("unknown column", message, column.name)
    return body


def _call_name(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return None


def _positional(name: str, args: list[exp.Expr], parameters: Parameters) -> list[exp.Expr]:
    """``args`` with named ones (``p => v``) put in their parameter's place."""
    if not any(isinstance(a, exp.Kwarg) for a in args):
        return args
    pairs = [
        (a.this.name.lower(), a.expression) if isinstance(a, exp.Kwarg) else (None, a) for a in args
    ]
    return _place(name, pairs, parameters, lambda value: value.sql(DIALECT))


def _place(
    name: str,
    pairs: list[tuple[str | None, _V]],
    parameters: Parameters,
    shown: Callable[[_V], str],
) -> list[_V]:
    """The values of ``(key or None, value)`` arguments in their parameters' order."""
    slots: dict[str, _V] = {}
    positional_done = False
    for index, (key, value) in enumerate(pairs):
        if key is None:
            if positional_done:
                message = f"{name}: a positional argument follows a named one; name it too"
                raise GateError("parse", message, shown(value))
            if index >= len(parameters.names):
                message = f"{name} takes at most {len(parameters.names)} arguments"
                raise GateError("type", message, name)
            slots[parameters.names[index]] = value
            continue
        positional_done = True
        if key not in parameters.names:
            close = difflib.get_close_matches(key, parameters.names, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            listed = ", ".join(parameters.names)
            message = f"{name} has no parameter {key!r} (its parameters: {listed}){hint}"
            raise GateError("unknown argument", message, key)
        if key in slots:
            raise GateError("unknown argument", f"{name}: argument {key!r} is given twice", key)
        slots[key] = value
    missing = [p for p in parameters.names[: parameters.required] if p not in slots]
    if missing:
        listed = ", ".join(parameters.names)
        message = f"{name} needs {', '.join(missing)} (its parameters: {listed})"
        raise GateError("missing argument", message, name)
    given = [p for p in parameters.names if p in slots]
    last = parameters.names.index(given[-1]) if given else -1
    gap = [p for p in parameters.names[: last + 1] if p not in slots]
    if gap:
        message = f"{name}: give {', '.join(gap)} too, or leave out the arguments after it"
        raise GateError("missing argument", message, name)
    return [slots[p] for p in parameters.names[: last + 1]]


_ARGUMENT = re.compile(r"\b__wb_arg_(\d+)\b")


def rewrite_text(
    sql: str,
    macros: Mapping[str, Macro],
    functions: Mapping[str, Parameters] = WORKBENCH_FUNCTIONS,
) -> str:
    """``sql`` with macro calls and named arguments rewritten in place, the rest as written.

    Only the calls change: every other character stays as typed, so nothing DataFusion
    reads differently from SQLGlot's PostgreSQL (``^``, ``FLOAT``, quoted names) is touched.
    Arguments keep their own text (rewritten the same way, for calls inside calls).
    """
    tokens = tokenize(sql)
    out: list[str] = []
    position = 0
    i = 0
    while i < len(tokens):
        token = tokens[i]
        name = _folded_token(token)
        opens = i + 1 < len(tokens) and tokens[i + 1].token_type == TokenType.L_PAREN
        if not opens or name is None or (name not in macros and name not in functions):
            i += 1
            continue
        close = _closing(tokens, i + 1)
        pairs = [
            (key, rewrite_text(sql[a:b], macros, functions))
            for key, a, b in _arguments(tokens, i + 2, close)
        ]
        written = sql[token.start : token.end + 1]
        macro = macros.get(name)
        if macro is not None:
            replacement = _expanded(name, macro, pairs)
            if _bare_select_item(tokens, i, close):
                # A macro called as a whole output column keeps its call as the column's name.
                replacement += " AS " + exp.to_identifier(
                    sql[token.start : tokens[close].end + 1], quoted=True
                ).sql(DIALECT)
        elif all(key is None for key, _ in pairs):
            replacement = f"{written}({', '.join(v for _, v in pairs)})"
        else:
            placed = _place(name, pairs, functions[name], lambda value: value)
            replacement = f"{written}({', '.join(placed)})"
        out.append(sql[position : token.start])
        out.append(replacement)
        position = tokens[close].end + 1
        i = close + 1
    out.append(sql[position:])
    return "".join(out)


def _expanded(name: str, macro: Macro, pairs: list[tuple[str | None, str]]) -> str:
    """The macro's body with the arguments' own text in place of its parameters."""
    placed = _place(name, pairs, macro.parameters, lambda value: value)
    if len(placed) != len(macro.params):
        listed = ", ".join(f"{p} {t}" for p, t in macro.params)
        raise GateError("type", f"{name}({listed}) takes {len(macro.params)} arguments", name)
    template = macro.expand([exp.column(f"__wb_arg_{n}") for n in range(len(placed))])
    return _ARGUMENT.sub(lambda m: f"({placed[int(m.group(1))]})", template.sql(DIALECT))


_CLAUSE_WORDS = frozenset(
    {
        TokenType.SELECT,
        TokenType.FROM,
        TokenType.WHERE,
        TokenType.GROUP_BY,
        TokenType.HAVING,
        TokenType.ORDER_BY,
        TokenType.ON,
        TokenType.QUALIFY,
        TokenType.LIMIT,
        TokenType.VALUES,
        TokenType.SET,
        TokenType.USING,
        TokenType.WINDOW,
    }
)
_ITEM_ENDS = frozenset({TokenType.COMMA, TokenType.FROM, TokenType.SEMICOLON, TokenType.R_PAREN})


def _bare_select_item(tokens: list[Token], first: int, close: int) -> bool:
    """Whether the call ``tokens[first:close + 1]`` is a whole item of a SELECT list."""
    before = tokens[first - 1].token_type if first > 0 else None
    after = tokens[close + 1].token_type if close + 1 < len(tokens) else None
    if before not in {TokenType.SELECT, TokenType.COMMA, TokenType.DISTINCT}:
        return False
    if after is not None and after not in _ITEM_ENDS:
        return False
    depth = 0
    for j in range(first - 1, -1, -1):  # the clause the call is in, at its own depth
        kind = tokens[j].token_type
        depth += {TokenType.R_PAREN: 1, TokenType.L_PAREN: -1}.get(kind, 0)
        if depth < 0:
            return False  # inside parentheses: a function's arguments, a VALUES row
        if depth == 0 and kind in _CLAUSE_WORDS:
            return kind == TokenType.SELECT
    return False


def _folded_token(token: Token) -> str | None:
    """A function name token as SQL reads it, or None for what cannot name a function."""
    if token.token_type == TokenType.IDENTIFIER:
        return token.text
    if token.token_type in LITERALS or not (token.text[:1].isalpha() or token.text[:1] == "_"):
        return None
    return token.text.lower()


def _closing(tokens: list[Token], opening: int) -> int:
    depth = 0
    for j in range(opening, len(tokens)):
        depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(tokens[j].token_type, 0)
        if depth == 0:
            return j
    raise GateError("parse", "a function call's parenthesis is never closed", tokens[opening].text)


def _arguments(tokens: list[Token], first: int, close: int) -> list[tuple[str | None, int, int]]:
    """(name or None, start, end) of each argument between ``first`` and ``close``."""
    if first >= close:
        return []
    found = []
    depth = 0
    begin = first
    for j in range(first, close + 1):
        kind = tokens[j].token_type
        if kind == TokenType.L_PAREN:
            depth += 1
        elif kind == TokenType.R_PAREN and j < close:
            depth -= 1
        if j == close or (kind == TokenType.COMMA and depth == 0):
            key = None
            value_from = begin
            if begin + 1 < j and tokens[begin + 1].token_type == TokenType.FARROW:
                key = _folded_token(tokens[begin]) or tokens[begin].text
                value_from = begin + 2
            found.append((key, tokens[value_from].start, tokens[j - 1].end + 1))
            begin = j + 1
    return found


def rewrite(
    tree: exp.Expr,
    macros: Mapping[str, Macro],
    functions: Mapping[str, Parameters] = WORKBENCH_FUNCTIONS,
) -> tuple[exp.Expr, tuple[str, ...]]:
    """``tree`` with macros expanded, named arguments placed and domain operators replaced.

    Returns the new tree and what was rewritten (empty: the statement is left as written).
    """
    wanted = (
        n
        for n in tree.walk()
        if type(n) in OPERATORS or _call_name(n) in macros or _call_name(n) in functions
    )
    if next(wanted, None) is None:
        return tree, ()  # nothing of the gate's own SQL: no copy (the common case)
    rewriter = _Rewriter(macros, functions)
    rewritten = tree.copy()
    for select in rewritten.find_all(exp.Select):
        # A macro called as a whole output column keeps its call as the column's name.
        for item in select.expressions:
            if _call_name(item) in macros:
                name = item.sql(DIALECT, normalize_functions="lower")
                item.replace(exp.alias_(item.copy(), name, quoted=True))
    # Children first (reversed pre-order), so a macro's arguments are rewritten before it.
    for node in reversed(list(rewritten.dfs())):
        new = rewriter.visit(node)
        if new is node:
            continue
        if node is rewritten:
            rewritten = new
        else:
            node.replace(new)
    return rewritten, tuple(rewriter.applied)


class _Rewriter:
    def __init__(self, macros: Mapping[str, Macro], functions: Mapping[str, Parameters]) -> None:
        self.macros = macros
        self.functions = functions
        self.applied: list[str] = []

    def visit(self, node: exp.Expr) -> exp.Expr:
        operator = OPERATORS.get(type(node))
        if operator is not None:
            self.applied.append(f"operator {type(node).__name__} -> {operator}")
            return exp.Anonymous(this=operator, expressions=[node.this, node.expression])
        name = _call_name(node)
        if name is None:
            return node
        macro = self.macros.get(name)
        if macro is not None:
            return self._expand(name, macro, list(node.expressions))
        parameters = self.functions.get(name)
        if parameters is None:
            return node
        args = list(node.expressions)
        placed = _positional(name, args, parameters)
        if placed is args:
            return node
        self.applied.append(f"named arguments of {name}")
        return exp.Anonymous(this=node.this, expressions=placed)

    def _expand(self, name: str, macro: Macro, args: list[exp.Expr]) -> exp.Expr:
        placed = _positional(name, args, macro.parameters)
        if len(placed) != len(macro.params):
            listed = ", ".join(f"{p} {t}" for p, t in macro.params)
            message = f"{name}({listed}) takes {len(macro.params)} arguments, not {len(args)}"
            raise GateError("type", message, name)
        self.applied.append(f"macro {name}")
        return macro.expand(placed)

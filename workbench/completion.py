"""Tab-completion of SQL: which names fit at the cursor, from the session's live schema.

:meth:`Catalog.read` takes a snapshot of what a SessionContext knows now, from its
``information_schema``: tables, their columns with types, and every function
``routines`` lists (DataFusion's built-ins, the extension's ``stable_id`` and
``prefixed_hash64``, registered UDFs and table functions). Nothing is kept between
requests, so a table a cell created a moment ago is in the next snapshot: DataFusion
exposes no catalog version a cache could be keyed on, and a snapshot costs a few ms.

:func:`complete` reads the SQL around the cursor with the ingress's tokenizer
(SQLGlot, Postgres flavour), so unfinished SQL never trips it, and offers what fits:

- after ``FROM``/``JOIN`` (or a comma of a ``FROM`` list): CTEs, tables, schemas and
  table functions; after ``schema.`` there, that schema's tables;
- after ``alias.`` or ``table.``: that table's columns, the aliases read from the
  ``FROM``/``JOIN`` clauses of the statement the cursor is in (before or after it);
- inside ``{...}`` (a bound Python variable): the variables the caller offers;
- elsewhere: the columns of the statement's tables (of every table while it names
  none the catalog knows), its table aliases, then functions and keywords.

Matching is by prefix, ignoring case, in that stable order. Inside a string literal,
a quoted name or a comment nothing is offered; :attr:`Completions.place` says which.
Nothing here knows IPython: ``magics.completion`` puts this behind its completer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from sqlglot import TokenType
from sqlglot.errors import TokenError

from workbench.ingress.names import DEFAULT_CATALOG, DEFAULT_SCHEMA, fold, name_parts, word
from workbench.ingress.tokens import tokenize

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import datafusion
    from sqlglot import Token

Kind = Literal["column", "table", "alias", "schema", "function", "keyword", "variable"]
Place = Literal["sql", "string", "quoted name", "comment"]

# DataFusion's SQL words. Its parser's keyword list is not reachable from Python, and
# SQLGlot's mixes every dialect's (HSTORE, PRAGMA, VACUUM...), so the list is kept here.
KEYWORDS = (
    *("SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "HAVING", "LIMIT", "OFFSET"),
    *("DISTINCT", "ALL", "AS", "ON", "USING", "JOIN", "INNER", "LEFT", "RIGHT", "FULL"),
    *("CROSS", "OUTER", "SEMI", "ANTI", "NATURAL", "LATERAL", "UNION", "INTERSECT"),
    *("EXCEPT", "WITH", "RECURSIVE", "VALUES", "QUALIFY", "WINDOW", "CASE", "WHEN", "THEN"),
    *("ELSE", "END", "AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE", "LIKE"),
    *("ILIKE", "SIMILAR TO", "BETWEEN", "EXISTS", "CAST", "TRY_CAST", "INTERVAL", "OVER"),
    *("PARTITION BY", "ROWS", "RANGE", "GROUPS", "PRECEDING", "FOLLOWING", "UNBOUNDED"),
    *("CURRENT ROW", "FILTER", "WITHIN GROUP", "ASC", "DESC", "NULLS FIRST", "NULLS LAST"),
    *("GROUPING SETS", "ROLLUP", "CUBE", "CREATE", "EXTERNAL", "TABLE", "VIEW", "REPLACE"),
    *("IF NOT EXISTS", "IF EXISTS", "TEMPORARY", "STORED AS", "LOCATION", "OPTIONS"),
    *("PARTITIONED BY", "DROP", "INSERT INTO", "COPY", "TO", "EXPLAIN", "ANALYZE"),
    *("VERBOSE", "FORMAT", "DESCRIBE", "SHOW", "TABLES", "COLUMNS", "SET", "RESET"),
    *("PREPARE", "EXECUTE", "BOOLEAN", "TINYINT", "SMALLINT", "INT", "INTEGER", "BIGINT"),
    *("REAL", "FLOAT", "DOUBLE", "DECIMAL", "VARCHAR", "CHAR", "TEXT", "STRING", "BYTEA"),
    *("DATE", "TIME", "TIMESTAMP"),
)

# The word being completed, and the rest of it when the cursor is inside a word.
_WORD_BEFORE = re.compile(r"\w*\Z")
_WORD_AFTER = re.compile(r"\w*")
_BARE_NAME = re.compile(r"[^\W\d][\w$]*")
# Stands for the word at the cursor, so the tokens say where the cursor is.
_CURSOR = "__wb_cursor__"
_NAMES = frozenset({TokenType.VAR, TokenType.IDENTIFIER})
# What closes the text the cursor is in, when the tokens before it do not end.
_CLOSERS: tuple[tuple[str, Place], ...] = (("*/", "comment"), ("'", "string"), ('"', "quoted name"))
# Words before a table name: FROM/JOIN, and the statements naming one table.
_BEFORE_TABLE = frozenset(
    {
        TokenType.FROM,
        TokenType.JOIN,
        TokenType.TABLE,
        TokenType.INTO,
        TokenType.UPDATE,
        TokenType.DESCRIBE,
    }
)


@dataclass(frozen=True)
class Column:
    """A column and its Arrow type, as ``information_schema.columns`` spells it."""

    name: str
    data_type: str


@dataclass(frozen=True)
class Table:
    """A table or view, with its columns in their order."""

    catalog: str
    schema: str
    name: str
    columns: tuple[Column, ...] = ()


@dataclass(frozen=True)
class Function:
    """A function ``information_schema.routines`` lists."""

    name: str
    kind: str
    """``scalar``, ``aggregate``, ``window`` or ``table``."""


@dataclass(frozen=True)
class Catalog:
    """The tables and functions a session knows at one moment."""

    tables: tuple[Table, ...] = ()
    functions: tuple[Function, ...] = ()

    @classmethod
    def read(cls, ctx: datafusion.SessionContext) -> Catalog:
        """What ``ctx`` knows now, from its ``information_schema``."""
        listed = ctx.sql(
            "SELECT table_catalog, table_schema, table_name FROM information_schema.tables "
            "ORDER BY table_catalog, table_schema, table_name"
        ).to_pydict()
        described = ctx.sql(
            "SELECT table_catalog, table_schema, table_name, column_name, data_type "
            "FROM information_schema.columns "
            "ORDER BY table_catalog, table_schema, table_name, ordinal_position"
        ).to_pydict()
        routines = ctx.sql(
            "SELECT DISTINCT routine_name, function_type FROM information_schema.routines "
            "ORDER BY routine_name, function_type"
        ).to_pydict()
        columns: dict[tuple[str, str, str], list[Column]] = {}
        for catalog, schema, table, column, data_type in zip(
            described["table_catalog"],
            described["table_schema"],
            described["table_name"],
            described["column_name"],
            described["data_type"],
            strict=True,
        ):
            columns.setdefault((catalog, schema, table), []).append(Column(column, data_type))
        keys = zip(
            listed["table_catalog"], listed["table_schema"], listed["table_name"], strict=True
        )
        tables = tuple(Table(*key, columns=tuple(columns.get(key, ()))) for key in keys)
        # A name may be both (range is a scalar and a table function): one entry per kind.
        functions = tuple(
            Function(name, kind.lower())
            for name, kind in zip(routines["routine_name"], routines["function_type"], strict=True)
        )
        return cls(tables, functions)

    def find(self, parts: Sequence[str]) -> Table | None:
        """The table a (possibly qualified) name means, or None."""
        if not 1 <= len(parts) <= 3:
            return None
        catalog, schema, name = [DEFAULT_CATALOG, DEFAULT_SCHEMA][: 3 - len(parts)] + list(parts)
        return next(
            (t for t in self.tables if (t.catalog, t.schema, t.name) == (catalog, schema, name)),
            None,
        )

    def in_schema(self, parts: Sequence[str] = (DEFAULT_SCHEMA,)) -> list[Table]:
        """The tables of the schema ``parts`` (``schema`` or ``catalog.schema``) names."""
        if not 1 <= len(parts) <= 2:
            return []
        catalog, schema = [DEFAULT_CATALOG][: 2 - len(parts)] + list(parts)
        return [t for t in self.tables if (t.catalog, t.schema) == (catalog, schema)]

    def schemas(self) -> list[str]:
        """The default catalog's schemas other than the default one."""
        found = (t.schema for t in self.tables if t.catalog == DEFAULT_CATALOG)
        return [s for s in dict.fromkeys(found) if s != DEFAULT_SCHEMA]


@dataclass(frozen=True)
class Completion:
    """One name to offer: the text replacing the word at the cursor, and what it is."""

    text: str
    """Quoted when the name needs it (``"Events"``)."""
    kind: Kind
    detail: str = ""
    """A column's data type, a function's kind, a table's schema."""


@dataclass(frozen=True)
class Completions:
    """What fits at the cursor: ``items`` replace ``sql[start:cursor]``."""

    start: int
    place: Place
    """Where the cursor is: in SQL, or inside a string, a quoted name or a comment."""
    items: tuple[Completion, ...] = ()


def complete(sql: str, cursor: int, catalog: Catalog, variables: Iterable[str] = ()) -> Completions:
    """The names that complete the word before ``cursor`` in ``sql``.

    ``variables`` are offered inside ``{...}``, where a cell binds a Python variable.
    """
    typed = _WORD_BEFORE.search(sql, 0, cursor)
    start = typed.start() if typed else cursor
    rest = _WORD_AFTER.match(sql, cursor)
    end = rest.end() if rest else cursor
    place = _place(sql[:start])
    if place != "sql":
        return Completions(start, place)
    try:
        tokens = tokenize(sql[:start] + _CURSOR + sql[end:])
    except TokenError:  # an unclosed quote after the cursor: read up to it only
        tokens = tokenize(sql[:start] + _CURSOR)
    statement, at = _statement(tokens)
    offered = _offer(statement, at, catalog, variables)
    return Completions(start, place, tuple(_matching(offered, sql[start:cursor])))


def _place(head: str) -> Place:
    """Whether the end of ``head`` is SQL, or inside a literal, a quoted name or a comment."""
    try:
        tokens = tokenize(head + _CURSOR)
    except TokenError:
        for closer, place in _CLOSERS:
            try:
                tokenize(head + _CURSOR + closer)
            except TokenError:
                continue
            return place
        return "string"  # an unclosed $$ or another literal form
    ends_in_sql = tokens and tokens[-1].text == _CURSOR and tokens[-1].token_type in _NAMES
    return "sql" if ends_in_sql else "comment"


def _statement(tokens: list[Token]) -> tuple[list[Token], int]:
    """The tokens of the statement holding the cursor, and the cursor's index in them."""
    at = max(i for i, t in enumerate(tokens) if t.text == _CURSOR)
    ends = [i for i, t in enumerate(tokens) if t.token_type == TokenType.SEMICOLON]
    first = max((i + 1 for i in ends if i < at), default=0)
    last = min((i for i in ends if i > at), default=len(tokens))
    return tokens[first:last], at - first


@dataclass
class _Scope:
    """The relations a statement reads: each name (alias or table) and its table, if known."""

    names: dict[str, Table | None] = field(default_factory=dict)
    ctes: list[str] = field(default_factory=list)

    @property
    def tables(self) -> list[Table]:
        return list(dict.fromkeys(t for t in self.names.values() if t is not None))


def _offer(
    tokens: list[Token], at: int, catalog: Catalog, variables: Iterable[str]
) -> list[Completion]:
    """Everything that fits at ``tokens[at]``, before matching the word typed."""
    before = tokens[at - 1].token_type if at else None
    if before == TokenType.L_BRACE:
        return [Completion(name, "variable") for name in variables]
    if before == TokenType.PARAMETER:  # a $placeholder: its name is the caller's
        return []
    scope = _scope(tokens, catalog)
    if before == TokenType.DOT:
        return _after_dot(tokens, at - 1, scope, catalog)
    if _is_table_position(tokens, at):
        return _relations(scope, catalog)
    return _expression_names(scope, catalog)


def _after_dot(tokens: list[Token], dot: int, scope: _Scope, catalog: Catalog) -> list[Completion]:
    """After ``alias.``/``table.``: its columns; after ``schema.``: its tables."""
    parts, first = _qualifier(tokens, dot)
    if not parts:
        return []
    if _is_table_position(tokens, first):
        return _schema_members(parts, catalog)
    if len(parts) == 1 and parts[0] in scope.names:  # an alias hides a table's name
        known = scope.names[parts[0]]
        return [_column(c) for c in known.columns] if known else []
    table = catalog.find(parts)
    if table is None:
        return _schema_members(parts, catalog)
    return [_column(c) for c in table.columns]


def _relations(scope: _Scope, catalog: Catalog) -> list[Completion]:
    """What may follow FROM: CTEs, tables, schemas, table functions."""
    return [
        *(Completion(_sql_name(cte), "table", "cte") for cte in scope.ctes),
        *(Completion(_sql_name(t.name), "table", t.schema) for t in catalog.in_schema()),
        *(Completion(_sql_name(s), "schema") for s in catalog.schemas()),
        *(_function(f) for f in catalog.functions if f.kind == "table"),
    ]


def _schema_members(parts: list[str], catalog: Catalog) -> list[Completion]:
    """After ``schema.``: its tables; after ``catalog.``: its schemas."""
    tables = catalog.in_schema(parts)
    if tables:
        return [Completion(_sql_name(t.name), "table", t.schema) for t in tables]
    schemas = (t.schema for t in catalog.tables if len(parts) == 1 and t.catalog == parts[0])
    return [Completion(_sql_name(s), "schema") for s in dict.fromkeys(schemas)]


def _expression_names(scope: _Scope, catalog: Catalog) -> list[Completion]:
    """What may appear in an expression: columns first, then aliases, functions, keywords."""
    # Columns are often typed before the FROM that says whose they are.
    tables = scope.tables or catalog.in_schema()
    return [
        *(_column(c) for t in tables for c in t.columns),
        *(
            Completion(_sql_name(name), "table" if t and t.name == name else "alias")
            for name, t in scope.names.items()
        ),
        *(_function(f) for f in catalog.functions if f.kind != "table"),
        *(Completion(k, "keyword") for k in sorted(KEYWORDS)),
    ]


def _column(column: Column) -> Completion:
    return Completion(_sql_name(column.name), "column", column.data_type)


def _function(function: Function) -> Completion:
    return Completion(_sql_name(function.name), "function", function.kind)


def _matching(offered: list[Completion], typed: str) -> list[Completion]:
    """The offered names starting with ``typed`` (any case), each once, in order.

    Keywords follow the case of a word typed in lower case.
    """
    wanted = typed.lower()
    lower_keywords = typed.islower()
    seen: set[str] = set()
    matching = []
    for item in offered:
        if item.kind == "keyword" and lower_keywords:
            item = Completion(item.text.lower(), item.kind, item.detail)  # noqa: PLW2901
        if item.text.lstrip('"').lower().startswith(wanted) and item.text not in seen:
            seen.add(item.text)
            matching.append(item)
    return matching


def _sql_name(name: str) -> str:
    """``name`` as SQL text: bare when DataFusion reads it back unchanged, else quoted."""
    if _BARE_NAME.fullmatch(name) and fold(name) == name:
        return name
    return '"' + name.replace('"', '""') + '"'


def _qualifier(tokens: list[Token], dot: int) -> tuple[list[str], int]:
    """The name parts before the dot at ``tokens[dot]``, and the index of the first."""
    parts: list[str] = []
    at = dot
    while at >= 1 and tokens[at].token_type == TokenType.DOT and _is_name(tokens[at - 1]):
        parts.insert(0, word(tokens[at - 1]))
        at -= 2
    return parts, at + 1


def _is_name(token: Token) -> bool:
    return token.token_type in _NAMES or (
        token.token_type != TokenType.STRING and _BARE_NAME.fullmatch(token.text) is not None
    )


def _is_table_position(tokens: list[Token], at: int) -> bool:
    """Whether a table name goes at ``tokens[at]``: after FROM or JOIN, or in a FROM list."""
    before = tokens[at - 1].token_type if at else None
    if before in _BEFORE_TABLE:
        return True
    return before == TokenType.COMMA and _in_from_list(tokens, at - 1)


def _in_from_list(tokens: list[Token], comma: int) -> bool:
    """Whether the comma at ``tokens[comma]`` separates the tables of a FROM clause."""
    at = comma - 1
    listed = _NAMES | {TokenType.DOT, TokenType.COMMA, TokenType.ALIAS}
    while at >= 0:
        kind = tokens[at].token_type
        if kind == TokenType.FROM:
            return True
        if kind == TokenType.R_PAREN:  # a table function's arguments or a subquery
            at = _opening(tokens, at)
        elif kind not in listed:
            return False
        at -= 1
    return False


def _opening(tokens: list[Token], close: int) -> int:
    """The index of the ``(`` the ``)`` at ``tokens[close]`` closes (-1 if none)."""
    depth = 0
    for at in range(close, -1, -1):
        kind = tokens[at].token_type
        depth += (kind == TokenType.R_PAREN) - (kind == TokenType.L_PAREN)
        if depth == 0:
            return at
    return -1


def _closing(tokens: list[Token], opening: int) -> int:
    """The index after the ``)`` that closes the ``(`` at ``tokens[opening]``."""
    depth = 0
    for at in range(opening, len(tokens)):
        kind = tokens[at].token_type
        depth += (kind == TokenType.L_PAREN) - (kind == TokenType.R_PAREN)
        if depth == 0:
            return at + 1
    return len(tokens)


def _scope(tokens: list[Token], catalog: Catalog) -> _Scope:
    """The CTEs and the relations (with their aliases) the statement's FROM/JOIN read."""
    scope = _Scope()
    for at, token in enumerate(tokens):
        kind = token.token_type
        if (
            kind in _NAMES
            and at + 2 < len(tokens)
            and tokens[at + 1].token_type == TokenType.ALIAS
            and tokens[at + 2].token_type == TokenType.L_PAREN
            and at
            and tokens[at - 1].token_type in {TokenType.WITH, TokenType.RECURSIVE, TokenType.COMMA}
        ):
            scope.ctes.append(word(token))
        if kind in {TokenType.FROM, TokenType.JOIN} or (
            kind == TokenType.COMMA and _in_from_list(tokens, at)
        ):
            _add_relation(tokens, at + 1, catalog, scope)
    return scope


def _add_relation(tokens: list[Token], at: int, catalog: Catalog, scope: _Scope) -> None:
    """Record the relation starting at ``tokens[at]`` under its alias (or its name)."""
    if at >= len(tokens):
        return
    name: str | None = None
    table: Table | None = None
    if tokens[at].token_type == TokenType.L_PAREN:  # a subquery: its columns are not known
        after = _closing(tokens, at)
    else:
        parts, after = name_parts(tokens, at)
        if not parts or _CURSOR in parts:
            return
        name = parts[-1]
        if after < len(tokens) and tokens[after].token_type == TokenType.L_PAREN:
            after = _closing(tokens, after)  # a table function
        elif not (len(parts) == 1 and name in scope.ctes):
            table = catalog.find(parts)
    if after < len(tokens) and tokens[after].token_type == TokenType.ALIAS:
        after += 1
    if after < len(tokens) and tokens[after].token_type in _NAMES:
        if tokens[after].text == _CURSOR:
            return
        name = word(tokens[after])
    if name is not None:
        scope.names.setdefault(name, table)

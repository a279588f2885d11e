"""Pointing a DataFusion error at the token it is about.

DataFusion 55 attaches source spans to many planner errors (a ``Diagnostic``),
but datafusion-python builds its exceptions from the error's ``Display`` text,
and a diagnostic error displays as its inner message: the spans never reach
Python. Only the SQL tokenizer and parser write ``Line: L, Column: C`` into the
text (and a few messages print an AST node with its ``Span``). So the message
says *what* is wrong (a name, a literal, an operator, a clause) and the
statement's own tokens say *where*:

- a name is looked for in the role the error implies: a column reference (not a
  table after FROM/JOIN, not an alias being defined, not a function before
  ``(``); a table after FROM/JOIN/INTO/TABLE; a function name before ``(``.
  A wrong qualifier (``x.col`` where no table is known as ``x``) is the culprit
  rather than the column after it;
- a GROUP BY violation points at the bare column in the clause the error names,
  an ambiguous reference at the first unqualified use;
- a failed cast at the literal it names (else the CAST), division by zero at
  the ``/`` or ``%`` whose right operand is 0, a bad INSERT row at that row;
- parser positions are kept, except where the parser blames the token after
  the mistake: a trailing comma, or a misspelled keyword it read as an alias
  (``FROM nation WHER ...``).

Tokens come from SQLGlot's tokenizer, so nothing inside a string literal or a
comment is pointed at by name. Cases are data in ``tests/fixtures/broken_sql.txt``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlglot import Token, Tokenizer, TokenType
from sqlglot.errors import TokenError

from workbench.errors import SqlLocation
from workbench.ingress.statements import position

if TYPE_CHECKING:
    from collections.abc import Callable

_LINE_COLUMN = re.compile(r"Line: (\d+), Column: (\d+)")
_SPAN = re.compile(r"Span\(Location\((\d+),\s*(\d+)\)\.\.")
_CAST_VALUE = re.compile(r"[Cc]annot cast (?:string|value) '(?P<value>[^']*)'")
_NAME_PART = re.compile(r'"[^"]+"|[^."]+')
_ZERO = re.compile(r"0+(?:\.0*)?|\.0+")

# Tokens that carry data, not names: a name spelled inside a literal is not the culprit.
_LITERALS = frozenset(
    {
        TokenType.STRING,
        TokenType.NATIONAL_STRING,
        TokenType.RAW_STRING,
        TokenType.BIT_STRING,
        TokenType.HEX_STRING,
        TokenType.BYTE_STRING,
        TokenType.NUMBER,
    }
)
_NAMES = frozenset({TokenType.VAR, TokenType.IDENTIFIER})
# Tokens after which a name is a table (or view) being read or written.
_RELATION_INTRODUCERS = frozenset(
    {
        TokenType.FROM,
        TokenType.JOIN,
        TokenType.INTO,
        TokenType.UPDATE,
        TokenType.TABLE,
        TokenType.VIEW,
    }
)
# The clause a token belongs to decides which occurrence of a name an error means.
_CLAUSES = {
    TokenType.SELECT: "select",
    TokenType.FROM: "from",
    TokenType.JOIN: "from",
    TokenType.WHERE: "where",
    TokenType.GROUP_BY: "group by",
    TokenType.HAVING: "having",
    TokenType.QUALIFY: "qualify",
    TokenType.ORDER_BY: "order by",
    TokenType.LIMIT: "limit",
    TokenType.OFFSET: "offset",
    TokenType.ON: "on",
    TokenType.USING: "using",
    TokenType.VALUES: "values",
    TokenType.INTO: "into",
    TokenType.SET: "set",
}
# A "*" after these is a wildcard, not a multiplication.
_BEFORE_WILDCARD = frozenset({TokenType.SELECT, TokenType.COMMA, TokenType.DOT, TokenType.DISTINCT})
# A "(" after these opens a table or an EXISTS, not a subquery that yields one value.
_NOT_VALUE_SUBQUERY = frozenset(
    {
        TokenType.FROM,
        TokenType.JOIN,
        TokenType.EXISTS,
        TokenType.LATERAL,
        TokenType.ALIAS,
    }
)
_AGGREGATES = frozenset(
    {"count", "sum", "avg", "mean", "min", "max", "median", "array_agg", "string_agg"}
    | {"stddev", "stddev_pop", "var", "var_pop", "variance", "bool_and", "bool_or"}
    | {"first_value", "last_value", "approx_distinct", "approx_median"}
)
# Shorter names are too often one edit away from some keyword to mean a typo.
_SHORTEST_TYPO = 3
# Keywords a typo turns into an alias, so the parser blames the token after it.
_TYPO_PRONE_KEYWORDS = frozenset(
    {"SELECT", "FROM", "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "OFFSET", "JOIN", "INNER"}
    | {"LEFT", "RIGHT", "OUTER", "CROSS", "FULL", "NATURAL", "UNION", "EXCEPT", "INTERSECT"}
    | {"USING", "VALUES", "BETWEEN", "LIKE", "ILIKE", "DESC", "DISTINCT", "WINDOW", "QUALIFY"}
)


def locate_error(message: str, statement: str) -> SqlLocation | None:
    """Position (within ``statement``) of what ``message`` complains about."""
    location = _locate(message, statement)
    if location is None:
        return None
    # A position from another text (a message about an earlier statement) is no position.
    lines = statement.split("\n")
    inside = 1 <= location.line <= len(lines)
    if not inside or not 1 <= location.column <= len(lines[location.line - 1]) + 1:
        return None
    return location


def _locate(message: str, statement: str) -> SqlLocation | None:
    found = _LINE_COLUMN.search(message)
    if found:
        return _parser_position(message, statement, int(found.group(1)), int(found.group(2)))
    if "found: EOF" in message:
        return _at_end(statement)
    tokens = _Tokens.of(statement)
    if tokens is None:
        return None
    for pattern, finder in _RULES:
        named = pattern.search(message)
        if named:
            index = finder(tokens, named)
            if index is not None:
                return tokens.location(index)
    span = _SPAN.search(message)
    if span:
        return SqlLocation(int(span.group(1)), int(span.group(2)))
    return None


class _Tokens:
    """A statement's tokens, with the roles and clauses an error may imply."""

    def __init__(self, sql: str, tokens: list[Token]) -> None:
        self.sql = sql
        self.tokens = tokens
        self.clauses: list[str] = []
        self.in_call: list[bool] = []
        clause, calls = [""], [False]
        for i, token in enumerate(tokens):
            if token.token_type == TokenType.L_PAREN:
                self.clauses.append(clause[-1])
                self.in_call.append(calls[-1])
                clause.append(clause[-1])
                calls.append(calls[-1] or self.type(i - 1) in _NAMES)
                continue
            if token.token_type == TokenType.R_PAREN and len(clause) > 1:
                clause.pop()
                calls.pop()
            clause[-1] = _CLAUSES.get(token.token_type, clause[-1])
            self.clauses.append(clause[-1])
            self.in_call.append(calls[-1])

    @classmethod
    def of(cls, sql: str) -> _Tokens | None:
        try:
            return cls(sql, Tokenizer().tokenize(sql))
        except TokenError:
            return None

    def type(self, i: int) -> TokenType | None:
        return self.tokens[i].token_type if 0 <= i < len(self.tokens) else None

    def text(self, i: int) -> str:
        return self.tokens[i].text.lower() if 0 <= i < len(self.tokens) else ""

    def location(self, i: int) -> SqlLocation:
        token = self.tokens[i]
        line, column = position(self.sql, token.start)
        return SqlLocation(line, column, token.end - token.start + 1)

    def at(self, offset: int) -> int | None:
        return next((i for i, t in enumerate(self.tokens) if t.start == offset), None)

    def named(self, name: str) -> list[int]:
        """Indexes of tokens spelling ``name`` (any case), literals excluded."""
        name = name.lower()
        return [
            i
            for i, token in enumerate(self.tokens)
            if token.token_type not in _LITERALS and token.text.lower() == name
        ]

    # Roles of the token at ``i``.

    def is_qualified(self, i: int) -> bool:
        return self.type(i - 1) == TokenType.DOT

    def is_call(self, i: int) -> bool:
        return self.type(i + 1) == TokenType.L_PAREN

    def chain_start(self, i: int) -> int:
        while i >= 2 and self.type(i - 1) == TokenType.DOT:
            i -= 2
        return i

    def is_relation(self, i: int) -> bool:
        before = self.chain_start(i) - 1
        if self.type(before) in _RELATION_INTRODUCERS:
            return True
        return self.type(before) == TokenType.COMMA and self.clauses[before] == "from"

    def is_cte_name(self, i: int) -> bool:
        return self.type(i + 1) == TokenType.ALIAS and self.type(i + 2) == TokenType.L_PAREN

    def is_alias_definition(self, i: int) -> bool:
        if self.type(i - 1) == TokenType.ALIAS or self.is_cte_name(i):
            return True
        if self.clauses[i] != "from" or self.type(i) not in _NAMES:
            return False
        # "FROM nation n", "(SELECT ...) t": a bare name right after a table.
        return self.is_relation(i - 1) or self.type(i - 1) == TokenType.R_PAREN

    def is_column(self, i: int) -> bool:
        return not (
            self.is_call(i)
            or self.is_relation(i)
            or self.is_alias_definition(i)
            or self.type(i + 1) == TokenType.DOT
        )

    def alias_after(self, i: int) -> str | None:
        j = i + 2 if self.type(i + 1) == TokenType.ALIAS else i + 1
        return self.text(j) if self.type(j) in _NAMES else None

    def relation_names(self) -> set[str]:
        """Names a qualifier may use: aliases, unaliased tables, CTEs, derived tables."""
        names = set()
        for i in range(len(self.tokens)):
            last_part = self.type(i + 1) != TokenType.DOT
            if self.is_relation(i) and last_part:
                names.add(self.alias_after(i) or self.text(i))
            elif self.type(i) == TokenType.R_PAREN and self.clauses[i] == "from":
                names.update(filter(None, [self.alias_after(i)]))
            elif self.is_cte_name(i):
                names.add(self.text(i))
        return names


def _first(*preferences: list[int]) -> int | None:
    """The first index of the first non-empty list (lists in order of preference)."""
    return next((indexes[0] for indexes in preferences if indexes), None)


def _name_parts(qualified: str) -> list[str]:
    return [part.strip('"') for part in _NAME_PART.findall(qualified)]


def _missing_column(tokens: _Tokens, found: re.Match[str]) -> int | None:
    *qualifier, name = _name_parts(found.group("name"))
    if qualifier:
        for i in tokens.named(name):
            if tokens.is_qualified(i) and tokens.text(i - 2) == qualifier[-1].lower():
                if qualifier[-1].lower() not in tokens.relation_names():
                    return tokens.chain_start(i)  # no table is known by that name: blame it
                return i
    return _column(tokens, name)


def _column(tokens: _Tokens, name: str, clause: str | None = None) -> int | None:
    """The first use of column ``name`` (in ``clause``), preferring unqualified uses."""
    named = [i for i in tokens.named(name) if clause is None or tokens.clauses[i] == clause]
    columns = [i for i in named if tokens.is_column(i)]
    bare = [i for i in columns if not tokens.is_qualified(i)]
    return _first(bare, columns, named)


def _ambiguous(tokens: _Tokens, found: re.Match[str]) -> int | None:
    return _column(tokens, _name_parts(found.group("name"))[-1])


def _not_grouped(tokens: _Tokens, found: re.Match[str]) -> int | None:
    name, clause = _name_parts(found.group("name"))[-1], found.group("clause").lower()
    uses = [i for i in tokens.named(name) if tokens.clauses[i] == clause and tokens.is_column(i)]
    # The bare use is the violation; the same column inside an aggregate is fine. A
    # column nobody wrote came from a "*" (DataFusion says "expanding wildcard" either way).
    wildcards = [
        i
        for i in range(len(tokens.tokens))
        if tokens.type(i) == TokenType.STAR
        and tokens.clauses[i] == clause
        and tokens.type(i - 1) in _BEFORE_WILDCARD
    ]
    return _first([i for i in uses if not tokens.in_call[i]], uses, wildcards)


def _having_reference(tokens: _Tokens, found: re.Match[str]) -> int | None:
    for name in re.findall(r"\w+\.(\w+)", found.group("expr")):
        index = _column(tokens, name, "having")
        if index is not None:
            return index
    return None


def _relation(tokens: _Tokens, found: re.Match[str]) -> int | None:
    *qualifiers, name = _name_parts(found.group("name"))
    for i in tokens.named(name):
        if tokens.is_relation(i) and tokens.type(i + 1) != TokenType.DOT:
            start = tokens.chain_start(i)
            # A written schema other than the default one is the likelier mistake.
            schema_written = start < i and len(qualifiers) >= 1
            if schema_written and qualifiers[-1].lower() != "public":
                return i - 2
            return i
    return _first(tokens.named(name))


def _duplicate_alias(tokens: _Tokens, found: re.Match[str]) -> int | None:
    names = tokens.named(found.group("name"))
    definitions = [i for i in names if tokens.is_alias_definition(i) or tokens.is_relation(i)]
    return definitions[1] if len(definitions) > 1 else _first(definitions)


def _function(tokens: _Tokens, found: re.Match[str]) -> int | None:
    named = tokens.named(found.group("name"))
    return _first([i for i in named if tokens.is_call(i)], named)


def _substring(tokens: _Tokens, _found: re.Match[str]) -> int | None:
    calls = tokens.named("substr") + tokens.named("substring")
    return _first(sorted(i for i in calls if tokens.is_call(i)))


def _any_name(tokens: _Tokens, found: re.Match[str]) -> int | None:
    return _first(tokens.named(found.group("name")))


def _unsupported_node(tokens: _Tokens, found: re.Match[str]) -> int | None:
    # The AST node is named after its keywords: Collate -> COLLATE, InUnnest -> IN ... UNNEST.
    first, *rest = (word.lower() for word in re.findall(r"[A-Z][a-z]*", found.group("node")))
    for i in tokens.named(first):
        later = {tokens.text(j) for j in range(i + 1, len(tokens.tokens))}
        if all(word in later for word in rest):
            return i
    return None


def _placeholder(tokens: _Tokens, found: re.Match[str]) -> int | None:
    return _first(
        [i for i in tokens.named(found.group("name")) if tokens.sql[tokens.tokens[i].start] == "$"]
    )


def _values_row(tokens: _Tokens, found: re.Match[str]) -> int | None:
    values = _first([i for i, t in enumerate(tokens.tokens) if t.token_type == TokenType.VALUES])
    if values is None:
        return None
    rows, depth = [], 0
    for i in range(values + 1, len(tokens.tokens)):
        if tokens.type(i) == TokenType.L_PAREN:
            if depth == 0:
                rows.append(i)
            depth += 1
        elif tokens.type(i) == TokenType.R_PAREN:
            depth -= 1
    row = int(found.group("row"))
    return rows[row] if row < len(rows) else _first(rows)


def _insert_source(tokens: _Tokens, _found: re.Match[str]) -> int | None:
    insert = _first([i for i, t in enumerate(tokens.tokens) if t.token_type == TokenType.INSERT])
    if insert is None:
        return None
    sources = {TokenType.SELECT, TokenType.WITH, TokenType.VALUES}
    return next((i for i in range(insert, len(tokens.tokens)) if tokens.type(i) in sources), None)


def _keyword(tokens: _Tokens, found: re.Match[str]) -> int | None:
    return _first(tokens.named(found.group("keyword")))


def _after_keyword(tokens: _Tokens, found: re.Match[str]) -> int | None:
    keyword = _first(tokens.named(found.group("keyword")))
    return None if keyword is None or keyword + 1 >= len(tokens.tokens) else keyword + 1


def _number_in(tokens: _Tokens, found: re.Match[str], clause: str) -> int | None:
    number = found.group("number")
    return next(
        (
            i
            for i, t in enumerate(tokens.tokens)
            if t.token_type == TokenType.NUMBER and t.text == number and tokens.clauses[i] == clause
        ),
        None,
    )


def _order_position(tokens: _Tokens, found: re.Match[str]) -> int | None:
    return _number_in(tokens, found, "order by")


def _group_position(tokens: _Tokens, found: re.Match[str]) -> int | None:
    return _number_in(tokens, found, "group by")


def _aggregate_in_where(tokens: _Tokens, _found: re.Match[str]) -> int | None:
    calls = [
        i
        for i in range(len(tokens.tokens))
        if tokens.clauses[i] == "where" and tokens.type(i) in _NAMES and tokens.is_call(i)
    ]
    return _first([i for i in calls if tokens.text(i) in _AGGREGATES], calls)


def _operator(tokens: _Tokens, found: re.Match[str]) -> int | None:
    return _first(tokens.named(found.group("op")))


def _value_subquery(tokens: _Tokens, _found: re.Match[str]) -> int | None:
    for i in range(len(tokens.tokens)):
        opens_query = tokens.type(i + 1) in {TokenType.SELECT, TokenType.WITH}
        if tokens.type(i) != TokenType.L_PAREN or not opens_query:
            continue
        before = tokens.type(i - 1)
        in_from_list = before == TokenType.COMMA and tokens.clauses[i] == "from"
        if before not in _NOT_VALUE_SUBQUERY and not in_from_list:
            return i
    return None


def _division(tokens: _Tokens, _found: re.Match[str]) -> int | None:
    operators = [
        i for i, t in enumerate(tokens.tokens) if t.token_type in {TokenType.SLASH, TokenType.MOD}
    ]
    for i in operators:
        if tokens.type(i + 1) == TokenType.NUMBER and _ZERO.fullmatch(tokens.text(i + 1)):
            return i
    return operators[0] if len(operators) == 1 else None


def _cast(tokens: _Tokens, found: re.Match[str]) -> int | None:
    value = _CAST_VALUE.search(found.string)
    if value:
        literal = _literal(tokens, value.group("value"))
        if literal is not None:
            return literal
    casts = [
        i
        for i, t in enumerate(tokens.tokens)
        if t.token_type == TokenType.DCOLON
        or (tokens.text(i) in {"cast", "try_cast"} and tokens.is_call(i))
    ]
    return _first(casts)


def _literal(tokens: _Tokens, value: str) -> int | None:
    return next(
        (
            i
            for i, t in enumerate(tokens.tokens)
            if t.token_type in _LITERALS and t.token_type != TokenType.NUMBER and t.text == value
        ),
        None,
    )


def _quoted_literal(tokens: _Tokens, found: re.Match[str]) -> int | None:
    # A runtime error quoting a value ("granularity: 'mnth'") means the literal spelling it.
    for value in re.findall(r"'([^']*)'", found.string):
        literal = _literal(tokens, value)
        if literal is not None:
            return literal
    return None


_RULES: tuple[tuple[re.Pattern[str], Callable[[_Tokens, re.Match[str]], int | None]], ...] = (
    (re.compile(r"Ambiguous reference to unqualified field (?P<name>\S+)"), _ambiguous),
    (
        re.compile(
            r"Column in (?P<clause>SELECT|HAVING|QUALIFY|ORDER BY) must be in GROUP BY"
            r".*?column \"(?P<name>[^\"]+)\"",
            re.DOTALL,
        ),
        _not_grouped,
    ),
    (
        re.compile(r"HAVING clause references: (?P<expr>.*?) must appear", re.DOTALL),
        _having_reference,
    ),
    (
        re.compile(r'No field named (?P<name>(?:"[^"]+"|[^\s.,"]+)(?:\.(?:"[^"]+"|[^\s.,"]+))*)'),
        _missing_column,
    ),
    (re.compile(r"(?:[Tt]able|View) '(?P<name>[^']+)' (?:not found|doesn't exist)"), _relation),
    (re.compile(r"duplicate qualified field name (?P<name>[^.\s]+)\."), _duplicate_alias),
    (re.compile(r"[Ff]unction '(?P<name>[^']+)'"), _function),
    (re.compile(r"Substring without for/from"), _substring),
    (re.compile(r"Unsupported SQL type (?P<name>\w+)"), _any_name),
    (re.compile(r"Unsupported ast node in sqltorel: (?P<node>[A-Z]\w*)"), _unsupported_node),
    (re.compile(r'Config value "(?P<name>[^"]+)" not found'), _any_name),
    (re.compile(r"Placeholder '(?P<name>\$\w+)'"), _placeholder),
    (re.compile(r"got \d+ values in row (?P<row>\d+)"), _values_row),
    (re.compile(r"Column count doesn't match insert query"), _insert_source),
    (re.compile(r"(?P<keyword>UNION|INTERSECT|EXCEPT) queries have different"), _keyword),
    (re.compile(r"Order by column out of bounds, specified: (?P<number>\d+)"), _order_position),
    (re.compile(r"Cannot find column with position (?P<number>\d+)"), _group_position),
    (re.compile(r"Aggregate functions are not allowed in the WHERE clause"), _aggregate_in_where),
    (re.compile(r"arithmetic expression .*? (?P<op>\|\||<<|>>|[-+*/%&|^]) "), _operator),
    (re.compile(r"temporal operation \S+ (?P<op>[-+*/%]) "), _operator),
    (re.compile(r"comparison operation .*? (?P<op>>=|<=|<>|!=|=|<|>) "), _operator),
    (re.compile(r"in (?:NOT )?(?P<keyword>I?LIKE) expression"), _keyword),
    (re.compile(r"(?P<keyword>LIMIT|OFFSET) (?:must be|to be)"), _after_keyword),
    (
        re.compile(r"[Ss]ubquery (?:returned more than one row|should only return one)"),
        _value_subquery,
    ),
    (re.compile(r"[Dd]ivide by zero|[Dd]ivision by zero"), _division),
    (re.compile(r"[Cc]ast error|[Cc]annot cast"), _cast),
    (re.compile(r"'[^']*'"), _quoted_literal),
)


def _parser_position(message: str, statement: str, line: int, column: int) -> SqlLocation:
    """The parser's position, moved back where it blames the token after the mistake."""
    if "multi-line comment" in message:
        opening = _unclosed_comment(statement)
        if opening is not None:
            return SqlLocation(*position(statement, opening), 2)
    tokens = _Tokens.of(statement)
    lines = statement.split("\n")
    offset = sum(len(text) + 1 for text in lines[: line - 1]) + column - 1
    index = tokens.at(offset) if tokens is not None else None
    if tokens is None or index is None:
        return SqlLocation(line, column)
    before = index - 1
    trailing_comma = tokens.type(before) == TokenType.COMMA and "an expression" in message
    if trailing_comma or _misspelled_keyword(tokens, before):
        return tokens.location(before)
    return tokens.location(index)


def _at_end(statement: str) -> SqlLocation:
    """The statement ended too early: a trailing comma, or just past its last character."""
    tokens = _Tokens.of(statement)
    if (
        tokens is not None
        and tokens.tokens
        and tokens.type(len(tokens.tokens) - 1) == TokenType.COMMA
    ):
        return tokens.location(len(tokens.tokens) - 1)
    lines = statement.rstrip().splitlines() or [""]
    return SqlLocation(len(lines), len(lines[-1]) + 1)


def _misspelled_keyword(tokens: _Tokens, i: int) -> bool:
    """Whether token ``i`` is a name one typo away from a clause keyword (WHER, JION)."""
    if tokens.type(i) != TokenType.VAR or len(tokens.text(i)) < _SHORTEST_TYPO:
        return False
    word = tokens.text(i).upper()
    return any(_edits(word, keyword) == 1 for keyword in _TYPO_PRONE_KEYWORDS)


def _edits(a: str, b: str) -> int:
    """Edit distance counting a swap of neighbours as one edit (optimal string alignment)."""
    previous, current = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        before, previous, current = previous, current, [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            swapped = i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]
            if swapped and before is not None:
                current[j] = min(current[j], before[j - 2] + 1)
    return current[len(b)]


def _unclosed_comment(sql: str) -> int | None:
    """Offset of the ``/*`` that never closes (outside strings and line comments)."""
    opened: list[int] = []
    quote, i = "", 0
    while i < len(sql):
        pair = sql[i : i + 2]
        if opened:
            if pair == "/*":
                opened.append(i)
            elif pair == "*/":
                opened.pop()
            i += 2 if pair in {"/*", "*/"} else 1
            continue
        if quote:
            quote = "" if sql[i] == quote else quote
        elif sql[i] in "'\"":
            quote = sql[i]
        elif pair == "--":
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
            continue
        elif pair == "/*":
            opened.append(i)
            i += 2
            continue
        i += 1
    return opened[0] if opened else None

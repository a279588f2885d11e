"""Cheap, selective filters first: the gate's ordering of a WHERE's conjuncts.

DataFusion evaluates a filter's conjuncts in the order written, and an ``AND`` whose left
side keeps 20% of the rows or fewer evaluates its right side on those rows only. So
``l_shipmode IN ('FOB', 'SHIP') AND l_receiptdate >= DATE '1995-01-01' AND ...`` compares
strings on every row, where the date range written first would have left a seventh of
them (TPC-H q12: 102 ms to 75 ms, docs/performance.md). DuckDB orders conjuncts by cost
for the same reason (its ``ExpressionHeuristics``); DataFusion only does inside the
Parquet reader with ``pushdown_filters``, which is slower here over the 22 queries.

The rewrite moves filters only among themselves: a *filter* is a top-level conjunct of a
WHERE that reads one table and is made of columns of known type, literals, comparisons,
BETWEEN, IN lists, LIKE, IS, NOT, parentheses and constant date arithmetic: nothing that
can raise, and AND is commutative, so the order cannot change an answer. Every other
conjunct keeps its place. One that could raise (a function call, a cast or arithmetic on
a column, a subquery) is a barrier no filter crosses, so it sees the rows it saw as
written; join conditions are passed over. Filters are ranked, and the sort is stable:

0. non-string column = constant, or IN a list of constants;
1. non-string column against constants (<, <=, >, >=, BETWEEN);
2. non-string columns compared with each other;
3. anything else on non-string columns (<>, NOT, IS, OR of the above);
4. string column = constant; 5. string IN a list; 6. other string comparisons;
7. LIKE; 8. anything else.

The statement is rewritten only when the order of some table's own filters changes (the
order across tables does not matter: each goes to its own scan). The conjuncts' text is
moved as typed, between the original ``AND``s.
"""

from __future__ import annotations

from sqlglot import Tokenizer, TokenType, exp

from workbench.ingress.semijoin import SIMPLE, conjuncts

_ALLOWED = (*SIMPLE, exp.Interval, exp.Var)
"""Nodes a filter may be made of; arithmetic and casts only over constants (:func:`_unsafe`)."""
_ARITHMETIC = (exp.Cast, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Neg)
_CONSTANT = (exp.Literal, exp.Boolean, exp.Null, exp.DataType, exp.Interval, exp.Var, exp.Paren)
_RANGES = (exp.GT, exp.GTE, exp.LT, exp.LTE)
_Span = tuple[int, int, list[str]]
"""A conjunct's text: start, end, and its names (identifiers) in order."""
_ENDS = {
    TokenType.GROUP_BY,
    TokenType.ORDER_BY,
    TokenType.HAVING,
    TokenType.LIMIT,
    TokenType.QUALIFY,
    TokenType.WINDOW,
    TokenType.UNION,
    TokenType.INTERSECT,
    TokenType.EXCEPT,
    TokenType.SEMICOLON,
    TokenType.OFFSET,
    TokenType.FETCH,
}
_WORDS = (TokenType.VAR, TokenType.IDENTIFIER)
_OPEN = {TokenType.L_PAREN, TokenType.CASE}
_CLOSE = {TokenType.R_PAREN, TokenType.END}


def order(sql: str, canonical: exp.Expr) -> tuple[str, str] | None:
    """``sql`` with each WHERE's filters in rank order and what was done, or ``None`` when
    no table's filters move. ``canonical`` is the gate's qualified, typed tree of ``sql``."""
    wheres = [
        w for w in canonical.find_all(exp.Where, bfs=False) if isinstance(w.parent, exp.Select)
    ]
    clauses = _where_clauses(sql)
    if clauses is None or len(clauses) != len(wheres):
        return None
    edits: list[tuple[int, int, str]] = []
    moved: list[str] = []
    for where, spans in zip(wheres, clauses, strict=True):
        parts = conjuncts(where.this)
        if len(parts) != len(spans) or not _same_columns(parts, spans):
            return None
        permutation = _permutation(parts)
        if permutation is None:
            continue
        for slot, source in enumerate(permutation):
            if slot != source:
                start, end, _ = spans[slot]
                edits.append((start, end, sql[spans[source][0] : spans[source][1]]))
                moved.append(_table(parts[source]) or "")
    if not edits:
        return None
    text = sql
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    names = ", ".join(dict.fromkeys(moved))
    return text, f"filter order: cheaper, more selective filters first on {names}"


def _permutation(conjuncts: list[exp.Expr]) -> list[int] | None:
    """For each slot, the conjunct that goes there; ``None`` if no table's filters move.

    Filters move only between barriers: a conjunct that could raise (a function, a cast
    or arithmetic on a column, a subquery) keeps the filters before it before it, so the
    rows it sees are the ones it saw as written. Join conditions are passed over."""
    ranks = [_rank(c) for c in conjuncts]
    permutation = list(range(len(conjuncts)))
    segment: list[int] = []
    for i, conjunct in enumerate([*conjuncts, None]):
        if conjunct is not None and not _barrier(conjunct):
            if ranks[i] is not None:
                segment.append(i)
            continue
        ranked = sorted(segment, key=lambda k: ranks[k])  # type: ignore[arg-type, return-value]
        for slot, source in zip(segment, ranked, strict=True):
            permutation[slot] = source
        segment = []
    filters = [i for i, r in enumerate(ranks) if r is not None]
    for table in {_table(conjuncts[i]) for i in filters}:
        mine = [i for i in filters if _table(conjuncts[i]) == table]
        if [i for i in permutation if i in mine] != mine:
            return permutation
    return None


def _barrier(conjunct: exp.Expr) -> bool:
    return not all(isinstance(n, _ALLOWED) and not _unsafe(n) for n in conjunct.walk())


def _table(conjunct: exp.Expr) -> str | None:
    tables = {c.table for c in conjunct.find_all(exp.Column)}
    return tables.pop() if len(tables) == 1 else None


def _rank(conjunct: exp.Expr) -> int | None:
    """The filter's rank, or ``None`` if the conjunct is not a filter that may move."""
    columns = list(conjunct.find_all(exp.Column))
    movable = (
        bool(columns)
        and _table(conjunct) is not None
        and not _barrier(conjunct)
        and all(
            c.type is not None and not c.type.is_type(exp.DataType.Type.UNKNOWN) for c in columns
        )
    )
    if not movable:
        return None
    node = conjunct.unnest()
    text = any(c.type.is_type(*exp.DataType.TEXT_TYPES) for c in columns)  # type: ignore[union-attr]
    rules = _TEXT_RANKS if text else _RANKS
    return next((rank for test, rank in rules if test(node)), 8 if text else 3)


def _equals_constant(node: exp.Expr) -> bool:
    return isinstance(node, exp.EQ) and _column_and_constant(node)


def _in_list(node: exp.Expr) -> bool:
    return isinstance(node, exp.In) and _is_column(node.this)


def _range(node: exp.Expr) -> bool:
    if isinstance(node, exp.Between):
        return _is_column(node.this)
    return isinstance(node, _RANGES) and _column_and_constant(node)


def _columns_compared(node: exp.Expr) -> bool:
    return isinstance(node, _RANGES) and _is_column(node.left) and _is_column(node.right)


def _compared(node: exp.Expr) -> bool:
    return isinstance(node, (*_RANGES, exp.NEQ, exp.Between))


def _like(node: exp.Expr) -> bool:
    return isinstance(node, (exp.Like, exp.ILike))


_RANKS = ((_equals_constant, 0), (_in_list, 0), (_range, 1), (_columns_compared, 2))
"""Filters on non-string columns; anything else ranks 3."""
_TEXT_RANKS = ((_equals_constant, 4), (_in_list, 5), (_compared, 6), (_like, 7))
"""Filters on string columns; anything else ranks 8."""


def _unsafe(node: exp.Expr) -> bool:
    """A node that could raise at run time: a cast of a column, arithmetic on a column."""
    if isinstance(node, _ARITHMETIC):
        return node.find(exp.Column) is not None
    return isinstance(node, exp.In) and node.args.get("query") is not None


def _is_column(node: exp.Expr) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    return isinstance(node, exp.Column)


def _constant(node: exp.Expr) -> bool:
    return node.find(exp.Column) is None and all(
        isinstance(n, (*_CONSTANT, *_ARITHMETIC)) for n in node.walk()
    )


def _column_and_constant(node: exp.Binary) -> bool:
    left, right = node.left, node.right
    return (_is_column(left) and _constant(right)) or (_is_column(right) and _constant(left))


def _same_columns(parts: list[exp.Expr], spans: list[_Span]) -> bool:
    """Whether each text span names its conjunct's columns in the same order (the tree
    and the text were split alike)."""
    for part, (_, _, words) in zip(parts, spans, strict=True):
        names = [c.name.lower() for c in part.find_all(exp.Column, bfs=False)]
        if [w for w in words if w in names] != names:
            return False
    return True


def _where_clauses(sql: str) -> list[list[_Span]] | None:
    """Each WHERE clause of ``sql`` in order, as the text spans of its top-level
    conjuncts, or ``None`` if the text cannot be split."""
    try:
        tokens = Tokenizer().tokenize(sql)
    except Exception:  # noqa: BLE001  (a text SQLGlot cannot split is left as written)
        return None
    clauses = []
    for i, token in enumerate(tokens):
        if token.token_type == TokenType.WHERE:
            spans = _split(tokens, i + 1)
            if spans is None:
                return None
            clauses.append(spans)
    return clauses


def _split(tokens: list, first: int) -> list[_Span] | None:  # type: ignore[type-arg]
    """The spans of the top-level conjuncts of the WHERE clause whose first token is
    ``tokens[first]``: split at each ``AND`` outside parentheses, CASE and BETWEEN."""
    depth = 0
    between = False
    spans: list[_Span] = []
    pieces: list = []  # type: ignore[type-arg]
    for token in tokens[first:]:
        kind = token.token_type
        depth += (kind in _OPEN) - (kind in _CLOSE)
        if depth < 0 or (depth == 0 and kind in _ENDS):
            break
        if depth == 0 and kind == TokenType.AND and not between:
            if not pieces:
                return None
            spans.append(_span(pieces))
            pieces = []
            continue
        if depth == 0 and kind in (TokenType.BETWEEN, TokenType.AND):
            between = kind == TokenType.BETWEEN
        pieces.append(token)
    if not pieces or depth > 0:
        return None
    spans.append(_span(pieces))
    return spans


def _span(pieces: list) -> _Span:  # type: ignore[type-arg]
    words = [t.text.lower() for t in pieces if t.token_type in _WORDS]
    return pieces[0].start, pieces[-1].end + 1, words

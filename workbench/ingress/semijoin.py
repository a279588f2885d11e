"""Semi-join reduction of a correlated aggregate subquery: one of the gate's speed rewrites.

DataFusion decorrelates ``x < (SELECT agg(..) FROM t WHERE t.k = p.key)`` into an
aggregate of the whole of ``t`` grouped by ``k``, joined back; when the outer query keeps
only a few rows of ``p`` (TPC-H q17: 2,000 parts of 200,000), almost all of that aggregate
is thrown away (docs/performance.md). The rewrite adds to the subquery the keys the outer
query can keep::

    ... AND t.k IN (SELECT s.key FROM p AS s WHERE <the outer conditions on p alone>)

For every outer row that passes those conditions its own key is in the set, so the
subquery's value for it is unchanged; every other outer row is dropped by the outer WHERE
whatever the subquery says. The rewrite applies only where that argument holds, and
leaves the statement as written otherwise:

* one statement, one subquery, no CTE; the subquery is a scalar compared in a top-level
  conjunct of the outer WHERE;
* the outer FROM joins base tables with inner or comma joins only;
* the subquery reads one base table, has no GROUP BY, HAVING, ORDER BY, LIMIT, DISTINCT
  or window, and its WHERE is a conjunction with exactly one correlation, ``t.k = p.key``;
* the outer WHERE has at least one conjunct on ``p`` alone, made of columns, literals,
  comparisons, boolean operators, IN lists, LIKE, BETWEEN, IS, casts and arithmetic.

The text is spliced in before the subquery's closing parenthesis: the rest of the
statement stays as typed.
"""

from __future__ import annotations

from sqlglot import Tokenizer, TokenType, exp
from sqlglot.optimizer.scope import ScopeType, build_scope

ALIAS = "__wb_sj"
"""The alias of the outer table inside the added subquery (no user name collides)."""

SIMPLE = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.DataType,
    exp.Paren,
    exp.And,
    exp.Or,
    exp.Not,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Like,
    exp.ILike,
    exp.Between,
    exp.Is,
    exp.In,
    exp.Cast,
    exp.Neg,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def conjuncts(condition: exp.Expr) -> list[exp.Expr]:
    """The top-level conjuncts of ``condition``, in the order written."""
    if isinstance(condition, exp.And):
        return conjuncts(condition.left) + conjuncts(condition.right)
    return [condition]


def _simple(node: exp.Expr) -> bool:
    if isinstance(node, exp.In) and node.args.get("query") is not None:
        return False
    return all(isinstance(n, SIMPLE) for n in node.walk())


def _tables(select: exp.Select) -> dict[str, exp.Table] | None:
    """The base tables a SELECT reads by alias, or None if it reads anything else."""
    source = select.args.get("from") or select.args.get("from_")
    first = source.this if source is not None else None
    if not isinstance(first, exp.Table) or not first.name:
        return None
    tables = {first.alias_or_name: first}
    for join in select.args.get("joins") or []:
        inner = join.side == "" and join.kind in ("", "INNER", "CROSS")
        if not inner or not isinstance(join.this, exp.Table) or join.args.get("using"):
            return None
        tables[join.this.alias_or_name] = join.this
    return tables


def reduce(sql: str, canonical: exp.Expr, dialect: str) -> tuple[str, str] | None:
    """``sql`` with the subquery reduced and what was done, or ``None`` where it does not
    apply. ``canonical`` is the gate's qualified tree of ``sql``."""
    if not isinstance(canonical, exp.Select) or canonical.find(exp.With) is not None:
        return None
    selects = list(canonical.find_all(exp.Select))
    if len(selects) != 2:
        return None
    inner = selects[1]
    found = _shape(canonical, inner)
    if found is None:
        return None
    local, outer_column, keep = found
    table = _tables(canonical)[outer_column.table]  # type: ignore[index]
    conditions = []
    for condition in keep:
        renamed = condition.copy()
        for column in renamed.find_all(exp.Column):
            column.set("table", exp.to_identifier(ALIAS))
        conditions.append(renamed.sql(dialect))
    key = exp.column(outer_column.name, table=ALIAS).sql(dialect)
    source = exp.to_identifier(table.name).sql(dialect)
    # Every part is SQLGlot's rendering of the statement's own identifiers and literals.
    added = (
        f"\n AND {local.sql(dialect)} IN (SELECT {key} FROM {source} AS {ALIAS} "  # noqa: S608
        f"WHERE {' AND '.join(conditions)})"
    )
    close = _subquery_close(sql)
    if close is None:
        return None
    described = f"semi-join reduction: {local.name} IN the {table.name} rows the query keeps"
    return sql[:close] + added + sql[close:], described


def _shape(
    outer: exp.Select, inner: exp.Select
) -> tuple[exp.Column, exp.Column, list[exp.Expr]] | None:
    """(the subquery's correlated column, the outer key, the outer conditions on its table)."""
    comparison = _compared_conjunct(outer, inner)
    correlation = _correlation(outer, inner) if comparison is not None else None
    if correlation is None:
        return None
    local, key = correlation
    keep = [
        c
        for c in conjuncts(outer.args["where"].this)
        if c is not comparison
        and _simple(c)
        and {col.table for col in c.find_all(exp.Column)} == {key.table}
    ]
    if not keep or key.table not in (_tables(outer) or {}):
        return None
    return local, key, keep


def _compared_conjunct(outer: exp.Select, inner: exp.Select) -> exp.Expr | None:
    """The top-level conjunct of the outer WHERE that compares with the subquery, if the
    two SELECTs have the shape the rewrite needs."""
    subquery = inner.parent
    outer_where = outer.args.get("where")
    if not isinstance(subquery, exp.Subquery) or outer_where is None:
        return None
    comparison = subquery.parent
    while isinstance(comparison, exp.Paren):
        comparison = comparison.parent
    if not isinstance(comparison, _COMPARISONS):
        return None
    top: exp.Expr = comparison
    while isinstance(top.parent, exp.Paren):
        top = top.parent
    if not any(c is top for c in conjuncts(outer_where.this)):
        return None
    modifiers = ("group", "having", "order", "limit", "offset", "distinct", "qualify", "joins")
    plain = not any(inner.args.get(m) for m in modifiers) and inner.find(exp.Window) is None
    tables = _tables(outer) is not None and _tables(inner) is not None
    return top if plain and tables and inner.args.get("where") else None


def _correlation(outer: exp.Select, inner: exp.Select) -> tuple[exp.Column, exp.Column] | None:
    """(inner column, outer column) of the subquery's one correlation ``t.k = p.key``."""
    scopes = build_scope(outer)
    scope = (
        next((s for s in scopes.traverse() if s.scope_type == ScopeType.SUBQUERY), None)
        if scopes is not None
        else None
    )
    if scope is None or scope.expression is not inner:
        return None
    external = {id(c) for c in scope.external_columns}
    correlated = [
        c for c in conjuncts(inner.args["where"].this) if any(id(x) in external for x in c.walk())
    ]
    if len(correlated) != 1 or not isinstance(correlated[0], exp.EQ):
        return None
    sides = [correlated[0].left, correlated[0].right]
    columns = [s for s in sides if isinstance(s, exp.Column)]
    outer_side = [c for c in columns if id(c) in external]
    local_side = [c for c in columns if id(c) not in external]
    if len(outer_side) != 1 or len(local_side) != 1:
        return None
    return local_side[0], outer_side[0]


def _subquery_close(sql: str) -> int | None:
    """The offset of the closing parenthesis of the one ``(SELECT`` in ``sql``."""
    tokens = Tokenizer().tokenize(sql)
    opens = [
        i
        for i in range(len(tokens) - 1)
        if tokens[i].token_type == TokenType.L_PAREN
        and tokens[i + 1].token_type == TokenType.SELECT
    ]
    if len(opens) != 1:
        return None
    depth = 0
    for token in tokens[opens[0] :]:
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                return token.start
    return None

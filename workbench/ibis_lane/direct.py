"""The direct lane: an Ibis expression built as DataFusion DataFrame calls, no SQL text.

:func:`compile` walks the Ibis operation tree (``expr.op()``) and rebuilds it with
DataFusion's DataFrame API (``select``, ``filter``, ``aggregate``, ``join_on``,
``sort``, ``limit``, ``distinct``) and expressions from ``datafusion.functions``.
It never produces SQL: no ``ibis.to_sql``, no sqlglot, no ``ctx.sql``.

Coverage is what TPC-H-style queries need. Relations: database and unbound tables,
in-memory tables, ``select``/``mutate``, ``drop``, ``filter``, ``group_by().aggregate()``
(aggregates may be combined with arithmetic), ``order_by``, ``limit`` with literal
bounds, ``distinct``, ``union`` and join chains (inner, left, right, outer, semi,
anti, cross) with any predicates. Values: columns, literals (numbers, decimals,
strings, booleans, dates, timestamps, intervals, NULL), arithmetic, comparisons,
boolean logic, null tests, ``between``, ``isin`` with a list, ``like`` with a
literal pattern, casts, ``ifelse``/``cases``, date parts, date plus or minus an
interval (folded to one literal when both sides are literals), string functions,
``coalesce``/``greatest``/``least``/``nullif`` and the common reductions.

Everything else is a *gap*: :func:`compile` returns ``Compiled(df=None, gaps=...)``
naming the uncovered operations (``"ops.WindowFunction"``; an operation covered only
in some forms carries the form, ``"ops.JoinLink(asof)"``) and raises nothing, so the
caller can run the expression through the SQL lane instead.

Each value is built the way Ibis' own DataFusion SQL compiler spells it, so both
lanes give the same column names and types: division casts the dividend to double
where sqlglot's typed division does, a cast to string gives the type DataFusion's
SQL planner gives ``VARCHAR`` in the context. One deliberate difference: a date
literal is a ``Date32`` here, where the SQL lane writes ``date_trunc('day', ...)``,
a timestamp; the answers agree, and a projected date literal is a date, as Ibis
says it is.
"""

from __future__ import annotations

import calendar
import datetime as dt
import decimal
import functools
import itertools
import math
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import datafusion
import ibis
import ibis.expr.operations as ops
import pyarrow as pa
import pyarrow.dataset as pads
from datafusion import functions as f
from ibis.formats.pyarrow import PyArrowType

if TYPE_CHECKING:
    from ibis.common.graph import Node

_Expr = datafusion.Expr
_Scope = Mapping[ops.Relation, datafusion.DataFrame]


@dataclass(frozen=True)
class Compiled:
    """The direct lane's answer: a DataFrame, or the operations it does not cover."""

    df: datafusion.DataFrame | None
    gaps: tuple[str, ...]
    """Uncovered operations, ``"ops.<Name>"`` or ``"ops.<Name>(<form>)"``; empty if ``df``."""

    @property
    def direct(self) -> bool:
        """True when the direct lane built the DataFrame (no fallback needed)."""
        return self.df is not None


def compile(expr: ibis.Table, ctx: datafusion.SessionContext) -> Compiled:  # noqa: A001  # the lane's verb
    """Build ``expr`` as a DataFusion DataFrame on ``ctx``, or report why not.

    The query does not run: the DataFrame is a logical plan until it is collected
    or streamed. Tables are looked up by name in ``ctx``; a column or scalar
    expression is taken as its table (``expr.as_table()``). Errors DataFusion raises
    while planning (an unknown table, a type mismatch) propagate unchanged.
    """
    root = expr.as_table().op()
    gaps = _uncovered(root)
    if gaps:
        return Compiled(None, gaps)
    try:
        df = _Builder(ctx).relation(root)
    except _Gap as gap:
        return Compiled(None, (gap.name,))
    return Compiled(df, ())


class _Gap(Exception):  # noqa: N818  # control flow inside the builder, never escapes
    def __init__(self, node: Node, form: str | None = None) -> None:
        self.name = _gap_name(node, form)
        super().__init__(self.name)


def _gap_name(node: Node, form: str | None = None) -> str:
    kind = type(node)
    if not kind.__module__.startswith("ibis.expr.operations"):
        # A user-defined function is a class made on the fly: name its Ibis base.
        kind = next(k for k in kind.__mro__ if k.__module__.startswith("ibis.expr.operations"))
        form = form or getattr(node, "__func_name__", type(node).__name__)
    return f"ops.{kind.__name__}" if form is None else f"ops.{kind.__name__}({form})"


def _uncovered(root: Node) -> tuple[str, ...]:
    """Names of the node types in ``root`` with no rule, not looking inside them."""
    found: set[str] = set()
    seen: set[Node] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if type(node) not in _COVERED:
            found.add(_gap_name(node))
            continue
        stack.extend(node.__children__)
    return tuple(sorted(found))


# ---------------------------------------------------------------------------------------
# Relations


class _Builder:
    """Builds one expression; memoizes relations so a shared subtree is built once."""

    def __init__(self, ctx: datafusion.SessionContext) -> None:
        self.ctx = ctx
        self._built: dict[ops.Relation, datafusion.DataFrame] = {}
        self._names = itertools.count()

    def relation(self, op: ops.Relation) -> datafusion.DataFrame:
        if op not in self._built:
            self._built[op] = _RELATIONS[type(op)](self, op)
        return self._built[op]

    def fresh(self, prefix: str) -> str:
        return f"__wb_{prefix}{next(self._names)}"

    @functools.cached_property
    def varchar(self) -> pa.DataType:
        """The Arrow type DataFusion's SQL planner gives ``VARCHAR`` in this context.

        Read once per compile (a lookup in ``information_schema.df_settings``), and
        only when a cast to string needs it; Utf8View, DataFusion's default, if the
        setting cannot be read.
        """
        setting = "datafusion.sql_parser.map_string_types_to_utf8view"
        try:
            settings = self.ctx.table("information_schema.df_settings")
            found = settings.filter(datafusion.col("name") == datafusion.string_literal(setting))
            values = found.select(datafusion.col("value")).to_pydict()["value"]
        except Exception:  # noqa: BLE001  # DataFusion raises plain Exception; use the default
            values = []
        return pa.string() if values == ["false"] else pa.string_view()

    def arrow_type(self, dtype: Any) -> pa.DataType:
        """The type of the SQL lane's ``CAST(... AS <dtype>)``."""
        return self.varchar if dtype.is_string() else PyArrowType.from_ibis(dtype)

    def value(self, op: ops.Value, scope: _Scope, aggs: list[_Expr] | None = None) -> _Expr:
        """``op`` as an expression over ``scope``; reductions go to ``aggs`` if given."""
        rule = _VALUES.get(type(op))
        if rule is not None:
            return rule(_Values(self, scope, aggs), op)
        if aggs is None:
            raise _Gap(op, "outside aggregate")
        hidden = self.fresh("agg")
        aggs.append(self.reduction(op, scope).alias(hidden))
        return datafusion.col(hidden)

    def reduction(self, op: ops.Reduction, scope: _Scope) -> _Expr:
        """The aggregate expression of reduction ``op`` over ``scope``."""
        where = None if op.where is None else self.value(op.where, scope)
        return _REDUCTIONS[type(op)](_Values(self, scope, None), op, where)


def _table(b: _Builder, op: ops.PhysicalTable) -> datafusion.DataFrame:
    namespace = getattr(op, "namespace", None)
    parts = [p for p in (namespace.catalog, namespace.database) if p] if namespace else []
    # Quoted parts: ctx.table() parses its argument as a (possibly dotted) identifier.
    return b.ctx.table(".".join('"' + p.replace('"', '""') + '"' for p in [*parts, op.name]))


def _memtable(b: _Builder, op: ops.InMemoryTable) -> datafusion.DataFrame:
    # read_table over a dataset does not register a name in the context.
    return b.ctx.read_table(pads.dataset(op.data.to_pyarrow(op.schema)))


def _reference(b: _Builder, op: ops.Reference) -> datafusion.DataFrame:
    return b.relation(op.parent)


def _project(b: _Builder, op: ops.Project) -> datafusion.DataFrame:
    parent = b.relation(op.parent)
    scope = {op.parent: parent}
    return parent.select(*(b.value(v, scope).alias(n) for n, v in op.values.items()))


def _drop_columns(b: _Builder, op: ops.DropColumns) -> datafusion.DataFrame:
    parent = b.relation(op.parent)
    return parent.select(*(parent.column(n) for n in op.schema.names))


def _filter(b: _Builder, op: ops.Filter) -> datafusion.DataFrame:
    parent = b.relation(op.parent)
    scope = {op.parent: parent}
    return parent.filter(*(b.value(p, scope) for p in op.predicates))


def _sort(b: _Builder, op: ops.Sort) -> datafusion.DataFrame:
    parent = b.relation(op.parent)
    scope = {op.parent: parent}
    return parent.sort(
        *(
            b.value(k.arg, scope).sort(ascending=k.ascending, nulls_first=k.nulls_first)
            for k in op.keys
        )
    )


def _limit(b: _Builder, op: ops.Limit) -> datafusion.DataFrame:
    if not isinstance(op.n, int | None) or not isinstance(op.offset, int):
        raise _Gap(op, "computed bounds")
    if op.n is None and op.offset:
        raise _Gap(op, "offset without limit")
    parent = b.relation(op.parent)
    return parent if op.n is None else parent.limit(op.n, op.offset)


def _distinct(b: _Builder, op: ops.Distinct) -> datafusion.DataFrame:
    return b.relation(op.parent).distinct()


def _union(b: _Builder, op: ops.Union) -> datafusion.DataFrame:
    return b.relation(op.left).union(b.relation(op.right), distinct=op.distinct)


def _aggregate(b: _Builder, op: ops.Aggregate) -> datafusion.DataFrame:
    parent = b.relation(op.parent)
    scope = {op.parent: parent}
    groups = [b.value(v, scope).alias(n) for n, v in op.groups.items()]
    aggs: list[_Expr] = []
    metrics: dict[str, _Expr | None] = {}
    for name, metric in op.metrics.items():
        if type(metric) in _REDUCTIONS:
            # A bare reduction is aggregated under its own name.
            aggs.append(b.reduction(metric, scope).alias(name))
            metrics[name] = None
        else:
            metrics[name] = b.value(metric, scope, aggs)
    if not groups and not aggs:
        raise _Gap(op, "no reductions")
    result = parent.aggregate(groups, aggs)
    if all(m is None for m in metrics.values()):
        return result
    return result.select(
        *(result.column(n) for n in op.groups),
        *(result.column(n) if m is None else m.alias(n) for n, m in metrics.items()),
    )


_JoinHow = Literal["inner", "left", "right", "full", "semi", "anti"]
_JOIN_KINDS: dict[str, _JoinHow] = {
    "inner": "inner",
    "left": "left",
    "right": "right",
    "outer": "full",
    "semi": "semi",
    "anti": "anti",
    "cross": "inner",
}


def _join(b: _Builder, op: ops.JoinChain) -> datafusion.DataFrame:
    # Every table of the chain gets its own qualifier, so equal column names on two
    # sides (self joins, shared key names) stay apart until the final projection.
    scope: dict[ops.Relation, datafusion.DataFrame] = {}
    joined = scope[op.first] = b.relation(op.first).alias(b.fresh("j"))
    for link in op.rest:
        how = _JOIN_KINDS.get(link.how)
        if how is None:
            raise _Gap(link, link.how)
        right = scope[link.table] = b.relation(link.table).alias(b.fresh("j"))
        predicates = [b.value(p, scope) for p in link.predicates]
        joined = joined.join_on(right, *predicates, how=how)
    return joined.select(*(b.value(v, scope).alias(n) for n, v in op.values.items()))


_RELATIONS: dict[type[Node], Callable[[_Builder, Any], datafusion.DataFrame]] = {
    ops.DatabaseTable: _table,
    ops.UnboundTable: _table,
    ops.InMemoryTable: _memtable,
    ops.JoinReference: _reference,
    ops.SelfReference: _reference,
    ops.Project: _project,
    ops.DropColumns: _drop_columns,
    ops.Filter: _filter,
    ops.Sort: _sort,
    ops.Limit: _limit,
    ops.Distinct: _distinct,
    ops.Union: _union,
    ops.Aggregate: _aggregate,
    ops.JoinChain: _join,
}


# ---------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class _Values:
    """What a value rule needs: the builder, the relations in scope, the aggregates."""

    builder: _Builder
    scope: _Scope
    aggs: list[_Expr] | None

    def __call__(self, op: ops.Value) -> _Expr:
        return self.builder.value(op, self.scope, self.aggs)


_Rule = Callable[[_Values, Any], _Expr]


def _field(v: _Values, op: ops.Field) -> _Expr:
    frame = v.scope.get(op.rel)
    if frame is None:
        raise _Gap(op, "outer reference")
    return frame.column(op.name)


_SECONDS = {"h": 3600, "m": 60, "s": 1}


def _interval(op: ops.Literal) -> pa.Scalar:
    """An interval literal as DataFusion's ``Interval(MonthDayNano)``."""
    unit, value = op.dtype.unit.short, int(op.value)
    months = {"Y": 12, "Q": 3, "M": 1}.get(unit, 0) * value
    days = {"W": 7, "D": 1}.get(unit, 0) * value
    if unit not in {"Y", "Q", "M", "W", "D", *_SECONDS}:
        raise _Gap(op, f"interval in {op.dtype.unit.plural}")
    nanos = _SECONDS.get(unit, 0) * value * 1_000_000_000
    return pa.scalar(pa.MonthDayNano([months, days, nanos]), pa.month_day_nano_interval())


def _literal(v: _Values, op: ops.Literal) -> _Expr:
    dtype, value = op.dtype, op.value
    if value is None:
        null = datafusion.lit(None)
        return null if dtype.is_null() else null.cast(v.builder.arrow_type(dtype))
    if dtype.is_string():
        # string_literal is Utf8, as a SQL string literal is; lit() would be Utf8View.
        return datafusion.string_literal(value)
    if dtype.is_boolean() or dtype.is_integer() or dtype.is_floating() or dtype.is_date():
        return datafusion.lit(value)
    if dtype.is_decimal():
        # The SQL lane writes CAST('<value>' AS DECIMAL(p or 38, s or 9)).
        precision, scale = dtype.precision or 38, dtype.scale or 9
        if precision > 38:
            raise _Gap(op, f"decimal({precision}, {scale})")
        exact = decimal.Decimal(str(value)).quantize(decimal.Decimal(1).scaleb(-scale))
        return datafusion.lit(pa.scalar(exact, pa.decimal128(precision, scale)))
    if dtype.is_timestamp():
        unit = dtype.unit.short if dtype.scale is not None else "us"
        return datafusion.lit(pa.scalar(value, pa.timestamp(unit, dtype.timezone)))
    if dtype.is_interval():
        return datafusion.lit(_interval(op))
    raise _Gap(op, str(dtype))


def _sql_typed_real(op: ops.Value) -> bool:
    """Whether sqlglot knows the SQL lane's text for ``op`` to be a float or decimal."""
    if isinstance(op, ops.Literal):
        real = op.dtype.is_floating() or op.dtype.is_decimal()
        special = isinstance(op.value, float) and not math.isfinite(op.value)
        return real and (op.value is None or op.dtype.is_decimal() or special)
    if isinstance(op, ops.Cast):
        return bool(op.to.is_floating())  # decimal casts are ARROW_CAST calls, untyped
    if isinstance(op, ops.Ceil | ops.Floor | ops.Round):
        return bool(op.dtype.is_floating() or op.dtype.is_decimal())
    return False


def _divide(v: _Values, op: ops.Divide) -> _Expr:
    # sqlglot's Postgres dialect has typed division: unless it knows an operand is a
    # float or decimal, it casts the dividend to DOUBLE. The SQL lane inherits that,
    # and so Ibis' float64 result type holds for integers and decimals alike.
    left, right = v(op.left), v(op.right)
    if not (_sql_typed_real(op.left) or _sql_typed_real(op.right)):
        left = left.cast(pa.float64())
    return left / right


def _binary(method: str) -> _Rule:
    def rule(v: _Values, op: Any) -> _Expr:
        return getattr(v(op.left), method)(v(op.right))  # type: ignore[no-any-return]

    return rule


def _shift_date(day: dt.date, months: int, days: int) -> dt.date:
    """DataFusion's ``date + interval``: months first (clamped to month end), then days."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    last = calendar.monthrange(year, month + 1)[1]
    return day.replace(year=year, month=month + 1, day=min(day.day, last)) + dt.timedelta(days=days)


def _date_arithmetic(sign: int) -> _Rule:
    def rule(v: _Values, op: ops.DateAdd | ops.DateSub) -> _Expr:
        left, right = op.left, op.right
        if (
            isinstance(left, ops.Literal)
            and isinstance(right, ops.Literal)
            and left.dtype.is_date()
            and right.dtype.is_interval()
            and left.value is not None
            and right.value is not None
            and right.dtype.unit.short in {"Y", "Q", "M", "W", "D"}
        ):
            months, days, _ = _interval(right).value
            folded = _shift_date(left.value, sign * months, sign * days)
            return datafusion.lit(folded)
        return v(left) + v(right) if sign > 0 else v(left) - v(right)

    return rule


def _like(v: _Values, op: ops.StringSQLLike) -> _Expr:
    pattern = op.pattern
    if not isinstance(pattern, ops.Literal) or pattern.value is None:
        raise _Gap(op, "computed pattern")
    if op.escape is not None:
        # The SQL lane drops ESCAPE; refusing keeps both lanes' answers equal.
        raise _Gap(op, "escape")
    arg = v(op.arg)
    tokens = list(_like_tokens(pattern.value))
    literal = "".join(t[-1] for t in tokens if t not in {"%", "_"})
    inner = tokens[1:-1] if len(tokens) > 1 else []
    if "_" not in tokens and "%" not in inner:
        starts, ends = tokens[:1] == ["%"], tokens[-1:] == ["%"]
        text = datafusion.string_literal(literal)
        if starts and ends and len(tokens) > 1:
            return f.strpos(arg, text) > datafusion.lit(0)
        if ends:
            return f.starts_with(arg, text)
        if starts:
            return f.ends_with(arg, text)
        return arg == text
    return f.regexp_like(arg, datafusion.string_literal(_like_regex(tokens)))


def _like_tokens(pattern: str) -> Iterator[str]:
    """``%``, ``_`` or a literal character (escaped ones as ``\\c``); runs of % merge."""
    chars = iter(pattern)
    previous = None
    for char in chars:
        part = "\\" + next(chars, "\\") if char == "\\" else char
        if part == "%" and previous == "%":
            continue
        previous = part
        yield part


_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$#&-~")


def _like_regex(tokens: list[str]) -> str:
    body = []
    for part in tokens:
        if part == "%":
            body.append(".*")
        elif part == "_":
            body.append(".")
        else:
            char = part[-1]
            body.append("\\" + char if char in _REGEX_SPECIAL else char)
    return "(?s)^" + "".join(body) + "$"


def _string_slice(v: _Values, op: ops.StringSlice) -> _Expr:
    # Ibis' own lowering (ibis.expr.rewrites.lower_stringslice), then a Substring.
    start, end = op.start, op.end
    if end is None:
        return v(ops.Substring(op.arg, start=start))
    if start is None:
        return v(ops.Substring(op.arg, start=0, length=end))
    if isinstance(start, ops.Literal) and isinstance(end, ops.Literal):
        return v(ops.Substring(op.arg, start=start, length=end.value - start.value))
    return v(ops.Substring(op.arg, start=start, length=ops.Subtract(end, start)))


def _substring(v: _Values, op: ops.Substring) -> _Expr:
    # Ibis counts from 0 and from the end for negative starts; SQL counts from 1.
    arg = v(op.arg)
    start = op.start
    if isinstance(start, ops.Literal) and start.value is not None and start.value >= 0:
        position = datafusion.lit(start.value + 1)
    else:
        one_based = v(start) + datafusion.lit(1)
        position = f.when(one_based >= datafusion.lit(1), one_based).otherwise(
            one_based + f.length(arg)
        )
    if op.length is None:
        return f.substr(arg, position)
    return f.substr(arg, position, v(op.length))


def _string_concat(v: _Values, op: ops.StringConcat) -> _Expr:
    args = [v(a) for a in op.arg]
    any_null = args[0].is_null()
    for a in args[1:]:
        any_null = any_null | a.is_null()
    null = datafusion.lit(None).cast(v.builder.varchar)
    return f.when(any_null, null).otherwise(f.concat(*args))


def _cast(v: _Values, op: ops.Cast) -> _Expr:
    to, source = op.to, op.arg.dtype
    if to.is_interval() or (to.is_timestamp() and source.is_numeric()):
        raise _Gap(op, f"{source} to {to}")
    if to.is_timestamp():
        unit = to.unit.short if to.scale is not None else "us"
        return v(op.arg).cast(pa.timestamp(unit, to.timezone))
    return v(op.arg).cast(v.builder.arrow_type(to))


def _searched_case(v: _Values, op: ops.SearchedCase) -> _Expr:
    builder = f.when(v(op.cases[0]), v(op.results[0]))
    for case, result in zip(op.cases[1:], op.results[1:], strict=True):
        builder = builder.when(v(case), v(result))
    return builder.otherwise(v(op.default))


def _simple_case(v: _Values, op: ops.SimpleCase) -> _Expr:
    builder = f.case(v(op.base))
    for case, result in zip(op.cases, op.results, strict=True):
        builder = builder.when(v(case), v(result))
    return builder.otherwise(v(op.default))


def _rounding(function: Callable[[_Expr], _Expr]) -> _Rule:
    # The SQL lane casts the result to the Ibis type (e.g. ceil of a double is int64).
    def rule(v: _Values, op: Any) -> _Expr:
        return function(v(op.arg)).cast(PyArrowType.from_ibis(op.dtype))

    return rule


def _round(v: _Values, op: ops.Round) -> _Expr:
    rounded = f.round(v(op.arg)) if op.digits is None else f.round(v(op.arg), v(op.digits))
    return rounded.cast(PyArrowType.from_ibis(op.dtype))


def _negate(v: _Values, op: ops.Negate) -> _Expr:
    # DataFusion's Python API has no unary minus; 0 - x would change the type.
    if isinstance(op.arg, ops.Literal) and op.arg.value is not None:
        return _literal(v, op.arg.copy(value=-op.arg.value))
    raise _Gap(op, "non-literal")


def _date_part(part: str) -> _Rule:
    def rule(v: _Values, op: Any) -> _Expr:
        return f.date_part(part, v(op.arg))

    return rule


def _unary(function: Callable[..., _Expr], *extra: str) -> _Rule:
    def rule(v: _Values, op: Any) -> _Expr:
        return function(v(op.arg), *(datafusion.string_literal(e) for e in extra))

    return rule


def _variadic(function: Callable[..., _Expr]) -> _Rule:
    def rule(v: _Values, op: Any) -> _Expr:
        return function(*(v(a) for a in op.arg))

    return rule


_VALUES: dict[type[Node], _Rule] = {
    ops.Field: _field,
    ops.Literal: _literal,
    ops.Add: _binary("__add__"),
    ops.Subtract: _binary("__sub__"),
    ops.Multiply: _binary("__mul__"),
    ops.Divide: _divide,
    ops.Modulus: _binary("__mod__"),
    ops.Power: lambda v, op: f.power(v(op.left), v(op.right)),
    ops.Negate: _negate,
    ops.Abs: _unary(f.abs),
    ops.Ceil: _rounding(f.ceil),
    ops.Floor: _rounding(f.floor),
    ops.Round: _round,
    ops.Equals: _binary("__eq__"),
    ops.NotEquals: _binary("__ne__"),
    ops.Less: _binary("__lt__"),
    ops.LessEqual: _binary("__le__"),
    ops.Greater: _binary("__gt__"),
    ops.GreaterEqual: _binary("__ge__"),
    ops.And: _binary("__and__"),
    ops.Or: _binary("__or__"),
    ops.Not: lambda v, op: ~v(op.arg),
    ops.IsNull: lambda v, op: v(op.arg).is_null(),
    ops.NotNull: lambda v, op: v(op.arg).is_not_null(),
    ops.Between: lambda v, op: v(op.arg).between(v(op.lower_bound), v(op.upper_bound)),
    ops.InValues: lambda v, op: f.in_list(v(op.value), [v(o) for o in op.options]),
    ops.StringSQLLike: _like,
    ops.Lowercase: _unary(f.lower),
    ops.Uppercase: _unary(f.upper),
    ops.StringLength: _unary(f.character_length),
    ops.Strip: _unary(f.btrim, string.whitespace),
    ops.LStrip: _unary(f.ltrim, string.whitespace),
    ops.RStrip: _unary(f.rtrim, string.whitespace),
    ops.StartsWith: lambda v, op: f.starts_with(v(op.arg), v(op.start)),
    ops.EndsWith: lambda v, op: f.ends_with(v(op.arg), v(op.end)),
    ops.StringContains: lambda v, op: f.strpos(v(op.haystack), v(op.needle)) > datafusion.lit(0),
    ops.Substring: _substring,
    ops.StringSlice: _string_slice,
    ops.StringConcat: _string_concat,
    ops.Cast: _cast,
    ops.IfElse: lambda v, op: f.when(v(op.bool_expr), v(op.true_expr)).otherwise(
        v(op.false_null_expr)
    ),
    ops.SearchedCase: _searched_case,
    ops.SimpleCase: _simple_case,
    ops.Coalesce: _variadic(f.coalesce),
    ops.Greatest: _variadic(f.greatest),
    ops.Least: _variadic(f.least),
    ops.NullIf: lambda v, op: f.nullif(v(op.arg), v(op.null_if_expr)),
    ops.ExtractYear: _date_part("year"),
    ops.ExtractQuarter: _date_part("quarter"),
    ops.ExtractMonth: _date_part("month"),
    ops.ExtractDay: _date_part("day"),
    ops.ExtractDayOfYear: _date_part("doy"),
    ops.ExtractWeekOfYear: _date_part("week"),
    ops.DateAdd: _date_arithmetic(+1),
    ops.DateSub: _date_arithmetic(-1),
    ops.TimestampAdd: _binary("__add__"),
    ops.TimestampSub: _binary("__sub__"),
}


# ---------------------------------------------------------------------------------------
# Reductions: (values, op, filter) -> aggregate expression


def _boolean_as_int(v: _Values, op: Any) -> _Expr:
    # As the SQL lane: SUM/AVG of a boolean sum its int32 cast.
    arg = v(op.arg)
    return arg.cast(pa.int32()) if op.arg.dtype.is_boolean() else arg


def _min_max(numeric: Callable[..., _Expr], boolean: Callable[..., _Expr]) -> Any:
    def rule(v: _Values, op: Any, where: _Expr | None) -> _Expr:
        function = boolean if op.arg.dtype.is_boolean() else numeric
        return function(v(op.arg), filter=where)

    return rule


def _spread(sample: Callable[..., _Expr], population: Callable[..., _Expr]) -> Any:
    # No boolean cast here: Ibis' DataFusion compiler passes the argument as it is.
    def rule(v: _Values, op: Any, where: _Expr | None) -> _Expr:
        function = sample if op.how == "sample" else population
        return function(v(op.arg), filter=where)

    return rule


_REDUCTIONS: dict[type[Node], Callable[[_Values, Any, _Expr | None], _Expr]] = {
    ops.Sum: lambda v, op, where: f.sum(_boolean_as_int(v, op), filter=where),
    ops.Mean: lambda v, op, where: f.avg(_boolean_as_int(v, op), filter=where),
    ops.Min: _min_max(f.min, f.bool_and),
    ops.Max: _min_max(f.max, f.bool_or),
    ops.Count: lambda v, op, where: f.count(v(op.arg), filter=where),
    ops.CountStar: lambda _v, _op, where: f.count_star(filter=where),
    ops.CountDistinct: lambda v, op, where: f.count(v(op.arg), distinct=True, filter=where),
    ops.ApproxCountDistinct: lambda v, op, where: f.approx_distinct(v(op.arg), filter=where),
    ops.StandardDev: _spread(f.stddev, f.stddev_pop),
    ops.Variance: _spread(f.var_samp, f.var_pop),
}

# Nodes that are only structure (sort keys, join links) are covered through their parent.
_COVERED = frozenset({*_RELATIONS, *_VALUES, *_REDUCTIONS, ops.SortKey, ops.JoinLink})

"""The Ibis lane: compat patches, the direct lane against SQL, gaps and fallback."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import TYPE_CHECKING, Any

import datafusion
import ibis
import ibis.selectors as s
import pyarrow as pa
import pytest
import sqlglot.expressions
import sqlglot.generator
from ibis import _
from ibis.backends.sql.compilers.base import SQLGlotCompiler

import workbench
from workbench import datasets
from workbench.ibis_lane import Compiled, compat, compile, connect, sql_text, tpch  # noqa: A004

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.fixture(scope="module")
def session() -> workbench.Session:
    """A session with TPC-H at scale 0.01 (60k lineitems) registered from Parquet."""
    session = workbench.Session()
    datasets.tpch(0.01).register(session, "parquet")
    return session


@pytest.fixture(scope="module")
def con(session: workbench.Session) -> Any:
    return connect(session.ctx)


def _value(v: Any) -> Any:
    return float(v) if isinstance(v, float | decimal.Decimal) else v


def _close(a: Any, b: Any) -> bool:
    a, b = _value(a), _value(b)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def assert_same_rows(got: pa.Table, want: pa.Table, *, ordered: bool) -> None:
    """Equal rows by position of column (floats and decimals within 1e-9)."""
    rows = [tuple(r.values()) for r in got.to_pylist()]
    expected = [tuple(r.values()) for r in want.to_pylist()]
    if not ordered:
        rows.sort(key=repr)
        expected.sort(key=repr)
    assert len(rows) == len(expected)
    for row, other in zip(rows, expected, strict=True):
        assert len(row) == len(other)
        assert all(_close(a, b) for a, b in zip(row, other, strict=True)), (row, other)


def direct(expr: ibis.Table, ctx: datafusion.SessionContext) -> datafusion.DataFrame:
    compiled = compile(expr, ctx)
    assert compiled.gaps == ()
    assert compiled.df is not None
    return compiled.df


def assert_lanes_agree(expr: ibis.Table, ctx: datafusion.SessionContext) -> None:
    """The direct lane gives the SQL lane's column names, types and rows."""
    df = direct(expr, ctx)
    sql = ctx.sql(sql_text(expr))
    assert df.schema().names == sql.schema().names == list(expr.schema().names)
    assert [f.type for f in df.schema()] == [f.type for f in sql.schema()]
    assert_same_rows(df.to_arrow_table(), sql.to_arrow_table(), ordered=False)


# ---------------------------------------------------------------------------------------
# compat


def test_connect_shares_the_session_context(session, con):
    """The backend works on the session's own context: tables, schema, execute, batches."""
    assert con.con is session.ctx
    assert set(datasets.TABLES) <= set(con.list_tables())
    assert con.table("nation").schema().names[:2] == ("n_nationkey", "n_name")
    assert con.table("lineitem").count().execute() == datasets.tpch(0.01).row_counts["lineitem"]
    batches = con.to_pyarrow_batches(con.table("region"), chunk_size=2)
    assert batches.read_all().num_rows == 5
    assert con.sql("SELECT count(*) AS n FROM nation").execute()["n"].item() == 25
    assert (con.current_catalog, con.current_database) == ("datafusion", "public")
    con.drop_view("no_such_view", force=True)


@ibis.udf.scalar.pyarrow  # type: ignore[untyped-decorator]
def _plus_one(x: int) -> int:
    import pyarrow.compute as pc

    return pc.add(x, 1)  # type: ignore[no-any-return]  # an Arrow array, as Ibis calls it


def test_pyarrow_udfs_register_through_the_patched_backend(con):
    """Ibis PyArrow UDFs compile with datafusion 55's udf() signature."""
    nation = con.table("nation")
    got = con.to_pyarrow(nation.select(k=_plus_one(nation.n_nationkey)).order_by("k"))
    assert got["k"].to_pylist() == list(range(1, 26))


def _stock_connect() -> None:
    compat.connect(datafusion.SessionContext())


def _stock_list_tables() -> None:
    ctx = datafusion.SessionContext()
    ctx.from_pydict({"a": [1]}, "t")
    compat.connect(ctx).list_tables()


# For each patch: the call that breaks without it, and what the breakage says.
_REPRODUCERS: dict[str, tuple[Callable[[], None], str]] = {
    compat.UDF_SIGNATURE.name: (_stock_connect, "unexpected keyword argument 'input_types'"),
    compat.NAMELESS_DROP.name: (_stock_list_tables, "Expected: identifier, found: EOF"),
}


def test_every_patch_has_a_reproducer():
    assert set(_REPRODUCERS) == {p.name for p in compat.PATCHES}


@pytest.mark.parametrize("patch", compat.PATCHES, ids=lambda p: p.name)
def test_patch_is_still_needed(patch, monkeypatch):
    """Stock Ibis still breaks without the patch; if this fails, delete the patch."""
    for method in patch.methods:
        monkeypatch.delattr(compat._Backend, method)
    reproduce, message = _REPRODUCERS[patch.name]
    try:
        reproduce()
    except Exception as error:  # noqa: BLE001  # any failure mode counts, checked below
        failure = str(error)
    else:
        pytest.fail(f"stock Ibis works now: delete patch {patch.name!r} ({patch.versions})")
    assert message in failure


def test_stock_ibis_is_left_alone():
    """connect() patches a private subclass, not Ibis' own DataFusion backend."""
    with pytest.raises(TypeError, match="input_types"):
        ibis.datafusion.connect(datafusion.SessionContext())


# ---------------------------------------------------------------------------------------
# TPC-H through the direct lane

_DIRECT = sorted(n for n in tpch.QUERIES if n != 18)


@pytest.mark.parametrize("number", _DIRECT)
def test_tpch_direct_lane_matches_the_sql_query(number, session, con):
    """Each TPC-H expression, built directly, returns the rows of its SQL file."""
    df = direct(tpch.QUERIES[number](con), session.ctx)
    want = session.ctx.sql(datasets.tpch_query(number)).to_arrow_table()
    got = df.to_arrow_table()
    assert got.column_names == want.column_names
    # Every one of these queries orders its rows completely (or returns one row).
    assert_same_rows(got, want, ordered=True)


@pytest.mark.parametrize("number", _DIRECT)
def test_tpch_direct_lane_schema_equals_the_sql_lane(number, session, con):
    """Column names and Arrow types are the ones Ibis' SQL gives on the same context."""
    expr = tpch.QUERIES[number](con)
    assert direct(expr, session.ctx).schema() == session.ctx.sql(sql_text(expr)).schema()


def test_selectors_deferred_and_bind(session, con):
    """Selectors, ``_`` and ``Table.bind`` resolve before the op tree; both lanes agree."""
    lineitem = con.table("lineitem")
    doubled = lineitem.select(s.startswith("l_") & s.of_type("decimal")).mutate(
        s.across(s.cols("l_quantity", "l_tax"), _ * 2)
    )
    assert_lanes_agree(doubled, session.ctx)
    nation = con.table("nation")
    keys = nation.bind("n_regionkey", name_length=_.n_name.length())
    per_region = nation.group_by(keys).aggregate(n=_.count(), first=_.n_name.min())
    assert_lanes_agree(per_region, session.ctx)
    assert_lanes_agree(nation.select(~s.cols("n_comment")).filter(_.n_regionkey == 2), session.ctx)


# ---------------------------------------------------------------------------------------
# Operations, one case each: direct lane versus SQL lane on the same context


class _Tables:
    """``tables.<name>`` is ``con.table(name)``; ``tables.con`` the backend."""

    def __init__(self, con: Any) -> None:
        self.con = con

    def __getattr__(self, name: str) -> ibis.Table:
        return self.con.table(name)


@pytest.fixture(scope="module")
def tables(con: Any) -> _Tables:
    return _Tables(con)


def _self_join(nation: ibis.Table) -> ibis.Table:
    other = nation.view()
    return nation.join(other, nation.n_regionkey == other.n_regionkey)


def _outer_right_cross(region: ibis.Table, nation: ibis.Table) -> ibis.Table:
    outer = region.outer_join(nation, region.r_regionkey == nation.n_nationkey)
    outer = outer.select("r_name", "n_name")
    names = region.select(other=_.r_name)
    return outer.right_join(names, outer.r_name == names.other).cross_join(
        region.select("r_regionkey")
    )


_CASES: dict[str, Callable[[_Tables], ibis.Table]] = {
    "project-arith": lambda t: t.lineitem.select(
        a=_.l_quantity * 2 + 1, b=_.l_extendedprice / _.l_quantity, c=_.l_linenumber % 3
    ),
    "power-abs": lambda t: t.nation.select(p=_.n_nationkey**2, a=(_.n_nationkey - 12).abs()),
    "round-ceil-floor": lambda t: t.customer.select(
        r=_.c_acctbal.round(1), r0=_.c_acctbal.round(), c=_.c_acctbal.ceil(), f=_.c_acctbal.floor()
    ),
    "negate-literal": lambda t: t.nation.select(k=_.n_nationkey * -ibis.literal(2)),
    "literals": lambda t: t.region.select(
        i=ibis.literal(7),
        x=ibis.literal(2.5),
        s=ibis.literal("text"),
        b=ibis.literal(value=True),
        d=_.r_regionkey + ibis.literal(decimal.Decimal("0.05")),
        n=ibis.null("int64"),
    ),
    "compare-logic": lambda t: t.part.filter(
        ((_.p_size > 10) & (_.p_size <= 20)) | ~(_.p_brand != "Brand#13"), _.p_size >= 1
    ),
    "null-tests": lambda t: t.orders.select(
        a=_.o_comment.isnull(), b=_.o_comment.notnull(), c=_.o_clerk.nullif("Clerk#000000001")
    ),
    "between-isin-notin": lambda t: t.part.filter(
        _.p_size.between(5, 9), _.p_container.isin(["SM BOX", "LG BOX"]), _.p_brand.notin(["X"])
    ),
    "like-forms": lambda t: t.part.select(
        exact=_.p_container.like("SM BOX"),
        prefix=_.p_type.like("PROMO%"),
        suffix=_.p_type.like("%BRASS"),
        inner=_.p_name.like("%green%"),
        regex=_.p_name.like("%gr_en%blue%"),
        anything=_.p_name.like("%"),
        dots=_.p_comment.like("%.%"),
        escaped=_.p_type.like("%\\_%"),
    ),
    "string-functions": lambda t: t.nation.select(
        lo=_.n_name.lower(),
        up=_.n_comment.upper(),
        n=_.n_name.length(),
        st=("  " + _.n_name + "  ").strip(),
        ls=(" " + _.n_name).lstrip(),
        rs=(_.n_name + " ").rstrip(),
        sw=_.n_name.startswith("A"),
        ew=_.n_name.endswith("A"),
        has=_.n_comment.contains("furious"),
        cat=_.n_name + "/" + _.n_comment,
    ),
    "substring": lambda t: t.nation.select(
        a=_.n_name.substr(1, 3), b=_.n_name.substr(2), c=_.n_name.substr(-3, 2), d=_.n_name[:2]
    ),
    "casts": lambda t: t.customer.select(
        f=_.c_custkey.cast("float64"),
        s=_.c_custkey.cast("string"),
        d=_.c_acctbal.cast("decimal(12, 1)"),
        i=_.c_acctbal.cast("int32"),
    ),
    "timestamps": lambda t: t.orders.select(
        ts=_.o_orderdate.cast("timestamp"),
        late=_.o_orderdate.cast("timestamp") > ibis.timestamp("1997-06-01 12:00:00"),
    ),
    "cases": lambda t: t.part.select(
        simple=_.p_size.cases((1, "one"), (2, "two"), else_="many"),
        searched=ibis.cases((_.p_size < 10, "small"), (_.p_size < 30, "medium")),
        ifelse=(_.p_retailprice > 1500).ifelse(_.p_retailprice, 0),
    ),
    "coalesce-greatest-least": lambda t: t.part.select(
        c=ibis.coalesce(ibis.null("string"), _.p_brand),
        g=ibis.greatest(_.p_size, 25),
        le=ibis.least(_.p_size, 25),
        f=_.p_size.fill_null(0),
    ),
    "date-parts": lambda t: t.orders.select(
        y=_.o_orderdate.year(),
        q=_.o_orderdate.quarter(),
        m=_.o_orderdate.month(),
        d=_.o_orderdate.day(),
        doy=_.o_orderdate.day_of_year(),
        w=_.o_orderdate.week_of_year(),
    ),
    "date-interval": lambda t: t.orders.select(
        later=_.o_orderdate + ibis.interval(days=10),
        earlier=_.o_orderdate - ibis.interval(months=1),
        next_year=_.o_orderdate + ibis.interval(years=1),
    ),
    "aggregates": lambda t: t.orders.group_by("o_orderstatus").aggregate(
        n=_.count(),
        n_where=_.count(where=_.o_orderpriority == "1-URGENT"),
        c=_.o_comment.count(),
        d=_.o_custkey.nunique(),
        ad=_.o_custkey.approx_nunique(),
        d_where=_.o_custkey.nunique(where=_.o_totalprice > 100_000),
        s=_.o_totalprice.sum(where=_.o_shippriority == 0),
        avg=_.o_totalprice.mean(),
        lo=_.o_orderdate.min(),
        hi=_.o_orderdate.max(),
        share=(_.o_totalprice > 200_000).mean(),
        big=(_.o_totalprice > 200_000).sum(),
        sd=_.o_totalprice.std(),
        var=_.o_totalprice.var(how="pop"),
        ratio=_.o_totalprice.max() / _.o_totalprice.min(),
    ),
    "computed-group-key": lambda t: t.orders.group_by(year=_.o_orderdate.year()).aggregate(
        n=_.count(), customers=_.o_custkey.nunique()
    ),
    "global-aggregate": lambda t: t.lineitem.aggregate(n=_.count(), q=_.l_quantity.sum() + 1),
    "sort-limit-offset": lambda t: (
        t.customer.order_by(ibis.desc("c_acctbal"), "c_custkey")
        .select("c_custkey", "c_acctbal")
        .limit(7, offset=3)
    ),
    "distinct-drop": lambda t: t.part.drop("p_comment", "p_name").select("p_brand").distinct(),
    "union": lambda t: t.nation.select("n_name").union(t.region.select(n_name=_.r_name)),
    "union-distinct": lambda t: t.nation.select(k=_.n_regionkey).union(
        t.region.select(k=_.r_regionkey), distinct=True
    ),
    "left-join-compound": lambda t: t.customer.left_join(
        t.orders, [t.customer.c_custkey == t.orders.o_custkey, t.orders.o_totalprice > 300_000]
    ).select("c_custkey", "o_orderkey", "o_totalprice"),
    "self-join": lambda t: _self_join(t.nation),
    "semi-anti-join": lambda t: (
        t.customer.semi_join(t.orders, t.customer.c_custkey == t.orders.o_custkey)
        .anti_join(t.nation, t.customer.c_nationkey == t.nation.n_regionkey)
        .select("c_custkey")
    ),
    "outer-right-cross": lambda t: _outer_right_cross(t.region, t.nation),
    "divisions": lambda t: t.lineitem.select(
        dec=_.l_extendedprice / _.l_quantity,
        by_literal=_.l_extendedprice / ibis.literal(decimal.Decimal(2)),
        by_float=_.l_linenumber / 2.5,
        rounded=_.l_extendedprice.round(1) / _.l_linenumber,
        cast=_.l_linenumber.cast("float32") / _.l_linenumber,
        ceil=_.l_tax.ceil() / 2,
    ),
}


@pytest.mark.parametrize("case", _CASES)
def test_operation_lanes_agree(case, session, tables):
    """Each covered operation gives the SQL lane's names, types and rows."""
    assert_lanes_agree(_CASES[case](tables), session.ctx)


def test_direct_lane_generates_no_sql(session, con, tables, monkeypatch):
    """Compiling and running the TPC-H and operation cases never writes or parses SQL."""
    exprs = [tpch.QUERIES[n](con) for n in _DIRECT] + [build(tables) for build in _CASES.values()]

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("SQL text generated in the direct lane")

    monkeypatch.setattr(sqlglot.expressions.Expression, "sql", refuse)
    monkeypatch.setattr(sqlglot.generator.Generator, "generate", refuse)
    monkeypatch.setattr(SQLGlotCompiler, "translate", refuse)
    monkeypatch.setattr(ibis, "to_sql", refuse)
    monkeypatch.setattr(datafusion.SessionContext, "sql", refuse)
    monkeypatch.setattr(datafusion.SessionContext, "sql_with_options", refuse)
    with pytest.raises(AssertionError, match="SQL text"):
        sql_text(exprs[0])
    for expr in exprs:
        direct(expr, session.ctx).to_arrow_table()


def test_memtable_joins_without_registering(session, con):
    """An in-memory table is read directly, leaving the context's catalog as it was."""
    labels = ibis.memtable({"k": [0, 1, 2], "label": ["zero", "one", "two"]})
    region = con.table("region")
    expr = region.join(labels, region.r_regionkey == labels.k).select("r_name", "label")
    before = set(session.ctx.catalog().schema().names())
    got = direct(expr, session.ctx).to_arrow_table()
    assert set(session.ctx.catalog().schema().names()) == before
    assert_same_rows(got, con.to_pyarrow(expr), ordered=False)


@pytest.mark.parametrize(
    ("day", "sign", "interval", "expected"),
    [
        ("1998-12-01", -1, {"days": 68}, dt.date(1998, 9, 24)),
        ("1995-01-31", +1, {"months": 1}, dt.date(1995, 2, 28)),
        ("1996-02-29", +1, {"years": 1}, dt.date(1997, 2, 28)),
        ("1995-05-31", -1, {"quarters": 1}, dt.date(1995, 2, 28)),
        ("1995-03-15", +1, {"weeks": 2}, dt.date(1995, 3, 29)),
    ],
)
def test_date_literal_arithmetic_folds_as_datafusion_computes_it(
    day, sign, interval, expected, session
):
    """date ± interval of two literals folds to one date literal, the one DataFusion computes."""
    start, step = ibis.date(day), ibis.interval(**interval)
    region = ibis.table({"r_regionkey": "int64"}, name="region")
    df = direct(region.select(d=start + step if sign > 0 else start - step).limit(1), session.ctx)
    assert df.to_pydict() == {"d": [expected]}
    assert "Interval" not in str(df.logical_plan())
    months = 12 * interval.get("years", 0) + 3 * interval.get("quarters", 0)
    days = 7 * interval.get("weeks", 0) + interval.get("days", 0)
    delta = pa.scalar(
        pa.MonthDayNano([months + interval.get("months", 0), days, 0]),
        pa.month_day_nano_interval(),
    )
    left, right = datafusion.lit(dt.date.fromisoformat(day)), datafusion.lit(delta)
    unfolded = left + right if sign > 0 else left - right
    computed = session.ctx.table("region").select(unfolded.alias("d")).limit(1)
    assert computed.to_pydict() == {"d": [expected]}


# ---------------------------------------------------------------------------------------
# Gaps and the fallback


_GAPS: dict[str, tuple[Callable[[_Tables], ibis.Table], tuple[str, ...]]] = {
    "window": (
        lambda t: t.nation.mutate(rn=ibis.row_number().over(order_by="n_nationkey")),
        ("ops.WindowFunction",),
    ),
    "in-subquery": (lambda t: tpch.q18(t.con), ("ops.InSubquery",)),
    "scalar-subquery": (
        lambda t: t.part.filter(_.p_retailprice > _.p_retailprice.mean()),
        ("ops.ScalarSubquery",),
    ),
    "regex": (lambda t: t.nation.filter(_.n_name.re_search("^[AE]")), ("ops.RegexSearch",)),
    "negate-column": (lambda t: t.nation.select(k=-_.n_nationkey), ("ops.Negate(non-literal)",)),
    "pyarrow-udf": (
        lambda t: t.nation.select(k=_plus_one(t.nation.n_nationkey)),
        ("ops.ScalarUDF(_plus_one)",),
    ),
    "literal-metric": (
        lambda t: t.nation.aggregate(one=ibis.literal(1)),
        ("ops.Aggregate(no reductions)",),
    ),
    "offset-only": (
        lambda t: t.nation.limit(None, offset=20),
        ("ops.Limit(offset without limit)",),
    ),
    "two-gaps": (
        lambda t: t.nation.filter(_.n_name.re_search("^[AE]")).mutate(
            rn=ibis.row_number().over(order_by="n_nationkey")
        ),
        ("ops.RegexSearch", "ops.WindowFunction"),
    ),
    "computed-like": (
        lambda t: t.nation.filter(_.n_name.like(_.n_name.substr(0, 1) + "%")),
        ("ops.StringSQLLike(computed pattern)",),
    ),
}


@pytest.mark.parametrize("case", _GAPS)
def test_uncovered_operation_is_a_gap_and_the_sql_lane_answers(case, session, con, tables):
    """An uncovered operation gives ``df=None`` and its name; the SQL lane runs it."""
    build, gaps = _GAPS[case]
    expr = build(tables)
    compiled = compile(expr, session.ctx)
    assert compiled == Compiled(None, gaps)
    assert not compiled.direct
    con._run_pre_execute_hooks(expr)  # registers the expression's UDFs, as execute() does
    fallback = session.ctx.sql(sql_text(expr)).to_arrow_table()
    assert_same_rows(fallback, con.to_pyarrow(expr), ordered=False)


def test_q18_falls_back_and_matches_the_sql_query(session, con):
    """The fallback lane answers TPC-H q18 like its SQL file."""
    expr = tpch.q18(con)
    assert compile(expr, session.ctx).gaps == ("ops.InSubquery",)
    got = session.ctx.sql(sql_text(expr)).to_arrow_table()
    assert_same_rows(got, session.ctx.sql(datasets.tpch_query(18)).to_arrow_table(), ordered=True)

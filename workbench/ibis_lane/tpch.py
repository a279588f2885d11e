"""TPC-H-style queries as Ibis expressions, one function per query.

Each ``qNN(con)`` takes an Ibis backend whose tables carry the TPC-H names and returns
a Table expression that answers the question of ``workbench/tpch_queries/qNN.sql``
(same parameters, same output columns in the same order). They exercise the styles
Ibis offers: plain column access, deferred ``_`` expressions, selectors and
``Table.bind``. ``q18`` uses an ``IN`` subquery, which the direct lane does not cover:
it is the example of a query that falls back to the SQL lane.

``QUERIES`` maps each query number to its function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis
import ibis.selectors as s
from ibis import _

if TYPE_CHECKING:
    from collections.abc import Callable

    from ibis.common.deferred import Deferred

Backend = Any
"""An Ibis backend (``ibis.BaseBackend``) with the eight TPC-H tables."""


def q01(con: Backend) -> ibis.Table:
    """Pricing summary report: deferred expressions and ``Table.bind`` for the keys."""
    lineitem = con.table("lineitem")
    shipped = lineitem.filter(_.l_shipdate <= ibis.date("1998-12-01") - ibis.interval(days=68))
    keys = shipped.bind("l_returnflag", "l_linestatus")
    disc_price = _.l_extendedprice * (1 - _.l_discount)
    return (
        shipped.group_by(keys)
        .aggregate(
            sum_qty=_.l_quantity.sum(),
            sum_base_price=_.l_extendedprice.sum(),
            sum_disc_price=disc_price.sum(),
            sum_charge=(disc_price * (1 + _.l_tax)).sum(),
            avg_qty=_.l_quantity.mean(),
            avg_price=_.l_extendedprice.mean(),
            avg_disc=_.l_discount.mean(),
            count_order=_.count(),
        )
        .order_by(keys)
    )


def q03(con: Backend) -> ibis.Table:
    """Shipping priority: a three-way inner join, top 10 by revenue."""
    customer, orders, lineitem = (con.table(n) for n in ("customer", "orders", "lineitem"))
    day = ibis.date("1995-03-15")
    joined = customer.join(orders, customer.c_custkey == orders.o_custkey).join(
        lineitem, lineitem.l_orderkey == orders.o_orderkey
    )
    return (
        joined.filter(_.c_mktsegment == "BUILDING", _.o_orderdate < day, _.l_shipdate > day)
        .group_by("l_orderkey", "o_orderdate", "o_shippriority")
        .aggregate(revenue=(_.l_extendedprice * (1 - _.l_discount)).sum())
        .select("l_orderkey", "revenue", "o_orderdate", "o_shippriority")
        .order_by(ibis.desc("revenue"), "o_orderdate")
        .limit(10)
    )


def q04(con: Backend) -> ibis.Table:
    """Order priority checking: ``EXISTS`` written as a semi join."""
    orders, lineitem = con.table("orders"), con.table("lineitem")
    start = ibis.date("1995-04-01")
    late = lineitem.filter(_.l_commitdate < _.l_receiptdate)
    in_quarter = orders.filter(
        _.o_orderdate >= start, _.o_orderdate < start + ibis.interval(months=3)
    )
    return (
        in_quarter.semi_join(late, in_quarter.o_orderkey == late.l_orderkey)
        .group_by("o_orderpriority")
        .aggregate(order_count=_.count())
        .order_by("o_orderpriority")
    )


def q05(con: Backend) -> ibis.Table:
    """Local supplier volume: six tables, one join with a compound predicate."""
    c, o, li, sup, n, r = (
        con.table(name)
        for name in ("customer", "orders", "lineitem", "supplier", "nation", "region")
    )
    start = ibis.date("1994-01-01")
    joined = (
        c.join(o, c.c_custkey == o.o_custkey)
        .join(li, li.l_orderkey == o.o_orderkey)
        .join(sup, [li.l_suppkey == sup.s_suppkey, c.c_nationkey == sup.s_nationkey])
        .join(n, sup.s_nationkey == n.n_nationkey)
        .join(r, n.n_regionkey == r.r_regionkey)
    )
    return (
        joined.filter(
            _.r_name == "AFRICA",
            _.o_orderdate >= start,
            _.o_orderdate < start + ibis.interval(years=1),
        )
        .group_by("n_name")
        .aggregate(revenue=(_.l_extendedprice * (1 - _.l_discount)).sum())
        .order_by(ibis.desc("revenue"))
    )


def q06(con: Backend) -> ibis.Table:
    """Forecasting revenue change: a filtered global aggregate with ``between``."""
    lineitem = con.table("lineitem")
    start = ibis.date("1994-01-01")
    return lineitem.filter(
        _.l_shipdate >= start,
        _.l_shipdate < start + ibis.interval(years=1),
        _.l_discount.between(0.04 - 0.01, 0.04 + 0.01),
        _.l_quantity < 24,
    ).aggregate(revenue=(_.l_extendedprice * _.l_discount).sum())


def q10(con: Backend) -> ibis.Table:
    """Returned item reporting: the customer columns picked with selectors."""
    c, o, li, n = (con.table(name) for name in ("customer", "orders", "lineitem", "nation"))
    start = ibis.date("1993-07-01")
    joined = (
        c.join(o, c.c_custkey == o.o_custkey)
        .join(li, li.l_orderkey == o.o_orderkey)
        .join(n, c.c_nationkey == n.n_nationkey)
    )
    customer_keys = s.startswith("c_") & ~s.cols("c_nationkey", "c_mktsegment")
    return (
        joined.filter(
            _.o_orderdate >= start,
            _.o_orderdate < start + ibis.interval(months=3),
            _.l_returnflag == "R",
        )
        .group_by(customer_keys | s.cols("n_name"))
        .aggregate(revenue=(_.l_extendedprice * (1 - _.l_discount)).sum())
        .select(
            "c_custkey",
            "c_name",
            "revenue",
            "c_acctbal",
            "n_name",
            "c_address",
            "c_phone",
            "c_comment",
        )
        .order_by(ibis.desc("revenue"))
        .limit(20)
    )


def q12(con: Backend) -> ibis.Table:
    """Shipping modes and order priority: conditional sums with ``ifelse``/``cases``."""
    orders, lineitem = con.table("orders"), con.table("lineitem")
    start = ibis.date("1995-01-01")
    urgent = _.o_orderpriority.isin(["1-URGENT", "2-HIGH"])
    return (
        orders.join(lineitem, orders.o_orderkey == lineitem.l_orderkey)
        .filter(
            _.l_shipmode.isin(["FOB", "SHIP"]),
            _.l_commitdate < _.l_receiptdate,
            _.l_shipdate < _.l_commitdate,
            _.l_receiptdate >= start,
            _.l_receiptdate < start + ibis.interval(years=1),
        )
        .group_by("l_shipmode")
        .aggregate(
            high_line_count=urgent.ifelse(1, 0).sum(),
            low_line_count=ibis.cases((~urgent, 1), else_=0).sum(),
        )
        .order_by("l_shipmode")
    )


def q13(con: Backend) -> ibis.Table:
    """Customer distribution: a left join with a ``NOT LIKE`` condition, two aggregates."""
    customer, orders = con.table("customer"), con.table("orders")
    per_customer = (
        customer.left_join(
            orders,
            [
                customer.c_custkey == orders.o_custkey,
                ~orders.o_comment.like("%express%requests%"),
            ],
        )
        .group_by("c_custkey")
        .aggregate(c_count=_.o_orderkey.count())
    )
    return (
        per_customer.group_by("c_count")
        .aggregate(custdist=_.count())
        .order_by(ibis.desc("custdist"), ibis.desc("c_count"))
    )


def q14(con: Backend) -> ibis.Table:
    """Promotion effect: ``LIKE`` inside a conditional sum, one output row."""
    lineitem, part = con.table("lineitem"), con.table("part")
    start = ibis.date("1995-02-01")
    price = _.l_extendedprice * (1 - _.l_discount)
    return (
        lineitem.join(part, lineitem.l_partkey == part.p_partkey)
        .filter(_.l_shipdate >= start, _.l_shipdate < start + ibis.interval(months=1))
        .aggregate(
            promo_revenue=100.00 * _.p_type.like("PROMO%").ifelse(price, 0).sum() / price.sum()
        )
    )


def q18(con: Backend) -> ibis.Table:
    """Large volume customer: an ``IN`` subquery, so it runs through the SQL lane."""
    c, o, li = (con.table(name) for name in ("customer", "orders", "lineitem"))
    big_orders = (
        li.group_by("l_orderkey")
        .aggregate(qty=_.l_quantity.sum())
        .filter(_.qty > 313)
        .select("l_orderkey")
    )
    return (
        c.join(o, c.c_custkey == o.o_custkey)
        .join(li, o.o_orderkey == li.l_orderkey)
        .filter(_.o_orderkey.isin(big_orders.l_orderkey))
        .group_by("c_name", "c_custkey", "o_orderkey", "o_orderdate", "o_totalprice")
        .aggregate(sum_qty=_.l_quantity.sum())
        .order_by(ibis.desc("o_totalprice"), "o_orderdate")
        .limit(100)
    )


def q19(con: Backend) -> ibis.Table:
    """Discounted revenue: a disjunction of three conjunctions over a join."""
    lineitem, part = con.table("lineitem"), con.table("part")

    def bucket(brand: str, containers: list[str], low: int, sizes: int) -> Deferred:
        return (
            (_.p_brand == brand)
            & _.p_container.isin(containers)
            & (_.l_quantity >= low)
            & (_.l_quantity <= low + 10)
            & _.p_size.between(1, sizes)
            & _.l_shipmode.isin(["AIR", "AIR REG"])
            & (_.l_shipinstruct == "DELIVER IN PERSON")
        )

    return (
        lineitem.join(part, part.p_partkey == lineitem.l_partkey)
        .filter(
            bucket("Brand#21", ["SM CASE", "SM BOX", "SM PACK", "SM PKG"], 8, 5)
            | bucket("Brand#13", ["MED BAG", "MED BOX", "MED PKG", "MED PACK"], 20, 10)
            | bucket("Brand#52", ["LG CASE", "LG BOX", "LG PACK", "LG PKG"], 30, 15)
        )
        .aggregate(revenue=(_.l_extendedprice * (1 - _.l_discount)).sum())
    )


QUERIES: dict[int, Callable[[Backend], ibis.Table]] = {
    1: q01,
    3: q03,
    4: q04,
    5: q05,
    6: q06,
    10: q10,
    12: q12,
    13: q13,
    14: q14,
    18: q18,
    19: q19,
}

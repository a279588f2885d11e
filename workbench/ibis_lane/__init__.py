"""The Ibis lane: queries written as Ibis expressions, run by DataFusion.

Two ways from an expression to a DataFusion plan:

- the *direct lane*, :func:`compile`, builds the plan with DataFusion's DataFrame
  API and generates no SQL text. It covers what TPC-H-style queries use and names
  what it does not cover in :attr:`Compiled.gaps`;
- the *SQL lane*, :func:`sql_text`, is the fallback for those gaps: Ibis writes
  SQL (through SQLGlot) that the session runs like any other query.

:func:`connect` gives the Ibis backend bound to a session's context, with the fixes
Ibis 12 needs on DataFusion 55 (see :mod:`workbench.ibis_lane.compat`)::

    con = connect(session.ctx)
    expr = tpch.q03(con)
    compiled = compile(expr, session.ctx)
    if compiled.direct:
        table = compiled.df.to_arrow_table()
    else:
        print(compiled.gaps)  # e.g. ('ops.WindowFunction',)
        text = sql_text(expr)  # for the session's SQL path
"""

from __future__ import annotations

import ibis

from workbench.ibis_lane.compat import connect, register_inputs
from workbench.ibis_lane.direct import Compiled, compile  # noqa: A004  # the lane's verb

__all__ = ["Compiled", "compile", "connect", "register_inputs", "sql_text"]


def sql_text(expr: ibis.Table, *, typed: bool = False) -> str:
    """The SQL lane's text for ``expr``, in the dialect Ibis writes for DataFusion.

    Tables keep their names; in-memory tables (``ibis.memtable``) must be registered
    in the context before the text runs, as the Ibis backend does when it executes.
    ``typed`` casts the numeric and boolean columns to the types of ``expr.schema()``:
    DataFusion types some of Ibis' SQL otherwise (``ROW_NUMBER() - 1`` is a decimal),
    and the Ibis backend casts its results the same way.
    """
    text = str(ibis.to_sql(expr, dialect="datafusion"))
    if not typed:
        return text
    import sqlglot
    from ibis.backends.sql.datatypes import DataFusionType
    from ibis.backends.sql.dialects import DataFusion
    from sqlglot import exp

    columns = []
    for name, dtype in expr.schema().items():
        column: exp.Expr = exp.column(name, table="t", quoted=True)
        if dtype.is_integer() or dtype.is_floating() or dtype.is_decimal() or dtype.is_boolean():
            column = exp.cast(column, DataFusionType.from_ibis(dtype))
        columns.append(exp.alias_(column, name, quoted=True))
    inner = sqlglot.parse_one(text, read=DataFusion)
    assert isinstance(inner, exp.Query)  # Ibis writes a SELECT for a table expression
    return exp.select(*columns).from_(inner.subquery("t")).sql(dialect=DataFusion)

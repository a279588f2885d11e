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


def sql_text(expr: ibis.Table) -> str:
    """The SQL lane's text for ``expr``, in the dialect Ibis writes for DataFusion.

    Tables keep their names; in-memory tables (``ibis.memtable``) must be registered
    in the context before the text runs, as the Ibis backend does when it executes.
    """
    return str(ibis.to_sql(expr, dialect="datafusion"))

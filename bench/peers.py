"""The peers, each set up over the same Parquet files the workbench reads.

Every tool gets the tables under their own names: DataFusion registers the
files, DuckDB gets views over ``read_parquet`` (so it reads the same files on
every query instead of a copy it imported), polars gets lazy ``scan_parquet``
frames. The notebook tools connect inside the shared shell of
:mod:`bench.notebook`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeVar

from bench import notebook
from bench.harness import VariantError, first_line

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    import datafusion
    import duckdb
    import polars as pl

T = TypeVar("T")
_LEADING_COMMENTS = re.compile(r"^(\s*--[^\n]*\n)*\s*")


def datafusion_context(tables: Mapping[str, Path]) -> datafusion.SessionContext:
    """A plain SessionContext (DataFusion's defaults) with the files registered."""
    import datafusion

    ctx = datafusion.SessionContext()
    for name, path in tables.items():
        ctx.register_parquet(name, str(path))
    return ctx


def duckdb_connection(
    tables: Mapping[str, Path], config: Mapping[str, str] | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per file (``config``: DuckDB settings)."""
    import duckdb

    con = duckdb.connect(config=dict(config or {}))
    for name, path in tables.items():
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
    return con


def polars_context(tables: Mapping[str, Path]) -> pl.SQLContext[Any]:
    """A polars SQLContext over lazy scans of the files."""
    import polars as pl

    return pl.SQLContext(frames={name: pl.scan_parquet(path) for name, path in tables.items()})


def connect_jupysql(tables: Mapping[str, Path], alias: str = "duck") -> None:
    """``%load_ext sql`` and make a native DuckDB connection jupysql's current one."""
    notebook.load_extension("sql")
    notebook.shell().user_ns[alias] = duckdb_connection(tables)
    notebook.line_magic("sql", f"{alias} --alias {alias}")


def connect_magic_duckdb(tables: Mapping[str, Path], name: str = "duck_dql") -> None:
    """``%load_ext magic_duckdb`` and point ``%%dql`` at its own DuckDB connection.

    Its own connection, not jupysql's: jupysql leaves its result sets open on
    the connection, and another query on it would cut them short.
    """
    notebook.load_extension("magic_duckdb")
    notebook.shell().user_ns[name] = duckdb_connection(tables)
    notebook.line_magic("dql", f"-co {name}")


def statements(sql: str) -> list[str]:
    """The statements of a query file, split on ``;`` as DataFusion's TPC-H runner does.

    For the engines whose ``sql()`` takes one statement (DataFusion's
    SessionContext, polars' SQLContext); the text of each statement is unchanged.
    """
    return [part for part in sql.split(";") if _LEADING_COMMENTS.sub("", part)]


def is_query(statement: str) -> bool:
    return _LEADING_COMMENTS.sub("", statement).lower().startswith(("select", "with", "("))


def duckdb_rows(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """Run a query file's statements in order; the rows of its last query, counted as they
    stream out of DuckDB's reader (none kept). Each statement's result is read before the
    next runs: q15 drops the view its query reads."""

    def rows(statement: str) -> int:
        relation = con.sql(statement)
        return 0 if relation is None else sum(b.num_rows for b in relation.to_arrow_reader())

    return run_statements(rows, sql)


def run_statements(execute: Callable[[str], T], sql: str) -> T:
    """Run each statement in order; the last query's result is the result."""
    result: T | None = None
    parts = statements(sql)
    for number, statement in enumerate(parts, 1):
        try:
            out = execute(statement)
        except Exception as exc:
            if len(parts) == 1:
                raise
            # Say which statement failed: the engine's message often does not.
            words = " ".join(_LEADING_COMMENTS.sub("", statement).split()[:2]).lower()
            msg = f"statement {number} of {len(parts)} ({words}): {first_line(exc)}"
            raise VariantError(msg) from exc
        if is_query(statement):
            result = out
    if result is None:
        raise ValueError("the SQL holds no query")
    return result

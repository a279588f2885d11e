"""``CREATE [OR REPLACE] FUNCTION`` and ``DROP FUNCTION`` in a session (the gate's macros).

A macro is checked by DataFusion before it is kept: its body is planned over arguments of
the declared types, so a type error or an unknown function is refused where it is written,
not at its first call. It is then registered as a scalar UDF under its name, so
``SHOW FUNCTIONS``, ``information_schema.routines`` and completion list it with the other
functions. Through the gate (every ``Session.sql``) a call is expanded inline; the UDF only
runs for SQL that bypasses the gate (``session.ctx.sql``, the Ibis backend), and evaluates
the body with Polars' SQL on each batch: DataFusion cannot run a query from inside a UDF
(its runtime refuses to block within itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import datafusion
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp

from workbench.ingress.macros import (
    DIALECT,
    GateError,
    Macro,
    is_create_function,
    is_drop_function,
    parse_create_function,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from workbench.ingress.gate import Gate
    from workbench.session import Session


def _arrow_types(
    ctx: datafusion.SessionContext, macro: Macro
) -> tuple[list[pa.DataType], pa.DataType]:
    """The Arrow types of the parameters and of the result; DataFusion plans the body."""
    args = exp.select(
        *(
            exp.alias_(exp.cast(exp.null(), exp.DataType.build(t, dialect=DIALECT)), n, quoted=True)
            for n, t in macro.params
        )
    ).subquery("args")
    returns = exp.DataType.build(macro.returns, dialect=DIALECT)
    body = exp.alias_(exp.cast(exp.paren(macro.body.copy()), returns), "result")
    query = exp.select(body, exp.Star()).from_(args).sql(DIALECT)
    options = (
        datafusion.SQLOptions()
        .with_allow_ddl(allow=False)
        .with_allow_dml(allow=False)
        .with_allow_statements(allow=False)
    )
    try:
        schema = ctx.sql(query, options=options).schema()
    except Exception as exc:  # noqa: BLE001  (DataFusion's refusal is the message)
        reason = str(exc).removeprefix("DataFusion error: ").splitlines()[0]
        message = f"function {macro.name}: DataFusion cannot plan its body ({reason})"
        raise GateError("type", message, macro.name) from None
    return [schema.field(i + 1).type for i in range(len(macro.params))], schema.field(0).type


def _evaluator(macro: Macro, returns: pa.DataType) -> Callable[..., pa.Array]:
    names = [name for name, _ in macro.params]
    query = exp.select(exp.alias_(macro.body.copy(), "result")).from_("args").sql(DIALECT)

    def evaluate(*arrays: pa.Array) -> pa.Array:
        frame = pl.from_arrow(pa.table(dict(zip(names, arrays, strict=True))))
        assert isinstance(frame, pl.DataFrame)
        out = pl.SQLContext(args=frame).execute(query, eager=True)
        result = out.to_arrow().column("result").combine_chunks()
        if pa.types.is_decimal(returns) and pa.types.is_decimal(result.type):
            # SQL's CAST to fewer decimal places rounds (half away from zero), as DataFusion's.
            result = pc.round(result, ndigits=returns.scale, round_mode="half_towards_infinity")
        return result.cast(returns)

    return evaluate


def define(ctx: datafusion.SessionContext, gate: Gate, sql: str) -> Macro:
    """Run ``CREATE [OR REPLACE] FUNCTION``: keep the macro and register its UDF."""
    tree = sqlglot.parse_one(sql, read=DIALECT)
    if not is_create_function(tree):
        raise GateError("parse", "not a CREATE FUNCTION statement")
    assert isinstance(tree, exp.Create)
    macro, replace = parse_create_function(tree, sql, gate.macros)
    probe = sqlglot.parse_one(f"SELECT {macro.name}(1)", read=DIALECT).expressions[0]
    routines = ctx.sql("SELECT DISTINCT routine_name FROM information_schema.routines").to_pydict()[
        "routine_name"
    ]
    if not isinstance(probe, exp.Anonymous) or (
        macro.name in routines and macro.name not in gate.macros
    ):
        message = (
            f"{macro.name} is already a function (built in or registered); a macro cannot "
            "replace it: choose another name"
        )
        raise GateError("type", message, macro.name)
    if macro.name in gate.macros and not replace:
        message = f"function {macro.name} already exists; use CREATE OR REPLACE FUNCTION"
        raise GateError("type", message, macro.name)
    inputs, returns = _arrow_types(ctx, macro)
    udf = datafusion.udf(_evaluator(macro, returns), inputs, returns, "immutable", macro.name)
    if macro.name in gate.macros:
        ctx.deregister_udf(macro.name)
    ctx.register_udf(udf)
    gate.macros[macro.name] = macro
    gate.changed()
    return macro


def drop(ctx: datafusion.SessionContext, gate: Gate, sql: str) -> str:
    """Run ``DROP FUNCTION [IF EXISTS] name``; returns the name."""
    tree = sqlglot.parse_one(sql, read=DIALECT)
    if not is_drop_function(tree):
        raise GateError("parse", "not a DROP FUNCTION statement")
    targets = tree.args.get("tables") or [tree.this]
    if len(targets) != 1 or targets[0] is None:
        raise GateError("parse", "DROP FUNCTION drops one function: DROP FUNCTION [IF EXISTS] name")
    target = targets[0]
    while isinstance(target, exp.UserDefinedFunction | exp.Table) and target.this is not None:
        target = target.this
    name = target.name.lower()
    if name not in gate.macros:
        if tree.args.get("exists"):
            return str(name)
        known = ", ".join(sorted(gate.macros)) or "none"
        message = (
            f"no function {name} to drop: DROP FUNCTION drops functions made by CREATE "
            f"FUNCTION (this session's: {known})"
        )
        raise GateError("unknown function", message, name)
    ctx.deregister_udf(name)
    del gate.macros[name]
    gate.changed()
    return str(name)


def catalog(session: Session) -> list[dict[str, str]]:
    """Every function of ``session``: name, kind, origin and signatures (``%wb functions``).

    Kinds and signatures come from ``information_schema``; the origin is ``built-in``,
    ``Rust`` (the extension), ``Python`` (``register_udf``, the workbench's own Python
    table functions, Ibis' helpers) or ``SQL macro`` (``CREATE FUNCTION``).
    """
    rows = session.ctx.sql(
        "WITH r AS (SELECT DISTINCT specific_name, routine_name, function_type "
        "FROM information_schema.routines), "
        "p AS (SELECT DISTINCT specific_name, rid, ordinal_position, parameter_mode, data_type "
        "FROM information_schema.parameters) "
        "SELECT r.routine_name AS name, r.function_type AS kind, p.rid AS rid, "
        "string_agg(p.data_type, ', ' ORDER BY p.ordinal_position) "
        "FILTER (WHERE p.parameter_mode = 'IN') AS inputs, "
        "max(CASE WHEN p.parameter_mode = 'OUT' THEN p.data_type END) AS output "
        "FROM r LEFT JOIN p ON r.specific_name = p.specific_name "
        "GROUP BY r.routine_name, r.function_type, p.rid ORDER BY name, rid"
    ).to_pydict()
    listed: dict[tuple[str, str], list[str]] = {}
    for name, kind, inputs, output in zip(
        rows["name"], rows["kind"], rows["inputs"], rows["output"], strict=True
    ):
        shown = f"({inputs or ''})" + (f" -> {output}" if output else "")
        listed.setdefault((str(name), str(kind)), []).append(shown)
    return [
        {
            "name": name,
            "kind": kind.lower(),
            "origin": origin_of(session, name),
            "signatures": _DOCUMENTED.get(name) or _signatures(list(dict.fromkeys(signatures))),
        }
        for (name, kind), signatures in sorted(listed.items())
    ]


def origin_of(session: Session, name: str) -> str:
    if name in session.gate.macros:
        return "SQL macro"
    if name in session.rust_functions:
        return "Rust"
    if name in session.python_functions:
        return "Python"
    return "built-in"


_DOCUMENTED = {
    "stable_id": "(any, ...) -> Utf8",
    "prefixed_hash64": "(prefix Utf8, value any) -> Utf8",
    "table_changes": "(table Utf8, start Int64|Timestamp [, end Int64|Timestamp])",
    "wb_delta_files": "(table Utf8)",
    "stable_id_agg": "(any, ...) -> Utf8",
    "sessionize": "(ts Timestamp|Date|number, gap seconds|Interval) -> Int64",
    "wb_parquet_metadata": "(path Utf8)",
    "wb_metadata_cache": "()",
    "wb_statistics_cache": "()",
    "wb_list_files_cache": "()",
}
"""Signatures information_schema cannot tell: FFI and Python table functions lose them."""


def _signatures(signatures: list[str], keep: int = 4) -> str:
    shown = " | ".join(signatures[:keep])
    return shown if len(signatures) <= keep else f"{shown} | ... ({len(signatures)} in all)"

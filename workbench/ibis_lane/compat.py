"""Make Ibis 12's DataFusion backend work with DataFusion 55 and sqlglot >= 30.18.

Stock ``ibis.datafusion.connect(ctx)`` fails with ibis-framework 12.0.0 on
datafusion 55 and, once past that, half of the backend fails on current sqlglot.
Rather than monkeypatching Ibis for the whole process, :func:`connect` returns an
instance of a private subclass of Ibis' DataFusion ``Backend`` that overrides the
few methods involved; plain ``ibis.datafusion.connect`` stays as it ships.

Each fix is described by a :class:`Patch` in :data:`PATCHES` (what breaks, the
versions, the overridden methods). ``tests/test_ibis_lane.py`` runs every patched
path once more with the stock methods and asserts that it still breaks: when an
Ibis release fixes one, that test fails and the patch should be deleted.

Connecting registers Ibis' builtin Python UDFs (``extract_*``, URL helpers) in the
context, as stock Ibis does; compiled Ibis SQL may call them.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import datafusion
import ibis.expr.datatypes as dt
import sqlglot.expressions as sge
from ibis.backends.datafusion import Backend as _StockBackend
from ibis.formats.pyarrow import PyArrowType

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa


@dataclass(frozen=True)
class Patch:
    """One compatibility fix: why it exists and which ``Backend`` methods it overrides."""

    name: str
    breaks: str
    versions: str
    methods: tuple[str, ...]


UDF_SIGNATURE = Patch(
    name="udf-signature",
    breaks=(
        "Backend registers its UDFs with datafusion.udf(..., input_types=, return_type=); "
        "datafusion renamed them input_fields=/return_field=, so connect() raises TypeError "
        "(`_function() got an unexpected keyword argument 'input_types'`)."
    ),
    versions="ibis-framework 12.0.0 with datafusion 55.0.0 (the first release we run)",
    methods=("_register_builtin_udfs", "_compile_pyarrow_udf", "_compile_elementwise_udf"),
)
NAMELESS_DROP = Patch(
    name="nameless-drop",
    breaks=(
        "sqlglot moved the target of exp.Drop from `this` to `tables`; Ibis still sets "
        "`this`, so DROP VIEW/TABLE/SCHEMA render without a name and DataFusion answers "
        "`ParserError(Expected: identifier, found: EOF)`. Breaks drop_view, drop_table, "
        "drop_database and everything that makes a temporary view: Backend.sql, "
        "list_tables, list_databases, current_catalog, current_database."
    ),
    versions="ibis-framework 12.0.0 with sqlglot >= 30.18 (seen on 30.30)",
    methods=("raw_sql",),
)
PATCHES: tuple[Patch, ...] = (UDF_SIGNATURE, NAMELESS_DROP)
"""Every patch :func:`connect` applies, in the order they were found."""


def _udf(
    func: Callable[..., Any],
    input_types: list[pa.DataType],
    return_type: pa.DataType,
    volatility: str,
    name: str,
) -> datafusion.ScalarUDF:
    # Positional: the argument order is the same before and after the keyword rename.
    return datafusion.udf(func, input_types, return_type, volatility, name)


class _Backend(_StockBackend):  # type: ignore[misc]  # Ibis is untyped
    """Ibis' DataFusion backend with the :data:`PATCHES` applied."""

    # UDF_SIGNATURE: the three UDF builders, as in Ibis but through _udf.

    def _register_builtin_udfs(self) -> None:
        from ibis.backends.datafusion import udfs

        for name, func in inspect.getmembers(
            udfs,
            predicate=lambda m: (
                callable(m) and not m.__name__.startswith("_") and m.__module__ == udfs.__name__
            ),
        ):
            hints = typing.get_type_hints(func)
            arguments = inspect.signature(func).parameters
            inputs = [PyArrowType.from_ibis(dt.dtype(hints[a])) for a in arguments]
            output = PyArrowType.from_ibis(dt.dtype(hints["return"]))
            self.con.register_udf(_udf(func, inputs, output, "immutable", name))

    def _compile_pyarrow_udf(self, udf_node: Any) -> datafusion.ScalarUDF:
        return _udf(
            udf_node.__func__,
            [PyArrowType.from_ibis(arg.dtype) for arg in udf_node.args],
            PyArrowType.from_ibis(udf_node.dtype),
            getattr(udf_node, "__config__", {}).get("volatility", "volatile"),
            udf_node.__func_name__,
        )

    def _compile_elementwise_udf(self, udf_node: Any) -> datafusion.ScalarUDF:
        return _udf(
            udf_node.func,
            [PyArrowType.from_ibis(t) for t in udf_node.input_type],
            PyArrowType.from_ibis(udf_node.return_type),
            "volatile",
            udf_node.func.__name__,
        )

    # NAMELESS_DROP: every DROP Ibis builds reaches DataFusion through raw_sql.

    def raw_sql(self, query: str | sge.Expression) -> Any:
        if isinstance(query, sge.Drop) and query.this is not None and not query.args.get("tables"):
            query = query.copy()
            target = query.this
            query.set("this", None)
            query.set("tables", [target])
        return super().raw_sql(query)


def connect(ctx: datafusion.SessionContext) -> Any:
    """An Ibis DataFusion backend bound to ``ctx`` (shared, not copied), patches applied.

    Connecting registers Ibis' builtin UDFs in ``ctx``; connect once per context and
    keep the backend.
    """
    return _Backend().connect(ctx)


def register_inputs(backend: Any, expr: Any) -> None:
    """Register what the SQL of ``expr`` names but the context lacks (memtables, UDFs).

    Ibis does this before it executes; the workbench runs Ibis' SQL itself, so it calls
    the same (private) hook.
    """
    backend._run_pre_execute_hooks(expr)  # noqa: SLF001

"""The Rust extension ``workbench._ext`` and what it registers.

DataFusion's FFI ABI is only stable within one major version: a capsule built
against another major crashes the process when it is used. So before anything
is registered, the major the extension was built for is compared with the
installed ``datafusion``, and a mismatch is a clear :class:`ExtensionError`.

The extension's functions are the Rust rungs of the UDF ladder, one of each kind:
scalar (``stable_id``, ``prefixed_hash64``), aggregate (``stable_id_agg``), window
(``sessionize``) and table (``wb_parquet_metadata``). Each kind crosses FFI as its own
capsule and is registered with its own ``SessionContext`` method; once registered, SQL
calls them by name and the DataFrame API gets callables from the context
(``ctx.udaf("stable_id_agg")(col("x"))``, ``ctx.udwf("sessionize")(...).over(...)``).

Three more table functions show the caches the extension keeps for the scans it provides
(``wb_metadata_cache()``, ``wb_statistics_cache()``, ``wb_list_files_cache()``; see
:mod:`workbench.caches`): FFI components never see the host session's runtime, so its
caches are out of their reach. :func:`install` hands them the profile's limits.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import datafusion

from workbench.errors import ExtensionError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import ModuleType

    from workbench.session import CachePolicy, Session

#: Kind of each component: ``scalar``, ``aggregate``, ``window`` or ``table`` (function).
COMPONENT_KINDS = {
    "stable_id": "scalar",
    "prefixed_hash64": "scalar",
    "stable_id_agg": "aggregate",
    "sessionize": "window",
    "wb_parquet_metadata": "table",
    "wb_metadata_cache": "table",
    "wb_statistics_cache": "table",
    "wb_list_files_cache": "table",
}

#: Component name -> the ``workbench._ext`` class that builds its capsule.
_CLASSES = {
    "stable_id": "StableId",
    "prefixed_hash64": "PrefixedHash64",
    "stable_id_agg": "StableIdAgg",
    "sessionize": "Sessionize",
    "wb_parquet_metadata": "ParquetMetadata",
    "wb_metadata_cache": "MetadataCache",
    "wb_statistics_cache": "StatisticsCache",
    "wb_list_files_cache": "ListFilesCache",
}

#: The ``workbench._ext`` list naming the components of each kind.
_KIND_LISTS = {
    "scalar": "SCALAR_UDFS",
    "aggregate": "AGGREGATE_UDFS",
    "window": "WINDOW_UDFS",
    "table": "TABLE_FUNCTIONS",
}


def load() -> ModuleType:
    """Import ``workbench._ext`` or say how to build it."""
    try:
        return importlib.import_module("workbench._ext")
    except ImportError as exc:
        msg = (
            f"the Rust extension workbench._ext is not built ({exc}); "
            "run `bash scripts/dev.sh test` (or `maturin develop`) from the repository root"
        )
        raise ExtensionError(msg) from exc


def check_datafusion_major(built_for: int, installed: str) -> None:
    """Refuse a ``datafusion`` whose major differs from the extension's."""
    major = int(installed.split(".", 1)[0])
    if major != built_for:
        msg = (
            f"workbench._ext was built for datafusion {built_for}.x but datafusion {installed} "
            "is installed; FFI components crash across major versions, so none were "
            f"registered. Install `datafusion=={built_for}.*` or rebuild the extension "
            "against the installed version."
        )
        raise ExtensionError(msg)


def module() -> ModuleType:
    """``workbench._ext``, checked against the installed DataFusion major (FFI-safe to use)."""
    ext = load()
    check_datafusion_major(int(ext.DATAFUSION_MAJOR), datafusion.__version__)
    return ext


def provided(ext: ModuleType) -> tuple[str, ...]:
    """Every component ``ext`` provides: scalar, aggregate, window, then table functions."""
    return tuple(name for kind in _KIND_LISTS.values() for name in getattr(ext, kind, ()))


def component_factories(names: Iterable[str]) -> dict[str, Callable[[], Any]]:
    """Checked constructors for the named components, in the given order."""
    ext = module()
    known = provided(ext)
    factories = {}
    for name in names:
        if name not in _CLASSES:
            msg = f"unknown extension component {name!r}; this build provides: {', '.join(known)}"
            raise ExtensionError(msg)
        if name not in known:
            msg = (
                f"workbench._ext was built without {name!r} (it provides: {', '.join(known)}); "
                "rebuild it: `bash scripts/dev.sh test` (or `maturin develop`)"
            )
            raise ExtensionError(msg)
        factories[name] = getattr(ext, _CLASSES[name])
    return factories


#: What :func:`function` returns: DataFusion's handle for a function of any kind.
Function = (
    datafusion.ScalarUDF | datafusion.AggregateUDF | datafusion.WindowUDF | datafusion.TableFunction
)


def function(name: str, ctx: datafusion.SessionContext | None = None) -> Function:
    """DataFusion's handle for component ``name``, for the DataFrame API.

    Calling it builds an expression (``function("stable_id_agg")(col("x"))``; a window
    function's call ends with ``.over(Window(...))``); a table function's call gives a
    table for ``ctx.read_table``. A session's own registrations are also reachable by
    name: ``ctx.udf``, ``ctx.udaf``, ``ctx.udwf``. A table function reads its arguments
    with ``ctx``'s functions (DataFusion's global context when None).
    """
    component = component_factories([name])[name]()
    kind = COMPONENT_KINDS[name]
    if kind == "scalar":
        return datafusion.udf(component)
    if kind == "aggregate":
        return datafusion.udaf(component)
    if kind == "window":
        return datafusion.udwf(component)
    return datafusion.TableFunction(name, component, ctx)


def install(
    ctx: datafusion.SessionContext, names: Iterable[str], cache: CachePolicy | None = None
) -> tuple[str, ...]:
    """Register the named components into ``ctx``; returns what was registered.

    ``cache`` (the profile's policy) limits the extension's own caches for this session:
    its ``metadata_limit_bytes`` bounds the Parquet footers kept (``None``: DataFusion's
    default, 0: none), and a listing cache turned on (``list_files_limit_bytes`` not 0) with
    a ``list_files_ttl_s`` lets a Delta log listing stand that long. Without a TTL every
    scan lists the log: a listing kept forever would freeze the table.
    """
    if cache is not None:
        listing_on = cache.list_files_limit_bytes != 0
        module().configure_caches(
            ctx.session_id(),
            metadata_limit_bytes=cache.metadata_limit_bytes,
            listing_ttl_s=cache.list_files_ttl_s if listing_on else None,
        )
    registered = []
    for name in component_factories(names):
        handle = function(name, ctx)
        if isinstance(handle, datafusion.ScalarUDF):
            ctx.register_udf(handle)
        elif isinstance(handle, datafusion.AggregateUDF):
            ctx.register_udaf(handle)
        elif isinstance(handle, datafusion.WindowUDF):
            ctx.register_udwf(handle)
        else:
            ctx.register_udtf(handle)
        registered.append(name)
    return tuple(registered)


@dataclass(frozen=True)
class Capabilities:
    """What the extension provides and, for a session, what got registered."""

    datafusion_version: str
    extension_built: bool
    extension_version: str | None
    built_for_datafusion_major: int | None
    provided: tuple[str, ...]
    registered: tuple[str, ...] | None
    problem: str | None

    def summary(self) -> str:
        """One line per fact, for logs and the set-up script."""
        lines = [
            f"datafusion {self.datafusion_version}",
            f"workbench._ext {self.extension_version or 'not built'}"
            + (
                f" (built for datafusion {self.built_for_datafusion_major}.x)"
                if self.built_for_datafusion_major is not None
                else ""
            ),
            f"provides: {', '.join(self.provided) or 'nothing'}",
        ]
        if self.registered is not None:
            lines.append(f"registered in this session: {', '.join(self.registered) or 'nothing'}")
        if self.problem:
            lines.append(f"problem: {self.problem}")
        return "\n".join(lines)


def capabilities(session: Session | None = None) -> Capabilities:
    """Report the extension's components, and those registered in ``session``."""
    registered = session.registered if session is not None else None
    try:
        ext = load()
    except ExtensionError as exc:
        return Capabilities(
            datafusion_version=datafusion.__version__,
            extension_built=False,
            extension_version=None,
            built_for_datafusion_major=None,
            provided=(),
            registered=registered,
            problem=str(exc),
        )
    problem = None
    try:
        check_datafusion_major(int(ext.DATAFUSION_MAJOR), datafusion.__version__)
    except ExtensionError as exc:
        problem = str(exc)
    return Capabilities(
        datafusion_version=datafusion.__version__,
        extension_built=True,
        extension_version=str(ext.EXTENSION_VERSION),
        built_for_datafusion_major=int(ext.DATAFUSION_MAJOR),
        provided=provided(ext),
        registered=registered,
        problem=problem,
    )

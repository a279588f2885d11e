"""The Rust extension ``workbench._ext`` and what it registers.

DataFusion's FFI ABI is only stable within one major version: a capsule built
against another major crashes the process when it is used. So before anything
is registered, the major the extension was built for is compared with the
installed ``datafusion``, and a mismatch is a clear :class:`ExtensionError`.
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

    from workbench.session import Session

#: Scalar UDF name -> the ``workbench._ext`` class that builds its capsule.
_SCALAR_UDF_CLASSES = {"stable_id": "StableId", "prefixed_hash64": "PrefixedHash64"}


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


def component_factories(names: Iterable[str]) -> dict[str, Callable[[], Any]]:
    """Checked constructors for the named components, in the given order."""
    ext = module()
    factories = {}
    for name in names:
        if name not in _SCALAR_UDF_CLASSES or name not in ext.SCALAR_UDFS:
            known = ", ".join(ext.SCALAR_UDFS)
            msg = f"unknown extension component {name!r}; this build provides: {known}"
            raise ExtensionError(msg)
        factories[name] = getattr(ext, _SCALAR_UDF_CLASSES[name])
    return factories


def install(ctx: datafusion.SessionContext, names: Iterable[str]) -> tuple[str, ...]:
    """Register the named components into ``ctx``; returns what was registered."""
    registered = []
    for name, factory in component_factories(names).items():
        ctx.register_udf(datafusion.udf(factory()))
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
        provided=tuple(ext.SCALAR_UDFS),
        registered=registered,
        problem=problem,
    )

"""The IPython layer of the workbench: argument parsing, dispatch, display.

No engine logic lives here; every magic calls into ``workbench``.
``%load_ext workbench`` registers the magics and binds the session they
use to ``wb`` in the notebook (unless that name is taken). The session's
profile comes from ``$WORKBENCH_PROFILE`` and ``%wb profile`` (see
``magics.holder``).
"""

from __future__ import annotations

from typing import Any

from magics.cdf import CdfMagics
from magics.completion import register as register_completion
from magics.dfsql import WorkbenchMagics
from magics.explain import ExplainMagics
from magics.holder import SessionHolder
from magics.prune import PruneMagics
from magics.wb import WbMagics

__all__ = [
    "CdfMagics",
    "ExplainMagics",
    "PruneMagics",
    "SessionHolder",
    "WbMagics",
    "WorkbenchMagics",
    "load_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    holder = SessionHolder()
    ipython.register_magics(WorkbenchMagics(ipython, holder))
    ipython.register_magics(ExplainMagics(ipython, holder))
    ipython.register_magics(PruneMagics(ipython, holder))
    ipython.register_magics(CdfMagics(ipython, holder))
    ipython.register_magics(WbMagics(ipython, holder))
    register_completion(ipython, holder)
    ipython.user_ns.setdefault("wb", holder.session)

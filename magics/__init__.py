"""The IPython layer of the workbench: argument parsing, dispatch, display.

No engine logic lives here; every magic calls into ``workbench``.
``%load_ext workbench`` registers the magics and binds the session they
use to ``wb`` in the notebook (unless that name is taken).
"""

from __future__ import annotations

from typing import Any

from magics.dfsql import WorkbenchMagics
from magics.explain import ExplainMagics
from magics.wb import WbMagics

__all__ = ["ExplainMagics", "WbMagics", "WorkbenchMagics", "load_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    magics = WorkbenchMagics(ipython)
    ipython.register_magics(magics)
    ipython.register_magics(ExplainMagics(ipython, magics.session))
    ipython.register_magics(WbMagics(ipython, magics.session))
    ipython.user_ns.setdefault("wb", magics.session)

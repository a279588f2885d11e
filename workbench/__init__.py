"""DataFusion Workbench: streaming SQL, plans and Delta tooling over DataFusion.

Engine surface (usable without IPython)::

    import workbench
    session = workbench.RuntimeProfile(target_partitions=4).session()
    result = session.sql("SELECT * FROM t WHERE id = $id", params={"id": 7})
    result.preview(10)          # reads only the first batches
    result.to_polars()          # the rest, without re-running the query

In IPython or Jupyter, ``%load_ext workbench`` adds the ``%%dfsql`` magic.
"""

from __future__ import annotations

from typing import Any

from workbench.artifacts import export, replay
from workbench.errors import WorkbenchError
from workbench.extension import Capabilities, capabilities
from workbench.result import Result
from workbench.runs import RunRecord, RunStatus
from workbench.session import CachePolicy, RuntimeProfile, Session

__all__ = [
    "CachePolicy",
    "Capabilities",
    "Result",
    "RunRecord",
    "RunStatus",
    "RuntimeProfile",
    "Session",
    "WorkbenchError",
    "capabilities",
    "export",
    "load_ipython_extension",
    "replay",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext workbench``: the magics live in the ``magics`` package."""
    from magics import load_ipython_extension as load

    load(ipython)

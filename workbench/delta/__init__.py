"""Delta Lake tables in a workbench session: the Rust provider, refresh, file index.

A Delta table is registered with :meth:`workbench.Session.register_delta` or, in SQL,
``CREATE EXTERNAL TABLE name STORED AS DELTA LOCATION 'uri'``. Either way the table is
read by the extension's provider (``workbench._ext.DeltaProvider``, over
``deltalake-core``): only the files of the snapshot's version are read, and filters reach
the scan, so partitions, file statistics, row groups and pages prune.
:meth:`workbench.Session.prune` explains that pruning file by file (``PruningReport``).
"""

from workbench.delta.ddl import DeltaDdl, is_delta_ddl, parse_delta_ddl
from workbench.delta.prune import FunnelStage, PruningReport, Term
from workbench.delta.table import DeltaError, DeltaOptions, DeltaTable

__all__ = [
    "DeltaDdl",
    "DeltaError",
    "DeltaOptions",
    "DeltaTable",
    "FunnelStage",
    "PruningReport",
    "Term",
    "is_delta_ddl",
    "parse_delta_ddl",
]

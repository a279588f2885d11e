"""One registered Delta table: where it is, how it is read, which version is current.

Refresh: an unpinned table (no ``version``, ``timestamp`` or ``files``) is refreshed on
query. Before a statement that names it runs, the session asks the Delta log for its
newest version (a listing of ``_delta_log``, no data read) and, when a commit landed
since, opens the new version and registers it in place. So a query never answers from a
stale snapshot. A pinned table stays at its version until registered again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from workbench import extension
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from collections.abc import Mapping


class DeltaError(WorkbenchError):
    """A Delta table could not be opened, read or registered."""


@dataclass(frozen=True)
class DeltaOptions:
    """How a Delta table is read: its version and the scan's knobs.

    ``version`` or ``timestamp`` (RFC 3339, or a ``datetime``) pins a version (time
    travel); ``files`` restricts the scan to those data files (paths as in the log).
    ``file_column_name`` adds a column with each row's file; ``wrap_partition_values``
    dictionary-encodes string partition values; ``enable_parquet_pushdown`` lets the
    Parquet reader filter rows; ``schema_force_view_types`` reads strings as Utf8View.
    """

    version: int | None = None
    timestamp: str | None = None
    storage_options: Mapping[str, str] = field(default_factory=dict)
    file_column_name: str | None = None
    wrap_partition_values: bool = True
    enable_parquet_pushdown: bool = True
    schema_force_view_types: bool = True
    files: tuple[str, ...] | None = None

    @property
    def pinned(self) -> bool:
        """Whether the table stays at one version (time travel or a file restriction)."""
        return self.version is not None or self.timestamp is not None or self.files is not None

    def sql_options(self) -> dict[str, str]:
        """The options that differ from the defaults, as ``OPTIONS ('key' 'value')`` pairs."""
        defaults = DeltaOptions()
        out: dict[str, str] = {}
        for name in ("version", "timestamp", "file_column_name"):
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)
        for name in ("wrap_partition_values", "enable_parquet_pushdown", "schema_force_view_types"):
            if getattr(self, name) != getattr(defaults, name):
                out[name] = str(getattr(self, name)).lower()
        if self.files is not None:
            out["files"] = ",".join(self.files)
        return out | {f"storage.{k}": v for k, v in self.storage_options.items()}


def _timestamp(value: str | dt.datetime | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return moment.isoformat()


@dataclass
class DeltaTable:
    """A Delta table registered in a session under ``name`` (mutable: refresh swaps the version)."""

    name: str
    uri: str
    options: DeltaOptions
    provider: Any
    """The extension's ``DeltaProvider`` for the current version."""
    _file_index: dict[int, pa.Table] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, name: str, uri: str, options: DeltaOptions) -> DeltaTable:
        """Open ``uri`` with ``options`` (reads the Delta log, not the data)."""
        options = replace(options, timestamp=_timestamp(options.timestamp))
        return cls(name, uri, options, _open_provider(name, uri, options))

    @property
    def version(self) -> int:
        """The table version this registration reads."""
        return int(self.provider.version)

    @property
    def partition_columns(self) -> list[str]:
        return list(self.provider.partition_columns)

    def latest_version(self) -> int:
        """The newest version in the Delta log (lists the log, reads no data)."""
        try:
            return int(
                extension.module().DeltaProvider.latest_version(
                    self.uri, dict(self.options.storage_options)
                )
            )
        except extension.module().DeltaError as exc:
            raise DeltaError(f"{self.name}: {exc}") from None

    def refreshed(self) -> bool:
        """Open the newest version if a commit landed since; whether it changed."""
        if self.options.pinned or self.latest_version() == self.version:
            return False
        self.provider = _open_provider(self.name, self.uri, self.options)
        return True

    def file_index(self) -> pa.Table:
        """One row per data file of the current version (cached per version)."""
        version = self.version
        if version not in self._file_index:
            self._file_index = {version: pa.table(self.provider.file_index())}
        return self._file_index[version]

    def ddl(self) -> str:
        """SQL that registers this table again in another session."""
        uri = self.uri.replace("'", "''")
        text = f"CREATE EXTERNAL TABLE {self.name} STORED AS DELTA LOCATION '{uri}'"
        options = self.options.sql_options()
        if options:
            pairs = ", ".join(
                f"'{k}' '{v.replace(chr(39), chr(39) * 2)}'" for k, v in options.items()
            )
            text += f" OPTIONS ({pairs})"
        return text


def _open_provider(name: str, uri: str, options: DeltaOptions) -> Any:
    ext = extension.module()
    try:
        return ext.DeltaProvider.open(
            uri,
            name=name,
            version=options.version,
            timestamp=options.timestamp,
            storage_options=dict(options.storage_options) or None,
            file_column_name=options.file_column_name,
            wrap_partition_values=options.wrap_partition_values,
            enable_parquet_pushdown=options.enable_parquet_pushdown,
            schema_force_view_types=options.schema_force_view_types,
            files=list(options.files) if options.files is not None else None,
        )
    except ext.DeltaError as exc:
        raise DeltaError(str(exc)) from None

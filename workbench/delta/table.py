"""One registered Delta table: where it is, how it is read, which version is current.

Refresh on query: an unpinned table (no ``version``, ``timestamp`` or ``files``) is
refreshed by the extension's provider itself whenever a query scans it. At physical
planning the provider asks the Delta log for its newest version (a listing of
``_delta_log``, no data read) and, when a commit landed since, reads the new version. So
no query answers from a stale snapshot, including queries through a view or a DataFrame
held across commits; a commit that changes the columns fails the query planned against the
old ones (run it again; re-create views over the table). ``%prune`` and
``wb_delta_files`` refresh first too. A pinned table stays at its version until registered
again.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.request import url2pathname

import pyarrow as pa

from workbench import extension
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from collections.abc import Sequence

_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_LARGEST_VERSION = 2**64 - 1  # a Delta version is an unsigned 64-bit number
_SHOWN_FILES = 5
REDACTED = "<redacted>"
"""What messages and records show instead of a secret."""


class DeltaError(WorkbenchError):
    """A Delta table could not be opened, read or registered."""

    def __repr__(self) -> str:
        # Raised in wb_delta_files (a Python table function), the error reaches the user
        # through DataFusion as PyErr's debug text, which embeds this repr, and the session
        # reads the message back from a double-quoted, backslash-escaped repr. Escaping to
        # ASCII keeps non-ASCII names and either kind of quote intact on that way.
        text = str(self).encode("unicode_escape").decode("ascii").replace('"', '\\"')
        return f'{type(self).__name__}("{text}")'


def quoted(name: str) -> str:
    """``name`` as a double-quoted SQL identifier (inner quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def sql_name(name: str) -> str:
    """How SQL writes the table ``name``: bare when that reads back the same, else quoted."""
    return name if _PLAIN_NAME.fullmatch(name) else quoted(name)


def remote_scheme(uri: str) -> str | None:
    """The scheme of ``uri`` when it is a URL other than file:// (a remote store), else None."""
    found = _URL_SCHEME.match(uri)
    return found.group(1) if found is not None and found.group(1).lower() != "file" else None


def shown_url(uri: str) -> str:
    """``uri`` as messages and records show it: a remote URL's password and query redacted.

    A presigned or SAS URL carries its signature in the query, and ``user:password@`` is
    a secret too; what is left still says which store and object was meant.
    """
    scheme = remote_scheme(uri)
    if scheme is None:
        return uri
    try:
        parts = urlsplit(uri)
    except ValueError:  # a malformed host: nothing of it is shown
        return f"{scheme}://{REDACTED}"
    userinfo, _, host = parts.netloc.rpartition("@")
    netloc = f"{userinfo.split(':')[0]}:{REDACTED}@{host}" if ":" in userinfo else parts.netloc
    return urlunsplit(parts._replace(netloc=netloc, query=REDACTED if parts.query else ""))


def no_remote_stores(what: str) -> DeltaError:
    """The error for ``what`` (a URI or storage options) that needs a remote object store."""
    msg = (
        f"{what}: remote object stores (S3, GCS, Azure, HTTP) are not built into this "
        "workbench, which reads Delta tables from local folders only; copy the table to a "
        "local folder (e.g. aws s3 sync, gcloud storage rsync, azcopy) and register its path "
        "or file:// URL, without storage options"
    )
    return DeltaError(msg)


@dataclass(frozen=True)
class DeltaOptions:
    """How a Delta table is read: its version and the scan's knobs (checked when built).

    ``version`` (a whole number >= 0) or ``timestamp`` pins a version (time travel), not
    both. A timestamp is RFC 3339 text or a ``datetime``; a naive ``datetime`` is UTC, an
    aware one keeps its zone, and either is stored as RFC 3339 text. ``files`` restricts the
    scan to those data files (paths as ``wb_delta_files`` lists them in ``path``, relative
    to the table as in the log; checked against the version when the table is opened).
    ``file_column_name`` adds a column with each row's file; ``wrap_partition_values``
    dictionary-encodes string partition values; ``enable_parquet_pushdown`` lets the
    Parquet reader filter rows; ``schema_force_view_types`` reads strings as Utf8View.

    There are no storage options: remote object stores are not built into the extension,
    so a table is a local folder, and nothing secret is ever part of a table's DDL.
    """

    version: int | None = None
    timestamp: str | dt.datetime | None = None
    """RFC 3339 text once built (a ``datetime`` given is converted)."""
    file_column_name: str | None = None
    wrap_partition_values: bool = True
    enable_parquet_pushdown: bool = True
    schema_force_view_types: bool = True
    files: Sequence[str] | None = None
    """A tuple once built."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", _version(self.version))
        object.__setattr__(self, "timestamp", _timestamp(self.timestamp))
        object.__setattr__(self, "files", _files(self.files))
        if self.version is not None and self.timestamp is not None:
            msg = (
                f"give version or timestamp, not both (version {self.version}, timestamp "
                f"{self.timestamp}): each pins the version the table is read at"
            )
            raise DeltaError(msg)
        for name in ("wrap_partition_values", "enable_parquet_pushdown", "schema_force_view_types"):
            if not isinstance(getattr(self, name), bool):
                raise DeltaError(f"{name} is True or False, not {getattr(self, name)!r}")
        if self.file_column_name is not None and not isinstance(self.file_column_name, str):
            msg = f"file_column_name is a column name (a string), not {self.file_column_name!r}"
            raise DeltaError(msg)

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
        return out


def _version(value: object) -> int | None:
    if value is None:
        return None
    try:
        number = None if isinstance(value, bool) else operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = None
    if number is None or number < 0:
        msg = (
            f"version={value!r}: a Delta table version is a whole number >= 0 (0 is the "
            "table's first commit); give one, or leave version out to read the newest"
        )
        raise DeltaError(msg)
    if number > _LARGEST_VERSION:
        msg = f"version={number}: a Delta table version is below 2**64; give a version of the log"
        raise DeltaError(msg)
    return number


def _timestamp(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return moment.isoformat()
    msg = (
        f"timestamp={value!r}: give a datetime (naive ones are UTC) or RFC 3339 text, "
        "e.g. '2026-11-25T10:00:00Z'"
    )
    raise DeltaError(msg)


def _files(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    entries = tuple(value) if isinstance(value, Iterable) and not isinstance(value, str) else None
    paths = tuple(f for f in entries if isinstance(f, str)) if entries is not None else ()
    if entries is None or len(paths) != len(entries):
        msg = (
            f"files={value!r}: give a list of data file paths, as wb_delta_files lists them "
            "in its path column, e.g. files=['part-00000-....parquet']"
        )
        raise DeltaError(msg)
    return paths


@dataclass
class DeltaTable:
    """A Delta table registered in a session under ``name`` (mutable: refresh swaps the version).

    ``name`` is the exact table name (resolved as SQL resolves it, see
    :mod:`workbench.delta.names`).
    """

    name: str
    uri: str
    """A file:// URL as given, or an absolute local path (``~`` expanded, links resolved)."""
    options: DeltaOptions
    provider: Any
    """The extension's ``DeltaProvider`` for the current version."""
    _file_index: dict[int, pa.Table] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, name: str, uri: str, options: DeltaOptions) -> DeltaTable:
        """Open ``uri`` (a local path or file:// URL) with ``options``; reads the log, not the data.

        A relative local path is made absolute here, against the working directory, so the
        DDL recorded for the table (:meth:`ddl`) reads the same folder wherever it is run
        again. A remote URI is refused (no object store is built in), and so are a folder
        that does not exist or holds no ``_delta_log`` and a ``files`` entry that is not a
        data file of the version opened.
        """
        scheme = remote_scheme(uri)
        if scheme is not None:
            raise no_remote_stores(f"{name}: {shown_url(uri)} is a {scheme}:// URL")
        uri = _absolute(uri)
        _check_folder(name, uri)
        table = cls(name, uri, options, _open_provider(name, uri, options))
        if options.files is not None:
            table._check_files(options.files)
        return table

    @property
    def version(self) -> int:
        """The table version this registration reads."""
        return int(self.provider.version)

    @property
    def partition_columns(self) -> list[str]:
        return list(self.provider.partition_columns)

    def refresh(self) -> int:
        """Read the newest version from the log unless pinned; the version now current."""
        try:
            return int(self.provider.refresh())
        except extension.module().DeltaError as exc:
            raise DeltaError(f"{self.name}: {exc}") from None

    def file_index(self) -> pa.Table:
        """One row per data file of the current version (cached per version)."""
        version = self.version
        if version not in self._file_index:
            self._file_index = {version: pa.table(self.provider.file_index())}
        return self._file_index[version]

    def ddl(self) -> str:
        """SQL that registers this table again in another session (never a secret in it)."""
        uri = self.uri.replace("'", "''")
        text = f"CREATE EXTERNAL TABLE {quoted(self.name)} STORED AS DELTA LOCATION '{uri}'"
        options = self.options.sql_options()
        if options:
            pairs = ", ".join(
                f"'{k}' '{v.replace(chr(39), chr(39) * 2)}'" for k, v in options.items()
            )
            text += f" OPTIONS ({pairs})"
        return text

    def _check_files(self, files: Sequence[str]) -> None:
        """Refuse ``files`` entries that are no data file of the version opened."""
        index = self.file_index()
        paths = index.column("path").to_pylist()
        urls = index.column("file_url").to_pylist()
        # The scan resolves an entry against the table's URL (a relative path as in the
        # log, an absolute path or a URL), so the check does the same.
        roots = {url[: -len(path)] for path, url in zip(paths, urls, strict=True) if path}
        known = set(urls)
        unknown = [f for f in files if not any(urljoin(root, f) in known for root in roots)]
        if not unknown:
            return
        shown = ", ".join(repr(f) for f in unknown[:_SHOWN_FILES])
        more = f" and {len(unknown) - _SHOWN_FILES} more" if len(unknown) > _SHOWN_FILES else ""
        argument = sql_name(self.name).replace("'", "''")
        listing = f"SELECT path FROM wb_delta_files('{argument}')"  # noqa: S608  (a message)
        msg = (
            f"{self.name}: files names {len(unknown)} data file(s) that version "
            f"{self.version} of the table does not have: {shown}{more}; give paths from the "
            f"path column of {listing} (relative to the table, as in the Delta log)"
        )
        raise DeltaError(msg)


def _is_file_url(uri: str) -> bool:
    found = _URL_SCHEME.match(uri)
    return found is not None and found.group(1).lower() == "file"


def _absolute(uri: str) -> str:
    """A local path made absolute (``~`` expanded); a file:// URL is absolute already."""
    return uri if _is_file_url(uri) else str(Path(uri).expanduser().resolve())


def _check_folder(name: str, uri: str) -> None:
    """Refuse a local table folder that is missing, a file, or holds no ``_delta_log``.

    The provider would say so too, but as a debug dump of the OS error.
    """
    parts = urlsplit(uri) if _is_file_url(uri) else None
    if parts is not None and parts.netloc not in {"", "localhost"}:
        return  # a file URL naming a host: the provider's to judge
    folder = Path(url2pathname(parts.path)) if parts is not None else Path(uri)
    usage = "give the folder of a Delta table, the one that holds its _delta_log"
    try:
        if not folder.exists():
            problem = f"that folder does not exist; {usage}, or write the table there first"
        elif not folder.is_dir():
            problem = f"it is a file, not a folder; {usage}"
        elif not (folder / "_delta_log").is_dir():
            problem = (
                f"the folder has no _delta_log (the table's log); {usage} (a folder of plain "
                "Parquet files is read with CREATE EXTERNAL TABLE ... STORED AS PARQUET)"
            )
        else:
            return
    except OSError:
        return  # not readable here (permissions, say): the provider says why
    raise DeltaError(f"{name}: {folder} is not a Delta table: {problem}")


def _open_provider(name: str, uri: str, options: DeltaOptions) -> Any:
    ext = extension.module()
    try:
        return ext.DeltaProvider.open(
            uri,
            name=name,
            version=options.version,
            timestamp=options.timestamp,
            file_column_name=options.file_column_name,
            wrap_partition_values=options.wrap_partition_values,
            enable_parquet_pushdown=options.enable_parquet_pushdown,
            schema_force_view_types=options.schema_force_view_types,
            files=list(options.files) if options.files is not None else None,
        )
    except ext.DeltaError as exc:
        raise DeltaError(str(exc)) from None

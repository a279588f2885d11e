"""What the caches of a session hold: ``panel(session)`` and ``%wb cache``.

DataFusion's Python API does not show its runtime caches, and the FFI components of the
extension cannot reach them (the host's runtime never crosses FFI). So the extension keeps
its own caches for the scans it provides, one set per session, and shows them as SQL
table functions, each read when a query is planned:

- ``wb_metadata_cache()``: Parquet footers of the files Delta scans opened, one row per
  file (``path``, ``cached``, ``size_bytes``, ``hits``, ``misses``, ``file_size_bytes``,
  ``file_modified``, ``page_index``, ``cached_at``, ``age_s``). A hit is a footer served
  from memory, a miss one read from storage. Bounded by the profile's
  ``CachePolicy.metadata_limit_bytes`` (``None``: DataFusion's 50 MiB; 0: none kept).
- ``wb_statistics_cache()``: the Delta snapshot each registered table holds, one row per
  table (``table``, ``location``, ``version``, ``entries`` (files), ``size_bytes`` (their
  statistics as the log writes them), ``hits`` (scans that reused it), ``misses``
  (snapshots read from the log), ``pinned``, ``cached_at``, ``age_s``).
- ``wb_list_files_cache()``: the listings of ``_delta_log`` that refreshes make, one row
  per table (``table``, ``location``, ``entries`` and ``new_commits`` of the last listing,
  ``hits`` (listings avoided), ``misses`` (listings made), ``listed_at``, ``age_s``). No
  listing is kept, only counted: every scan of an unpinned table lists the log once (and
  deltalake once more when a commit landed), unless the table is pinned or the profile
  turns the listing cache on with a ``list_files_ttl_s`` (the scans within it read the
  snapshot held, however old).

:func:`panel` sums each cache up (entries, bytes, hits, misses, hit ratio, largest
entries) with the profile's cache settings; the :class:`CachePanel` it returns renders as
text and as HTML (every value escaped), so an exported notebook still shows it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from workbench.session import Session

#: How many of a cache's largest entries a panel shows.
LARGEST = 5

_FUNCTIONS = (
    ("metadata", "wb_metadata_cache", "Parquet footers of the files Delta scans opened"),
    ("statistics", "wb_statistics_cache", "Delta snapshots: each table's files and statistics"),
    ("list files", "wb_list_files_cache", "listings of each Delta table's _delta_log"),
)


@dataclass(frozen=True)
class CacheEntry:
    """One of a cache's largest entries."""

    name: str
    size_bytes: int | None
    """Bytes it holds (``None`` where a cache keeps none: listings are counted, not kept)."""
    entries: int | None
    """What it holds in units: files of a snapshot, objects of a listing."""
    hits: int
    misses: int
    detail: str


@dataclass(frozen=True)
class CacheSummary:
    """One cache of a session, summed over its rows."""

    name: str
    function: str
    holds: str
    entries: int
    """Footers cached; file statistics held; objects listed by the last listings."""
    size_bytes: int | None
    hits: int
    misses: int
    largest: tuple[CacheEntry, ...]
    available: bool = True
    """False when the function is not registered in the session (profile.extensions)."""

    @property
    def hit_ratio(self) -> float | None:
        """Hits over lookups (hits + misses), 0..1; ``None`` before any lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None


@dataclass(frozen=True)
class CachePanel:
    """The caches of a session and the profile's cache settings; text and HTML views."""

    session_id: str
    caches: tuple[CacheSummary, ...]
    settings: tuple[str, ...]
    """The runtime cache settings in effect (``Session.cache_settings``, ``name=value``)."""

    def cache(self, name: str) -> CacheSummary:
        """The summary of cache ``name`` (``metadata``, ``statistics``, ``list files``)."""
        for summary in self.caches:
            if summary.name == name:
                return summary
        known = ", ".join(s.name for s in self.caches)
        msg = f"no cache named {name!r}; the panel shows: {known}"
        raise KeyError(msg)

    def to_text(self) -> str:
        """The panel as plain text (the notebook's fallback)."""
        return _text(self)

    def to_html(self) -> str:
        """The panel as an HTML fragment; every value is escaped."""
        return _html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        del include, exclude  # both views are cheap: always give both
        return {"text/plain": self.to_text(), "text/html": self.to_html()}


def panel(session: Session) -> CachePanel:
    """Read the session's three cache functions and sum each cache up."""
    summaries = []
    for name, function, holds in _FUNCTIONS:
        table = _read(session, function)
        if table is None:
            summaries.append(
                CacheSummary(name, function, holds, 0, None, 0, 0, (), available=False)
            )
            continue
        summaries.append(_SUMMARISE[name](name, function, holds, table.to_pylist()))
    return CachePanel(
        session_id=str(session.session_id),
        caches=tuple(summaries),
        settings=tuple(session.cache_settings),
    )


def _read(session: Session, function: str) -> pa.Table | None:
    if function not in session.registered:
        return None
    # Read through the context, not Session.sql: looking at the caches is not a run.
    return session.ctx.sql(f"SELECT * FROM {function}()").to_arrow_table()  # noqa: S608


def _metadata(name: str, function: str, holds: str, rows: list[dict[str, Any]]) -> CacheSummary:
    cached = [r for r in rows if r["cached"]]
    largest = sorted(cached, key=lambda r: (-r["size_bytes"], r["path"]))[:LARGEST]
    return CacheSummary(
        name=name,
        function=function,
        holds=holds,
        entries=len(cached),
        size_bytes=sum(r["size_bytes"] for r in cached),
        hits=sum(r["hits"] for r in rows),
        misses=sum(r["misses"] for r in rows),
        largest=tuple(
            CacheEntry(
                name=r["path"],
                size_bytes=r["size_bytes"],
                entries=None,
                hits=r["hits"],
                misses=r["misses"],
                detail=f"file {_bytes(r['file_size_bytes'])}, "
                f"page index {'yes' if r['page_index'] else 'no'}, "
                f"cached {_age(r['age_s'])} ago",
            )
            for r in largest
        ),
    )


def _statistics(name: str, function: str, holds: str, rows: list[dict[str, Any]]) -> CacheSummary:
    largest = sorted(rows, key=lambda r: (-r["size_bytes"], r["table"]))[:LARGEST]
    return CacheSummary(
        name=name,
        function=function,
        holds=holds,
        entries=sum(r["entries"] for r in rows),
        size_bytes=sum(r["size_bytes"] for r in rows),
        hits=sum(r["hits"] for r in rows),
        misses=sum(r["misses"] for r in rows),
        largest=tuple(
            CacheEntry(
                name=f"{r['table']} v{r['version']}",
                size_bytes=r["size_bytes"],
                entries=r["entries"],
                hits=r["hits"],
                misses=r["misses"],
                detail=f"{r['location']}{', pinned' if r['pinned'] else ''}, "
                f"read {_age(r['age_s'])} ago",
            )
            for r in largest
        ),
    )


def _listing(name: str, function: str, holds: str, rows: list[dict[str, Any]]) -> CacheSummary:
    largest = sorted(rows, key=lambda r: (-r["entries"], r["table"]))[:LARGEST]
    return CacheSummary(
        name=name,
        function=function,
        holds=holds,
        entries=sum(r["entries"] for r in rows),
        size_bytes=None,
        hits=sum(r["hits"] for r in rows),
        misses=sum(r["misses"] for r in rows),
        largest=tuple(
            CacheEntry(
                name=r["table"],
                size_bytes=None,
                entries=r["entries"],
                hits=r["hits"],
                misses=r["misses"],
                detail=f"{r['new_commits']} new commit(s) at the last listing, "
                + (f"listed {_age(r['age_s'])} ago" if r["age_s"] is not None else "never listed"),
            )
            for r in largest
        ),
    )


_SUMMARISE = {"metadata": _metadata, "statistics": _statistics, "list files": _listing}


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{value} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"  # pragma: no cover (the loop always returns)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _amount(entry: CacheEntry) -> str:
    """Bytes where the cache keeps some, else how many things (objects of a listing)."""
    if entry.size_bytes is not None:
        return _bytes(entry.size_bytes)
    return f"{entry.entries} entries"


def _ratio(summary: CacheSummary) -> str:
    ratio = summary.hit_ratio
    return "-" if ratio is None else f"{ratio:.0%}"


def _row(summary: CacheSummary) -> tuple[str, ...]:
    if not summary.available:
        return (summary.name, "not registered", "", "", "", "")
    return (
        summary.name,
        str(summary.entries),
        _bytes(summary.size_bytes),
        str(summary.hits),
        str(summary.misses),
        _ratio(summary),
    )


_HEADER = ("cache", "entries", "bytes", "hits", "misses", "hit ratio")


def _text(panel: CachePanel) -> str:
    rows = [_HEADER, *(_row(s) for s in panel.caches)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
    lines = [f"Extension caches of session {panel.session_id}"]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    for summary in panel.caches:
        if not summary.available:
            continue
        lines.append("")
        lines.append(f"{summary.name} ({summary.function}()): {summary.holds}")
        if not summary.largest:
            lines.append("  (empty)")
        for entry in summary.largest:
            counts = f"hits {entry.hits}, misses {entry.misses}"
            lines.append(f"  {_amount(entry):>10}  {entry.name}  ({counts}; {entry.detail})")
    lines.append("")
    lines.append("settings: " + (", ".join(panel.settings) or "DataFusion's defaults"))
    return "\n".join(lines)


def _html(panel: CachePanel) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in _HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in _row(s)) + "</tr>" for s in panel.caches
    )
    parts = [
        '<div class="wb-caches">',
        f"<strong>Extension caches of session {e(panel.session_id)}</strong>",
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
    ]
    for summary in panel.caches:
        if not summary.available:
            continue
        items = "".join(
            "<tr>"
            f"<td>{e(_amount(entry))}</td>"
            f"<td><code>{e(entry.name)}</code></td>"
            f"<td>{e(str(entry.hits))}</td><td>{e(str(entry.misses))}</td>"
            f"<td>{e(entry.detail)}</td>"
            "</tr>"
            for entry in summary.largest
        )
        table = (
            "<table><thead><tr><th>size</th><th>entry</th><th>hits</th><th>misses</th>"
            f"<th>detail</th></tr></thead><tbody>{items}</tbody></table>"
            if items
            else "<p>(empty)</p>"
        )
        parts.append(
            f"<details><summary>{e(summary.name)} (<code>{e(summary.function)}()</code>): "
            f"{e(summary.holds)}</summary>{table}</details>"
        )
    settings = "".join(f"<li><code>{e(s)}</code></li>" for s in panel.settings)
    parts.append(
        f"<p>settings:</p><ul>{settings}</ul>"
        if settings
        else "<p>settings: DataFusion's defaults</p>"
    )
    parts.append("</div>")
    return "".join(parts)

"""A Delta table's change data feed: ranges, net changes, the commit timeline.

``Session.changes`` and ``%cdf`` read ``table_changes(table, start [, end])`` (the Rust table
function over deltalake-core's change data feed scan) as a streaming :class:`Result`, shown
with a timeline of the range's commits (changes per version and type) above the preview.

Net changes (``net=KEYS``) collapse the range to one row per key, the key's state at the end
of the range against its state before it. Each change row either leaves its key (an
``update_preimage`` or a ``delete``) or arrives at it (an ``insert`` or an
``update_postimage``); an update that changes the key leaves the old key and arrives at the
new one. The key existed before the range if its first change leaves it, and exists after
it if its last change arrives:

- existed before, not after: ``delete``, with the last row that left it;
- not before, exists after: ``insert``, with its last values;
- neither (inserted and deleted in the range): nothing, the two cancel;
- both: ``update_postimage`` with its last values, unless they equal its values before the
  range (a no-op update, an update and back, a delete and insert of the same row): hidden.

Within one commit the rows leaving a key come before those arriving at it. Rows whose key
has a NULL part cannot be told apart from other rows with a NULL key, so they pass through
as they are, not netted. ``where`` filters the change rows before they are netted; ``types``
filters what is shown, after netting. Column names starting ``__wb_`` are reserved.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.delta.table import DeltaError, quoted

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import pyarrow as pa

    from workbench.result import Result

CHANGE_TYPES = ("insert", "update_preimage", "update_postimage", "delete")
META = ("_change_type", "_commit_version", "_commit_timestamp")
_ORDER = (
    "CASE _change_type WHEN 'update_preimage' THEN 0 WHEN 'delete' THEN 1 "
    "WHEN 'insert' THEN 2 ELSE 3 END"
)


def edge(value: int | str | dt.datetime | None, which: str) -> str | None:
    """A range edge as a ``table_changes`` argument: a version or an RFC 3339 literal."""
    if value is None:
        return None
    if isinstance(value, bool):
        msg = f"the {which} of the range is a version or a timestamp, not {value!r}"
        raise DeltaError(msg)
    if isinstance(value, int):
        if value < 0:
            raise DeltaError(f"the {which} version {value} is negative; versions start at 0")
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return str(int(value))
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            msg = (
                f"the {which} of the range, {value!r}, is neither a version nor a timestamp; "
                "give e.g. 3 or 2026-11-25T10:00:00Z"
            )
            raise DeltaError(msg) from None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return "'" + moment.astimezone(dt.UTC).isoformat() + "'"
    msg = f"the {which} of the range is a version or a timestamp, not {value!r}"
    raise DeltaError(msg)


def source(table: str, start: str, end: str | None) -> str:
    """``table_changes('table', start[, end])`` with checked arguments."""
    name = "'" + table.replace("'", "''") + "'"
    return f"table_changes({name}, {start}{'' if end is None else ', ' + end})"


def check_types(types: Sequence[str] | None) -> tuple[str, ...] | None:
    if types is None:
        return None
    chosen = tuple(t.strip() for t in types if t.strip())
    unknown = [t for t in chosen if t not in CHANGE_TYPES]
    if unknown or not chosen:
        shown = ", ".join(unknown) or "(none)"
        msg = f"unknown change type {shown}; known: {', '.join(CHANGE_TYPES)}"
        raise DeltaError(msg)
    return chosen


def check_columns(given: Sequence[str] | None, columns: Sequence[str], what: str) -> list[str]:
    """``given`` (names of the table's columns), each checked to exist."""
    if given is None:
        return []
    chosen = [c.strip() for c in given if c.strip()]
    changes = [c for c in chosen if c in META]
    if changes:
        msg = f"{what}: {changes[0]} is a change column, which always comes; name data columns"
        raise DeltaError(msg)
    unknown = [c for c in chosen if c not in columns]
    if unknown or not chosen:
        known = ", ".join(c for c in columns if c not in META)
        msg = f"{what}: no column {', '.join(unknown) or '(none)'}; the table has {known}"
        raise DeltaError(msg)
    return chosen


def changes_query(
    feed: str,
    columns: Sequence[str],
    *,
    show: Sequence[str] = (),
    where: str | None = None,
    types: Sequence[str] | None = None,
    net: Sequence[str] = (),
) -> str:
    """The SQL of a change read: ``feed`` (a ``table_changes`` call) filtered, netted, projected."""
    data = [c for c in columns if c not in META]
    shown = list(show) or data
    select = ", ".join(quoted(c) for c in [*shown, *META])
    # SQL from checked parts: quoted column names, the feed call (checked edges, a name or
    # path in a string literal), known change types; `where` is the caller's own SQL.
    # A newline after `where`, so a `--` comment in it ends there.
    filtered = f"SELECT * FROM {feed}" + (f" WHERE ({where}\n)" if where else "")  # noqa: S608
    if not net:
        query = f"SELECT {select} FROM ({filtered}) AS changes"  # noqa: S608
        if types:
            query += " WHERE _change_type IN (" + ", ".join(f"'{t}'" for t in types) + ")"
        return query
    reserved = [c for c in columns if c.startswith("__wb_")]
    if reserved:
        msg = f"net: column {reserved[0]!r} starts with __wb_, which --net reserves for itself"
        raise DeltaError(msg)
    keys = ", ".join(quoted(k) for k in net)
    window = f"PARTITION BY {keys} ORDER BY _commit_version, __wb_order"
    whole = f"({window} ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
    firsts = ", ".join(
        f"first_value({quoted(c)}) OVER {whole} AS {quoted('__wb_first_' + c)}" for c in data
    )
    # Each comparison in parentheses: the SQL parser binds IS NOT DISTINCT FROM looser
    # than AND ("a IS NOT DISTINCT FROM b AND c ..." reads "b AND c").
    unchanged = " AND ".join(
        f"({quoted(c)} IS NOT DISTINCT FROM {quoted('__wb_first_' + c)})" for c in data
    )
    leaves = "_change_type IN ('update_preimage', 'delete')"
    any_null = " OR ".join(f"{quoted(k)} IS NULL" for k in net)
    net_type = (
        "CASE WHEN __wb_gone THEN 'delete' WHEN __wb_was THEN 'update_postimage' ELSE 'insert' END"
    )
    ordered = (
        f"SELECT *, {_ORDER} AS __wb_order, {leaves} AS __wb_leaves "  # noqa: S608
        f"FROM ({filtered}) AS raw WHERE NOT ({any_null})"
    )
    ranked = (
        f"SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY _commit_version DESC, "  # noqa: S608
        f"__wb_order DESC) AS __wb_last, first_value(__wb_leaves) OVER {whole} AS "
        f"__wb_was, __wb_leaves AS __wb_gone, {firsts} FROM ({ordered}) AS o"
    )
    outer = ", ".join(quoted(c) for c in shown)
    netted = (
        f"SELECT {outer}, {net_type} AS _change_type, _commit_version, _commit_timestamp "  # noqa: S608
        f"FROM ({ranked}) AS ranked WHERE __wb_last = 1 "
        "AND NOT (__wb_gone AND NOT __wb_was) "
        f"AND NOT (NOT __wb_gone AND __wb_was AND {unchanged})"
    )
    passed = f"SELECT {select} FROM ({filtered}) AS raw WHERE {any_null}"  # noqa: S608
    query = f"{netted} UNION ALL {passed}"
    if types:
        query = (
            f"SELECT * FROM ({query}) AS netted WHERE _change_type IN ("  # noqa: S608
            + ", ".join(f"'{t}'" for t in types)
            + ")"
        )
    return query


@dataclass
class Changes:
    """A change read: the streaming :class:`Result` and the timeline of its range's commits.

    Attribute access goes to the result (``to_pyarrow()``, ``preview()``, ``run`` ...).
    """

    table: str
    range_text: str
    result: Result
    timeline: pa.Table
    """version, change type, rows: the changes of each commit in the range (before netting)."""
    net: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.result, name)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        """The change rows as they stream (nothing is collected)."""
        return iter(self.result)

    def timeline_text(self) -> str:
        lines = [
            f"{self.table} changes {self.range_text}"
            + (f", net by {', '.join(self.net)}" if self.net else "")
        ]
        per_version: dict[int, list[str]] = {}
        for row in self.timeline.to_pylist():
            per_version.setdefault(int(row["version"]), []).append(f"{row['rows']} {row['type']}")
        for version, parts in sorted(per_version.items()):
            lines.append(f"  v{version}: {', '.join(parts)}")
        if not per_version:
            lines.append("  no changes in the range")
        return "\n".join(lines)

    def timeline_svg(self) -> str | None:
        if self.timeline.num_rows == 0:
            return None
        import altair as alt

        from workbench.widgets.pruning import spec_svg

        chart = (
            alt.Chart(self.timeline.rename_columns(["version", "type", "rows"]))
            .mark_bar()
            .encode(
                x=alt.X("version:O", title="commit version"),
                y=alt.Y("rows:Q", title="changed rows"),
                color=alt.Color("type:N", sort=list(CHANGE_TYPES), title="change"),
            )
            .properties(width=360, height=120, title=f"{self.table}: changes per commit")
        )
        return spec_svg(chart.to_dict())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:  # noqa: ARG002
        preview = self.result._repr_mimebundle_()
        text = self.timeline_text()
        try:
            svg = self.timeline_svg()
        except Exception:  # noqa: BLE001  (the text timeline stays when the chart cannot draw)
            svg = None
        from workbench.widgets.pruning import svg_img

        chart = svg_img(svg, f"{self.table}: changes per commit") if svg else ""
        head = f"<pre>{html.escape(text)}</pre>{chart}"
        return {
            "text/plain": text + "\n" + preview.get("text/plain", ""),
            "text/html": head + preview.get("text/html", ""),
        }

"""Views of a Result: the preview as escaped HTML and as plain text.

Both forms go into one mimebundle, so a notebook exported to HTML or read
without a front end still shows the preview. Every value is escaped.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError
from workbench.runs import RunStatus

if TYPE_CHECKING:
    import pyarrow as pa

    from workbench.result import Result

_MAX_CELL_CHARS = 200
_STOPPED = frozenset({RunStatus.FAILED, RunStatus.CANCELLED})


def _cell(value: object) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= _MAX_CELL_CHARS else text[: _MAX_CELL_CHARS - 1] + "…"


def _rows(table: pa.Table) -> list[list[str]]:
    columns = [[_cell(v) for v in column.to_pylist()] for column in table.columns]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def _status_line(result: Result, shown: int, more: bool) -> str:  # noqa: FBT001
    run = result.run
    if run.status == RunStatus.FAILED:
        first = (run.error or "unknown error").splitlines()[0]
        more_text = f"the query FAILED after {run.rows:,} rows: {first}"
    elif run.status == RunStatus.CANCELLED:
        more_text = f"the query was stopped after {run.rows:,} rows; later rows were not read"
    else:
        more_text = "more rows available" if more else "all rows shown"
    return (
        f"{shown} row{'s' if shown != 1 else ''} shown · {run.rows:,} read so far · "
        f"{more_text} · {run.elapsed_s * 1000:.1f} ms · run {run.run_id}"
    )


def preview_bundle(result: Result, rows: int) -> dict[str, str]:
    """``text/plain`` and ``text/html`` of the first ``rows`` rows of ``result``."""
    try:
        table = result.preview(rows)
    except WorkbenchError:
        if result.run.status not in _STOPPED or result.rows_kept == 0:
            raise
        table = result.kept(rows)  # the rows read before it stopped, with the reason below
    more = result.run.status not in _STOPPED and result.more_than(rows)
    status = _status_line(result, table.num_rows, more)
    names = table.schema.names
    types = [str(field.type) for field in table.schema]
    body = _rows(table)
    return {
        "text/plain": _text(names, types, body, status),
        "text/html": _html(names, types, body, status),
    }


def _text(names: list[str], types: list[str], body: list[list[str]], status: str) -> str:
    header = [f"{n} ({t})" for n, t in zip(names, types, strict=True)]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    rule = "-+-".join("-" * w for w in widths)
    rows = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join([line, rule, *rows, status])


def _html(names: list[str], types: list[str], body: list[list[str]], status: str) -> str:
    e = html.escape
    head = "".join(
        f"<th>{e(n)}<br><span class='wb-type'>{e(t)}</span></th>"
        for n, t in zip(names, types, strict=True)
    )
    rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in body)
    return (
        "<div class='wb-preview'>"
        "<style>.wb-preview table{border-collapse:collapse;font-size:12px}"
        ".wb-preview th,.wb-preview td{border:1px solid #ddd;padding:2px 6px;text-align:left}"
        ".wb-type{color:#888;font-weight:normal}.wb-status{color:#555;font-size:11px}</style>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        f"<div class='wb-status'>{e(status)}</div></div>"
    )


def error_bundle(error: Exception) -> dict[str, str]:
    """A short error as text and escaped HTML (for a result that cannot be shown)."""
    text = f"{type(error).__name__}: {error}"
    return {
        "text/plain": text,
        "text/html": f"<pre class='wb-error' style='color:#b71c1c'>{html.escape(text)}</pre>",
    }

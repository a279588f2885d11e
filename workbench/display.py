"""Views of a result's preview (rows and run record): escaped HTML and plain text.

Both forms go into one mimebundle, so a notebook exported to HTML or read
without a front end still shows the preview. Every value is escaped.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from workbench.runs import RunStatus

if TYPE_CHECKING:
    import pyarrow as pa

    from workbench.runs import RunRecord

_MAX_CELL_CHARS = 200
_STOPPED = frozenset({RunStatus.FAILED, RunStatus.CANCELLED})


def _cell(value: object) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= _MAX_CELL_CHARS else text[: _MAX_CELL_CHARS - 1] + "…"


def _rows(table: pa.Table) -> list[list[str]]:
    columns = [[_cell(v) for v in column.to_pylist()] for column in table.columns]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def _status_line(run: RunRecord, shown: int, *, more: bool) -> str:
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


def preview_bundle(table: pa.Table, run: RunRecord, *, more: bool) -> dict[str, str]:
    """``text/plain`` and ``text/html`` of preview rows, with the run's status below them.

    ``more`` says whether rows past ``table`` exist; a failed or cancelled run
    says so instead (its rows read before the stop are still shown).
    """
    if not table.schema.names:  # DDL, SET: the statement ran and returns nothing
        text = (
            f"done: the statement returns no columns · {run.elapsed_s * 1000:.1f} ms · "
            f"run {run.run_id}"
        )
        return {
            "text/plain": text,
            "text/html": f"<div class='wb-status'>{html.escape(text)}</div>",
        }
    status = _status_line(run, table.num_rows, more=more and run.status not in _STOPPED)
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

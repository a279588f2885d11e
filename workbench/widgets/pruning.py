"""The pruning-report view: text, static HTML with an inline SVG funnel, a sortable widget.

The funnel is an Altair chart rendered to SVG by ``vl-convert-python`` in this process,
never by a renderer that loads Vega from a CDN: Altair 6's default HTML output is blank
offline and JupyterLab 4.6 shows its v6 mimetype as text (../shared/DESIGN.md, "Charts
offline"). The SVG goes inline into the static HTML, so an exported notebook shows the
chart too; the widget shows the same SVG as an ``<img>`` (a data URL), so no markup of
the report is ever parsed into the page. The file table of the widget sorts by any
column on click and writes every value with ``textContent``; the static HTML escapes
every value and shows the first rows only.
"""

from __future__ import annotations

import base64
import functools
import html
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.delta.prune import FunnelStage, PruningReport

_HTML_ROWS = 200
_TEXT_ROWS = 20
_WIDGET_ROWS = 20_000
_BAR_WIDTH = 360


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def summary(report: PruningReport) -> str:
    """One line: which table, how many files and bytes a scan must read."""
    return (
        f"Delta {report.table} v{report.version}: candidate files {report.candidate_files:,} "
        f"of {report.total_files:,} ({_share(report.candidate_files, report.total_files)}), "
        f"{_size(report.candidate_bytes)} of {_size(report.total_bytes)}"
    )


def _stage_label(stage: FunnelStage) -> str:
    return f"{stage.kept:,} of {stage.total:,} {stage.unit}"


def _terms(report: PruningReport) -> list[str]:
    return [
        f"{term.sql}  ({'decided by statistics' if term.decidable else 'statistics cannot decide'})"
        for term in report.terms
    ]


def _file_rows(report: PruningReport, limit: int) -> list[tuple[str, int, int | None, bool, str]]:
    columns = report.files.slice(0, limit).to_pydict()
    return list(
        zip(
            columns["path"],
            columns["size_bytes"],
            columns["num_records"],
            columns["kept"],
            columns["reason"],
            strict=True,
        )
    )


def _analysis(report: PruningReport) -> list[str]:
    lines = []
    if report.analyzed and report.matching_rows is not None:
        lines.append(f"analyzed run {report.run_id}: {report.matching_rows:,} matching rows")
    if report.note:
        lines.append(f"note: {report.note}")
    return lines


def report_text(report: PruningReport) -> str:
    """The report as plain text (the fallback of every display)."""
    lines = [summary(report), f"  predicate: {report.predicate}"]
    lines += [f"  term: {t}" for t in _terms(report)]
    if report.funnel:
        lines.append("  funnel:")
        width = max(len(s.stage) for s in report.funnel)
        lines += [f"    {s.stage:<{width}}  {_stage_label(s)}" for s in report.funnel]
    lines += [f"  {line}" for line in _analysis(report)]
    rows = _file_rows(report, _TEXT_ROWS)
    lines.append(f"  files ({report.total_files:,}):")
    for path, size, _records, kept, reason in rows:
        lines.append(f"    {'kept  ' if kept else 'pruned'}  {path}  {_size(size)}  {reason}")
    if report.total_files > len(rows):
        lines.append(f"    … {report.total_files - len(rows):,} more in report.files")
    return "\n".join(lines)


def _vega_lite_version(altair_schema: str, supported: list[str]) -> str:
    """vl-convert's name for the Vega-Lite version Altair emits ("v6.4.1" -> "6.4").

    vl-convert aborts the process on a version it does not know, so an unknown one is
    refused here instead.
    """
    major_minor = ".".join(altair_schema.lstrip("v").split(".")[:2])
    if major_minor in supported:
        return major_minor
    same_major = [v for v in supported if v.split(".")[0] == major_minor.split(".")[0]]
    if not same_major:
        msg = (
            f"vl-convert-python knows Vega-Lite {', '.join(supported)}, not Altair's "
            f"{altair_schema}; install versions that match (see pyproject.toml)"
        )
        raise WorkbenchError(msg)
    return max(same_major, key=lambda v: tuple(int(p) for p in v.split(".")))


def funnel_spec(report: PruningReport) -> dict[str, Any]:
    """The funnel as an Altair (Vega-Lite) spec: one bar per stage, kept over total."""
    import altair as alt
    import pyarrow as pa

    stages = report.funnel
    rows = pa.table(
        {
            "step": [f"{i + 1}. {stage.stage}" for i, stage in enumerate(stages)],
            "share": [stage.share for stage in stages],
            "whole": [1.0] * len(stages),
            "label": [_stage_label(stage) for stage in stages],
        }
    )
    base = alt.Chart(rows).encode(
        y=alt.Y("step:N", sort=None, title=None, axis=alt.Axis(labelLimit=220)),
    )
    whole = base.mark_bar(color="#e5e8ef").encode(
        x=alt.X("whole:Q", title="kept", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1]))
    )
    kept = base.mark_bar(color="#4c78a8").encode(x="share:Q")
    labels = base.mark_text(align="left", dx=4, color="#333").encode(x="share:Q", text="label:N")
    chart = alt.layer(whole, kept, labels).properties(
        width=_BAR_WIDTH,
        height=alt.Step(24),
        title=f"Delta {report.table} v{report.version}: pruning funnel",
    )
    return chart.to_dict()


@functools.cache
def _converter() -> tuple[Any, str]:
    import altair as alt
    import vl_convert

    return vl_convert, _vega_lite_version(alt.SCHEMA_VERSION, vl_convert.get_vegalite_versions())


def spec_svg(spec: dict[str, Any]) -> str:
    """A Vega-Lite spec drawn as standalone SVG here (no browser, no network)."""
    vl_convert, version = _converter()
    svg: str = vl_convert.vegalite_to_svg(spec, vl_version=version)
    return svg


def svg_img(svg: str, alt: str) -> str:
    """``svg`` as an ``<img>`` data URL: the page never parses chart markup."""
    data = base64.b64encode(svg.encode()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/svg+xml;base64,{data}">'


def funnel_svg(report: PruningReport) -> str | None:
    """The funnel as standalone SVG, drawn here (no browser, no network); None without a funnel."""
    if not report.funnel:
        return None
    return spec_svg(funnel_spec(report))


_STYLE = (
    "<style>.wb-prune{font:12px/1.4 system-ui,sans-serif}.wb-prune table{border-collapse:"
    "collapse}.wb-prune td,.wb-prune th{padding:1px 8px;border-bottom:1px solid #eee;"
    "text-align:left;white-space:nowrap}.wb-prune td.num{text-align:right}.wb-prune "
    "td.reason{white-space:normal}.wb-prune .pruned{color:#888}</style>"
)
_HEADERS = ("path", "size", "records", "kept", "reason")


def report_html(report: PruningReport, svg: str | None = None) -> str:
    """Escaped static HTML: summary, terms, the SVG funnel, the first rows of the file table."""
    e = html.escape
    parts = [f"<div class='wb-prune'>{_STYLE}<div><b>{e(summary(report))}</b></div>"]
    parts.append(f"<div>predicate: <code>{e(report.predicate)}</code></div>")
    parts += [f"<div>term: <code>{e(t)}</code></div>" for t in _terms(report)]
    parts += [f"<div>{e(line)}</div>" for line in _analysis(report)]
    if svg:
        parts.append(f"<div class='funnel'>{svg}</div>")
    header = "".join(f"<th>{h}</th>" for h in _HEADERS)
    body = []
    for path, size, records, kept, reason in _file_rows(report, _HTML_ROWS):
        css = "" if kept else " class='pruned'"
        shown_records = "-" if records is None else f"{records:,}"
        body.append(
            f"<tr{css}><td>{e(path)}</td><td class='num'>{e(_size(size))}</td>"
            f"<td class='num'>{e(shown_records)}</td><td>{'kept' if kept else 'pruned'}</td>"
            f"<td class='reason'>{e(reason)}</td></tr>"
        )
    parts.append(f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>")
    if report.total_files > _HTML_ROWS:
        parts.append(f"<div>… {report.total_files - _HTML_ROWS:,} more files in report.files</div>")
    parts.append("</div>")
    return "".join(parts)


def payload(report: PruningReport, svg: str | None) -> dict[str, Any]:
    """What the widget renders: summary, the chart as a data URL, the file rows."""
    rows = _file_rows(report, _WIDGET_ROWS)
    chart = None
    if svg:
        chart = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    return {
        "summary": summary(report),
        "predicate": report.predicate,
        "terms": _terms(report) + _analysis(report),
        "chart": chart,
        "files": [list(row) for row in rows],
        "more": report.total_files - len(rows),
    }


_ESM = r"""
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;  // values are never parsed as HTML
  return e;
}
function size(n) {
  for (const [u, s] of [["GB", 2 ** 30], ["MB", 2 ** 20], ["kB", 2 ** 10]]) {
    if (n >= s) return (n / s).toFixed(1) + " " + u;
  }
  return n + " B";
}
function render({ model, el: root }) {
  const data = model.get("data");
  root.classList.add("wb-prune-widget");
  const style = el("style");
  style.textContent = `
    .wb-prune-widget{font:12px/1.4 system-ui,sans-serif}
    .wb-prune-widget table{border-collapse:collapse}
    .wb-prune-widget th{cursor:pointer;text-align:left;border-bottom:1px solid #ccc;
      padding:1px 8px;user-select:none}
    .wb-prune-widget td{padding:1px 8px;border-bottom:1px solid #eee;white-space:nowrap}
    .wb-prune-widget td.num{text-align:right}.wb-prune-widget td.reason{white-space:normal}
    .wb-prune-widget tr.pruned{color:#888}`;
  root.appendChild(style);
  root.appendChild(el("div", "summary", data.summary)).style.fontWeight = "600";
  root.appendChild(el("div", "predicate", "predicate: " + data.predicate));
  for (const t of data.terms) root.appendChild(el("div", "term", "term: " + t));
  if (data.chart) {
    const img = el("img", "funnel");
    img.src = data.chart;  // an SVG data URL: drawn as an image, never parsed into the page
    img.alt = "pruning funnel";
    root.appendChild(img);
  }
  const columns = ["path", "size", "records", "kept", "reason"];
  const table = el("table"), head = el("tr"), body = el("tbody");
  const rows = data.files.slice();
  let sortBy = -1, descending = false;
  function fill() {
    body.replaceChildren();
    for (const [path, bytes, records, kept, reason] of rows) {
      const tr = el("tr", kept ? "kept" : "pruned");
      tr.append(el("td", "", path), el("td", "num", size(bytes)),
        el("td", "num", records === null ? "-" : records.toLocaleString("en-US")),
        el("td", "", kept ? "kept" : "pruned"), el("td", "reason", reason));
      body.appendChild(tr);
    }
  }
  columns.forEach((name, i) => {
    const th = el("th", "", name);
    th.addEventListener("click", () => {
      descending = sortBy === i ? !descending : false;
      sortBy = i;
      rows.sort((a, b) => {
        const x = a[i], y = b[i];
        const order = x === y ? 0 : x === null ? -1 : y === null ? 1 : x < y ? -1 : 1;
        return descending ? -order : order;
      });
      const mark = descending ? " ▾" : " ▴";
      for (const [j, cell] of [...head.children].entries()) {
        cell.textContent = columns[j] + (j === i ? mark : "");
      }
      fill();
    });
    head.appendChild(th);
  });
  const thead = el("thead"); thead.appendChild(head);
  table.append(thead, body);
  root.appendChild(table);
  if (data.more > 0) {
    const more = "… " + data.more.toLocaleString("en-US") + " more files in report.files";
    root.appendChild(el("div", "more", more));
  }
  fill();
}
export default { render };
"""


@functools.cache
def _widget_class() -> type:
    # anywidget is imported only when a report is shown, so the engine runs without it.
    import anywidget
    import traitlets

    class PruningView(anywidget.AnyWidget):
        """The pruning report: summary, SVG funnel, file table sortable by any column."""

        _esm = _ESM
        data = traitlets.Dict().tag(sync=True)

    return PruningView


def PruningWidget(report: PruningReport, svg: str | None = None) -> Any:  # noqa: N802  (a factory that reads like a class)
    """An anywidget showing ``report``."""
    return _widget_class()(data=payload(report, svg))


def report_bundle(report: PruningReport) -> dict[str, Any]:
    """Widget view (when a front end is there) plus static HTML and text."""
    try:
        svg = funnel_svg(report)
    except ImportError:  # altair or vl-convert missing: the table and text still show
        svg = None
    bundle: dict[str, Any] = {
        "text/plain": report_text(report),
        "text/html": report_html(report, svg),
    }
    try:
        widget = PruningWidget(report, svg)
    except ImportError:
        return bundle
    widget_bundle = widget._repr_mimebundle_()
    data = widget_bundle[0] if isinstance(widget_bundle, tuple) else widget_bundle
    return {**data, **bundle} if data else bundle

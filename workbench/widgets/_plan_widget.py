"""The anywidget class behind the plan tree (kept apart: it imports anywidget)."""

from __future__ import annotations

import anywidget
import traitlets

_ESM = r"""
function fmtNs(ns) {
  if (ns === null || ns === undefined) return "-";
  const units = [["s", 1e9], ["ms", 1e6], ["µs", 1e3]];
  for (const [u, s] of units) if (ns >= s) return (ns / s).toFixed(1) + " " + u;
  return ns + " ns";
}
function fmtCount(n) { return n === null || n === undefined ? "-" : n.toLocaleString("en-US"); }
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;  // textContent: values are never parsed as HTML
  return e;
}
function render({ model, el: root }) {
  const data = model.get("data");
  const hot = new Set(data.hot || []);
  root.classList.add("wb-tree");
  const style = el("style");
  style.textContent = `
    .wb-tree{font:12px/1.5 system-ui,sans-serif;display:flex;gap:12px}
    .wb-tree .left{flex:3;min-width:0;overflow-x:auto}.wb-tree .right{flex:2;border-left:1px solid #ddd;padding-left:8px;min-width:0}
    .wb-tree .row{display:flex;align-items:center;gap:6px;cursor:pointer;white-space:nowrap;padding:1px 2px}
    .wb-tree .row:hover{background:#f4f6fb}.wb-tree .row.selected{background:#e3ebff}
    .wb-tree .toggle{width:12px;color:#888}.wb-tree .op{font-weight:600}
    .wb-tree .node.hot>.row .op{color:#c0392b}.wb-tree .node.hot>.row{border-left:3px solid #c0392b}
    .wb-tree .bar{height:8px;background:#e67e22;display:inline-block}
    .wb-tree .badge{background:#eef;border-radius:3px;padding:0 4px;font-size:11px}
    .wb-tree .kids{margin-left:16px}.wb-tree .kids.collapsed{display:none}
    .wb-tree .match>.row{outline:1px dashed #2980b9}
    .wb-tree pre{white-space:pre-wrap;word-break:break-all;font-size:11px;color:#444}
    .wb-tree table{border-collapse:collapse}.wb-tree td{padding:1px 6px;border-bottom:1px solid #eee}`;
  root.appendChild(style);
  const left = el("div", "left"), right = el("div", "right");
  root.append(left, right);
  const head = el("div", "head",
    (data.analyzed ? "analyzed" : "planned only") + " · total " + fmtNs(data.total_ns) +
    (data.run_id ? " · run " + data.run_id : ""));
  const search = el("input", "search");
  search.placeholder = "search operators…";
  left.append(head, search);
  const tree = el("div", "nodes");
  left.appendChild(tree);
  right.appendChild(el("div", "hint", "click a node for its details"));
  const nodes = [];
  function details(node, row) {
    for (const r of root.querySelectorAll(".row.selected")) r.classList.remove("selected");
    row.classList.add("selected");
    right.replaceChildren();
    right.appendChild(el("div", "op", "#" + node.id + " " + node.op));
    right.appendChild(el("pre", "details", node.details));
    const t = el("table", "metrics");
    const rows = [
      ["output rows", fmtCount(node.rows)], ["own time", fmtNs(node.ns)],
      ["share of total", (100 * node.share).toFixed(1) + "%"], ["output bytes", fmtCount(node.bytes)],
      ["output batches", fmtCount(node.batches)], ["partitions", fmtCount(node.partitions)]];
    if (node.bytes_scanned !== null && node.bytes_scanned !== undefined) rows.push(["bytes scanned", fmtCount(node.bytes_scanned)]);
    if (node.rows_spread) rows.push(["rows per partition (min/median/max)", node.rows_spread.map(fmtCount).join(" / ")]);
    if (node.time_spread) rows.push(["time per partition (min/median/max)", node.time_spread.map(fmtNs).join(" / ")]);
    for (const [name, total, matched] of node.pruning) rows.push([name, fmtCount(matched) + " matched of " + fmtCount(total)]);
    if (node.spills[0]) rows.push(["spills", node.spills[0] + " (" + fmtCount(node.spills[1]) + " bytes)"]);
    for (const [k, v] of rows) { const tr = el("tr"); tr.append(el("td", "", k), el("td", "", v)); t.appendChild(tr); }
    right.appendChild(t);
  }
  function build(node, parent) {
    const box = el("div", "node" + (hot.has(node.id) && data.analyzed ? " hot" : ""));
    box.dataset.nodeId = node.id;
    const row = el("div", "row");
    const toggle = el("span", "toggle", node.children.length ? "▾" : "");
    row.append(toggle, el("span", "op", "#" + node.id + " " + node.op));
    if (data.analyzed) {
      row.append(el("span", "rows", fmtCount(node.rows) + " rows"), el("span", "time", fmtNs(node.ns)));
      const bar = el("span", "bar"); bar.style.width = Math.max(1, Math.round(node.share * 120)) + "px";
      row.append(bar, el("span", "share", (100 * node.share).toFixed(1) + "%"));
    }
    for (const b of node.badges) row.appendChild(el("span", "badge", b));
    box.appendChild(row);
    const kids = el("div", "kids");
    box.appendChild(kids);
    toggle.addEventListener("click", (ev) => { ev.stopPropagation(); kids.classList.toggle("collapsed");
      toggle.textContent = kids.classList.contains("collapsed") ? "▸" : "▾"; });
    row.addEventListener("click", () => details(node, row));
    nodes.push({ node, box, kids, toggle });
    for (const c of node.children) build(c, kids);
    parent.appendChild(box);
  }
  if (data.show_physical) build(data.root, tree); else search.style.display = "none";
  if (data.logical) { left.appendChild(el("div", "head", "optimized logical plan")); left.appendChild(el("pre", "logical", data.logical)); }
  // Big plans: collapse everything off the hot path below depth 3.
  if (nodes.length > 40) for (const n of nodes) {
    if (!hot.has(n.node.id) && n.node.children.length && n.box.closest(".kids .kids .kids")) {
      n.kids.classList.add("collapsed"); n.toggle.textContent = "▸"; }
  }
  search.addEventListener("input", () => {
    const q = search.value.trim().toLowerCase();
    for (const n of nodes) {
      const hit = q && (n.node.op.toLowerCase().includes(q) || n.node.details.toLowerCase().includes(q));
      n.box.classList.toggle("match", !!hit);
      if (hit) for (let p = n.box.parentElement; p && p !== tree; p = p.parentElement)
        if (p.classList.contains("kids")) p.classList.remove("collapsed");
    }
  });
}
export default { render };
"""


class PlanTreeView(anywidget.AnyWidget):
    """Collapsible plan tree with hot path, time bars, badges, search and a detail panel."""

    _esm = _ESM
    data = traitlets.Dict().tag(sync=True)

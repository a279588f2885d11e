"""Where a TPC-H query's time goes, from the workbench's own analysed plan.

``python -m bench.hotspots [--scale 1] Q [Q ...]`` runs each query through
``%explain --analyze``'s machinery (``Session.sql`` then ``Result.plan()``, the tree the
plan widget shows) with the default profile, and prints the operators with the largest
share of the plan's compute time, their rows, and any spill. docs/performance.md records
its output for the queries furthest behind DuckDB.
"""

from __future__ import annotations

import argparse

import workbench
from workbench import datasets
from workbench.explain import explain

TOP = 4


def hotspots(session: workbench.Session, number: int) -> list[str]:
    """The lines describing query ``number``'s heaviest operators."""
    tree = explain(session, datasets.tpch_query(number), analyze=True)
    assert tree.run_id is not None
    _, record = session.recent(tree.run_id)
    nodes = sorted(tree.nodes, key=lambda n: n.share, reverse=True)[:TOP]
    lines = [f"q{number:02d} ({record.elapsed_s:.2f} s, {len(tree.nodes)} operators):"]
    for node in nodes:
        first = node.details.splitlines()[0][:90] if node.details else ""
        spill = f", spilled {node.spilled_bytes:,} B" if node.spill_count else ""
        rows = f"{node.output_rows:,}" if node.output_rows is not None else "?"
        lines.append(f"  {node.share:5.1%}  {node.label}  rows {rows}{spill}  {first}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotspots", description=__doc__)
    parser.add_argument("queries", nargs="+", type=int)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    session = workbench.RuntimeProfile().session()
    datasets.tpch(args.scale).register(session)
    for number in args.queries:
        print("\n".join(hotspots(session, number)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Rendering plan trees: time and payload of the largest TPC-H plan's views.

The largest plan is the TPC-H query with the most physical operators, run
with ``%explain --analyze`` semantics (``explain(analyze=True)``) on the
demo data. Variants render the same captured tree:

* ``plan tree bundle``: what a notebook receives, the anywidget view plus the
  escaped static HTML and the text (``PlanTree._repr_mimebundle_``);
* ``static HTML + text``: the fallbacks alone;
* ``datafusion display_indent`` (baseline): DataFusion's own text of the plan.

Targets from the issue: well under 100 ms in Python, payload under 200 KB.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import workbench
from bench.harness import Case, Sample, by_case
from workbench import datasets, plans
from workbench.explain import explain
from workbench.widgets.plan_tree import payload, plan_html, plan_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.harness import Measurement

BUNDLE = "plan tree bundle (widget + HTML + text)"
STATIC = "static HTML + text"
BASELINE = "datafusion display_indent"
TARGET_MS = 100
TARGET_KB = 200


def _largest_plan(scale: float) -> tuple[int, plans.PlanTree, Any]:
    session = workbench.RuntimeProfile().session()
    datasets.tpch(scale).register(session)
    trees = {n: explain(session, datasets.tpch_query(n), analyze=True) for n in range(1, 23)}
    number = max(trees, key=lambda n: len(trees[n].nodes))
    df, _ = session.recent(str(trees[number].run_id))
    return number, trees[number], df


def _sized(render: Callable[[], Any], size: Callable[[Any], int]) -> Callable[[], Sample]:
    def run() -> Sample:
        started = time.perf_counter()
        rendered = render()
        seconds = time.perf_counter() - started
        return Sample(seconds, metrics={"payload_kb": round(size(rendered) / 1024, 1)})

    return run


def _bundle_bytes(bundle: dict[str, Any]) -> int:
    return len(json.dumps(bundle, default=str).encode())


def cases(quick: bool) -> list[Case]:  # noqa: FBT001
    number, tree, df = _largest_plan(0.01 if quick else 0.1)
    widget_payload = len(json.dumps(payload(tree)).encode())
    return [
        Case(
            name=f"TPC-H q{number:02d} plan ({len(tree.nodes)} operators, widget data {widget_payload / 1024:.1f} KB)",
            group="plans",
            baseline=BASELINE,
            variants={
                # The widget's data travels over the comm, beside the bundle: count both.
                BUNDLE: _sized(tree._repr_mimebundle_, lambda b: _bundle_bytes(b) + widget_payload),
                STATIC: _sized(
                    lambda: (plan_html(tree), plan_text(tree)), lambda r: len("".join(r).encode())
                ),
                BASELINE: _sized(
                    lambda: df.execution_plan().display_indent(), lambda r: len(r.encode())
                ),
            },
            repeats=5 if quick else 15,
            subject=BUNDLE,
            note=f"targets: render well under {TARGET_MS} ms in Python, payload under {TARGET_KB} KB",
        )
    ]


def summary(measurements: list[Measurement], *, quick: bool) -> str:  # noqa: ARG001
    lines = []
    for case, variants in by_case(measurements).items():
        mine = variants[BUNDLE]
        if mine.median_s is None:
            lines.append(f"- {case}: the notebook bundle failed to render: {mine.error}")
            continue
        ms, kb = mine.median_s * 1000, mine.metrics.get("payload_kb", float("nan"))
        verdict = "met" if ms < TARGET_MS and kb < TARGET_KB else "MISSED"
        lines.append(
            f"- {case}: the notebook bundle renders in {ms:.1f} ms with a {kb:.1f} KB payload "
            f"(targets < {TARGET_MS} ms and < {TARGET_KB} KB: {verdict})."
        )
    return "\n".join(lines)

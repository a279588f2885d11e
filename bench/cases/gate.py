"""The SQL gate and the plan cache: their cost end to end, each step alone, and a hit.

Issue 15 asks bench/ to show the gate's overhead (target: under 5% end to end at
scale 1) and the plan cache's hit time. Four kinds of case, over the TPC-H demo
data (scale 1; 0.01 in quick mode):

* ``end to end: qNN``: the query through ``Session.sql``, every row streamed out,
  in two sessions over the same files: the gate on and the plan cache off, so
  every run pays the gate and DataFusion's planning (the subject), against the
  gate off (``RuntimeProfile(sql_gate=False)``, the baseline). Before each gated
  run ``Gate.changed()`` (the public way to say the catalog changed) puts the
  gate's memo out of reach, so it analyses the statement as on first sight, as
  it does for a newly typed cell; a repeated statement pays only the memo's
  catalog read. q15 (create view; select; drop view) goes whole, as one cell,
  and pays the gate once per statement and again for the select once its view
  exists. The report gives the ratio of the summed medians, and the sum of the
  paired differences (each repeat's two runs are next to each other in time),
  which load from other work on a shared machine moves least.
* ``planning: qNN``: the steps before execution, each timed alone (mean of a few
  calls per sample): DataFusion's ``ctx.sql`` (parse and plan, the baseline);
  ``Gate.prepare`` on first sight (a fresh :class:`Gate`, so no memo) and on a
  memo hit (the read of the live schema); a plan cache miss (``ctx.sql`` and the
  optimized plan: what ``PlanCache.put`` times as ``compile_s`` besides the gate)
  and a hit (the DataFrame built from the cached optimized plan); and
  ``Session.sql`` up to the planned Result, plan cache cleared (miss: plans, and
  stores the plan with its Substrait) and plan cached (hit). For q15, the select,
  with its view in place.
* ``plan cache end to end: ...``: short queries (q06, and a point lookup over two
  small tables, where planning is most of the time) through a default session,
  plan cache miss (the baseline) against hit, and the gate off for reference.
* ``ibis compile: qNN`` and ``ibis end to end: qNN``: the expressions of
  :mod:`workbench.ibis_lane.tpch`, direct lane against SQL lane (Ibis writes SQL,
  the gate reads it, DataFusion plans it). An expression the direct lane does not
  cover (q18) takes the SQL lane in both, as ``Session.run`` does.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any

import workbench
from bench import peers
from bench.harness import Case, Sample, by_case, geometric_means
from workbench import datasets, ibis_lane
from workbench.ibis_lane import tpch as ibis_tpch
from workbench.ingress.gate import Gate

if TYPE_CHECKING:
    from collections.abc import Callable

    import datafusion
    import ibis

    from bench.harness import Measurement

TARGET = 0.05
"""The gate's end-to-end overhead at scale 1, over the 22 queries' total time."""

GATE_ON = "gate on, plan cache off"
GATE_OFF = "gate off"

PLAN = "ctx.sql (DataFusion plans)"
GATE_FIRST = "gate.prepare, first sight"
GATE_MEMO = "gate.prepare, memo hit"
MISS = "plan cache miss (ctx.sql + optimize)"
HIT = "plan cache hit (DataFrame from cached plan)"
SESSION_MISS = "Session.sql to a planned Result, cache miss"
SESSION_HIT = "Session.sql to a planned Result, cache hit"

E2E_MISS = "plan cache miss"
E2E_HIT = "plan cache hit"

DIRECT = "direct lane"
SQL_LANE = "SQL lane"

POINT_QUERY = (
    "SELECT n_name, r_name FROM nation JOIN region ON n_regionkey = r_regionkey "
    "WHERE n_nationkey = 7"
)
_CALLS = 5
"""Calls per sample of a planning step: one is too short for a shared machine's clock."""


def cases(quick: bool) -> list[Case]:  # noqa: FBT001
    data = datasets.tpch(0.01 if quick else 1)
    gated = _session(data, sql_gate=True, plan_cache=False)
    ungated = _session(data, sql_gate=False, plan_cache=True)
    planner = _session(data, sql_gate=True, plan_cache=True)
    # q15's select plans against its view: keep the view in the planner's catalog.
    create_view, select_15, _ = peers.statements(datasets.tpch_query(15))
    _consume(planner.sql(create_view))
    texts = {n: select_15 if n == 15 else datasets.tpch_query(n) for n in range(1, 23)}
    con = gated.ibis()
    exprs = {n: make(con) for n, make in ibis_tpch.QUERIES.items()}
    for expr in exprs.values():
        _sql_lane_plan(expr, gated.ctx)  # Ibis's compiler warms up once, outside any case
    repeats, calls = (2, 1) if quick else (11, _CALLS)
    planning_repeats = 3 if quick else 15
    return [
        *[_end_to_end(n, gated, ungated, repeats=repeats) for n in range(1, 23)],
        *[
            _planning(n, texts[n], planner, repeats=planning_repeats, calls=calls)
            for n in range(1, 23)
        ],
        _plan_cache_end_to_end("q06", datasets.tpch_query(6), planner, ungated, repeats),
        _plan_cache_end_to_end("point query", POINT_QUERY, planner, ungated, planning_repeats),
        *[
            _ibis_compile(n, expr, gated.ctx, repeats=planning_repeats, calls=calls)
            for n, expr in exprs.items()
        ],
        *[_ibis_end_to_end(n, expr, gated, repeats=repeats) for n, expr in exprs.items()],
    ]


def _session(
    data: datasets.TpchData,
    *,
    sql_gate: bool,
    plan_cache: bool,
) -> workbench.Session:
    session = workbench.RuntimeProfile(sql_gate=sql_gate, plan_cache=plan_cache).session()
    data.register(session)
    # First calls pay one-off costs (planners, the gate's first schema read): not a case's.
    _consume(session.sql("SELECT count(*) FROM nation"))
    return session


def _consume(result: workbench.Result) -> int:
    return sum(batch.num_rows for batch in result)


def _timed(run: Callable[[], workbench.Result], before: Callable[[], None]) -> Sample:
    """Time ``run`` with every row streamed out; ``before`` is set-up, off the clock."""
    before()
    started = time.perf_counter()
    rows = _consume(run())
    seconds = time.perf_counter() - started
    return Sample(seconds, {"rows": rows}, rows)


def _nothing() -> None:
    pass


def _warm(run: Callable[[], object]) -> None:
    """Run once, untimed (a case's set-up): the plan cache holds the query's plan after."""
    run()


# -- the gate, end to end ---------------------------------------------------------


def _end_to_end(
    number: int, gated: workbench.Session, ungated: workbench.Session, *, repeats: int
) -> Case:
    sql = datasets.tpch_query(number)
    return Case(
        name=f"end to end: q{number:02d}",
        group="gate",
        baseline=GATE_OFF,
        variants={
            GATE_ON: lambda: _timed(lambda: gated.sql(sql), gated.gate.changed),
            GATE_OFF: lambda: _timed(lambda: ungated.sql(sql), _nothing),
        },
        repeats=repeats,
        check=_rows_agree,
        subject=GATE_ON,
    )


def _rows_agree(last: dict[str, Any]) -> None:
    assert len(set(last.values())) <= 1, f"the variants returned different row counts: {last}"


# -- each step before execution, alone --------------------------------------------


def _per_call(
    step: Callable[[], object], calls: int, before: Callable[[], None] = _nothing
) -> Callable[[], Sample]:
    """A variant whose sample is the mean time of ``calls`` calls of ``step``."""

    def run() -> Sample:
        seconds = 0.0
        for _ in range(calls):
            before()
            started = time.perf_counter()
            step()
            seconds += time.perf_counter() - started
        return Sample(seconds / calls)

    return run


def _planning(
    number: int, sql: str, session: workbench.Session, *, repeats: int, calls: int
) -> Case:
    ctx = session.ctx
    memo = Gate(ctx)
    memo.prepare(sql)
    optimized = ctx.sql(sql).optimized_logical_plan()

    def miss() -> None:
        ctx.sql(sql).optimized_logical_plan()

    return Case(
        name=f"planning: q{number:02d}",
        group="gate",
        baseline=PLAN,
        variants={
            PLAN: _per_call(lambda: ctx.sql(sql), calls),
            GATE_FIRST: _per_call(lambda: Gate(ctx).prepare(sql), calls),
            GATE_MEMO: _per_call(lambda: memo.prepare(sql), calls),
            MISS: _per_call(miss, calls),
            HIT: _per_call(lambda: ctx.create_dataframe_from_logical_plan(optimized), calls),
            SESSION_MISS: _per_call(
                lambda: _planned(session, sql), calls, session.plan_cache.clear
            ),
            SESSION_HIT: _per_call(lambda: _planned(session, sql), calls),
        },
        repeats=repeats,
        # Right before the case: another case's cache miss may have cleared the cache.
        setup=lambda: _warm(lambda: _planned(session, sql)),
        check=lambda _: _hits(session, sql),
    )


def _planned(session: workbench.Session, sql: str) -> workbench.Result:
    result = session.sql(sql)
    result.close_planned()  # ends the run: it was planned to be timed, not to be read
    return result


def _hits(session: workbench.Session, sql: str) -> None:
    cache = _planned(session, sql).run.plan_cache
    assert cache == "hit", f"a repeated query missed the plan cache ({cache})"


# -- the plan cache, end to end -----------------------------------------------------


def _plan_cache_end_to_end(
    name: str,
    sql: str,
    session: workbench.Session,
    ungated: workbench.Session,
    repeats: int,
) -> Case:
    return Case(
        name=f"plan cache end to end: {name}",
        group="gate",
        baseline=E2E_MISS,
        variants={
            E2E_MISS: lambda: _timed(lambda: session.sql(sql), session.plan_cache.clear),
            E2E_HIT: lambda: _timed(lambda: session.sql(sql), _nothing),
            GATE_OFF: lambda: _timed(lambda: ungated.sql(sql), _nothing),
        },
        repeats=repeats,
        setup=lambda: _warm(lambda: _consume(session.sql(sql))),
        check=_rows_agree,
        subject=E2E_HIT,
    )


# -- the Ibis lanes -----------------------------------------------------------------


def _sql_lane_plan(expr: ibis.Table, ctx: datafusion.SessionContext) -> datafusion.DataFrame:
    """What the SQL lane does before execution: Ibis's SQL, the gate (first sight), a plan."""
    return ctx.sql(Gate(ctx).prepare(ibis_lane.sql_text(expr)).text)


def _direct_plan(expr: ibis.Table, ctx: datafusion.SessionContext) -> datafusion.DataFrame:
    compiled = ibis_lane.compile(expr, ctx)
    if compiled.df is None:  # not covered: Session.run falls back to the SQL lane
        return _sql_lane_plan(expr, ctx)
    return compiled.df


def _ibis_compile(
    number: int, expr: ibis.Table, ctx: datafusion.SessionContext, *, repeats: int, calls: int
) -> Case:
    gaps = ibis_lane.compile(expr, ctx).gaps
    return Case(
        name=f"ibis compile: q{number:02d}",
        group="gate",
        baseline=SQL_LANE,
        variants={
            DIRECT: _per_call(lambda: _direct_plan(expr, ctx), calls),
            SQL_LANE: _per_call(lambda: _sql_lane_plan(expr, ctx), calls),
        },
        repeats=repeats,
        note=f"the direct lane lacks {', '.join(gaps)}: both run the SQL lane" if gaps else "",
    )


def _ibis_end_to_end(
    number: int, expr: ibis.Table, session: workbench.Session, *, repeats: int
) -> Case:
    return Case(
        name=f"ibis end to end: q{number:02d}",
        group="gate",
        baseline=SQL_LANE,
        variants={
            DIRECT: lambda: _timed(lambda: session.run(expr), session.gate.changed),
            SQL_LANE: lambda: _timed(
                lambda: session.sql(ibis_lane.sql_text(expr)), session.gate.changed
            ),
        },
        repeats=repeats,
        check=_rows_agree,
    )


# -- the report ---------------------------------------------------------------------


def summary(measurements: list[Measurement], *, quick: bool) -> str:
    cases = by_case(measurements)
    kinds: dict[str, dict[str, dict[str, Measurement]]] = {}
    for name, variants in cases.items():
        kind, _, label = name.rpartition(": ")
        kinds.setdefault(kind, {})[label] = variants
    lines = [
        *_overhead_section(kinds.get("end to end", {}), kinds.get("planning", {}), quick=quick),
        "",
        *_planning_section(kinds.get("planning", {})),
        "",
        *_plan_cache_section(kinds.get("planning", {}), kinds.get("plan cache end to end", {})),
        "",
        *_ibis_section(kinds.get("ibis compile", {}), kinds.get("ibis end to end", {})),
    ]
    return "\n".join(lines)


def _totals(end_to_end: dict[str, dict[str, Measurement]]) -> tuple[float, float] | None:
    """Total seconds (sums of the queries' medians) with the gate off and on, or None if
    a query failed either way."""
    off = [v[GATE_OFF].median_s for v in end_to_end.values()]
    on = [v[GATE_ON].median_s for v in end_to_end.values()]
    if not off or None in off or None in on:
        return None
    return sum(x for x in off if x is not None), sum(x for x in on if x is not None)


def _paired(variants: dict[str, Measurement]) -> float | None:
    """Median of the repeats' differences, gate on minus gate off, in seconds.

    The two runs of a repeat are next to each other in time, so a load that comes and
    goes on a shared machine cancels out of their difference more than out of medians
    taken apart.
    """
    on, off = variants[GATE_ON], variants[GATE_OFF]
    if on.median_s is None or off.median_s is None:
        return None
    return statistics.median(a - b for a, b in zip(on.times_s, off.times_s, strict=True))


def _overhead_section(
    end_to_end: dict[str, dict[str, Measurement]],
    planning: dict[str, dict[str, Measurement]],
    *,
    quick: bool,
) -> list[str]:
    scale = 0.01 if quick else 1
    lines = [
        "### The gate's overhead, end to end",
        "",
        (
            f"TPC-H scale {scale}, the 22 queries through `Session.sql`, every row streamed out; "
            f"`{GATE_ON}` pays the gate on first sight (memo out of reach) and DataFusion's "
            f"planning on every run, `{GATE_OFF}` is `RuntimeProfile(sql_gate=False)`. "
            f"Target: total overhead under {TARGET:.0%} at scale 1. The paired difference is "
            "the median over the repeats of (gate on - gate off), the two runs of a repeat "
            "being next to each other in time."
        ),
        "",
        (
            "| query | gate off | gate on | difference | overhead | paired difference "
            "| gate.prepare alone |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, variants in end_to_end.items():
        off, on = variants[GATE_OFF].median_s, variants[GATE_ON].median_s
        alone = planning.get(label, {}).get(GATE_FIRST)
        gate_ms = _ms(alone.median_s) if alone is not None else ""
        if off is None or on is None:
            lines.append(f"| {label} | {_ms(off)} | {_ms(on)} | n/a | n/a | n/a | {gate_ms} |")
            continue
        lines.append(
            f"| {label} | {_ms(off)} | {_ms(on)} | {(on - off) * 1000:+.1f} ms | "
            f"{on / off - 1:+.1%} | {_signed_ms(_paired(variants))} | {gate_ms} |"
        )
    totals = _totals(end_to_end)
    if totals is None:
        return [*lines, "", "- total: n/a (a query failed; see the table above)."]
    off_s, on_s = totals
    ratio = on_s / off_s - 1
    paired_s = sum(d for v in end_to_end.values() if (d := _paired(v)) is not None)
    means, _ = geometric_means(m for v in end_to_end.values() for m in v.values())
    gate_s = sum(
        m.median_s
        for v in planning.values()
        if (m := v.get(GATE_FIRST)) is not None and m.median_s is not None
    )
    lines += [
        (
            f"| total | {_ms(off_s)} | {_ms(on_s)} | {(on_s - off_s) * 1000:+.1f} ms | "
            f"{ratio:+.1%} | {_signed_ms(paired_s)} | {_ms(gate_s)} |"
        ),
        "",
        (
            f"- total overhead of the gate: {ratio:+.1%} ({_ms(on_s)} vs {_ms(off_s)}, "
            f"target < {TARGET:.0%}: {_verdict(ratio)})."
        ),
        (
            f"- paired: the queries' paired differences sum to {_signed_ms(paired_s)}, "
            f"{paired_s / off_s:+.1%} of the gate-off total (target < {TARGET:.0%}: "
            f"{_verdict(paired_s / off_s)})."
        ),
        (
            f"- the gate's own time alone (first sight, once per query; q15's select only) "
            f"sums to {_ms(gate_s)}, {gate_s / off_s:.1%} of the gate-off total (target < "
            f"{TARGET:.0%}: {_verdict(gate_s / off_s)}); geometric mean of the per-query "
            f"ratios: {means.get(GATE_ON, float('nan')):.3f}."
        ),
    ]
    return lines


def _verdict(overhead: float) -> str:
    return "met" if overhead < TARGET else "MISSED"


def _planning_section(planning: dict[str, dict[str, Measurement]]) -> list[str]:
    lines = [
        "### The gate alone, against DataFusion's planning",
        "",
        (
            "Each step before execution, mean of a few calls per sample, median of the samples. "
            "`gate.prepare` on first sight parses, rewrites, qualifies, annotates and "
            "canonicalizes with SQLGlot after reading the live schema from "
            "`information_schema`; on a memo hit only the schema read is left."
        ),
        "",
        "| query | ctx.sql (plan) | gate, first sight | gate / plan | gate, memo hit |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, v in planning.items():
        plan, first, memo = v[PLAN], v[GATE_FIRST], v[GATE_MEMO]
        lines.append(
            f"| {label} | {_ms(plan.median_s, 2)} | {_ms(first.median_s, 2)} | "
            f"{_times(first.ratio)} | {_ms(memo.median_s, 2)} |"
        )
    return lines


def _plan_cache_section(
    planning: dict[str, dict[str, Measurement]],
    end_to_end: dict[str, dict[str, Measurement]],
) -> list[str]:
    lines = [
        "### The plan cache",
        "",
        (
            "A miss plans and optimizes (and `Session.sql` also stores the plan with its "
            "Substrait); a hit builds the DataFrame from the cached optimized plan. "
            "`Session.sql` includes the gate on a memo hit, the cache key and the run's record."
        ),
        "",
        (
            "| query | ctx.sql + optimize (miss) | DataFrame from cached plan (hit) | miss / hit "
            "| Session.sql, miss | Session.sql, hit | miss / hit |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, v in planning.items():
        lines.append(
            f"| {label} | {_ms(v[MISS].median_s, 2)} | {_ms(v[HIT].median_s, 3)} | "
            f"{_over(v[MISS], v[HIT])} | {_ms(v[SESSION_MISS].median_s, 2)} | "
            f"{_ms(v[SESSION_HIT].median_s, 2)} | {_over(v[SESSION_MISS], v[SESSION_HIT])} |"
        )
    hits = [m.median_s for v in planning.values() if (m := v[SESSION_HIT]).median_s is not None]
    raw = [m.median_s for v in planning.values() if (m := v[HIT]).median_s is not None]
    if hits and raw:
        lines += [
            "",
            (
                f"- plan cache hit time, median over the queries: {_ms(statistics.median(hits), 2)} "
                f"from SQL text to a planned Result (`Session.sql`), of which building the "
                f"DataFrame from the cached plan is {_ms(statistics.median(raw), 3)}."
            ),
        ]
    lines += [
        "",
        "End to end, a short query through a default session (every row streamed out):",
        "",
        f"| query | {E2E_MISS} | {E2E_HIT} | miss / hit | {GATE_OFF} | hit / gate off |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, v in end_to_end.items():
        miss, hit, off = v[E2E_MISS], v[E2E_HIT], v[GATE_OFF]
        lines.append(
            f"| {label} | {_ms(miss.median_s, 2)} | {_ms(hit.median_s, 2)} | {_over(miss, hit)} "
            f"| {_ms(off.median_s, 2)} | {_over(hit, off)} |"
        )
    return lines


def _ibis_section(
    compile_cases: dict[str, dict[str, Measurement]],
    end_to_end: dict[str, dict[str, Measurement]],
) -> list[str]:
    lines = [
        "### The Ibis lanes",
        "",
        (
            "The TPC-H expressions of `workbench.ibis_lane.tpch`: the direct lane builds the "
            "plan with DataFusion's DataFrame API; the SQL lane has Ibis write SQL, which the "
            "gate reads (first sight) and DataFusion plans. End to end through `Session.run` "
            "and `Session.sql` with the plan cache off."
        ),
        "",
        (
            "| query | compile, direct | compile, SQL lane | direct / SQL | end to end, direct "
            "| end to end, SQL lane | direct / SQL |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, v in compile_cases.items():
        run = end_to_end.get(label, {})
        direct, sql = run.get(DIRECT), run.get(SQL_LANE)
        lines.append(
            f"| {label} | {_ms(v[DIRECT].median_s, 2)} | {_ms(v[SQL_LANE].median_s, 2)} | "
            f"{_times(v[DIRECT].ratio)} | {_ms(direct.median_s if direct else None)} | "
            f"{_ms(sql.median_s if sql else None)} | {_times(direct.ratio if direct else None)} |"
        )
    notes = [
        f"- {label}: {v[DIRECT].note}." for label, v in compile_cases.items() if v[DIRECT].note
    ]
    return [*lines, "", *notes] if notes else lines


def _over(numerator: Measurement, denominator: Measurement) -> str:
    a, b = numerator.median_s, denominator.median_s
    return "n/a" if a is None or not b else f"{a / b:.1f}x"


def _times(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def _signed_ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:+.1f} ms"


def _ms(seconds: float | None, digits: int = 1) -> str:
    return "failed" if seconds is None else f"{seconds * 1000:.{digits}f} ms"

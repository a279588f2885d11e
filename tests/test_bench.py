"""bench/: the harness's arithmetic and report on declared data, and a quick run of every case.

The quick run measures nothing worth keeping (tiny inputs, a busy machine); its
tests check that every case runs, that the workbench's results agree with
DataFusion's, and that what the report prints is what the JSON holds.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench import harness
from bench.cases import bigdata, cluster, ladder, layout, profile
from bench.harness import Case, Measurement, Sample
from workbench import datasets

from .conftest import REPO, run_python

GROUPS = {
    "cdf",
    "udf",
    "ladder",
    "tpch",
    "large",
    "overhead",
    "plans",
    "hashing",
    "delta",
    "gate",
    "profile",
    "bigdata",
    "layout",
    "cluster",
}


# -- the harness, on declared variants ----------------------------------------------


def _clocked(seconds: list[float], calls: list[str], name: str):
    """A variant whose n-th call takes ``seconds[n]`` by its own clock."""
    times = iter(seconds)

    def run() -> Sample:
        calls.append(name)
        return Sample(next(times), value=name)

    return run


def test_run_case_rotates_the_order_and_reports_medians_and_ratios_to_the_baseline():
    calls: list[str] = []
    seen: dict = {}
    case = Case(
        name="c",
        group="g",
        baseline="base",
        variants={
            "base": _clocked([2.0, 4.0, 3.0], calls, "base"),
            "fast": _clocked([1.0, 9.0, 1.5], calls, "fast"),
            "slow": _clocked([6.0, 5.0, 7.0], calls, "slow"),
        },
        check=lambda last: seen.update(last) or "checked",
        note="n",
    )
    by_variant = {m.variant: m for m in harness.run_case(case)}
    assert calls == ["base", "fast", "slow", "fast", "slow", "base", "slow", "base", "fast"]
    assert by_variant["base"].times_s == [2.0, 4.0, 3.0]
    assert by_variant["fast"].times_s == [1.0, 9.0, 1.5]
    assert {v: m.median_s for v, m in by_variant.items()} == {"base": 3.0, "fast": 1.5, "slow": 6.0}
    assert by_variant["fast"].ratio == pytest.approx(0.5)
    assert by_variant["slow"].ratio == pytest.approx(2.0)
    assert seen == {"base": "base", "fast": "fast", "slow": "slow"}
    assert {m.note for m in by_variant.values()} == {"n checked"}


def test_a_failing_variant_is_reported_once_and_the_others_go_on():
    calls: list[str] = []

    def broken() -> None:
        calls.append("broken")
        raise ValueError("no such function: py_udf\nsecond line")

    case = Case(
        name="c",
        group="g",
        baseline="base",
        variants={"base": _clocked([1.0, 1.0, 1.0], calls, "base"), "broken": broken},
    )
    by_variant = {m.variant: m for m in harness.run_case(case)}
    assert calls.count("broken") == 1  # a failure is a result, not noise: no retries
    assert calls.count("base") == 3
    broken_m = by_variant["broken"]
    assert (broken_m.median_s, broken_m.ratio) == (None, None)
    assert broken_m.error == "ValueError: no such function: py_udf"
    row = harness._row(broken_m, [])
    assert "| failed: ValueError: no such function: py_udf | n/a |" in row


def test_a_failed_baseline_leaves_every_ratio_unknown():
    def broken() -> None:
        raise RuntimeError("down")

    case = Case(
        name="c",
        group="g",
        baseline="base",
        variants={"base": broken, "other": lambda: Sample(2.0)},
        repeats=1,
    )
    other = {m.variant: m for m in harness.run_case(case)}["other"]
    assert (other.median_s, other.ratio) == (2.0, None)
    assert "| 2000.0 ms | n/a (base failed) |" in harness._row(other, [])


def _m(case: str, variant: str, median: float | None, ratio: float | None, **kw) -> Measurement:
    fields = {"group": "g", "baseline": "raw", "subject": "wb", "metrics": {}} | kw
    times = [median] if median is not None else []
    return Measurement(
        case=case, variant=variant, median_s=median, times_s=times, ratio=ratio, **fields
    )


def test_geometric_means_cover_only_the_cases_every_variant_ran():
    ms = [
        _m("q1", "raw", 1.0, 1.0),
        _m("q1", "wb", 2.0, 2.0),
        _m("q2", "raw", 1.0, 1.0),
        _m("q2", "wb", 8.0, 8.0),
        _m("q3", "raw", 1.0, 1.0),
        _m("q3", "wb", None, None, error="boom"),
    ]
    means, complete = harness.geometric_means(ms)
    assert complete == ["q1", "q2"]
    assert means == {"raw": pytest.approx(1.0), "wb": pytest.approx(4.0)}
    assert harness.ratio_table(ms)[-1] == "| q3 | 1.00 | failed |"


def test_the_slower_section_lists_each_loss_with_its_factor_and_only_losses():
    ms = [
        _m("lost", "raw", 0.010, 1.0),
        _m("lost", "wb", 0.020, 2.0, metrics={"peak_rss_mb": 30.0}),
        _m("lost", "peer", 0.040, 4.0, metrics={"peak_rss_mb": 10.0}),
        _m("won", "raw", 0.010, 1.0),
        _m("won", "wb", 0.005, 0.5),
        _m("heavier", "raw", 0.010, 1.0, metrics={"peak_rss_mb": 10.0}),
        _m("heavier", "wb", 0.005, 0.5, metrics={"peak_rss_mb": 15.0}),
        _m("failed", "raw", 0.010, 1.0),
        _m("failed", "wb", None, None, error="Boom: x"),
    ]
    assert harness.workbench_slower(ms) == [
        "- g: behind at least one peer (slower, more peak memory, or failed) in 3 of 4 cases.",
        "",
        "- g / lost: wb is 2.00x slower than raw (20.0 ms vs 10.0 ms)",
        "- g / lost: wb uses 3.00x the peak memory of peer (30.0 MB vs 10.0 MB)",
        "- g / heavier: wb uses 1.50x the peak memory of raw (15.0 MB vs 10.0 MB)",
        "- g / failed: wb failed (Boom: x)",
    ]


class _Answers:
    """A stand-in session whose every query returns ``rows`` (a list of dicts)."""

    def __init__(self, rows):
        self.rows = rows

    def sql(self, _text):
        return [pa.RecordBatch.from_pylist(self.rows)] if self.rows else []


def test_a_profile_setting_that_changes_an_answer_fails_and_order_or_rounding_does_not():
    answer = [{"k": "a", "x": 1.0, "d": Decimal("2.50")}, {"k": "b", "x": 2.0, "d": None}]
    sessions: dict[str, Any] = {  # stand-ins for workbench.Session
        profile.DEFAULTS: _Answers(answer),
        "reordered, summed otherwise": _Answers(
            [{"k": "b", "x": 2.0 + 1e-12, "d": None}, {"k": "a", "x": 1.0, "d": Decimal("2.50")}]
        ),
        "another value": _Answers([answer[0], {"k": "b", "x": 2.5, "d": None}]),
        "a row short": _Answers(answer[:1]),
    }
    measured = {m.variant: m for m in harness.run_case(profile._case(1, sessions, repeats=2))}
    assert measured[profile.DEFAULTS].error is None
    assert measured["reordered, summed otherwise"].error is None
    assert measured["reordered, summed otherwise"].metrics["rows"] == 2
    assert "answer differs from defaults: sorted row 1 is ('b', 2.5, None)" in (
        measured["another value"].error or ""
    )
    assert measured["another value"].ratio is None
    assert measured["a row short"].error == "answer differs from defaults: 1 rows, expected 2"


def test_the_probe_measures_the_step_not_the_peak_before_it():
    code = """
        import json
        from pathlib import Path
        from bench import probe

        def spiky(_parquet, _out):
            spike = b"x" * (400 << 20)  # a peak during set-up, freed before the step
            del spike

            def step():
                block = b"x" * (64 << 20)
                return len(block) // (1 << 20)

            return step

        probe.VARIANTS["spiky"] = spiky
        probe.VARIANTS["idle"] = lambda _parquet, _out: lambda: None
        print(json.dumps([probe.measure(name, Path("unused")) for name in ("spiky", "idle")]))
    """
    spiky, idle = json.loads(run_python(code))
    assert spiky["peak_source"] == idle["peak_source"] == "VmHWM"
    assert spiky["rows"] == 64
    assert 60 <= spiky["peak_rss_mb"] < 120, spiky  # the step's 64 MB, not set-up's 400 MB
    assert idle["peak_rss_mb"] < 16, idle
    assert "rows" not in idle


# -- a quick run of every case ------------------------------------------------------


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    (json_file,) = out.glob("*.json")
    (md_file,) = out.glob("*.md")
    return done.stdout, json.loads(json_file.read_text()), md_file.read_text()


def _section(markdown: str, heading: str) -> str:
    return markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_report_prints_what_the_json_holds(quick_run):
    stdout, report, markdown = quick_run
    assert stdout.startswith(markdown)
    assert report["quick"] is True
    assert report["machine"]["cpus"] == os.cpu_count()
    for m in report["measurements"]:
        where = f"| {m['group']} | {m['case']} | {m['variant']} |"
        if m["error"] is not None:
            assert f"{where} failed: " in markdown, where
        else:
            assert f"{where} {m['median_s'] * 1000:.1f} ms | {m['ratio']:.2f}x of " in markdown


def test_each_ratio_is_the_median_over_the_baselines_median(quick_run):
    _, report, _ = quick_run
    medians = {(m["case"], m["variant"]): m["median_s"] for m in report["measurements"]}
    for m in report["measurements"]:
        if m["error"] is not None:
            assert (m["median_s"], m["ratio"]) == (None, None)
            continue
        assert m["median_s"] == statistics.median(m["times_s"])
        base = medians[(m["case"], m["baseline"])]
        assert m["ratio"] == pytest.approx(m["median_s"] / base), m


def test_quick_mode_runs_every_group_and_the_workbench_never_fails(quick_run):
    _, report, _ = quick_run
    measurements = report["measurements"]
    assert {m["group"] for m in measurements} == GROUPS
    subjects = [m for m in measurements if m["variant"] == m["subject"]]
    assert {m["group"] for m in subjects} == GROUPS
    assert [m for m in subjects if m["error"] is not None] == []


def test_tpch_runs_22_queries_through_five_tools_and_the_workbench_agrees_with_datafusion(
    quick_run,
):
    _, report, markdown = quick_run
    tpch = [m for m in report["measurements"] if m["group"] == "tpch"]
    assert {m["case"] for m in tpch} == {f"q{n:02d}" for n in range(1, 23)}
    variants = {
        "%%dfsql (workbench)",
        "datafusion raw",
        "jupysql + duckdb",
        "magic-duckdb",
        "polars sql",
    }
    assert {m["variant"] for m in tpch} == variants
    rows = {(m["case"], m["variant"]): m["metrics"].get("rows") for m in tpch}
    for n in range(1, 23):
        case = f"q{n:02d}"
        assert rows[(case, "%%dfsql (workbench)")] == rows[(case, "datafusion raw")], case
    assert sum(rows[(f"q{n:02d}", "datafusion raw")] for n in range(1, 23)) > 0
    # The geometric means printed are those of the JSON's ratios, over the complete cases.
    section = _section(markdown, "tpch")
    complete = [
        case
        for case in {m["case"] for m in tpch}
        if all(m["ratio"] is not None for m in tpch if m["case"] == case)
    ]
    for variant in variants:
        logs = [
            math.log(m["ratio"]) for m in tpch if m["variant"] == variant and m["case"] in complete
        ]
        printed = float(section.split(f"\n| {variant} | ", 1)[1].split(" |", 1)[0])
        assert printed == pytest.approx(math.exp(statistics.fmean(logs)), abs=0.006), variant
        assert f"\n- {variant}: " in section  # what the tool hands the user


def test_large_runs_every_probe_and_each_export_writes_every_row(quick_run):
    _, report, _ = quick_run
    large = [m for m in report["measurements"] if m["group"] == "large"]
    assert {m["case"] for m in large} == {"lineitem: first preview", "lineitem: export to Parquet"}
    assert len(large) == 8
    assert all(m["error"] is None for m in large), large
    assert all("peak_rss_mb" in m["metrics"] for m in large)
    lineitem = datasets.tpch(0.01).row_counts["lineitem"]
    exports = [m for m in large if m["case"] == "lineitem: export to Parquet"]
    assert [m["metrics"]["rows"] for m in exports] == [lineitem] * 3


def test_the_slower_section_and_the_overhead_table_follow_the_measurements(quick_run):
    _, report, markdown = quick_run
    slower = _section(markdown, "Where the workbench is slower")
    by_case = harness.by_case(
        Measurement(**m)
        for m in report["measurements"]  # the JSON is the dataclass, field for field
    )
    for case, variants in by_case.items():
        subject = variants.get(next(iter(variants.values())).subject)
        if subject is None:
            continue
        assert subject.median_s is not None
        lost = any(
            m is not subject and m.median_s is not None and m.median_s < subject.median_s
            for m in variants.values()
        )
        line = f"\n- {subject.group} / {case}: {subject.variant} is "
        assert (line in slower) == lost, line
    overhead = _section(markdown, "overhead")
    for case, variants in by_case.items():
        wb = variants.get("%%dfsql (workbench)")
        if wb is None or wb.group != "overhead":
            continue
        assert wb.ratio is not None
        (row,) = [line for line in overhead.splitlines() if line.startswith(f"| {case} |")]
        within = "yes" if wb.ratio - 1 <= 0.03 else "no"
        assert f"| {wb.ratio - 1:+.1%} | {within} |" in row, row


def test_the_rust_udf_beats_the_same_function_as_a_python_udf(quick_run):
    _, report, _ = quick_run
    (python_udf,) = [m for m in report["measurements"] if m["variant"] == "python udf"]
    assert python_udf["baseline"] == "rust stable_id"
    assert python_udf["ratio"] > 2, python_udf  # 14x at 10M rows; ~10x in quick mode


def test_the_ladder_times_each_rust_rung_against_python_and_built_ins_and_prints_each_ratio(
    quick_run,
):
    _, report, markdown = quick_run
    measured = [m for m in report["measurements"] if m["group"] == "ladder"]
    assert [m for m in measured if m["error"] is not None] == []
    variants: dict[str, set[str]] = {}
    for m in measured:
        variants.setdefault(m["baseline"], set()).add(m["variant"])
    assert variants == {
        ladder.AGG_RUST: {ladder.AGG_RUST, ladder.AGG_PYTHON, ladder.AGG_BUILTIN, ladder.AGG_FLOOR},
        ladder.WIN_RUST: {
            ladder.WIN_RUST,
            ladder.WIN_PYTHON,
            ladder.WIN_VECTOR,
            ladder.WIN_BUILTIN,
            ladder.WIN_FLOOR,
        },
        ladder.META_RUST: {ladder.META_RUST, ladder.META_PYTHON},
    }
    # The checks passed: every Python UDF returned the Rust function's result, and so did
    # the Rust function through the DataFrame API.
    checked = {m["case"]: m["note"] for m in measured if m["variant"] == m["subject"]}
    assert len(checked) == 3
    assert all("DataFrame API = SQL" in note for note in checked.values()), checked
    # A floor is not an equivalent: its cases have no subject, so it is never a lost peer.
    floors = [m for m in measured if m["variant"] in (ladder.AGG_FLOOR, ladder.WIN_FLOOR)]
    assert floors
    assert all(m["subject"] == "" for m in floors)
    section = _section(markdown, "ladder")
    for m in measured:
        if m["variant"] == m["baseline"]:
            continue
        row = f"| {m['case']} | {m['variant']} | {ladder.KINDS[m['variant']]} | {m['ratio']:.2f} |"
        assert f"\n{row}\n" in f"\n{section}\n", row
    assert "| - | no built-in (parquet_metadata is datafusion-cli only) |" in section


def test_the_largest_plan_renders_within_its_targets(quick_run):
    stdout, report, _ = quick_run
    plans = [m for m in report["measurements"] if m["group"] == "plans"]
    bundle = next(m for m in plans if m["variant"].startswith("plan tree bundle"))
    assert bundle["error"] is None
    assert 0 < bundle["metrics"]["payload_kb"] < 200
    assert bundle["median_s"] < 0.1
    verdict = f"with a {bundle['metrics']['payload_kb']:.1f} KB payload (targets < 100 ms and < 200 KB: met)"
    assert verdict in stdout


def test_delta_scans_only_the_matching_files_and_reports_its_targets(quick_run):
    _, report, markdown = quick_run
    delta = {(m["case"], m["variant"]): m for m in report["measurements"] if m["group"] == "delta"}
    cases = {case for case, _ in delta}
    assert cases == {
        "selective query over 100 files",
        "open a 1,000-file table",
        "plan a selective query over 1,000 files",
    }
    mine = delta[("selective query over 100 files", "register_delta (workbench)")]
    theirs = delta[("selective query over 100 files", "deltalake DeltaTable provider")]
    assert theirs["error"] is None
    # 1% of 100 files: one is scanned by the workbench, all of them by deltalake's provider.
    assert mine["metrics"]["delta_files_scanned"] == 1
    assert "PRUNING MISSED" not in mine["note"]
    assert theirs["metrics"]["files_opened"] >= 100
    assert mine["metrics"]["bytes_scanned"] * 50 < theirs["metrics"]["bytes_scanned"]
    assert ("selective query over 100 files", "duckdb delta_scan") in delta or (
        "duckdb delta_scan left out: " in mine["note"]
    )
    section = _section(markdown, "delta")
    for case in cases - {"selective query over 100 files"}:
        for m in (
            delta[(case, "register_delta (workbench)")],
            delta[(case, "deltalake DeltaTable provider")],
        ):
            # Quick mode plans 1,000 files; the metric scales to 10,000.
            assert m["metrics"]["ms_per_10k_files"] == pytest.approx(
                m["median_s"] * 10_000, abs=0.1
            )
        ms = delta[(case, "register_delta (workbench)")]["metrics"]["ms_per_10k_files"]
        verdict = "met" if ms < 50 else "MISSED"
        assert f"- {case}: {ms:.1f} ms per 10,000 files (target < 50 ms: {verdict})" in section


def test_the_cdf_group_compares_the_feed_with_a_diff_and_measures_streaming_memory(quick_run):
    _, report, markdown = quick_run
    cdf = [m for m in report["measurements"] if m["group"] == "cdf"]
    speed = [m for m in cdf if m["case"].startswith("what changed")]
    assert {m["variant"] for m in speed} == {
        "table_changes (workbench)",
        "anti-join of two snapshots",
    }
    assert all(m["error"] is None for m in cdf)  # the check: both found the same changes
    memory = [m for m in cdf if m["case"].startswith("peak memory")]
    assert all(m["metrics"].get("peak_rss_mb") is not None for m in memory)
    section = _section(markdown, "cdf")
    assert "growth with the table (5x the rows, 0.1% of them changed)" in section


def test_the_gate_group_reports_its_overhead_against_the_target_and_the_plan_cache_hit_time(
    quick_run,
):
    _, report, markdown = quick_run
    gate = [m for m in report["measurements"] if m["group"] == "gate"]
    assert [m for m in gate if m["error"] is not None] == []
    by_case = harness.by_case(Measurement(**m) for m in gate)
    queries = [f"q{n:02d}" for n in range(1, 23)]
    assert {f"end to end: {q}" for q in queries} | {f"planning: {q}" for q in queries} <= set(
        by_case
    )
    end_to_end = [by_case[f"end to end: {q}"] for q in queries]
    rows = [
        (v["gate on, plan cache off"].metrics["rows"], v["gate off"].metrics["rows"])
        for v in end_to_end
    ]
    assert all(on == off for on, off in rows), rows  # the gate changes no query's rows
    assert sum(on for on, _ in rows) > 0
    section = _section(markdown, "gate")
    # The verdict printed is the JSON's: summed medians with the gate on over those off.
    on_s = sum(v["gate on, plan cache off"].median_s or 0 for v in end_to_end)
    off_s = sum(v["gate off"].median_s or 0 for v in end_to_end)
    verdict = "met" if on_s / off_s - 1 < 0.05 else "MISSED"
    assert f"- total overhead of the gate: {on_s / off_s - 1:+.1%} (" in section
    assert f"target < 5%: {verdict})." in section
    hits = [
        by_case[f"planning: {q}"]["Session.sql to a planned Result, cache hit"].median_s or 0
        for q in queries
    ]
    hit_line = (
        f"- plan cache hit time, median over the queries: {statistics.median(hits) * 1000:.2f} ms"
    )
    assert hit_line in section
    assert "| point query |" in section
    assert "| q18 |" in _section(markdown, "gate").split("### The Ibis lanes", 1)[1]


def test_the_profile_group_sweeps_each_setting_against_the_defaults_with_the_same_answers(
    quick_run,
):
    _, report, markdown = quick_run
    swept = [m for m in report["measurements"] if m["group"] == "profile"]
    assert {m["case"] for m in swept} == {f"q{n:02d}" for n in profile.QUICK_QUERIES}
    assert {m["variant"] for m in swept} == set(profile.SETTINGS)
    assert [m for m in swept if m["error"] is not None] == []  # every setting, same rows
    assert all(m["baseline"] == profile.DEFAULTS for m in swept)
    rows = {(m["case"], m["variant"]): m["metrics"]["rows"] for m in swept}
    assert sum(rows.values()) > 0  # (q18 has no rows at this scale)
    # The geometric means printed are those of the JSON's ratios.
    section = _section(markdown, "profile")
    for variant in profile.SETTINGS:
        logs = [math.log(m["ratio"]) for m in swept if m["variant"] == variant]
        row = section.split(f"\n| {variant} | ", 1)[1].split("\n", 1)[0]
        printed = float(row.split(" | ")[1])
        assert printed == pytest.approx(math.exp(statistics.fmean(logs)), abs=0.006), variant
    assert "| case | defaults | " in section
    assert "Failed or wrong answers:\n\n- none." in section


def test_the_bigdata_group_runs_each_query_in_a_process_under_the_limit_with_peers(quick_run):
    _, report, markdown = quick_run
    runs = [m for m in report["measurements"] if m["group"] == "bigdata"]
    assert {m["case"] for m in runs} == {f"q{n:02d}" for n in bigdata.QUICK_QUERIES}
    assert {m["variant"] for m in runs} == set(bigdata.ENGINES)
    assert [m for m in runs if m["error"] is not None] == []
    scale, limit = bigdata.QUICK
    for m in runs:
        peak = m["metrics"]["peak_rss_mb"]
        # A whole process's peak: an interpreter with the engine loaded is well above 50 MB.
        assert peak > 50, m
        assert m["metrics"]["limit_ratio"] == pytest.approx(peak * 2**20 / limit, abs=0.01)
    rows = {(m["case"], m["variant"]): m["metrics"]["rows"] for m in runs}
    for n in bigdata.QUICK_QUERIES:
        case = f"q{n:02d}"
        assert rows[(case, bigdata.WORKBENCH)] == rows[(case, bigdata.DUCKDB)], case
        assert rows[(case, bigdata.TUNED)] == rows[(case, bigdata.DUCKDB)], case
        assert rows[(case, bigdata.SORT_MERGE)] == rows[(case, bigdata.DUCKDB)], case
    section = _section(markdown, "bigdata")
    assert f"TPC-H scale {scale:g} under a 0.25 GiB memory limit" in section
    completed = (
        f"| {bigdata.WORKBENCH} | {len(bigdata.QUICK_QUERIES)}/{len(bigdata.QUICK_QUERIES)} |"
    )
    assert completed in section


def test_the_layout_group_rewrites_the_files_and_every_layout_gives_the_same_rows(quick_run):
    _, report, markdown = quick_run
    runs = [m for m in report["measurements"] if m["group"] == "layout"]
    assert {m["case"] for m in runs} == {f"q{n:02d}" for n in layout.QUICK_QUERIES}
    expected = {layout.TPCHGEN, *layout.LAYOUTS, layout.DUCK_TPCHGEN, layout.DUCK_SORTED}
    assert {m["variant"] for m in runs} == expected
    assert [m for m in runs if m["error"] is not None or m["note"]] == []
    section = _section(markdown, "layout")
    for variant in expected:
        logs = [math.log(m["ratio"]) for m in runs if m["variant"] == variant]
        printed = float(section.split(f"\n| {variant} | ", 1)[1].split(" |", 1)[0])
        assert printed == pytest.approx(math.exp(statistics.fmean(logs)), abs=0.006), variant
    sorted_root = datasets.tpch(0.01).root / "layouts" / "sorted"
    dates = pq.read_table(sorted_root / "lineitem.parquet", columns=["l_shipdate"])
    shipped = dates.column("l_shipdate").to_pylist()
    assert shipped == sorted(shipped)


def test_the_cluster_group_runs_every_query_on_a_local_cluster_with_the_local_rows(quick_run):
    _, report, markdown = quick_run
    runs = [m for m in report["measurements"] if m["group"] == "cluster"]
    assert {m["case"] for m in runs} == {f"q{n:02d}" for n in cluster.QUICK_QUERIES}
    assert {m["variant"] for m in runs} == {cluster.LOCAL, cluster.CLUSTER, cluster.STANDALONE}
    assert [m for m in runs if m["error"] is not None or m["note"]] == []
    section = _section(markdown, "cluster")
    for variant in (cluster.CLUSTER, cluster.STANDALONE):
        logs = [math.log(m["ratio"]) for m in runs if m["variant"] == variant]
        printed = float(section.split(f"\n| {variant} | ", 1)[1].split(" |", 1)[0])
        assert printed == pytest.approx(math.exp(statistics.fmean(logs)), abs=0.006), variant
    assert "two executor processes" in section

"""The benchmark harness: declared cases, alternating repeats, ratios.

A benchmark is a :class:`Case`: a few named *variants* (the workbench and
its peers) that each do the same work, and the variant the others are
compared against. Variants run in alternating, rotating order, ``repeats``
times each, and the report gives medians and the ratio of each median to the
baseline's. Absolute times on a shared 2-core machine mean little; ratios
measured side by side in one run do.

A variant is timed as a whole, unless it returns a :class:`Sample`: then the
sample's own seconds count (a variant that runs in a subprocess, or that
does untimed work after the part that matters) and its metrics (peak memory,
rows) are kept as medians next to the time. A variant that raises is
recorded as failed with the first line of its error; the others go on.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

RESULTS = Path(__file__).parent / "results"
MEMORY_METRIC = "peak_rss_mb"
"""The metric the report compares like time: more of it is worse."""


@dataclass(frozen=True)
class Sample:
    """What a variant may return when the harness's stopwatch is not the measurement."""

    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    value: Any = None
    """Handed to the case's ``check`` in place of the Sample."""


@dataclass(frozen=True)
class Case:
    """One comparison: variants doing the same work, and which one is the baseline."""

    name: str
    group: str
    baseline: str
    variants: dict[str, Callable[[], Any]]
    repeats: int = 3
    note: str = ""
    setup: Callable[[], None] | None = None
    check: Callable[[dict[str, Any]], str | None] | None = None
    """Called with the last value of each variant that ran; raises if the workbench is
    wrong, may return a note (e.g. a peer that returned other rows) for the report."""
    subject: str = ""
    """The workbench's variant, if any: the report lists where it is slower than a peer."""


@dataclass(frozen=True)
class Measurement:
    case: str
    group: str
    variant: str
    baseline: str
    median_s: float | None
    """None when the variant failed."""
    times_s: list[float]
    ratio: float | None
    """median / baseline median: above 1 is slower than the baseline; None if either failed."""
    note: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    """Medians of the metrics the variant's samples carried (e.g. peak_rss_mb)."""
    error: str | None = None
    """First line of the error if the variant failed."""
    subject: str = ""


@dataclass
class Report:
    started: str
    quick: bool
    machine: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)
    """Per group: a Markdown summary written by the group's module (optional)."""


def machine_info() -> dict[str, Any]:
    import datafusion

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "datafusion": datafusion.__version__,
    }


class VariantError(Exception):
    """A variant's failure whose message is already the line to report (e.g. from a
    notebook cell or a subprocess, where the original exception type is not useful)."""


def first_line(error: BaseException) -> str:
    """``Type: first line of the message``, short enough for a table cell."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return (text if isinstance(error, VariantError) else f"{type(error).__name__}: {text}")[:300]


def run_case(case: Case) -> list[Measurement]:
    if case.setup is not None:
        case.setup()
    runs = _repeat(case)
    note = case.note
    if case.check is not None:
        found = case.check(runs.last)
        note = " ".join(part for part in (note, found) if part)
    base = runs.median(case.baseline)
    return [
        Measurement(
            case=case.name,
            group=case.group,
            variant=name,
            baseline=case.baseline,
            median_s=(median := runs.median(name)),
            times_s=runs.times[name],
            ratio=median / base if median is not None and base else None,
            note=note,
            metrics={k: statistics.median(v) for k, v in runs.metrics[name].items()},
            error=runs.errors.get(name),
            subject=case.subject,
        )
        for name in case.variants
    ]


@dataclass
class _Runs:
    """What the repeats of one case produced, per variant."""

    times: dict[str, list[float]]
    metrics: dict[str, dict[str, list[float]]]
    errors: dict[str, str] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)
    """Each variant's last value (a Sample's ``value``), for the case's check."""

    def median(self, name: str) -> float | None:
        return None if name in self.errors else statistics.median(self.times[name])

    def record(self, name: str, elapsed: float, out: Any) -> None:
        if isinstance(out, Sample):
            for metric, value in out.metrics.items():
                self.metrics[name].setdefault(metric, []).append(value)
            elapsed, out = out.seconds, out.value
        self.times[name].append(elapsed)
        self.last[name] = out


def _repeat(case: Case) -> _Runs:
    names = list(case.variants)
    runs = _Runs(times={n: [] for n in names}, metrics={n: {} for n in names})
    for repeat in range(case.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            if name in runs.errors:
                continue  # a failure is a property of the tool, not noise: no retries
            started = time.perf_counter()
            try:
                out = case.variants[name]()
            except Exception as exc:  # noqa: BLE001  (a peer's failure is a result to report)
                runs.errors[name] = first_line(exc)
                runs.last.pop(name, None)
                continue
            runs.record(name, time.perf_counter() - started, out)
    return runs


# -- summaries ----------------------------------------------------------------


def by_case(measurements: Iterable[Measurement]) -> dict[str, dict[str, Measurement]]:
    """Case name -> variant -> measurement, in the order they ran."""
    out: dict[str, dict[str, Measurement]] = {}
    for m in measurements:
        out.setdefault(m.case, {})[m.variant] = m
    return out


def geometric_means(measurements: Iterable[Measurement]) -> tuple[dict[str, float], list[str]]:
    """Each variant's geometric mean ratio over the cases where every variant ran.

    Returns the means and the names of the cases they cover; a case with any
    failed variant is left out so every mean covers the same cases.
    """
    cases = by_case(measurements)
    complete = [
        name
        for name, variants in cases.items()
        if all(m.ratio is not None and m.ratio > 0 for m in variants.values())
    ]
    logs: dict[str, list[float]] = {}
    for name in complete:
        for variant, m in cases[name].items():
            assert m.ratio is not None
            logs.setdefault(variant, []).append(math.log(m.ratio))
    return {v: math.exp(statistics.fmean(x)) for v, x in logs.items()}, complete


def rows_timed(run: Callable[[str], int], sql: str) -> Callable[[], Sample]:
    """A variant that runs ``sql`` through ``run`` (which returns the rows it streamed out),
    timed; the row count is the Sample's value, for the case's check."""

    def measured() -> Sample:
        started = time.perf_counter()
        rows = run(sql)
        return Sample(time.perf_counter() - started, {}, rows)

    return measured


def tpch_row_count_cases(
    group: str,
    numbers: Iterable[int],
    runners: Mapping[str, Callable[[str], int]],
    *,
    baseline: str,
    subject: str,
    quick: bool,
) -> list[Case]:
    """One Case per TPC-H query in ``numbers``, each runner a variant (:func:`rows_timed`),
    3 repeats (1 in quick mode); a variant whose row count differs from the baseline's is
    noted. Every runner first counts ``nation`` once, so start-up costs stay out of the
    first query."""
    from workbench import datasets

    for run in runners.values():
        run("SELECT count(*) FROM nation")

    def same_rows(last: dict[str, Any]) -> str | None:
        differ = {name: rows for name, rows in last.items() if rows != last[baseline]}
        return f"rows differ from {baseline}'s: {differ}" if differ else None

    return [
        Case(
            name=name,
            group=group,
            baseline=baseline,
            variants={variant: rows_timed(run, sql) for variant, run in runners.items()},
            repeats=1 if quick else 3,
            check=same_rows,
            subject=subject,
        )
        for name, sql in ((f"q{n:02d}", datasets.tpch_query(n)) for n in numbers)
    ]


def means_and_ratios(measurements: list[Measurement]) -> list[str]:
    """Markdown: each variant's geometric mean ratio, then the per-case ratio table."""
    means, _ = geometric_means(measurements)
    return [
        "| variant | geometric mean ratio |",
        "|---|---:|",
        *[f"| {name} | {mean:.2f} |" for name, mean in means.items()],
        "",
        "Per-query ratios:",
        "",
        *ratio_table(measurements),
    ]


def ratio_table(measurements: Iterable[Measurement]) -> list[str]:
    """Markdown: one row per case, one column per variant, the ratio (or 'failed')."""
    cases = by_case(measurements)
    variants: list[str] = []
    for per_case in cases.values():
        variants += [v for v in per_case if v not in variants]
    lines = [
        "| case | " + " | ".join(variants) + " |",
        "|---|" + "---:|" * len(variants),
    ]
    for name, per_case in cases.items():
        cells = [_ratio_cell(per_case.get(v)) for v in variants]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _ratio_cell(m: Measurement | None) -> str:
    if m is None:
        return ""
    if m.error is not None:
        return "failed"
    return f"{m.ratio:.2f}" if m.ratio is not None else "n/a"


def workbench_slower(measurements: Iterable[Measurement]) -> list[str]:
    """Markdown: per group, how often the workbench lost to a peer; then each case, by how much."""
    counts: dict[str, list[int]] = {}
    bullets = []
    for name, variants in by_case(measurements).items():
        first = next(iter(variants.values()))
        subject = variants.get(first.subject)
        if subject is None:
            continue
        lost = _losses(name, subject, [m for m in variants.values() if m is not subject])
        tally = counts.setdefault(first.group, [0, 0])
        tally[0] += bool(lost)
        tally[1] += 1
        bullets += lost
    totals = [
        f"- {group}: behind at least one peer (slower, more peak memory, or failed) "
        f"in {lost} of {cases} cases."
        for group, (lost, cases) in counts.items()
    ]
    return [*totals, "", *bullets] if bullets else totals


def _losses(name: str, subject: Measurement, peers: list[Measurement]) -> list[str]:
    where = f"- {subject.group} / {name}: {subject.variant}"
    if subject.median_s is None:
        return [f"{where} failed ({subject.error})"]
    ran = [m for m in peers if m.median_s is not None]
    slower = [
        f"{subject.median_s / m.median_s:.2f}x slower than {m.variant} "
        f"({_ms(subject.median_s)} vs {_ms(m.median_s)})"
        for m in ran
        if m.median_s is not None and 0 < m.median_s < subject.median_s
    ]
    mine = subject.metrics.get(MEMORY_METRIC)
    heavier = [
        f"{mine / theirs:.2f}x the peak memory of {m.variant} ({mine:.1f} MB vs {theirs:.1f} MB)"
        for m in ran
        if mine is not None
        and (theirs := m.metrics.get(MEMORY_METRIC)) is not None
        and 0 < theirs < mine
    ]
    lines = [f"{where} is " + "; ".join(slower)] if slower else []
    if heavier:
        lines.append(f"{where} uses " + "; ".join(heavier))
    return lines


def _escape_cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell (errors quote SQL with pipes)."""
    return text.replace("|", "\\|").replace("\n", " ")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# -- output -------------------------------------------------------------------


def markdown(report: Report) -> str:
    m = report.machine
    extra = sorted({k for x in report.measurements for k in x.metrics})
    lines = [
        f"# Benchmarks ({'quick' if report.quick else 'full'} run, {report.started})",
        "",
        (
            f"Machine: {m['platform']}, {m['cpus']} cores, {m['memory_gib']} GiB, "
            f"Python {m['python']}, datafusion {m['datafusion']}."
        ),
        "Ratios are medians of alternating repeats in this one run; ratio = variant / baseline.",
        "",
        "| group | case | variant | median | ratio vs baseline |"
        + "".join(f" {k} |" for k in extra),
        "|---|---|---|---:|---:|" + "---:|" * len(extra),
    ]
    lines += [_row(x, extra) for x in report.measurements]
    notes = sorted({(x.case, x.note) for x in report.measurements if x.note})
    if notes:
        lines += ["", *[f"- {case}: {note}" for case, note in notes]]
    slower = workbench_slower(report.measurements)
    lines += [
        "",
        "## Where the workbench is slower",
        "",
        (
            "Every case where the workbench's variant took longer (or peaked higher in memory) "
            "than a peer in this run, with the factor; factors near 1.00 are within noise."
        ),
        "",
        *(slower or ["- nowhere in this run."]),
    ]
    for group, text in report.sections.items():
        lines += ["", f"## {group}", "", text.rstrip()]
    return "\n".join(lines) + "\n"


def _row(x: Measurement, extra: list[str]) -> str:
    if x.median_s is None:
        timing = f"failed: {_escape_cell(x.error or '')} | n/a"
    elif x.ratio is None:
        timing = f"{_ms(x.median_s)} | n/a ({x.baseline} failed)"
    else:
        timing = f"{_ms(x.median_s)} | {x.ratio:.2f}x of {x.baseline}"
    metrics = "".join(f" {_metric(x.metrics[k])} |" if k in x.metrics else " |" for k in extra)
    return f"| {x.group} | {x.case} | {x.variant} | {timing} |{metrics}"


def write(report: Report, directory: Path = RESULTS) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{report.started.replace(':', '')}{'-quick' if report.quick else ''}"
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    for path, text in (
        (json_path, json.dumps(asdict(report), indent=2)),
        (md_path, markdown(report)),
    ):
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(text)
        partial.replace(path)
    return json_path, md_path


def _metric(value: float) -> str:
    """Counts as integers with separators (6,001,215 rows), the rest as they come."""
    return f"{int(value):,}" if float(value).is_integer() and abs(value) >= 1000 else f"{value:g}"

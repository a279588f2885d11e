"""The benchmark harness: declared cases, alternating repeats, ratios.

A benchmark is a :class:`Case`: a few named *variants* (the workbench and
its peers) that each do the same work, and the variant the others are
compared against. Variants run in alternating, rotating order, ``repeats``
times each, and the report gives medians and the ratio of each median to the
baseline's. Absolute times on a shared 2-core machine mean little; ratios
measured side by side in one run do.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

RESULTS = Path(__file__).parent / "results"


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
    check: Callable[[dict[str, Any]], None] | None = None
    """Called with each variant's last return value; raises if they disagree."""


@dataclass(frozen=True)
class Measurement:
    case: str
    group: str
    variant: str
    baseline: str
    median_s: float
    times_s: list[float]
    ratio: float
    """median / baseline median: above 1 is slower than the baseline."""
    note: str = ""


@dataclass
class Report:
    started: str
    quick: bool
    machine: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)


def machine_info() -> dict[str, Any]:
    import datafusion

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "datafusion": datafusion.__version__,
    }


def run_case(case: Case) -> list[Measurement]:
    if case.setup is not None:
        case.setup()
    names = list(case.variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    last: dict[str, Any] = {}
    for repeat in range(case.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            started = time.perf_counter()
            last[name] = case.variants[name]()
            times[name].append(time.perf_counter() - started)
    if case.check is not None:
        case.check(last)
    base = statistics.median(times[case.baseline])
    return [
        Measurement(
            case=case.name,
            group=case.group,
            variant=name,
            baseline=case.baseline,
            median_s=statistics.median(times[name]),
            times_s=times[name],
            ratio=statistics.median(times[name]) / base if base > 0 else float("nan"),
            note=case.note,
        )
        for name in names
    ]


def markdown(report: Report) -> str:
    m = report.machine
    lines = [
        f"# Benchmarks ({'quick' if report.quick else 'full'} run, {report.started})",
        "",
        (
            f"Machine: {m['platform']}, {m['cpus']} cores, {m['memory_gib']} GiB, "
            f"Python {m['python']}, datafusion {m['datafusion']}."
        ),
        "Ratios are medians of alternating repeats in this one run; ratio = variant / baseline.",
        "",
        "| group | case | variant | median | ratio vs baseline |",
        "|---|---|---|---:|---:|",
    ]
    lines += [
        f"| {x.group} | {x.case} | {x.variant} | {x.median_s * 1000:.1f} ms | "
        f"{x.ratio:.2f}x of {x.baseline} |"
        for x in report.measurements
    ]
    notes = sorted({(x.case, x.note) for x in report.measurements if x.note})
    if notes:
        lines += ["", *[f"- {case}: {note}" for case, note in notes]]
    return "\n".join(lines) + "\n"


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

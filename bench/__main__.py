"""``python -m bench [--quick] [--only GROUP ...]``: run the cases, print and save ratios."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from bench.cases import MODULES
from bench.harness import RESULTS, Report, machine_info, markdown, run_case, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small inputs: checks the harness runs"
    )
    parser.add_argument("--only", nargs="*", choices=sorted(MODULES), help="groups to run")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="where to write JSON and Markdown"
    )
    args = parser.parse_args(argv)
    report = Report(
        started=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        quick=args.quick,
        machine=machine_info(),
    )
    for name in args.only or sorted(MODULES):
        module = MODULES[name]
        measured = [m for case in module.cases(args.quick) for m in run_case(case)]
        report.measurements += measured
        # A group may explain its numbers (geometric means, what each tool hands back).
        summary = getattr(module, "summary", None)
        if summary is not None:
            report.sections[name] = summary(measured, quick=args.quick)
    print(markdown(report))
    json_path, md_path = write(report, args.out)
    print(f"written: {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

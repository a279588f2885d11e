"""One measurement in a fresh process: ``python -m bench.probe VARIANT PARQUET``.

Peak memory belongs to a process, so each memory measurement gets its own.
The probe imports and sets up only what its variant needs, warms the same
path up on a one-row query (so lazy imports and first-call costs are not
counted against the large result), then measures one step: seconds, and the
peak resident memory during the step above the resident memory before it.

The peak is the kernel's high-water mark for this process's memory
(``VmHWM``), reset just before the step through ``/proc/self/clear_refs``.
``ru_maxrss`` cannot serve here: a child started by ``subprocess`` (vfork,
then exec) inherits the parent's high-water mark, so in a benchmark process
that has already held gigabytes every child would report them. Without
``/proc`` (not Linux) the probe falls back to ``ru_maxrss`` and says so.

The probe prints one line ``PROBE {json}`` with ``seconds``, ``peak_rss_mb``,
``baseline_rss_mb``, ``peak_source``, plus ``rows`` when the step wrote a
file. Other lines on stdout (a tool saying goodbye at exit) are ignored.

The preview variants run a cell in a real IPython shell with display, as in
a notebook; the export variants are plain Python.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

QUERY = "SELECT * FROM lineitem"
WARM_UP = "SELECT 1 AS warm_up"
PREFIX = "PROBE "
Step = Callable[[], int | None]
"""The measured step; returns the rows written, if it wrote a file."""


def _dfsql(parquet: Path, _out: Path) -> Step:
    from bench import notebook

    notebook.load_extension("workbench")
    notebook.shell().user_ns["wb"].ctx.register_parquet("lineitem", str(parquet))
    _cell(f"%%dfsql\n{WARM_UP}")
    return lambda: _cell(f"%%dfsql\n{QUERY}")


def _jupysql(parquet: Path, _out: Path) -> Step:
    from bench import peers

    peers.connect_jupysql({"lineitem": parquet})
    _cell(f"%%sql\n{WARM_UP}")
    return lambda: _cell(f"%%sql\n{QUERY}")


def _datafusion_display(parquet: Path, _out: Path) -> Step:
    from bench import notebook, peers

    notebook.shell().user_ns["ctx"] = peers.datafusion_context({"lineitem": parquet})
    # The cell's value is the DataFrame; the display hook calls its _repr_html_ (and
    # __repr__ for text/plain, as Jupyter's formatter does).
    _cell(f'ctx.sql("{WARM_UP}")')
    return lambda: _cell(f'ctx.sql("{QUERY}")')


def _polars_read(parquet: Path, _out: Path) -> Step:
    return _polars_cell(parquet, "pl.read_parquet(path)")


def _polars_scan_head(parquet: Path, _out: Path) -> Step:
    return _polars_cell(parquet, "pl.scan_parquet(path).head(20).collect()")


def _polars_cell(parquet: Path, source: str) -> Step:
    from bench import notebook

    notebook.run_cell("import polars as pl")
    notebook.shell().user_ns["path"] = str(parquet)
    _cell("pl.DataFrame({'warm_up': [1]})")
    return lambda: _cell(source)


def _cell(source: str) -> None:
    from bench import notebook

    notebook.run_cell(source)


def _workbench_write(parquet: Path, out: Path) -> Step:
    import workbench

    session = workbench.RuntimeProfile().session()
    session.ctx.register_parquet("lineitem", str(parquet))
    session.sql(WARM_UP).write_parquet(out)

    def step() -> int:
        session.sql(QUERY).write_parquet(out)
        return _rows(out)

    return step


def _materialise_write(parquet: Path, out: Path) -> Step:
    import pyarrow.parquet as pq

    from bench import peers

    ctx = peers.datafusion_context({"lineitem": parquet})
    pq.write_table(ctx.sql(WARM_UP).to_arrow_table(), out)

    def step() -> int:
        pq.write_table(ctx.sql(QUERY).to_arrow_table(), out)
        return _rows(out)

    return step


def _datafusion_write(parquet: Path, out: Path) -> Step:
    from bench import peers

    ctx = peers.datafusion_context({"lineitem": parquet})
    ctx.sql(WARM_UP).write_parquet(out, compression="snappy")

    def step() -> int:
        # Snappy, as pyarrow's writer (used by the other two) defaults to; DataFusion's is zstd.
        ctx.sql(QUERY).write_parquet(out, compression="snappy")
        return _rows(out)

    return step


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.read_metadata(path).num_rows)


def _cdf_stream(table: Path, start: int) -> Step:
    """Stream the changes of ``table`` from ``start`` through ``wb.changes``, keeping none."""
    import workbench

    session = workbench.RuntimeProfile().session()
    session.register_delta("t", str(table))
    sum(b.num_rows for b in session.changes("t", 1, 1).result)  # warm the same path up

    def step() -> None:
        for _ in session.changes("t", start).result:
            pass

    return step


def _cdf_stream_all(table: Path, _out: Path) -> Step:
    return _cdf_stream(table, 0)


def _cdf_stream_commit(table: Path, _out: Path) -> Step:
    return _cdf_stream(table, 1)


VARIANTS: dict[str, Callable[[Path, Path], Step]] = {
    "dfsql": _dfsql,
    "jupysql": _jupysql,
    "datafusion-display": _datafusion_display,
    "polars-read": _polars_read,
    "polars-scan-head": _polars_scan_head,
    "workbench-write": _workbench_write,
    "materialise-write": _materialise_write,
    "datafusion-write": _datafusion_write,
    "cdf-stream-all": _cdf_stream_all,
    "cdf-stream-commit": _cdf_stream_commit,
}


_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def status_mb(field: str) -> float:
    """A line of ``/proc/self/status`` in MB (``VmRSS``, ``VmHWM``)."""
    for line in _STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    raise LookupError(field)


def start_peak() -> tuple[float, str]:
    """Reset the peak to the current RSS; returns (baseline MB, how the peak is read)."""
    gc.collect()
    try:
        _CLEAR_REFS.write_text("5")  # 5: reset the peak RSS (VmHWM) to the current RSS
        return status_mb("VmRSS"), "VmHWM"
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "ru_maxrss"


def peak(source: str) -> float:
    """The peak RSS in MB since :func:`start_peak`, read as it said."""
    if source == "VmHWM":
        return status_mb("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_child(module: str, args: list[str], *, what: str, timeout: float) -> dict[str, Any]:
    """``python -m module args`` in the repository, its last ``PROBE`` line as a dict.

    A child that printed none (it died) or ran past ``timeout`` seconds (stopped) is a
    :class:`~bench.harness.VariantError` saying so.
    """
    from bench.harness import VariantError

    env = {**os.environ, "PLOOMBER_STATS_ENABLED": "false"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", module, *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        msg = f"{what}: no answer after {timeout:g} s (stopped)"
        raise VariantError(msg) from exc
    lines = [line for line in done.stdout.splitlines() if line.startswith(PREFIX)]
    if not lines:
        tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise VariantError(f"{what} died: {tail}")
    found: dict[str, Any] = json.loads(lines[-1].removeprefix(PREFIX))
    return found


def measure(variant: str, parquet: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="wb-probe-") as scratch:
        step = VARIANTS[variant](parquet, Path(scratch) / "out.parquet")
        baseline, source = start_peak()
        started = time.perf_counter()
        rows = step()
        seconds = time.perf_counter() - started
        highest = peak(source)
    out: dict[str, object] = {
        "seconds": seconds,
        "peak_rss_mb": round(highest - baseline, 1),
        "baseline_rss_mb": round(baseline, 1),
        "peak_source": source,
    }
    if rows is not None:
        out["rows"] = rows
    return out


def main(argv: list[str]) -> int:
    from bench.harness import first_line

    variant, parquet = argv
    try:
        found = measure(variant, Path(parquet))
    except Exception as exc:  # noqa: BLE001  (the parent reports the failure as a result)
        found = {"error": first_line(exc)}
    print(PREFIX + json.dumps(found), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

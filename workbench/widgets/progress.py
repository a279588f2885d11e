"""The progress line shown under a running cell (text and escaped HTML)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.progress import Progress


def progress_text(progress: Progress) -> str:
    """One line: running/done, rows scanned and out, elapsed seconds, run id."""
    state = "done" if progress.done else "running"
    if progress.engine != "local":
        job = f"job {progress.job}" if progress.job else "job submitted"
        return (
            f"{state} on {progress.engine}: {job}, {progress.rows_out:,} rows out, "
            f"{progress.elapsed_s:.1f} s (run {progress.run_id})"
        )
    return (
        f"{state}: {progress.rows_scanned:,} rows scanned, {progress.rows_out:,} rows out, "
        f"{progress.elapsed_s:.1f} s (run {progress.run_id})"
    )


def progress_bundle(progress: Progress) -> dict[str, str]:
    """The progress line as text and escaped HTML (blue while running, green when done)."""
    color = "#2e7d32" if progress.done else "#1565c0"
    text = progress_text(progress)
    return {
        "text/plain": text,
        "text/html": f"<div class='wb-progress' style='color:{color};font-size:12px'>"
        f"{html.escape(text)}</div>",
    }

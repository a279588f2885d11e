"""A real IPython shell for the notebook variants, run the way Jupyter runs cells.

Cells go through ``InteractiveShell.run_cell`` with ``store_history=True``, so
magics, the display hook and its formatting are all timed, as in a notebook.
The display formatter keeps every mimetype active, text/html included (a base
InteractiveShell does that, like ipykernel; a terminal shell would only
format text/plain), so each tool's HTML preview is rendered.

Two departures from a notebook, both to keep repeats independent: history
lives in an in-memory database, and the output cache (``Out``, ``_1``...) is
off, so earlier results are not kept alive across repeats. What the display
hook prints goes to a buffer, not to the benchmark's output.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import time
from typing import TYPE_CHECKING, Any

from bench.harness import VariantError, first_line

if TYPE_CHECKING:
    from collections.abc import Iterator

    from IPython.core.interactiveshell import InteractiveShell

# jupysql reads this at import time; the benchmarks never send telemetry.
os.environ["PLOOMBER_STATS_ENABLED"] = "false"


class CellError(VariantError):
    """A cell failed; the message is the first line of what the cell raised."""


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
    """Swallow what a cell prints (display output, progress, feedback lines)."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield sink


@functools.cache
def shell() -> InteractiveShell:
    """The process's one InteractiveShell, configured once."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=config)
    formatter = ip.display_formatter
    assert formatter is not None, "an InteractiveShell always has a display formatter"
    if "text/html" not in formatter.active_types:
        formatter.active_types = [*formatter.active_types, "text/html"]
    ip.displayhook.cache_size = 0
    return ip


@functools.cache
def load_extension(name: str) -> None:
    """``%load_ext name`` once per process (jupysql prints a hint about toml on load)."""
    with quiet():
        shell().run_line_magic("load_ext", name)


def line_magic(name: str, line: str) -> Any:
    with quiet():
        return shell().run_line_magic(name, line)


def run_cell(source: str) -> Any:
    """Run ``source`` as a notebook cell; return the cell's value or raise its error."""
    with quiet():
        outcome = shell().run_cell(source, store_history=True)
    error = outcome.error_before_exec or outcome.error_in_exec
    if error is not None:
        raise CellError(first_line(error)) from error
    return outcome.result


def timed_cell(source: str) -> tuple[float, Any]:
    """Seconds to run and display the cell, and the cell's value."""
    started = time.perf_counter()
    value = run_cell(source)
    return time.perf_counter() - started, value

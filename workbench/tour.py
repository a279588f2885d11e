"""Run ``notebooks/tour.ipynb`` headless and keep the executed copy.

``python -m workbench.tour [OUT]`` executes the tour with nbclient in a real
kernel and writes the executed notebook (default ``artifacts/tour.ipynb``)
atomically, with the runs' diagnostics (``runs.jsonl``) under ``artifacts/runs/``.
Used by ``scripts/dev.sh tour --headless`` and in CI.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def execute_notebook(source: Path, out: Path, timeout_s: int = 600) -> Path:
    """Execute ``source`` in a fresh kernel (cwd: its folder) and write it to ``out``."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(source, as_version=4)
    NotebookClient(
        notebook,
        timeout=timeout_s,
        kernel_name="python3",
        resources={"metadata": {"path": str(source.parent)}},
    ).execute()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    nbformat.write(notebook, partial)
    partial.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    out = Path(args[0]) if args else REPO / "artifacts" / "tour.ipynb"
    # The kernel inherits this: the tour's run logs land beside the executed notebook.
    runs = out.parent / "runs"
    os.environ.setdefault("WORKBENCH_ARTIFACT_DIR", str(runs))
    written = execute_notebook(REPO / "notebooks" / "tour.ipynb", out)
    print(f"tour executed: {written}; run logs: {os.environ['WORKBENCH_ARTIFACT_DIR']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

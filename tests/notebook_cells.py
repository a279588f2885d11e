"""Reading executed notebooks in tests: run one, find a code cell, collect what it showed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import nbformat

from workbench.tour import execute_notebook

from .conftest import REPO

if TYPE_CHECKING:
    import pytest


def executed(name: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """notebooks/``name`` executed in a fresh kernel, read back."""
    out = execute_notebook(REPO / "notebooks" / name, tmp_path_factory.mktemp("nb") / name)
    return nbformat.read(out, as_version=4)


def outputs(cell: Any, *, traceback: bool = False) -> str:
    """Everything ``cell`` showed: plain text, HTML, streams, and errors (with traceback).

    A kernel may split one ``print`` over several stream messages (it does under load), so
    consecutive outputs of the same stream are joined as the user sees them, with no separator.
    """
    parts: list[str] = []
    previous_stream = None
    for output in cell.get("outputs", []):
        stream = output.get("name") if output["output_type"] == "stream" else None
        if stream is not None and stream == previous_stream:
            parts[-1] += output.get("text", "")
            continue
        previous_stream = stream
        data = output.get("data", {})
        parts += [data.get("text/plain", ""), data.get("text/html", ""), output.get("text", "")]
        if output["output_type"] == "error":
            parts += [output["ename"], output["evalue"]]
            if traceback:
                parts += output["traceback"]
    return "\n".join(parts)


def code_cell(notebook: Any, startswith: str) -> Any:
    """The first code cell whose source starts with ``startswith``."""
    matches = [
        c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(startswith)
    ]
    assert matches, f"no cell starts with {startswith!r}"
    return matches[0]


def errors(notebook: Any) -> list[tuple[Any, Any]]:
    """Every error output of ``notebook``, with the cell that showed it, in order."""
    return [
        (cell, output)
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output["output_type"] == "error"
    ]


def tagged_to_fail(cell: Any) -> bool:
    """Whether ``cell`` carries the ``raises-exception`` tag (it is meant to fail)."""
    return "raises-exception" in cell.metadata.get("tags", [])

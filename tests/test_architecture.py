"""Values stay values: the import graph of ``workbench`` has no circle, and models import no engine.

Imports are read from the source with ``ast``: module-level ones and the lazy
ones inside functions both count (a lazy import must not be what keeps a
circle apart); imports under ``if TYPE_CHECKING:`` are for types only and do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "workbench"
MODELS = ("workbench.plans", "workbench.runs", "workbench.errors", "workbench.plan_diff")
ENGINE = (
    "workbench.session",
    "workbench.result",
    "workbench.progress",
    "workbench.explain",
    "workbench.artifacts",
    "workbench",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(name: str, known: set[str]) -> str | None:
    """The workbench module an import of ``name`` loads (the longest known prefix)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[str]:
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files) | {"workbench._ext"}  # the compiled extension is a module too
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = {_resolve(i, known) for i in _imports(ast.parse(path.read_text()))}
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for target in graph.get(stack.pop(), set()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def test_the_import_graph_has_no_circle_even_counting_lazy_imports():
    graph = _graph()
    circles = sorted(name for name in graph if name in _reachable(graph, name))
    assert circles == [], f"modules on an import circle: {circles}"


@pytest.mark.parametrize("model", MODELS)
def test_models_import_neither_the_session_nor_the_streams(model):
    reached = _reachable(_graph(), model)
    assert not reached & set(ENGINE), f"{model} reaches {sorted(reached & set(ENGINE))}"


def test_the_graph_reader_sees_real_imports():
    graph = _graph()
    # Guards against a reader that finds nothing and so "proves" everything.
    assert "workbench.plans" in graph["workbench.result"]
    assert "workbench.progress" in graph["workbench.explain"]  # explain.py imports it
    assert "workbench.session" not in graph["workbench.plans"]  # TYPE_CHECKING only

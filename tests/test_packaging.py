"""Packaging: environment.yml mirrors pyproject.toml, and the README keeps two set-up commands."""

from __future__ import annotations

import re
import tomllib

from .conftest import REPO

# conda-forge names that differ from PyPI's.
_CONDA_NAMES = {"python-duckdb": "duckdb"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _spec(requirement: str) -> str:
    return requirement.strip()[len(_name(requirement)) :].replace(" ", "")


def _environment_requirements() -> dict[str, str]:
    found = {}
    for line in (REPO / "environment.yml").read_text().splitlines():
        item = line.strip()
        if not item.startswith("- ") or item.endswith(":") or item.startswith("- conda-forge"):
            continue
        requirement = item[2:]
        name = _name(requirement)
        # conda writes an exact pin with one "=", pip with two.
        spec = re.sub(r"^=(?!=)", "==", _spec(requirement))
        found[_CONDA_NAMES.get(name, name)] = spec
    return found


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [
        *project["dependencies"],
        *project["optional-dependencies"]["test"],
        *project["optional-dependencies"]["bench"],
    ]
    env = _environment_requirements()
    for requirement in wanted:
        name = _name(requirement)
        assert name in env, f"{name} is in pyproject.toml but not in environment.yml"
        assert env[name] == _spec(requirement), f"{name}: {env[name]} vs {_spec(requirement)}"


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    block = setup.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    assert commands == ["bash scripts/dev.sh tour", "bash scripts/dev.sh test"]
    assert "bash scripts/dev.sh test" in (REPO / ".ci" / "run").read_text()

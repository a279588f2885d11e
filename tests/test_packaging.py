"""Packaging: environment.yml mirrors pyproject.toml, the README keeps two set-up commands,
and the venv's JupyterLab loads the workbench's extensions only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

from .conftest import REPO

# What the Lab in .venv may load: JupyterLab with its own server pieces, and the widget
# stack the plan tree needs. jupysql-plugin (from the bench extra) must not be among them.
LAB_ENABLED = {"@jupyter-widgets/jupyterlab-manager", "anywidget", "jupyterlab_pygments"}
SERVER_ENABLED = {"jupyterlab", "jupyter_lsp", "jupyter_server_terminals", "notebook_shim"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

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


def _jupyter(*args: str, config_dir) -> str:
    """Output of a real ``jupyter`` command of the venv; the user's own config is left out."""
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(config_dir)},
    )
    return _ANSI.sub("", done.stdout + done.stderr)


def test_the_venv_lab_enables_only_the_workbench_extensions(tmp_path):
    listed = _jupyter("labextension", "list", config_dir=tmp_path)
    lab = dict(re.findall(r"^\s+(\S+) v\S+ (enabled|disabled)", listed, re.MULTILINE))
    assert lab.get("jupysql-plugin") == "disabled", listed  # installed by the bench extra
    assert {name for name, state in lab.items() if state == "enabled"} == LAB_ENABLED, listed

    listed = _jupyter("server", "extension", "list", config_dir=tmp_path)
    server: dict[str, str] = {}
    # One block per config dir, the highest priority first: the first state listed wins.
    for name, state in re.findall(r"^ {4}(\S+) (enabled|disabled)$", listed, re.MULTILINE):
        server.setdefault(name, state)
    assert server.get("jupysql_plugin") == "disabled", listed
    assert {name for name, state in server.items() if state == "enabled"} == SERVER_ENABLED, listed

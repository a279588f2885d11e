"""The JupyterLab the workbench opens shows the workbench, not the benchmark's peers.

``scripts/dev.sh`` installs the ``bench`` extra (jupysql, magic-duckdb, duckdb)
into the same ``.venv`` as JupyterLab, so ``python -m bench`` can run the peers
side by side with the workbench. jupysql brings jupysql-plugin, which is a
JupyterLab extension (a "Format SQL" button on every notebook's toolbar) and a
Jupyter server extension; any later ``pip install`` into the venv may bring
more. In the tour's Lab they would look like part of the workbench.

``python -m workbench.lab`` disables, at the venv's level (sys-prefix, i.e.
``.venv/etc/jupyter``), every JupyterLab extension and server extension that is
not on the allowlist below; ``scripts/dev.sh`` runs it after installing, in
both modes, so the tour's Lab and the Lab the browser tests start are the same.
Nothing is uninstalled: the peers still work in IPython, which is where
``python -m bench`` runs them. Only the user's own Jupyter config
(``~/.jupyter``) outranks the venv's; what it enables stays enabled, with a
warning. ``jupyter labextension list`` and ``jupyter server extension list``
show the result.

Disabling in the venv, rather than a Jupyter config directory passed at launch,
makes every ``jupyter lab`` started from the venv the same Lab, the tour's, the
tests' and the user's own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

LAB_EXTENSIONS = frozenset(
    {
        "@jupyter-widgets/jupyterlab-manager",  # ipywidgets: renders the widgets below
        "anywidget",  # the plan-tree widget is an anywidget
        "jupyterlab_pygments",  # JupyterLab's own syntax-highlighting theme (via nbconvert)
    }
)
"""JupyterLab (front-end) extensions the workbench's Lab keeps enabled."""

SERVER_EXTENSIONS = frozenset(
    {"jupyterlab", "jupyter_lsp", "jupyter_server_terminals", "notebook_shim"}
)
"""Server extensions it keeps: JupyterLab and the ones JupyterLab itself depends on."""

_LABCONFIG = "labconfig"


def _lab_extensions() -> dict[str, bool]:
    """Every installed (prebuilt) JupyterLab extension, and whether the Lab loads it."""
    from jupyter_core.paths import jupyter_path

    installed = {
        json.loads(package.read_text())["name"]
        for folder in map(Path, jupyter_path("labextensions"))
        for package in (*folder.glob("[!@]*/package.json"), *folder.glob("@*/*/package.json"))
    }
    disabled: Any = _page_config().get("disabledExtensions", {})
    if isinstance(disabled, list):  # the older form of the setting
        disabled = dict.fromkeys(disabled, True)
    return {name: not disabled.get(name, False) for name in sorted(installed)}


def _server_extensions() -> dict[str, bool]:
    """Every server extension named in the Jupyter config, and whether it is enabled."""
    from jupyter_core.paths import jupyter_config_path
    from jupyter_server.extension.config import ExtensionConfigManager

    found = ExtensionConfigManager(read_config_path=jupyter_config_path())
    named = found.get_jpserver_extensions()  # type: ignore[no-untyped-call]
    return {name: bool(on) for name, on in sorted(named.items())}


def foreign() -> list[str]:
    """The enabled extensions that are not the workbench's, as ``"lab NAME"``/``"server NAME"``."""
    return [
        f"lab {name}" for name, on in _lab_extensions().items() if on and name not in LAB_EXTENSIONS
    ] + [
        f"server {name}"
        for name, on in _server_extensions().items()
        if on and name not in SERVER_EXTENSIONS
    ]


def isolate() -> list[str]:
    """Disable every foreign extension at the sys-prefix level; returns what was disabled."""
    from jupyter_core.paths import ENV_CONFIG_PATH
    from jupyter_server.extension.serverextension import toggle_server_extension_python
    from traitlets.config.manager import BaseJSONConfigManager

    found = foreign()
    for item in found:
        kind, name = item.split(" ", 1)
        if kind == "lab":
            # What `jupyter labextension disable --level=sys_prefix NAME` writes, plus the
            # lock JupyterLab's next command would add anyway (its 4.0 -> 4.1 migration
            # locks what is disabled); locked, the Plugin Manager cannot turn it back on.
            venv = BaseJSONConfigManager(config_dir=str(Path(ENV_CONFIG_PATH[0]) / _LABCONFIG))
            off = {name: True}
            venv.update("page_config", {"disabledExtensions": off, "lockedExtensions": off})
        else:
            toggle_server_extension_python(name, enabled=False, sys_prefix=True)
    return found


def _page_config() -> dict[str, Any]:
    """JupyterLab's page config, merged over the config path as jupyterlab_server does.

    jupyterlab_server's own helper imports the whole Lab server (over a second); the
    config manager it reads with is this one.
    """
    from jupyter_core.paths import jupyter_config_path
    from jupyter_server.services.config.manager import ConfigManager

    read = [str(Path(p) / _LABCONFIG) for p in jupyter_config_path()]
    config: dict[str, Any] = ConfigManager(read_config_path=read).get("page_config")  # type: ignore[no-untyped-call]
    return config


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="python -m workbench.lab",
        description="Disable the JupyterLab and server extensions that are not the workbench's.",
    ).parse_args(argv)
    disabled = isolate()
    print(
        f"JupyterLab: disabled {', '.join(disabled)} (at {sys.prefix})"
        if disabled
        else "JupyterLab: only the workbench's extensions are enabled"
    )
    # Only a user's own config (~/.jupyter) outranks the venv's: their choice, so a warning.
    for item in foreign():
        print(f"warning: {item} stays enabled by a Jupyter config above the venv's (~/.jupyter?)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""End to end in a real browser: JupyterLab on 127.0.0.1 driven by Debian's headless Chromium.

The notebooks are copied to a temporary root (JupyterLab autosaves what it
runs), executed with "Run All", and the page is checked: the %%dfsql preview
table, and the plan-tree widget with its nodes, hot path and detail panel.
Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from workbench import datasets

from .conftest import REPO, physical_operator_count

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium"))
SHOTS = REPO / "test-artifacts" / "browser"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    datasets.tpch(0.1)  # the notebooks read the demo data: make it before any page waits on it
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: `apt-get install chromium` (scripts/dev.sh test does)"
    )
    root = tmp_path_factory.mktemp("lab")
    for name in ("tour.ipynb", "plans.ipynb", "prune.ipynb"):
        shutil.copy(REPO / "notebooks" / name, root / name)
    shutil.copy(REPO / "tests" / "fixtures" / "completion.ipynb", root / "completion.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(root / ".runtime"),
        "JUPYTER_CONFIG_DIR": str(root / ".config"),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--allow-root",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(root / "server.log").open("w"),
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)  # noqa: S310  (loopback)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.terminate()
        pytest.fail(f"JupyterLab did not start: {(root / 'server.log').read_text()[-2000:]}")
    try:
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        chromium = play.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _open(browser, lab, notebook: str, workspace: str):
    """A page with ``notebook`` open and its kernel connected."""
    base, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # A workspace of its own, reset: otherwise JupyterLab restores the tabs of the last page.
    page.goto(f"{base}/lab/workspaces/{workspace}/tree/{notebook}?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
    page.wait_for_function(
        f"() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        f" && window.jupyterapp.shell.currentWidget.context"
        f" && window.jupyterapp.shell.currentWidget.context.path === '{notebook}'"
        " && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.connectionStatus === 'connected'",
        timeout=60_000,
    )
    return page


def _run_all(browser, lab, notebook: str):
    page = _open(browser, lab, notebook, notebook.removesuffix(".ipynb"))
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    # Every code cell has run when its prompt shows a number (not "[*]" or "[ ]").
    try:
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
            ".every(p => /\\[\\d+\\]/.test(p.textContent))",
            timeout=180_000,
        )
    except Exception:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{notebook}-timeout.png"), full_page=True)
        raise
    return page


def test_the_tour_lab_has_no_toolbar_button_from_the_bench_peers(browser, lab):
    page = _open(browser, lab, "tour.ipynb", "toolbar")
    toolbar = page.locator(".jp-NotebookPanel-toolbar")
    # JupyterLab's own buttons are there, so an absent button is not a toolbar not yet drawn.
    toolbar.locator("[data-command='notebook:run-cell-and-select-next']").wait_for()
    # jupysql-plugin (installed with the bench extra) adds "Format SQL" to every notebook.
    hint = "a peer's Lab extension is enabled: `python -m workbench.lab` (dev.sh runs it)"
    assert page.locator(".format-sql-button, [data-testid='format-btn']").count() == 0, hint
    assert page.get_by_text("Format SQL").count() == 0, hint
    page.close()


def test_tour_runs_in_jupyterlab_and_shows_the_preview_table(browser, lab):
    page = _run_all(browser, lab, "tour.ipynb")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "tour.png"), full_page=True)
    previews = page.locator(".jp-OutputArea .wb-preview table")
    assert previews.count() >= 5
    first = previews.first.text_content() or ""
    assert "l_returnflag" in first
    assert "rows shown" in (page.locator(".wb-preview .wb-status").first.text_content() or "")
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert "line 1, column 20" in " ".join(errors.all_text_contents())
    page.close()


def test_plan_tree_widget_renders_expands_and_shows_details(browser, lab):
    page = _run_all(browser, lab, "plans.ipynb")
    tree = page.locator(".wb-tree").first
    tree.wait_for(timeout=30_000)
    # The first tree is the planned-only one; the analyzed one has every operator of Q9.
    analyzed = page.locator(".wb-tree").filter(has_text="analyzed").first
    assert analyzed.locator(".node").count() == physical_operator_count(0.1, datasets.tpch_query(9))
    assert analyzed.locator(".node.hot").count() >= 5
    scan = analyzed.locator(".row", has_text="DataSourceExec").last
    scan.scroll_into_view_if_needed()
    scan.click()
    panel = analyzed.locator(".right")
    assert "row_groups_pruned_statistics" in panel.inner_text()
    assert "output rows" in panel.inner_text()
    analyzed.locator(".search").fill("HashJoin")
    assert analyzed.locator(".node.match").count() == 5
    analyzed.scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    analyzed.screenshot(path=str(SHOTS / "plan-tree.png"))
    page.screenshot(path=str(SHOTS / "plans.png"), full_page=True)
    page.close()


def test_pruning_widget_draws_its_funnel_offline_and_sorts_its_file_table(browser, lab):
    page = _run_all(browser, lab, "prune.ipynb")
    widget = page.locator(".wb-prune-widget").filter(has=page.locator("img.funnel")).first
    widget.wait_for(timeout=30_000)
    widget.scroll_into_view_if_needed()
    chart = widget.locator("img.funnel")
    # The funnel is an SVG drawn in the kernel (no CDN): the browser decoded it into pixels.
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 50", arg=chart.element_handle()
    )
    assert (chart.get_attribute("src") or "").startswith("data:image/svg+xml")
    rows = widget.locator("tbody tr")
    assert rows.count() >= 2
    before = rows.locator("td:nth-child(1)").all_text_contents()
    widget.locator("th", has_text="path").click()
    ascending = rows.locator("td:nth-child(1)").all_text_contents()
    assert ascending == sorted(before)  # clicking the header sorted the table by path
    assert ascending != before or before == sorted(before)
    widget.locator("th", has_text="path").click()
    assert rows.locator("td:nth-child(1)").all_text_contents() == sorted(before, reverse=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    widget.screenshot(path=str(SHOTS / "prune.png"))
    page.close()


def test_tab_completion_offers_tables_and_alias_columns_in_a_dfsql_cell(browser, lab):
    page = _run_all(browser, lab, "completion.ipynb")
    page.locator(".jp-CodeCell .jp-InputArea-editor").last.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")  # a new cell below, from command mode
    page.keyboard.press("Enter")

    def offered(sql: str) -> list[str]:
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type("%%dfsql")
        page.keyboard.press("Enter")
        page.keyboard.type(sql)
        page.keyboard.press("Tab")
        items = page.locator(".jp-Completer .jp-Completer-item .jp-Completer-match")
        items.first.wait_for(timeout=30_000)
        texts: list[str] = items.all_text_contents()
        page.screenshot(path=str(SHOTS / "completion.png"))  # the last popup
        page.keyboard.press("Escape")
        return texts

    SHOTS.mkdir(parents=True, exist_ok=True)
    # lineitem_sample was created by the notebook's last cell, so the popup has two tables.
    assert offered("SELECT * FROM lin") == ["lineitem", "lineitem_sample"]
    shipping = ["l_shipdate", "l_shipinstruct", "l_shipmode"]
    assert offered("SELECT * FROM lineitem l WHERE l.l_ship") == shipping
    page.close()

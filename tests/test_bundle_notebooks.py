"""`%wb export` of every run of each notebook replays in a fresh process, naming each run's lane.

Each notebook runs headless in a real kernel with two cells appended: a
``generate_series`` query (a plan Substrait cannot carry) and ``%wb export`` of
every run id in ``wb_runs``. A fresh interpreter then registers the TPC-H demo
tables and replays the bundle.
"""

from __future__ import annotations

import json

import nbformat
import pytest

from workbench.tour import execute_notebook

from .conftest import REPO, run_python

pytestmark = pytest.mark.kernel

SERIES = (
    "%%dfsql -o series\nSELECT count(*) AS n, sum(value) AS total FROM generate_series(1, 1000)"
)
EXPORT = """\
import json
every_run = " ".join(wb.run_ids())
all_runs_bundle = %wb export {every_run} {bundle_dir}
print("EXPORTED", json.dumps(every_run.split()))
"""


def _export_every_run(name: str, tmp_path) -> tuple[list[str], dict]:
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    bundle = tmp_path / "bundle"
    notebook.cells += [
        nbformat.v4.new_code_cell(SERIES),
        nbformat.v4.new_code_cell(EXPORT.replace("{bundle_dir}", str(bundle))),
    ]
    source = tmp_path / name
    nbformat.write(notebook, source)
    executed = nbformat.read(execute_notebook(source, tmp_path / "out" / name), as_version=4)
    printed = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    ids = json.loads(printed.split("EXPORTED", 1)[1])
    manifest = json.loads((bundle / "manifest.json").read_text())
    return ids, manifest


def _replay_in_a_fresh_process(bundle: str) -> list[dict]:
    out = run_python(f"""
        import json, workbench
        from workbench import datasets
        session = workbench.RuntimeProfile().session()
        datasets.tpch(0.1).register(session)
        report = workbench.replay({bundle!r}, session)
        print(json.dumps([
            {{"run_id": r.run_id, "lane": r.lane, "compared": r.compared,
              "matches": r.matches, "line": r.describe()}}
            for r in report.runs
        ]))
    """)
    return list(json.loads(out))


@pytest.mark.parametrize("name", ["tour.ipynb", "plans.ipynb"])
def test_every_run_of_the_notebook_exports_and_replays_in_a_fresh_process(name, tmp_path):
    ids, manifest = _export_every_run(name, tmp_path)
    runs = {run["run_id"]: run for run in manifest["runs"]}
    assert list(runs) == ids
    replayed = {r["run_id"]: r for r in _replay_in_a_fresh_process(str(tmp_path / "bundle"))}
    assert list(replayed) == ids
    for run_id, run in runs.items():
        outcome = replayed[run_id]
        has_lane = any(lane["available"] for lane in run["lanes"].values())
        if has_lane:
            assert outcome["lane"] in {"substrait", "sql"}, outcome
            assert f"({outcome['lane']} lane)" in outcome["line"]
        else:
            assert outcome["lane"] is None
            assert "not replayed" in outcome["line"]
        if run["result"] is not None:
            assert outcome["compared"], outcome
            assert outcome["matches"], outcome
    series = next(
        r for r in runs.values() if "generate_series" in r["lanes"]["substrait"].get("reason", "")
    )
    assert replayed[series["run_id"]]["lane"] == "sql"
    assert replayed[series["run_id"]]["matches"]
    compared = [r for r in replayed.values() if r["compared"]]
    assert len(compared) >= 3
    assert any(r["lane"] == "substrait" for r in compared)

"""notebooks/cluster.ipynb runs headless in a real kernel on the standalone Ballista engine;
its outputs are checked."""

from __future__ import annotations

import re

import pytest

from .notebook_cells import code_cell, errors, executed, outputs, tagged_to_fail

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    return executed("cluster.ipynb", tmp_path_factory)


def test_only_the_refused_query_fails_and_it_says_why_in_one_line(notebook):
    failed = errors(notebook)
    assert len(failed) == 1
    cell, error = failed[0]
    assert tagged_to_fail(cell)
    assert error["ename"] == "ClusterError"
    assert error["evalue"].startswith("table picked cannot run on ballista:standalone")
    assert "Traceback" not in outputs(cell, traceback=True)


def test_the_query_runs_on_the_cluster_with_the_rows_of_this_process(notebook):
    shown = outputs(code_cell(notebook, 'print("engine:"'))
    assert "engine: ballista:standalone | job: " in shown
    assert "same rows as here: True" in shown
    table = outputs(code_cell(notebook, "%%dfsql -o shipped"))
    assert "4 rows shown" in table


def test_the_workbench_functions_answer_on_the_cluster(notebook):
    shown = outputs(code_cell(notebook, "%%dfsql -o ids"))
    assert "5 rows shown" in shown
    assert len(re.findall(r"\| [0-9a-f]{32} \|", shown)) == 5  # stable_id's hex ids


def test_explain_shows_the_stages_planned_and_with_their_rows(notebook):
    planned = outputs(code_cell(notebook, "%explain --engine"))
    assert "BallistaJob" in planned
    assert "Stage 1" in planned
    assert "UnresolvedShuffleExec" in planned
    stages = outputs(code_cell(notebook, "tree = _"))
    assert "2 stages: ['Stage 0', 'Stage 1']" in stages
    assert "rows out of the last stage: 25" in stages


def test_the_runs_name_their_engine(notebook):
    runs = outputs(code_cell(notebook, "%%dfsql\nSELECT engine"))
    assert runs.count("ballista:standalone") >= 3
    assert "explain --analyze" in runs

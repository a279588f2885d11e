"""Shared fixtures: real sessions, real TPC-H data, a real IPython shell."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import workbench
from workbench import datasets

REPO = Path(__file__).resolve().parent.parent

# Run logs of the test sessions (and of the kernels and subprocesses they start)
# go to a scratch directory, not the user's ~/.cache/workbench/artifacts.
os.environ.setdefault("WORKBENCH_ARTIFACT_DIR", tempfile.mkdtemp(prefix="wb-test-runs-"))
SHARED_QUERIES = REPO.parent / "shared" / "tpch" / "queries"


@pytest.fixture
def session() -> workbench.Session:
    return workbench.RuntimeProfile().session()


@pytest.fixture(scope="session")
def tpch() -> datasets.TpchData:
    """TPC-H at scale 0.1 in the shared data dir (the tour's data, generated once)."""
    return datasets.tpch(0.1)


@pytest.fixture
def tpch_session(tpch: datasets.TpchData) -> workbench.Session:
    session = workbench.RuntimeProfile().session()
    tpch.register(session)
    return session


@pytest.fixture(scope="session")
def ipython():
    """The one global IPython shell of the test process, with the extension loaded."""
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    shell.run_line_magic("load_ext", "workbench")
    return shell


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter and return its stdout (fails on error)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout

"""Shared fixtures: real sessions, real TPC-H data, a real IPython shell."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import workbench
from workbench import datasets
from workbench.errors import SqlError
from workbench.ingress.gate import Policy

if TYPE_CHECKING:
    import pyarrow as pa

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


# For code run by run_python: peak memory of *this* process from a reset point. ru_maxrss
# is inherited from the parent on Linux, so a child's growth must be read from VmHWM after
# resetting it (clear_refs = 5), as bench/probe.py does.
PEAK_MEMORY = """
def reset_peak():
    with open("/proc/self/clear_refs", "w") as out:
        out.write("5")
    return _status_kib("VmRSS")

def peak_since(start_kib):
    return _status_kib("VmHWM") - start_kib

def _status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)
"""


def run_python(code: str, *, peak_memory: bool = False) -> str:
    """Run ``code`` in a fresh interpreter and return its stdout (fails on error).

    With ``peak_memory`` the code can call ``reset_peak()`` and ``peak_since(start)``
    (KiB), from ``PEAK_MEMORY``.
    """
    source = (PEAK_MEMORY if peak_memory else "") + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", source],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def physical_operator_count(scale: float, sql: str) -> int:
    """How many operators DataFusion plans for ``sql`` over TPC-H at ``scale`` with the
    default profile: what a notebook's plan tree of it must show (the plan's shape follows
    the machine's tuning, see ``workbench.session.machine_tuning``)."""
    session = workbench.RuntimeProfile().session()
    datasets.tpch(scale).register(session)

    def count(plan) -> int:
        return 1 + sum(count(child) for child in plan.children())

    return count(session.ctx.sql(sql).execution_plan())


def gated_pair(tables: dict[str, pa.Table]) -> tuple[workbench.Session, workbench.Session]:
    """A session with the gate and one without (DataFusion plans the text as written),
    both holding ``tables`` in memory."""
    sessions = (
        workbench.RuntimeProfile().session(),
        workbench.RuntimeProfile(sql_gate=False).session(),
    )
    for session in sessions:
        for name, table in tables.items():
            session.ctx.register_record_batches(name, [table.to_batches()])
            session.gate.changed()
    return sessions


def rows_and_rewrites(
    session: workbench.Session, sql: str
) -> tuple[list[dict] | str, tuple[str, ...]]:
    """The rows (sorted), or the first line of the error DataFusion gave, and what the
    gate rewrote."""
    result = session.sql(sql)
    try:
        rows: list[dict] | str = sorted(result.to_pyarrow().to_pylist(), key=repr)
    except SqlError as exc:
        rows = str(exc).splitlines()[0]
    return rows, result.run.rewrites


def tpch_rule_check(tpch: datasets.TpchData, number: int, rule: str) -> tuple[tuple[str, ...], str]:
    """TPC-H query ``number`` through the gate: its answer equals DataFusion's on the text
    as written, the default policy holds ``rule``, and without it the text goes as
    written. Returns the run's rewrites and the text the gate sent."""
    gated, plain = (
        workbench.RuntimeProfile().session(),
        workbench.RuntimeProfile(sql_gate=False).session(),
    )
    for session in (gated, plain):
        tpch.register(session)
    sql = datasets.tpch_query(number)
    result = gated.sql(sql)
    assert result.to_pyarrow().to_pylist() == plain.sql(sql).to_pyarrow().to_pylist()
    text = gated.gate.prepare(sql).text
    assert rule in Policy().rules
    gated.gate.policy = Policy(rules=tuple(r for r in Policy().rules if r != rule))
    gated.gate.changed()
    assert gated.gate.prepare(sql).text == sql
    return result.run.rewrites, text

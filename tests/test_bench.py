"""bench/ keeps running: the quick mode executes every case (it measures nothing)."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import REPO


def test_quick_mode_runs_every_case_and_writes_json_and_markdown(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "| udf | stable_id over 100,000 rows | python udf |" in done.stdout
    (json_file,) = tmp_path.glob("*.json")
    (md_file,) = tmp_path.glob("*.md")
    report = json.loads(json_file.read_text())
    assert report["quick"] is True
    assert report["machine"]["cpus"] >= 1
    variants = {(m["case"], m["variant"]) for m in report["measurements"]}
    assert ("stable_id over 100,000 rows", "rust stable_id") in variants
    assert ("stable_id over 100,000 rows", "python udf") in variants
    baseline = [m for m in report["measurements"] if m["variant"] == m["baseline"]]
    assert all(m["ratio"] == 1.0 for m in baseline)
    assert "ratio vs baseline" in md_file.read_text()

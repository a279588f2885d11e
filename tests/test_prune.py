"""%prune and Session.prune: per-file reasons, candidates, the analyzed funnel, views, errors."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from pathlib import Path

import nbformat
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake
from IPython.utils.capture import capture_output

from workbench.delta import DeltaError, PruningReport
from workbench.errors import UsageError
from workbench.tour import execute_notebook
from workbench.widgets.pruning import report_bundle, report_html

from .conftest import REPO
from .notebook_cells import outputs


def _index(session, name: str) -> dict[str, dict]:
    """The file index of ``name`` as {path: row}, read through SQL."""
    rows = session.sql(f"SELECT * FROM wb_delta_files('{name}')").to_pyarrow().to_pylist()
    return {row["path"]: row for row in rows}


def _verdicts(report: PruningReport) -> dict[str, tuple[bool, str]]:
    files = report.files.to_pylist()
    return {row["path"]: (row["kept"], row["reason"]) for row in files}


@pytest.fixture
def regions(tmp_path):
    """Three partitions (one file each) of a table partitioned by ``region``."""
    uri = str(tmp_path / "regions")
    table = pa.table({"id": [1, 2, 3, 4, 5, 6], "region": ["eu", "eu", "us", "us", "ap", "ap"]})
    write_deltalake(uri, table, partition_by=["region"])
    return uri


@pytest.fixture
def days(tmp_path):
    """Four appends, one file each, covering disjoint ranges of days (versions 0-3)."""
    uri = str(tmp_path / "days")
    start = dt.date(2024, 1, 1)
    for week in range(4):
        dates = [start + dt.timedelta(days=7 * week + d) for d in range(7)]
        ids = list(range(week * 7, week * 7 + 7))
        write_deltalake(uri, pa.table({"id": ids, "d": dates}), mode="append")
    return uri


def test_a_partition_term_names_the_partition_value_of_each_pruned_file(session, regions):
    session.register_delta("regions", regions)
    report = session.prune("regions", "WHERE region = 'eu'")
    index = _index(session, "regions")
    assert (report.total_files, report.candidate_files) == (3, 1)
    for path, (kept, reason) in _verdicts(report).items():
        value = index[path]["partition.region"]
        if value == "eu":
            assert (kept, reason) == (True, "partition values match")
        else:
            assert (kept, reason) == (
                False,
                f"partition region = 'eu' (file has region = '{value}')",
            )


def test_a_statistics_term_names_the_bound_that_excluded_each_file(session, days):
    session.register_delta("days", days)
    report = session.prune("days", "d <= '2024-01-10'")
    index = _index(session, "days")
    assert (report.total_files, report.candidate_files) == (4, 2)
    for path, (kept, reason) in _verdicts(report).items():
        low = index[path]["min.d"]
        if low <= dt.date(2024, 1, 10):
            assert (kept, reason) == (True, "statistics overlap")
        else:
            assert (kept, reason) == (False, f"d min {low.isoformat()} > 2024-01-10")
    upper = _verdicts(session.prune("days", "id >= 20"))
    for path, (kept, reason) in upper.items():
        high = index[path]["max.id"]
        assert (kept, reason) == (
            (True, "statistics overlap") if high >= 20 else (False, f"id max {high} < 20")
        )


def test_a_file_whose_log_entry_has_no_statistics_is_kept_and_says_so(session, days):
    log = Path(days) / "_delta_log" / "00000000000000000001.json"
    actions = [json.loads(line) for line in log.read_text().splitlines()]
    stripped = next(a["add"] for a in actions if "add" in a)
    del stripped["stats"]  # as a writer that collects no statistics leaves it
    log.write_text("".join(json.dumps(a) + "\n" for a in actions))
    session.register_delta("days", days)
    report = session.prune("days", "id > 100")
    verdicts = _verdicts(report)
    assert verdicts[stripped["path"]] == (True, "missing statistics for id")
    assert [kept for path, (kept, _) in verdicts.items() if path != stripped["path"]] == [False] * 3
    assert report.candidate_files == 1


def test_candidates_are_exactly_the_files_whose_min_max_overlap_the_range_on_100_files(
    session, tmp_path
):
    rng = random.Random(13)
    ids: list[int] = []
    buckets: list[int] = []
    values: list[int] = []
    for bucket in range(100):  # one file per bucket, each over a random range of x
        low = rng.randrange(0, 10_000)
        for _ in range(20):
            buckets.append(bucket)
            values.append(low + rng.randrange(0, 400))
            ids.append(len(ids))
    uri = str(tmp_path / "hundred")
    write_deltalake(
        uri, pa.table({"id": ids, "bucket": buckets, "x": values}), partition_by=["bucket"]
    )
    session.register_delta("hundred", uri)
    index = _index(session, "hundred")
    assert len(index) == 100
    for low, high in [(0, 50), (2_000, 2_100), (5_000, 7_500), (9_990, 12_000), (20_000, 30_000)]:
        report = session.prune("hundred", f"x BETWEEN {low} AND {high}")
        overlapping = {
            p for p, row in index.items() if row["min.x"] <= high and row["max.x"] >= low
        }
        candidates = {p for p, (kept, _) in _verdicts(report).items() if kept}
        assert candidates == overlapping, (low, high)
        assert report.candidate_files == len(overlapping)
        assert report.candidate_bytes == sum(index[p]["size_bytes"] for p in overlapping)


def test_the_analyzed_funnel_matches_the_plan_metrics_and_the_rows(session, tmp_path):
    uri = str(tmp_path / "events")
    for chunk in range(8):  # eight files of 1,000 rows with disjoint id ranges
        ids = list(range(chunk * 1_000, chunk * 1_000 + 1_000))
        write_deltalake(uri, pa.table({"id": ids, "v": [i % 7 for i in ids]}), mode="append")
    session.register_delta("events", uri)
    predicate = "id BETWEEN 2500 AND 4100 AND v = 3"
    report = session.prune("events", predicate, analyze=True)

    expected = (
        DeltaTable(uri)
        .to_pyarrow_table()
        .filter((pc.field("id") >= 2500) & (pc.field("id") <= 4100) & (pc.field("v") == 3))
    )
    assert report.matching_rows == expected.num_rows
    funnel = {stage.stage: (stage.total, stage.kept) for stage in report.funnel}
    assert funnel["Delta log"] == (8, 3) == (report.total_files, report.candidate_files)

    tree = session.plan(report.run_id)
    (delta,) = [n for n in tree.physical.walk() if n.operator == "DeltaTableExec"]
    assert (delta.delta_table, delta.delta_version) == ("events", DeltaTable(uri).version())
    assert funnel["Delta scan"] == (delta.delta_files_total, delta.delta_files_scanned) == (8, 3)
    below = list(delta.walk())
    for metric, stage in [("row_groups_pruned_statistics", "row groups")]:
        counters = [p for n in below for p in n.pruning if p.name == metric]
        assert funnel[stage] == (sum(p.total for p in counters), sum(p.matched for p in counters))
    (parquet,) = [n for n in below if n.operator == "DataSourceExec"]
    decoded = parquet.output_rows + dict(parquet.metrics).get("pushdown_rows_pruned", 0)
    assert funnel["rows"] == (decoded, expected.num_rows)
    assert decoded <= 3_000  # only the three candidate files were read

    # The labels cross FFI as DataFusion metrics, read here without the plan model.
    df, _ = session.recent(report.run_id)
    found = {}
    stack = [df.execution_plan()]
    while stack:
        plan = stack.pop()
        stack.extend(plan.children())
        for metric in plan.metrics().metrics() if plan.metrics() else []:
            if metric.name.startswith("delta_files_"):
                found[metric.name] = (metric.value, metric.labels())
    labels = {"table": "events", "version": str(DeltaTable(uri).version())}
    assert found == {"delta_files_total": (8, labels), "delta_files_scanned": (3, labels)}


def test_a_count_answered_from_the_log_says_no_file_was_read(session, regions):
    session.register_delta("regions", regions)
    report = session.prune("regions", "region = 'us'", analyze=True)
    assert report.matching_rows == 2
    assert [s.stage for s in report.funnel] == ["Delta log"]
    assert "without reading a data file" in (report.note or "")


def test_the_explain_tree_badges_the_delta_scan_with_its_file_counts(session, days):
    session.register_delta("days", days)
    result = session.sql("SELECT count(*) AS n FROM days WHERE id < 3")
    assert result.to_pyarrow().column("n").to_pylist() == [3]
    tree = session.plan(result.run.run_id)
    badge = "Delta days v3: 1/4 files"
    assert f"[{badge}]" in tree.text()
    assert f"<span class='badge'>{badge}</span>" in tree._repr_mimebundle_()["text/html"]


def test_html_escapes_values_and_the_chart_is_inline_svg_without_scripts(session, tmp_path):
    uri = str(tmp_path / "markup")
    table = pa.table({"id": [1, 2], "tag": ["<i>x</i>", "<b onclick='y'>z</b>"]})
    write_deltalake(uri, table, partition_by=["tag"])
    session.register_delta("markup", uri)
    report = session.prune("markup", "tag = '<i>x</i>' AND id < 5", analyze=True)
    bundle = report_bundle(report)
    shown = bundle["text/html"]
    assert "<i>" not in shown
    assert "<b onclick" not in shown
    assert "tag = &#x27;&lt;i&gt;x&lt;/i&gt;&#x27;" in shown
    assert (
        "file has tag = &#x27;&lt;b onclick=&#x27;&#x27;y&#x27;&#x27;&gt;z&lt;/b&gt;&#x27;" in shown
    )
    svg = shown[shown.index("<svg") : shown.index("</svg>")]
    assert svg.count("<path") >= 2  # bars drawn, not an empty frame
    assert "<script" not in shown
    assert "http" not in shown.replace("http://www.w3.org", "")
    assert "candidate files 1 of 2" in bundle["text/plain"]
    # Without a chart the HTML still has the table.
    assert "<svg" not in report_html(report)
    assert "<table>" in report_html(report)


def test_prune_magic_takes_where_and_a_trailing_analyze_flag(ipython, days):
    ipython.user_ns["wb"].register_delta("magic_days", days)
    report = ipython.run_line_magic("prune", "magic_days WHERE d < '2024-01-08' --analyze")
    assert isinstance(report, PruningReport)
    assert (report.candidate_files, report.analyzed, report.matching_rows) == (1, True, 7)
    leading = ipython.run_line_magic("prune", "--analyze magic_days d < '2024-01-08'")
    assert leading.candidate_files == 1
    assert leading.analyzed


@pytest.mark.parametrize(
    ("line", "error", "message"),
    [
        ("magic_days WHERE nope > 1", DeltaError, "No field named nope"),
        ("magic_days WHERE d >", DeltaError, "cannot parse the predicate"),
        ("magic_days id + 1", DeltaError, "id + 1: it is Int64, not a condition"),
        ("nowhere id > 1", DeltaError, "no Delta table named 'nowhere'"),
        ("magic_days", UsageError, "needs a Delta table and a predicate"),
    ],
)
def test_prune_magic_shows_a_short_error_for_a_bad_predicate_or_table(
    ipython, days, line, error, message
):
    ipython.user_ns["wb"].register_delta("magic_days", days)
    with capture_output() as captured:
        outcome = ipython.run_cell(f"%prune {line}")
    assert isinstance(outcome.error_in_exec, error)
    shown = captured.stdout + captured.stderr
    assert message in shown
    assert "Traceback" not in shown
    assert len(shown.strip().splitlines()) <= 4


@pytest.fixture(scope="module")
def prune_notebook(tmp_path_factory):
    out = tmp_path_factory.mktemp("nb") / "prune.ipynb"
    return nbformat.read(execute_notebook(REPO / "notebooks" / "prune.ipynb", out), as_version=4)


_outputs = outputs


def _cell(notebook, starts: str):
    return next(c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(starts))


@pytest.mark.kernel
def test_the_prune_notebook_shows_reports_funnel_svg_file_index_and_badge(prune_notebook):
    plain = _outputs(_cell(prune_notebook, "%prune lineitem_delta WHERE ship_year"))
    found = re.search(r"candidate files (\d+) of (\d+)", plain)
    assert found
    assert 0 < int(found[1]) < int(found[2])
    assert "partition ship_year = 1995 (file has ship_year = " in plain
    analyzed = _outputs(_cell(prune_notebook, "%prune lineitem_delta l_shipdate"))
    assert "analyzed run" in analyzed
    assert re.search(r"l_shipdate (min|max) \d{4}-\d\d-\d\d [<>]", analyzed)
    svg = analyzed[analyzed.index("<svg") : analyzed.index("</svg>")]
    assert svg.count("<path") >= 2
    index = _outputs(_cell(prune_notebook, "%%dfsql\nSELECT path"))
    assert "lo (date32[day])" in index
    assert "ship_year=1995/" in index
    assert "ship_year=1994/" not in index
    badge = _outputs(_cell(prune_notebook, "%explain --analyze"))
    assert re.search(r"Delta lineitem_delta v0: \d+/\d+ files", badge)
    for cell in prune_notebook.cells:
        assert all(o["output_type"] != "error" for o in cell.get("outputs", []))

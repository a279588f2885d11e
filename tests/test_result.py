"""The streaming Result: lazy preview, exact replay, bounded materialisation."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

import workbench
from workbench.errors import ResultConsumedError, ResultTooLargeError, SqlError
from workbench.runs import RunStatus

from .conftest import run_python


@pytest.fixture
def small_batches() -> workbench.Session:
    return workbench.RuntimeProfile(batch_size=1000, target_partitions=4).session()


def test_nothing_runs_until_rows_are_asked_for(session):
    result = session.sql("SELECT * FROM generate_series(1, 500000000)")
    assert result.run.status == RunStatus.PLANNED
    assert result.rows_read == 0


def test_preview_reads_only_the_first_batches(session):
    result = session.sql("SELECT * FROM generate_series(1, 500000000)")
    table = result.preview(10)
    assert table.column("value").to_pylist() == list(range(1, 11))
    assert result.rows_read <= 2 * 8192
    assert result.run.status == RunStatus.RUNNING
    assert result.more_than(10)


def test_preview_then_to_polars_returns_each_row_exactly_once(small_batches):
    result = small_batches.sql("SELECT value FROM generate_series(1, 100000)")
    head = result.preview(2500)
    assert head.num_rows == 2500
    frame = result.to_polars()
    values = frame["value"].to_list()
    assert sorted(values) == list(range(1, 100001))
    assert values[:2500] == head.column("value").to_pylist()
    assert result.run.status == RunStatus.FINISHED
    assert result.run.rows == 100000


def test_paging_replays_without_rerunning(small_batches):
    result = small_batches.sql("SELECT value FROM generate_series(1, 50000)")
    first = result.page(0, size=700)
    third = result.page(2, size=700)
    again = result.page(0, size=700)
    assert first.equals(again)
    assert third.num_rows == 700
    read = result.rows_read
    assert read < 50000
    everything = result.to_pyarrow()
    assert everything.slice(1400, 700).equals(third)
    assert result.run.rows == 50000


def test_iteration_streams_every_row_after_a_preview(small_batches):
    result = small_batches.sql("SELECT value FROM generate_series(1, 30000)")
    result.preview(5)
    seen = [v for batch in result for v in batch.column(0).to_pylist()]
    assert sorted(seen) == list(range(1, 30001))


def test_rows_streamed_out_are_not_kept(small_batches):
    result = small_batches.sql("SELECT value FROM generate_series(1, 30000)")
    head = result.preview(5)
    list(result)
    assert result.preview(5).equals(head)
    with pytest.raises(ResultConsumedError, match="streamed out"):
        result.preview(20000)
    with pytest.raises(ResultConsumedError, match="streamed out; run the query again"):
        list(result)
    with pytest.raises(ResultConsumedError, match="streamed out"):
        result.to_pyarrow()


def test_to_pyarrow_after_a_full_stream_refuses_instead_of_returning_the_head(small_batches):
    result = small_batches.sql("SELECT value FROM generate_series(1, 5000)")
    result.preview(5)
    assert sum(b.num_rows for b in result) == 5000
    assert result.exhausted
    with pytest.raises(ResultConsumedError, match="only the first 1,000 rows were kept"):
        result.to_pyarrow()


def test_a_small_result_streamed_whole_can_still_be_previewed(session):
    result = session.sql("SELECT * FROM generate_series(1, 10)")
    result.preview(3)
    assert sum(b.num_rows for b in result) == 10
    assert result.preview(20).num_rows == 10
    assert "10 rows shown" in result._repr_mimebundle_()["text/plain"]
    assert sum(b.num_rows for b in result) == 10  # fully buffered: streams again


def test_stopping_a_stream_early_ends_the_run(small_batches):
    result = small_batches.sql("SELECT value FROM generate_series(1, 50000)")
    stream = iter(result)
    next(stream)
    stream.close()  # what `break` does to a for loop's generator
    assert result.run.status == RunStatus.CANCELLED
    assert result.run.finished_at is not None


def test_to_pyarrow_over_thousands_of_batches_returns_every_row_once():
    many = workbench.RuntimeProfile(batch_size=10).session()
    result = many.sql("SELECT value FROM generate_series(1, 30000)")
    assert result.to_pyarrow().num_rows == 30000
    assert result.run.batches == 3000


def test_to_pyarrow_refuses_past_the_limit_and_loses_nothing():
    session = workbench.RuntimeProfile(batch_size=1000, max_materialize_bytes=50_000).session()
    result = session.sql("SELECT value FROM generate_series(1, 100000)")
    with pytest.raises(ResultTooLargeError, match=r"write_parquet\(path\)"):
        result.to_pyarrow()
    table = result.to_pyarrow(max_bytes=10**9)
    assert sorted(table.column("value").to_pylist()) == list(range(1, 100001))


def test_arrow_c_stream_feeds_polars_directly(small_batches):
    import polars as pl

    result = small_batches.sql("SELECT value, value * 2 AS double FROM generate_series(1, 5000)")
    result.preview(3)
    frame = pl.DataFrame(result)
    assert frame.height == 5000
    assert (frame["double"] == frame["value"] * 2).all()


def test_write_parquet_streams_every_row(small_batches, tmp_path):
    result = small_batches.sql("SELECT value FROM generate_series(1, 40000)")
    result.preview(10)
    path = result.write_parquet(tmp_path / "out" / "values.parquet")
    values = pq.read_table(path).column("value").to_pylist()
    assert sorted(values) == list(range(1, 40001))
    assert [p.name for p in path.parent.iterdir()] == ["values.parquet"]


def test_failed_write_leaves_no_file(small_batches, tmp_path):
    result = small_batches.sql(
        "SELECT 10 / (value - 25000) AS x FROM generate_series(1, 40000) ORDER BY value"
    )
    with pytest.raises(SqlError, match="Divide by zero"):
        result.write_parquet(tmp_path / "x.parquet")
    assert list(tmp_path.iterdir()) == []
    assert result.run.status == RunStatus.FAILED
    assert "Divide by zero" in (result.run.error or "")


def test_cancel_keeps_the_buffered_rows(session):
    result = session.sql("SELECT * FROM generate_series(1, 500000000)")
    head = result.preview(3)
    result.cancel()
    assert result.run.status == RunStatus.CANCELLED
    assert result.preview(3).equals(head)


def test_preview_memory_does_not_grow_with_result_size():
    code = """
        import workbench
        session = workbench.RuntimeProfile().session()
        session.sql("SELECT * FROM generate_series(1, 1000)").preview(10)
        before = reset_peak()
        results = [session.sql("SELECT * FROM generate_series(1, 500000000)") for _ in range(3)]
        for r in results:
            r.preview(20)
        print(peak_since(before))
    """
    grown_kib = int(run_python(code, peak_memory=True))
    # 500M int64 rows are 4 GB; three previews of them must stay within tens of MB.
    assert grown_kib < 100 * 1024, f"peak RSS grew by {grown_kib} KiB"


def test_write_parquet_memory_does_not_grow_with_result_size(tmp_path):
    code = f"""
        import workbench
        session = workbench.RuntimeProfile().session()
        session.sql("SELECT * FROM generate_series(1, 1000)").write_parquet({str(tmp_path / "w.parquet")!r})
        before = reset_peak()
        r = session.sql("SELECT value, value * 3 AS v3 FROM generate_series(1, 30000000)")
        r.preview(5)
        r.write_parquet({str(tmp_path / "big.parquet")!r})
        print(peak_since(before), r.run.rows)
    """
    grown_kib, rows = map(int, run_python(code, peak_memory=True).split())
    assert rows == 30_000_000
    # The rows are 480 MB as Arrow; streaming to disk keeps a few batches at a time.
    assert grown_kib < 150 * 1024, f"peak RSS grew by {grown_kib} KiB"


def test_displaying_a_failed_result_shows_the_error_not_a_traceback(small_batches):
    result = small_batches.sql("SELECT 10 / (value - 3) AS x FROM generate_series(1, 5)")
    bundle = result._repr_mimebundle_()
    assert bundle["text/plain"].startswith(
        "SqlError: line 1, column 11: query failed while running"
    )  # the caret is on the / that divided by zero
    assert "Divide by zero" in bundle["text/html"]
    assert "<pre class='wb-error'" in bundle["text/html"]


def test_preview_past_the_size_limit_is_refused_not_buffered():
    session = workbench.RuntimeProfile(max_materialize_bytes=1 << 20).session()
    result = session.sql("SELECT value FROM generate_series(1, 10000000)")
    with pytest.raises(ResultTooLargeError, match=r"preview\(5,000,000\)"):
        result.preview(5_000_000)
    # The buffer stopped at the limit (plus the batch that crossed it), and what it kept stays.
    assert result.rows_kept * 8 <= (1 << 20) + 8192 * 8
    assert result.preview(3).column(0).to_pylist() == [1, 2, 3]


def test_paging_far_ahead_streams_past_rows_without_keeping_them():
    session = workbench.RuntimeProfile(max_materialize_bytes=1 << 20).session()
    result = session.sql("SELECT value FROM generate_series(1, 3000000)")
    head = result.preview(3)
    page = result.page(200_000, 10)
    assert page.column(0).to_pylist() == list(range(2_000_001, 2_000_011))
    assert result.rows_kept * 8 <= (1 << 20) + 8192 * 8  # the head stayed within the limit
    assert result.page(200_001, 10).column(0).to_pylist() == list(range(2_000_011, 2_000_021))
    assert result.page(0, 3).equals(head)  # the previewed head is still there
    with pytest.raises(ResultConsumedError, match="streamed past"):
        result.page(150_000, 10)


def test_paging_forward_page_by_page_keeps_every_page():
    session = workbench.RuntimeProfile(batch_size=100, target_partitions=1).session()
    result = session.sql("SELECT value FROM generate_series(0, 9999)")
    pages = [result.page(i, 250).column(0).to_pylist() for i in range(8)]
    assert pages[3] == list(range(750, 1000))
    assert result.page(2, 250).column(0).to_pylist() == list(range(500, 750))  # kept
    assert 2000 <= result.rows_kept <= 2100


def test_paging_far_ahead_keeps_memory_flat():
    code = """
        import workbench
        session = workbench.RuntimeProfile(target_partitions=1, max_materialize_bytes=16 << 20).session()
        session.sql("SELECT * FROM generate_series(1, 1000)").page(3, 10)
        before = reset_peak()
        r = session.sql("SELECT value, value * 2 AS v2 FROM generate_series(1, 60000000)")
        print(r.page(5_000_000, 10).column(0)[0].as_py())
        print(peak_since(before))
    """
    first, grown_kib = map(int, run_python(code, peak_memory=True).split())
    assert first == 50_000_001
    # 50M rows of two int64 columns are 800 MB; paging past them keeps the 16 MB limit.
    assert grown_kib < 120 * 1024, f"peak RSS grew by {grown_kib} KiB"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.page(-1), "index must be a whole number >= 0"),
        (lambda r: r.page(0, 0), "size must be a whole number >= 1"),
        (lambda r: r.preview(-5), "n must be a whole number >= 0"),
    ],
)
def test_bad_arguments_are_short_workbench_errors(session, call, message):
    result = session.sql("SELECT 1 AS x")
    with pytest.raises(workbench.WorkbenchError, match=message):
        call(result)


def test_write_parquet_expands_the_home_folder(session, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    written = session.sql("SELECT 1 AS x").write_parquet("~/out/x.parquet")
    assert written == tmp_path / "out" / "x.parquet"
    assert pq.read_table(written).num_rows == 1
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.parquet"]
    assert not (tmp_path / "~").exists()


def test_write_parquet_into_a_folder_is_refused_before_streaming(session, tmp_path):
    result = session.sql("SELECT * FROM generate_series(1, 100000)")
    with pytest.raises(workbench.errors.OutputError, match="is a folder"):
        result.write_parquet(tmp_path)
    assert list(tmp_path.iterdir()) == []
    # Nothing was streamed out: the result can still be written elsewhere, whole.
    assert pq.read_table(result.write_parquet(tmp_path / "ok.parquet")).num_rows == 100000


def test_write_parquet_under_a_file_or_into_a_read_only_folder_is_a_short_error(session, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(workbench.errors.OutputError, match="cannot create the folder"):
        session.sql("SELECT 1 AS x").write_parquet(blocker / "x.parquet")
    # sysfs refuses new files even to root, so this holds wherever the tests run.
    with pytest.raises(workbench.errors.OutputError, match="cannot write"):
        session.sql("SELECT 1 AS x").write_parquet("/sys/x.parquet")


def test_a_failed_write_cleans_its_partial_file_and_keeps_an_existing_file(small_batches, tmp_path):
    target = tmp_path / "x.parquet"
    target.write_bytes(b"the previous export")
    result = small_batches.sql(
        "SELECT 10 / (value - 25000) AS x FROM generate_series(1, 40000) ORDER BY value"
    )
    with pytest.raises(SqlError):
        result.write_parquet(target)
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]
    assert target.read_bytes() == b"the previous export"


def test_a_result_that_failed_after_its_preview_says_so_in_its_display(small_batches):
    result = small_batches.sql(
        "SELECT 10 / (value - 25000) AS x FROM generate_series(1, 40000) ORDER BY value"
    )
    result.preview(5)
    with pytest.raises(SqlError):
        result.to_pyarrow()
    text = result._repr_mimebundle_()["text/plain"]
    assert "more rows available" not in text
    assert "FAILED" in text
    assert "Divide by zero" in text


def test_looking_while_a_stream_is_open_is_refused_and_loses_no_row():
    session = workbench.RuntimeProfile(batch_size=10, target_partitions=1).session()
    result = session.sql("SELECT value FROM generate_series(0, 49)")
    reader = result.to_reader()
    first = reader.read_next_batch()
    with pytest.raises(ResultConsumedError, match="being streamed"):
        result.preview(25)
    with pytest.raises(ResultConsumedError, match="being streamed"):
        result.page(2, 5)
    values = first.column(0).to_pylist() + reader.read_all().column(0).to_pylist()
    assert values == list(range(50))


def test_a_look_before_a_reader_starts_reading_loses_no_row():
    session = workbench.RuntimeProfile(batch_size=10, target_partitions=1).session()
    result = session.sql("SELECT value FROM generate_series(0, 49)")
    reader = result.to_reader()  # made, not read yet (as a display hook might run now)
    assert result.preview(25).num_rows == 25
    assert reader.read_all().column(0).to_pylist() == list(range(50))


def test_a_page_that_crosses_the_end_of_the_kept_rows_is_served():
    session = workbench.RuntimeProfile(
        batch_size=10, target_partitions=1, max_materialize_bytes=200
    ).session()
    result = session.sql("SELECT value FROM generate_series(0, 99)")
    # 40 rows do not fit under 200 bytes: the head keeps 30, the rest comes from the stream.
    assert result.page(0, 40).column(0).to_pylist() == list(range(40))
    assert result.rows_kept == 30
    assert result.page(0, 3).column(0).to_pylist() == [0, 1, 2]  # the head stayed
    assert result.page(5, 7).column(0).to_pylist() == list(range(35, 42))
    assert result.page(2, 20).column(0).to_pylist() == list(range(40, 60))  # onward
    with pytest.raises(ResultConsumedError, match="only the first 30 rows were kept"):
        result.page(1, 25)  # rows 30-39 were let go when the window moved on


def test_preview_of_exactly_what_fits_under_the_limit_is_shown():
    session = workbench.RuntimeProfile(
        batch_size=10, target_partitions=1, max_materialize_bytes=200
    ).session()
    result = session.sql("SELECT value FROM generate_series(0, 99)")
    result.preview_rows = 30
    assert result.preview(30).num_rows == 30
    assert "30 rows shown" in result._repr_mimebundle_()["text/plain"]


def test_a_type_parquet_cannot_store_is_a_short_error_and_the_result_stays_whole(session, tmp_path):
    result = session.sql("SELECT INTERVAL '1 day' AS i, 7 AS n")
    with pytest.raises(workbench.errors.OutputError, match="as Parquet"):
        result.write_parquet(tmp_path / "x.parquet")
    assert list(tmp_path.iterdir()) == []
    assert [b.num_rows for b in result] == [1]  # nothing was streamed out by the failed write

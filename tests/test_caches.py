"""The extension's caches: real entries after a Delta scan, hits on a repeat, the profile's limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake

import workbench
from workbench import caches
from workbench.caches import CacheEntry, CachePanel, CacheSummary

QUERY = "SELECT count(*) AS n, sum(id) AS total FROM events WHERE id >= 0"


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """A Delta table of three appends: three data files, versions 0..2."""
    uri = tmp_path / "events"
    for first in (0, 100, 200):
        rows = pa.table({"id": list(range(first, first + 100)), "kind": ["a", "b"] * 50})
        write_deltalake(str(uri), rows, mode="append")
    return uri


def _files(table: Path) -> set[str]:
    return {p.name for p in table.glob("*.parquet")}


def _rows(session: workbench.Session, function: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        session.ctx.sql(f"SELECT * FROM {function}()").to_arrow_table().to_pylist()
    )
    return rows


def _session(table: Path, **cache: int | None) -> workbench.Session:
    session = workbench.RuntimeProfile(cache=workbench.CachePolicy(**cache)).session()
    session.register_delta("events", str(table))
    return session


def test_a_scan_caches_the_footers_of_the_tables_files(table):
    session = _session(table)
    assert _rows(session, "wb_metadata_cache") == []
    assert session.sql(QUERY).to_pyarrow().to_pylist() == [{"n": 300, "total": 44850}]
    rows = _rows(session, "wb_metadata_cache")
    assert {Path(r["path"]).name for r in rows} == _files(table)
    assert all(r["path"].startswith(str(table).lstrip("/")) for r in rows)
    assert all(r["cached"] and r["size_bytes"] > 0 for r in rows)
    assert all((r["hits"], r["misses"]) == (0, 1) for r in rows)
    assert all(r["file_size_bytes"] == (table / Path(r["path"]).name).stat().st_size for r in rows)


def test_a_repeat_query_reads_no_footer_again(table):
    session = _session(table)
    session.sql(QUERY).to_pyarrow()
    session.sql(QUERY).to_pyarrow()
    rows = _rows(session, "wb_metadata_cache")
    assert len(rows) == 3
    assert all((r["hits"], r["misses"]) == (1, 1) for r in rows)


def test_the_statistics_cache_holds_the_snapshot_and_follows_another_writers_commit(table):
    session = _session(table)
    session.sql(QUERY).to_pyarrow()
    [row] = _rows(session, "wb_statistics_cache")
    assert (row["table"], row["location"], row["version"], row["entries"]) == (
        "events",
        str(table),
        2,
        3,
    )
    assert row["size_bytes"] > 0
    assert (row["misses"], row["hits"]) == (1, 1)  # read at registration, reused by the scan
    assert not row["pinned"]
    write_deltalake(str(table), pa.table({"id": [999], "kind": ["c"]}), mode="append")
    assert session.sql(QUERY).to_pyarrow().to_pylist() == [{"n": 301, "total": 45849}]
    [row] = _rows(session, "wb_statistics_cache")
    assert (row["version"], row["entries"], row["misses"], row["hits"]) == (3, 4, 2, 1)


def test_the_list_files_cache_shows_each_refresh_listing(table):
    session = _session(table)
    [row] = _rows(session, "wb_list_files_cache")
    assert (row["misses"], row["listed_at"]) == (0, None)  # registration's own load: not a listing
    session.sql(QUERY).to_pyarrow()
    session.sql(QUERY).to_pyarrow()
    [row] = _rows(session, "wb_list_files_cache")
    log = table / "_delta_log"
    assert row["location"] == str(log)
    assert row["entries"] == sum(1 for p in log.iterdir() if p.is_file())
    assert (row["misses"], row["hits"], row["new_commits"]) == (2, 0, 0)
    write_deltalake(str(table), pa.table({"id": [999], "kind": ["c"]}), mode="append")
    session.sql(QUERY).to_pyarrow()
    [row] = _rows(session, "wb_list_files_cache")
    assert (row["misses"], row["new_commits"]) == (3, 1)


def test_a_tiny_metadata_limit_keeps_no_footer_and_every_read_misses(table):
    session = _session(table, metadata_limit_bytes=1)
    session.sql(QUERY).to_pyarrow()
    session.sql(QUERY).to_pyarrow()
    rows = _rows(session, "wb_metadata_cache")
    assert {Path(r["path"]).name for r in rows} == _files(table)
    assert all(not r["cached"] and r["size_bytes"] == 0 for r in rows)
    assert all((r["hits"], r["misses"]) == (0, 2) for r in rows)


def test_a_metadata_limit_of_one_footer_keeps_one(table):
    probe = _session(table)
    probe.sql(QUERY).to_pyarrow()
    largest = max(r["size_bytes"] for r in _rows(probe, "wb_metadata_cache"))
    session = _session(table, metadata_limit_bytes=largest + 200)  # a footer and its key
    session.sql(QUERY).to_pyarrow()
    assert sum(r["cached"] for r in _rows(session, "wb_metadata_cache")) == 1


def test_a_listing_ttl_from_the_profile_lets_one_listing_stand(table):
    session = _session(table, list_files_limit_bytes=1 << 20, list_files_ttl_s=3600)
    session.sql(QUERY).to_pyarrow()
    write_deltalake(str(table), pa.table({"id": [999], "kind": ["c"]}), mode="append")
    assert session.sql(QUERY).to_pyarrow().to_pylist() == [{"n": 300, "total": 44850}]
    [row] = _rows(session, "wb_list_files_cache")
    assert (row["misses"], row["hits"]) == (1, 1)


def test_a_pinned_table_is_never_listed(table):
    session = workbench.RuntimeProfile().session()
    session.register_delta("events", str(table), version=1)
    session.sql(QUERY).to_pyarrow()
    [listing] = _rows(session, "wb_list_files_cache")
    [statistics] = _rows(session, "wb_statistics_cache")
    assert (listing["misses"], listing["hits"]) == (0, 1)
    assert (statistics["version"], statistics["pinned"]) == (1, True)


def test_each_session_sees_its_own_caches(table):
    first = _session(table)
    first.sql(QUERY).to_pyarrow()
    other = workbench.RuntimeProfile().session()
    assert _rows(other, "wb_metadata_cache") == []
    assert _rows(other, "wb_statistics_cache") == []


def test_a_runtime_setting_leaves_the_caches_reachable(table):
    # SET datafusion.runtime.* rebuilds DataFusion's session state under a new id.
    session = _session(table)
    session.sql("SET datafusion.runtime.metadata_cache_limit = '10M'")
    session.sql(QUERY).to_pyarrow()
    assert len(_rows(session, "wb_metadata_cache")) == 3
    assert [r["table"] for r in _rows(session, "wb_statistics_cache")] == ["events"]


def test_the_panel_sums_each_cache_up(table):
    session = _session(table)
    session.sql(QUERY).to_pyarrow()
    session.sql(QUERY).to_pyarrow()
    shown = caches.panel(session)
    metadata = shown.cache("metadata")
    assert (metadata.entries, metadata.hits, metadata.misses) == (3, 3, 3)
    assert metadata.hit_ratio == 0.5
    assert metadata.size_bytes == sum(r["size_bytes"] for r in _rows(session, "wb_metadata_cache"))
    assert {Path(e.name).name for e in metadata.largest} == _files(table)
    statistics = shown.cache("statistics")
    assert (statistics.entries, statistics.misses, statistics.hits) == (3, 1, 2)
    assert statistics.largest[0].name == "events v2"
    listing = shown.cache("list files")
    assert (listing.misses, listing.size_bytes) == (2, None)
    assert shown.settings == session.cache_settings
    assert "metadata_cache_limit=50M" in shown.settings


def test_the_html_view_escapes_every_value():
    hostile = "<script>alert('x')</script>"
    entry = CacheEntry(hostile, 10, None, 1, 2, f"detail {hostile}")
    summary = CacheSummary(hostile, hostile, hostile, 1, 10, 1, 2, (entry,))
    shown = CachePanel(session_id=hostile, caches=(summary,), settings=(hostile,))
    html = shown.to_html()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert hostile in shown.to_text()
    bundle = shown._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}


def test_wb_cache_shows_the_panel_as_text_and_escaped_html(ipython, tmp_path):
    ipython.run_line_magic("wb", "profile")  # the magics' session, whatever a test left
    wb = ipython.user_ns["wb"]
    uri = tmp_path / "t<&>"
    write_deltalake(str(uri), pa.table({"id": [1, 2, 3]}))
    wb.register_delta('"Odd<&>"', str(uri))
    wb.sql('SELECT sum(id) FROM "Odd<&>"').to_pyarrow()
    shown = ipython.run_line_magic("wb", "cache")
    assert isinstance(shown, CachePanel)
    bundle = shown._repr_mimebundle_()
    text, html = bundle["text/plain"], bundle["text/html"]
    assert "metadata" in text
    assert "Odd<&> v0" in text
    assert "t<&>" in text
    assert "Odd&lt;&amp;&gt; v0" in html
    assert "t&lt;&amp;&gt;" in html
    assert "Odd<&>" not in html
    assert "t<&>" not in html
    assert shown.cache("metadata").entries == 1

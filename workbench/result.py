"""The streaming Result of a query.

A Result wraps a planned DataFusion DataFrame and pulls record batches from
one ``execute_stream()`` on demand; nothing runs until rows are asked for.

Two kinds of consumers, so memory follows what the user asked for, never
the size of the result:

* *Looking* (``preview``, ``page``, ``to_pyarrow``, ``to_polars``) keeps the
  batches it reads in a buffer. A later look, or a stream, replays the buffer
  in front of the live stream: the query is never re-executed and no row is
  lost or repeated. ``to_pyarrow`` refuses to buffer past the profile's
  ``max_materialize_bytes``; what it read stays buffered, so nothing is lost.
* *Streaming* (iteration, ``__arrow_c_stream__``, ``write_parquet``) hands the
  buffer out and then the live stream, keeping nothing new. Afterwards the
  buffered head can still be previewed; rows past it are gone.

Size limit: the buffer never holds more than ``max_materialize_bytes`` (plus
the batch that crossed it). ``preview(n)`` and ``to_pyarrow()`` refuse past it
with :class:`ResultTooLargeError`; ``page(i, size)`` far ahead streams past
the rows before the page without keeping them, and keeps only that page.

What a Result sees: its stream is opened at its first read, or, in a cell
whose later statements write, at its own place in the cell. Opening the
stream fixes what it reads: an in-memory table's batches as of that moment,
a listing table's files as listed then. A later write (another statement,
another cell) adds rows the stream does not see; a file of the listing that
is overwritten or deleted while the stream is still open makes the read fail
with DataFusion's error.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.cluster import ClusterStream
from workbench.display import error_bundle, preview_bundle
from workbench.errors import (
    ArgumentError,
    OutputError,
    QueryCancelledError,
    ResultConsumedError,
    ResultTooLargeError,
    SqlError,
    SqlLocation,
    WorkbenchError,
    python_error_text,
)
from workbench.ingress import locate_error
from workbench.plans import PlanTree, capture
from workbench.runs import RunRecord, RunStatus, RunTracker

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterator

    import datafusion
    import polars as pl
    from datafusion.record_batch import RecordBatchStream

    from workbench.ingress import Statement
    from workbench.stall import StallWatch


_STOPPED = frozenset({RunStatus.FAILED, RunStatus.CANCELLED})
PAGE_AHEAD_KEEP_BYTES = 64 << 20
"""Bytes of rows a jump ahead with ``page()`` keeps before it streams past the rest."""


_CONSUMERS = (
    ("HashJoinInput", "HashJoinExec", "its build side is held in memory and cannot spill"),
    ("ExternalSorter", "SortExec", "it spilled and still needs memory to merge its runs"),
    ("GroupedHashAggregateStream", "AggregateExec", "its groups do not fit"),
    ("SortMergeJoin", "SortMergeJoinExec", "the rows of one join key do not fit"),
    ("RepartitionExec", "RepartitionExec", "batches queued between partitions do not fit"),
)
_CONSUMER = re.compile(r"for (\w+)(?:\[\d+\])?")
_POOL = re.compile(r"pool_size: ([\d.]+ \w+)")


def memory_hint(message: str) -> str | None:
    """For DataFusion's out-of-memory error: which operator ran out, and what to change."""
    if "Resources exhausted" not in message:
        return None
    consumer = _CONSUMER.search(message.split("Resources exhausted", 1)[1])
    name = consumer.group(1) if consumer else "an operator"
    operator, why = next(
        ((op, why) for prefix, op, why in _CONSUMERS if name.startswith(prefix)), (name, "")
    )
    pool = _POOL.search(message)
    size = f" (the pool is {pool.group(1)})" if pool else ""
    return (
        f"out of memory in {operator}{': ' + why if why else ''}{size}. Give the session more "
        "with `%wb profile memory_limit=8GB` (RuntimeProfile(memory_limit_bytes=...)), or "
        "make the query hold less: filter or aggregate before the join or sort"
    )


class StalledError(Exception):
    """A query waited with the process idle: DataFusion's deadlock under a memory limit."""

    def __init__(self, window_s: float) -> None:
        super().__init__(
            f"no progress for {window_s:g} s with the process idle: DataFusion 55 can deadlock "
            "when RepartitionExec spills under a memory limit (apache/datafusion#24883). Run "
            "it on one partition: `%wb profile target_partitions=1`, or without the limit"
        )


class Result:
    """A query's rows as a stream, with a replayable head."""

    def __init__(
        self,
        df: datafusion.DataFrame,
        tracker: RunTracker,
        *,
        max_materialize_bytes: int,
        preview_rows: int = 20,
        stream: RecordBatchStream | ClusterStream | None = None,
        executed: list[pa.RecordBatch] | None = None,
        statement: Statement | None = None,
        cell: str | None = None,
        ran: str | None = None,
        recover: Callable[[Exception, bool], tuple[datafusion.DataFrame, bool]] | None = None,
        watch: StallWatch | None = None,
        opener: Callable[[], ClusterStream] | None = None,
    ) -> None:
        self._df = df
        # Where the rows come from when not from the DataFrame's own stream: a cluster job.
        self._opener = opener
        self.cluster_job = stream if isinstance(stream, ClusterStream) else None
        """The cluster job of this run, once its stream was opened (cluster engines)."""
        # The session's answer to a failure while running: the plan to keep instead of the
        # failed one (which holds the memory it reserved), and whether to run it now (once).
        self._recover = recover
        self._watch = watch
        self._final_plan: PlanTree | None = None
        self._tracker = tracker
        self.started = time.perf_counter()
        """``time.perf_counter()`` when the Result was created: the origin of elapsed times."""
        self._schema: pa.Schema = df.schema()
        self._stream: RecordBatchStream | ClusterStream | None = stream
        self._statement = statement
        self._cell = cell if cell is not None else tracker.record.sql
        self._ran = ran
        self._buffer: list[pa.RecordBatch] = []
        # Rows kept past the head after paging far ahead: [_window_start, rows_read).
        self._window: list[pa.RecordBatch] = []
        self._window_start = 0
        self._buffered_rows = 0
        self._buffered_bytes = 0
        self._exhausted = False
        self._streaming = False
        # True once a stream handed out a batch it did not buffer: rows past the
        # buffered head are gone, and looking past it must say so.
        self._dropped = False
        self._stopped: QueryCancelledError | SqlError | None = None
        self.max_materialize_bytes = max_materialize_bytes
        self.preview_rows = preview_rows
        if executed is not None:
            self._replay_executed(executed)

    def _replay_executed(self, batches: list[pa.RecordBatch]) -> None:
        """A statement that already ran (DML/DDL): its output is the whole buffer."""
        for batch in batches:
            if self._tracker.record.batches == 0:
                self._schema = batch.schema
            self._tracker.batch(batch.num_rows, batch.nbytes)
            self._buffer.append(batch)
            self._buffered_rows += batch.num_rows
            self._buffered_bytes += batch.nbytes
        self._exhausted = True
        self._tracker.end(RunStatus.FINISHED)

    # -- state ------------------------------------------------------------------

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the rows (the first batch's, once one was read)."""
        return self._schema

    @property
    def run(self) -> RunRecord:
        """The run record as of now: rows and batches read so far, status."""
        return self._tracker.record

    @property
    def dataframe(self) -> datafusion.DataFrame:
        """The planned DataFusion DataFrame (for plans; executing it runs the query again)."""
        return self._df

    @property
    def rows_read(self) -> int:
        """Rows pulled from the engine so far (buffered or streamed out)."""
        return self._tracker.record.rows

    @property
    def exhausted(self) -> bool:
        """Whether the engine has produced its last batch."""
        return self._exhausted

    # -- reading ----------------------------------------------------------------

    def _next_batch(self) -> pa.RecordBatch | None:
        if self._stopped is not None:
            raise self._stopped
        if self._exhausted:
            return None
        if self._stream is None:
            self._open_stream()
        with self._engine_errors("failed while running"):
            pulled = self._pull()
        if pulled is None:
            self._exhausted = True
            self._stream = None
            self._tracker.end(RunStatus.FINISHED)
            return None
        batch = pulled if isinstance(pulled, pa.RecordBatch) else pulled.to_pyarrow()
        if self._stopped is not None:  # cancel() from another thread while we waited
            raise self._stopped
        if self._tracker.record.batches == 0:
            # The plan's schema can differ from the batches' in nullability only;
            # the batches are what consumers receive, so theirs is the truth.
            self._schema = batch.schema
        self._tracker.batch(batch.num_rows, batch.nbytes)
        return batch

    def _pull(self) -> Any:
        """The next batch of the stream. On a failure the session's ``recover`` gives the
        plan to keep; before the first batch it may say to run that plan instead (a hash join
        ran out of memory, or the query stalled), and the run records the retry."""
        while True:
            stream = self._stream
            assert stream is not None, "the stream is opened before it is pulled"
            try:
                with self._watching():
                    return next(stream, None)
            except KeyboardInterrupt:
                if self._watch is None or not self._watch.stalled:
                    raise
                failure: Exception = StalledError(self._watch.window_s)
            except Exception as exc:  # noqa: BLE001  (re-raised below unless recovered)
                # The error's traceback must not keep the failed stream (DataFusion's wrapper
                # frame holds it): dropping it stops its tasks and frees their memory.
                traceback.clear_frames(exc.__traceback__)
                # An interrupt that landed in Python code the plan runs (a UDF) comes wrapped.
                watch = self._watch
                failure = StalledError(watch.window_s) if watch and watch.stalled else exc
            stream = self._stream = None
            if self._recover is None:
                raise failure
            first_try = self._tracker.record.retried is None
            self._df, again = self._recover(
                failure, first_try and self._tracker.record.batches == 0
            )
            if not again:
                raise failure
            first = python_error_text(str(failure).removeprefix("DataFusion error: "))
            self._tracker.note(retried=first.splitlines()[0])
            self._stream = self._df.execute_stream()

    def _watching(self) -> contextlib.AbstractContextManager[None]:
        return self._watch.pulling() if self._watch is not None else contextlib.nullcontext()

    def _open_stream(self) -> RecordBatchStream | ClusterStream:
        # Physical planning happens here: a planning error, not a failure mid-run.
        with self._engine_errors("failed while planning"):
            if self._opener is not None:
                self._stream = self.cluster_job = self._opener()
            else:
                self._stream = self._df.execute_stream()
        return self._stream

    @contextlib.contextmanager
    def _engine_errors(self, when: str) -> Iterator[None]:
        """Ctrl-C and DataFusion errors inside the block stop the run with a short error."""
        try:
            yield
        except KeyboardInterrupt:
            self._interrupted()
            raise
        except Exception as exc:
            error = self._sql_error(exc, when)
            self._stop(error, RunStatus.FAILED)
            raise error from exc

    def _interrupted(self) -> None:
        self._stop(
            QueryCancelledError(
                f"query interrupted after {self.rows_read} rows; the rows read before "
                "stay available to preview(); run the cell again for the rest"
            ),
            RunStatus.CANCELLED,
        )

    def _sql_error(self, exc: Exception, when: str) -> SqlError:
        """DataFusion's error while opening or reading the stream, pointed at its token."""
        message = python_error_text(str(exc).removeprefix("DataFusion error: "))
        location = None
        statement = self._statement
        if statement is not None:
            found = locate_error(message, statement.text)
            if found is not None:
                line, column = statement.cell_position(found.line, found.column)
                location = SqlLocation(line, column, found.length)
        several = self._ran is not None
        hint = memory_hint(message)
        return SqlError(
            f"query {when}: {message}" + (f"\n{hint}" if hint else ""),
            sql=self._cell,
            location=location,
            statement=statement.index + 1 if several and statement is not None else None,
            ran=self._ran,
        )

    def _stop(self, error: QueryCancelledError | SqlError, status: RunStatus) -> None:
        # Dropping the stream drops DataFusion's tasks, which stops the query; a cluster
        # job runs on unless it is cancelled on the scheduler.
        stream, self._stream = self._stream, None
        if isinstance(stream, ClusterStream):
            stream.cancel()
        self._stopped = error
        self._tracker.end(status, str(error))

    def close_planned(self) -> None:
        """End a run that was only planned (EXPLAIN without ANALYZE): nothing will execute."""
        if self._stream is None and not self._exhausted and self._stopped is None:
            self._tracker.end(RunStatus.PLANNED)
            self._stopped = QueryCancelledError(
                "this run was only planned; run the query to read rows"
            )

    def cancel(self) -> None:
        """Stop the query; rows already buffered stay readable."""
        if not self._exhausted and self._stopped is None:
            self._stop(
                QueryCancelledError(f"query cancelled after {self.rows_read} rows"),
                RunStatus.CANCELLED,
            )

    def _consumed_error(self) -> ResultConsumedError:
        return ResultConsumedError(
            f"only the first {self._buffered_rows:,} rows were kept; the rest were streamed out "
            "(iteration, write_parquet, an Arrow stream, or a page further ahead). Run the "
            "query again to read them"
        )

    def _check_not_streaming(self) -> None:
        # An open stream would lose the batches a look takes from under it.
        if self._streaming and not self._exhausted and self._stopped is None:
            raise ResultConsumedError(
                "this result is being streamed (an iterator or Arrow reader over it is open); "
                "read the rows through that stream, or run the query again to look at them"
            )

    def _too_large(self, what: str, limit: int) -> ResultTooLargeError:
        return ResultTooLargeError(
            f"{what} would hold more than {limit:,} bytes (passed after "
            f"{self._buffered_rows:,} rows, which stay buffered). Stream the result instead: "
            "write_parquet(path), iterate over its batches, pass it to a consumer of Arrow "
            "streams, or page(i, size); or raise the limit with max_bytes=... or "
            "RuntimeProfile(max_materialize_bytes=...)"
        )

    def _fill(self, rows: int, *, what: str, limit: int | None = None, lookahead: int = 0) -> None:
        """Buffer until ``rows`` rows are buffered or the stream ends, within ``limit`` bytes.

        The last ``lookahead`` rows are read even past the limit: they only tell whether
        more rows exist.
        """
        limit = self.max_materialize_bytes if limit is None else limit
        while self._buffered_rows < rows:
            if self._dropped:
                raise self._consumed_error()
            self._check_not_streaming()
            if self._buffered_bytes > limit and self._buffered_rows < rows - lookahead:
                raise self._too_large(what, limit)
            batch = self._next_batch()
            if batch is None:
                return
            self._buffer.append(batch)
            self._buffered_rows += batch.num_rows
            self._buffered_bytes += batch.nbytes

    def _buffered_table(self) -> pa.Table:
        return pa.Table.from_batches(self._buffer, schema=self._schema)

    @staticmethod
    def _count(name: str, value: object, *, least: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            msg = f"{name} must be a whole number >= {least}, not {value!r}"
            raise ArgumentError(msg)
        return value

    def preview(self, n: int | None = None) -> pa.Table:
        """The first ``n`` rows; reads only the batches needed, plus one to know if more exist."""
        n = self.preview_rows if n is None else self._count("preview(n): n", n, least=0)
        self._fill(n + 1, what=f"preview({n:,})", lookahead=1)
        return self._buffered_table().slice(0, n)

    @property
    def rows_kept(self) -> int:
        """Rows of the head kept in the buffer (readable again without the engine)."""
        return self._buffered_rows

    def kept(self, n: int) -> pa.Table:
        """The first ``n`` rows already kept, reading nothing (e.g. after a failure)."""
        return self._buffered_table().slice(0, self._count("kept(n): n", n, least=0))

    def more_than(self, n: int) -> bool:
        """Whether the result has more than ``n`` rows (reads up to row n+1)."""
        self._fill(n + 1, what=f"looking for row {n + 1:,}", lookahead=1)
        return self._buffered_rows > n

    def page(self, index: int, size: int = 50) -> pa.Table:
        """Rows ``[index*size, (index+1)*size)``.

        Paging forward keeps every page (within the size limit), so earlier pages
        can be read again. A page further ahead keeps the rows before it only while
        they fit in ``PAGE_AHEAD_KEEP_BYTES`` (64 MiB, or the size limit if lower);
        past that it streams by them without keeping them and keeps only itself.
        Rows streamed past are gone (reading them raises :class:`ResultConsumedError`).
        """
        self._count("page(index, size): index", index, least=0)
        self._count("page(index, size): size", size, least=1)
        start, end = index * size, index * size + size
        if end <= self._buffered_rows or (start < self._buffered_rows and self._exhausted):
            return self._buffered_table().slice(start, size)
        self._check_not_streaming()
        if not self._dropped:
            # Keep the rows up to the page, within the size limit; for a jump ahead, within
            # a smaller budget, so paging far into a large result holds little memory.
            jump = start > self._buffered_rows
            limit = min(self.max_materialize_bytes, PAGE_AHEAD_KEEP_BYTES) if jump else None
            try:
                self._fill(end, what=f"page({index:,}, {size:,})", limit=limit)
                return self._buffered_table().slice(start, size)
            except ResultTooLargeError:
                pass  # the rest comes from the stream, kept apart from the head
        if start < self._buffered_rows:
            if self._dropped:
                raise self._consumed_error()
            # The page begins in the head and goes on past it: the head's tail, then rows
            # read on (kept as the window, not in the head).
            head = self._buffered_table().slice(start)
            return pa.concat_tables([head, self._window_rows(self._buffered_rows, end)])
        return self._window_rows(start, end)

    def _window_rows(self, start: int, end: int) -> pa.Table:
        """Rows ``[start, end)`` past the head, streaming past earlier rows without keeping them."""
        if not self._window:
            self._window_start = self.rows_read  # the next batch starts here
        if start < self._window_start:
            msg = (
                f"rows {self._buffered_rows:,} to {self._window_start:,} were streamed past "
                "without being kept; run the query again to read them"
            )
            raise ResultConsumedError(msg)
        while self._window and self._window_start + self._window[0].num_rows <= start:
            self._window_start += self._window.pop(0).num_rows
        window_rows = sum(b.num_rows for b in self._window)
        while self._window_start + window_rows < end:
            if sum(b.nbytes for b in self._window) > self.max_materialize_bytes:
                raise self._too_large(f"a page of {end - start:,} rows", self.max_materialize_bytes)
            batch = self._next_batch()
            if batch is None:
                break
            self._dropped = True  # rows past the head are not all kept any more
            if self._window_start + window_rows + batch.num_rows <= start:
                self._window_start += batch.num_rows  # before the page: not kept
                continue
            self._window.append(batch)
            window_rows += batch.num_rows
        window = pa.Table.from_batches(self._window, schema=self._schema)
        return window.slice(start - self._window_start, end - start)

    def to_pyarrow(self, max_bytes: int | None = None) -> pa.Table:
        """All rows as one Arrow table, refused past ``max_bytes`` (default: the profile's)."""
        limit = self.max_materialize_bytes if max_bytes is None else max_bytes
        if self._dropped:
            raise self._consumed_error()
        while not self._exhausted:
            self._fill(self._buffered_rows + 1, what="to_pyarrow()", limit=limit)
        if self._buffered_bytes > limit:
            raise self._too_large("to_pyarrow()", limit)
        return self._buffered_table()

    def to_polars(self, max_bytes: int | None = None) -> pl.DataFrame:
        """All rows as a polars DataFrame (same size limit as ``to_pyarrow``)."""
        import polars as pl

        frame = pl.from_arrow(self.to_pyarrow(max_bytes))
        assert isinstance(frame, pl.DataFrame)
        return frame

    # -- streaming --------------------------------------------------------------

    def _refuse_second_stream(self) -> None:
        # Two live streams would split the rows between them; a fully buffered
        # result can be streamed any number of times.
        if self._dropped or (self._streaming and not self._exhausted):
            raise ResultConsumedError(
                "this result is already being (or was) streamed out; run the query again "
                "to stream it"
            )

    def _begin_stream(self) -> Iterator[pa.RecordBatch]:
        self._refuse_second_stream()
        return self._stream_batches()

    def _stream_batches(self) -> Iterator[pa.RecordBatch]:
        # The stream counts as open from its first pull, so a reader that was made
        # but never read (a writer that failed to open) leaves the result intact.
        self._refuse_second_stream()
        self._streaming = True
        try:
            yield from list(self._buffer)
            while (batch := self._next_batch()) is not None:
                self._dropped = True
                yield batch
        finally:
            # A consumer that stops early (break, head()) ends the run instead of
            # leaving the query running and the run "running" forever.
            if not self._exhausted and self._stopped is None:
                self.cancel()

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self._begin_stream()

    def to_reader(self) -> pa.RecordBatchReader:
        """A streaming Arrow reader over every row (buffered head first)."""
        if not self._dropped:
            self._fill(1, what="reading the first batch")  # it fixes the exact schema
        return pa.RecordBatchReader.from_batches(self._schema, self._begin_stream())

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self.to_reader().__arrow_c_stream__(requested_schema)

    def write_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Stream every row to a Parquet file; the file appears whole or not at all.

        ``~`` is expanded and missing parent folders are created. A folder, a
        path under a file or an unwritable place is refused with an
        :class:`OutputError` before any row is streamed out; on any failure the
        temporary file is removed and an existing file at ``path`` is untouched.
        """
        target = Path(path).expanduser()
        if target.is_dir():
            msg = f"{target} is a folder; give a file path, e.g. {target / 'result.parquet'}"
            raise OutputError(msg)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = (
                f"cannot create the folder {target.parent} for {target.name}: "
                f"{exc.strerror or exc}; choose a path in a writable folder"
            )
            raise OutputError(msg) from exc
        partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
        try:
            partial.touch(exist_ok=False)  # fails here, before any row is streamed out
            reader = self.to_reader()
            with pq.ParquetWriter(partial, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
            partial.replace(target)
        except OSError as exc:
            msg = f"cannot write {target}: {exc.strerror or exc}; choose a writable file path"
            raise OutputError(msg) from exc
        except (pa.ArrowException, ValueError) as exc:
            # e.g. a column type Parquet cannot store; nothing was streamed out yet.
            msg = f"cannot write {target} as Parquet: {exc}"
            raise OutputError(msg) from exc
        finally:
            partial.unlink(missing_ok=True)
        return target

    def let_go_of_plan(self, fresh: datafusion.DataFrame, tree: PlanTree) -> None:
        """The session let go of this ended run's executed plan: keep its tree instead."""
        self._df = fresh
        self._final_plan = tree

    def plan(self) -> PlanTree:
        """The physical plan with the metrics of this run so far (complete once exhausted)."""
        if self._final_plan is not None:
            return self._final_plan
        if self.cluster_job is not None and self._exhausted:
            # The plan that ran is the cluster's: its stages, with their metrics.
            return self.cluster_job.plan(sql=self._tracker.record.sql, run_id=self.run.run_id)
        return capture(
            self._df, analyzed=self._exhausted, sql=self._tracker.record.sql, run_id=self.run.run_id
        )

    # -- display ----------------------------------------------------------------

    def _repr_mimebundle_(  # IPython protocol: include/exclude are accepted, not used
        self,
        include: Any = None,  # noqa: ARG002
        exclude: Any = None,  # noqa: ARG002
    ) -> dict[str, str]:
        rows = self.preview_rows
        try:
            try:
                table = self.preview(rows)
            except WorkbenchError:
                if self.run.status not in _STOPPED or self.rows_kept == 0:
                    raise
                table = self.kept(rows)  # the rows read before it stopped; the status says why
            more = self.run.status not in _STOPPED and self.more_than(rows)
            return preview_bundle(table, self.run, more=more)
        except WorkbenchError as exc:
            # Displaying a failed or consumed result shows why, not a formatter traceback.
            return error_bundle(exc)

    def __repr__(self) -> str:
        record = self.run
        return f"<Result run={record.run_id} status={record.status} rows_read={record.rows}>"

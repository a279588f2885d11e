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
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.errors import (
    QueryCancelledError,
    ResultConsumedError,
    ResultTooLargeError,
    SqlError,
    WorkbenchError,
)
from workbench.runs import RunRecord, RunStatus, RunTracker

if TYPE_CHECKING:
    import os
    from collections.abc import Iterator

    import datafusion
    import polars as pl
    from datafusion.record_batch import RecordBatchStream

    from workbench.plans import PlanTree


class Result:
    """A query's rows as a stream, with a replayable head."""

    def __init__(
        self,
        df: datafusion.DataFrame,
        tracker: RunTracker,
        *,
        max_materialize_bytes: int,
        preview_rows: int = 20,
    ) -> None:
        self._df = df
        self._tracker = tracker
        self.started = time.perf_counter()
        """``time.perf_counter()`` when the Result was created: the origin of elapsed times."""
        self._schema: pa.Schema = df.schema()
        self._stream: RecordBatchStream | None = None
        self._buffer: list[pa.RecordBatch] = []
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
        try:
            if self._stream is None:
                self._stream = self._df.execute_stream()
            batch = next(self._stream).to_pyarrow()
        except StopIteration:
            self._exhausted = True
            self._stream = None
            self._tracker.end(RunStatus.FINISHED)
            return None
        except KeyboardInterrupt:
            self._stop(
                QueryCancelledError(
                    f"query interrupted after {self.rows_read} rows; the rows read before "
                    "stay available to preview(); run the cell again for the rest"
                ),
                RunStatus.CANCELLED,
            )
            raise
        except Exception as exc:
            error = SqlError(f"query failed while running: {exc}", sql=self._tracker.record.sql)
            self._stop(error, RunStatus.FAILED)
            raise error from exc
        if self._stopped is not None:  # cancel() from another thread while we waited
            raise self._stopped
        if self._tracker.record.batches == 0:
            # The plan's schema can differ from the batches' in nullability only;
            # the batches are what consumers receive, so theirs is the truth.
            self._schema = batch.schema
        self._tracker.batch(batch.num_rows, batch.nbytes)
        return batch

    def _stop(self, error: QueryCancelledError | SqlError, status: RunStatus) -> None:
        # Dropping the stream drops DataFusion's tasks, which stops the query.
        self._stream = None
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
            f"only the first {self._buffered_rows} rows were kept; the rest were streamed out "
            "(iteration, write_parquet or an Arrow stream). Run the query again to read them"
        )

    def _fill(self, rows: int) -> None:
        """Buffer until ``rows`` rows are buffered or the stream ends."""
        while self._buffered_rows < rows:
            if self._dropped:
                raise self._consumed_error()
            batch = self._next_batch()
            if batch is None:
                return
            self._buffer.append(batch)
            self._buffered_rows += batch.num_rows
            self._buffered_bytes += batch.nbytes

    def _buffered_table(self) -> pa.Table:
        return pa.Table.from_batches(self._buffer, schema=self._schema)

    def preview(self, n: int | None = None) -> pa.Table:
        """The first ``n`` rows; reads only the batches needed, plus one to know if more exist."""
        n = self.preview_rows if n is None else n
        self._fill(n + 1)
        return self._buffered_table().slice(0, n)

    def more_than(self, n: int) -> bool:
        """Whether the result has more than ``n`` rows (reads up to row n+1)."""
        self._fill(n + 1)
        return self._buffered_rows > n

    def page(self, index: int, size: int = 50) -> pa.Table:
        """Rows ``[index*size, (index+1)*size)``; earlier pages stay buffered for replay."""
        if index < 0 or size <= 0:
            raise ValueError("page index must be >= 0 and size > 0")
        start = index * size
        self._fill(start + size)
        return self._buffered_table().slice(start, size)

    def to_pyarrow(self, max_bytes: int | None = None) -> pa.Table:
        """All rows as one Arrow table, refused past ``max_bytes`` (default: the profile's)."""
        limit = self.max_materialize_bytes if max_bytes is None else max_bytes
        while not self._exhausted and self._buffered_bytes <= limit:
            self._fill(self._buffered_rows + 1)
        if self._buffered_bytes > limit:
            raise ResultTooLargeError(
                f"the result passed {limit:,} bytes after {self._buffered_rows:,} rows and was "
                "not materialised (those rows stay buffered). Stream it instead: "
                "write_parquet(path), iterate over its batches, pass it to a consumer of "
                "Arrow streams, or preview()/page(); or raise the limit with "
                "to_pyarrow(max_bytes=...) or RuntimeProfile(max_materialize_bytes=...)"
            )
        if self._dropped:
            raise self._consumed_error()
        return self._buffered_table()

    def to_polars(self, max_bytes: int | None = None) -> pl.DataFrame:
        """All rows as a polars DataFrame (same size limit as ``to_pyarrow``)."""
        import polars as pl

        frame = pl.from_arrow(self.to_pyarrow(max_bytes))
        assert isinstance(frame, pl.DataFrame)
        return frame

    # -- streaming --------------------------------------------------------------

    def _begin_stream(self) -> Iterator[pa.RecordBatch]:
        # Two live streams would split the rows between them; a fully buffered
        # result can be streamed any number of times.
        if self._dropped or (self._streaming and not self._exhausted):
            raise ResultConsumedError(
                "this result is already being (or was) streamed out; run the query again "
                "to stream it"
            )
        self._streaming = True
        return self._stream_batches(list(self._buffer))

    def _stream_batches(self, head: list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        try:
            yield from head
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
            self._fill(1)  # the first batch fixes the exact schema
        return pa.RecordBatchReader.from_batches(self._schema, self._begin_stream())

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self.to_reader().__arrow_c_stream__(requested_schema)

    def write_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Stream every row to a Parquet file; the file appears whole or not at all."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
        try:
            reader = self.to_reader()
            with pq.ParquetWriter(partial, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    def plan(self) -> PlanTree:
        """The physical plan with the metrics of this run so far (complete once exhausted)."""
        from workbench.plans import capture

        return capture(
            self._df, analyzed=self._exhausted, sql=self._tracker.record.sql, run_id=self.run.run_id
        )

    # -- display ----------------------------------------------------------------

    def _repr_mimebundle_(  # IPython protocol: include/exclude are accepted, not used
        self,
        include: Any = None,  # noqa: ARG002
        exclude: Any = None,  # noqa: ARG002
    ) -> dict[str, str]:
        from workbench.display import error_bundle, preview_bundle

        try:
            return preview_bundle(self, self.preview_rows)
        except WorkbenchError as exc:
            # Displaying a failed or consumed result shows why, not a formatter traceback.
            return error_bundle(exc)

    def __repr__(self) -> str:
        record = self.run
        return f"<Result run={record.run_id} status={record.status} rows_read={record.rows}>"

"""Embedded demo data: TPC-H generated locally, as Parquet and as Delta tables.

``tpch(scale)`` generates the eight TPC-H tables with ``tpchgen-cli`` (a PyPI
wheel, no network at run time) and writes each both as one Parquet file and as
a Delta table with change data feed enabled. The data directory is shared by
the tour, the tests and bench/ (``$WORKBENCH_DATA_DIR``, default
``~/.cache/workbench/data``). Generation is idempotent: a finished scale has a
``manifest.json``, written last, and is never regenerated; a half-finished
one (a crash) lives in a temporary directory and never shadows a good one.

``python -m workbench.datasets [SCALE ...]`` generates from the shell.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.errors import DatasetError

if TYPE_CHECKING:
    from workbench.session import Session

TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")
DEFAULT_SCALE = 0.1
_CDF = {"delta.enableChangeDataFeed": "true"}


def tpch_query(number: int) -> str:
    """Text of TPC-H query ``number`` (1-22), as DataFusion's benchmarks run it."""
    if not 1 <= number <= 22:
        msg = f"TPC-H has queries 1 to 22, not {number}"
        raise DatasetError(msg)
    return (Path(__file__).parent / "tpch_queries" / f"q{number:02d}.sql").read_text()


def data_dir() -> Path:
    """Where demo data lives: ``$WORKBENCH_DATA_DIR`` or ``~/.cache/workbench/data``."""
    configured = os.environ.get("WORKBENCH_DATA_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "workbench" / "data"


@dataclass(frozen=True)
class TpchData:
    """A generated TPC-H scale: paths of its Parquet files and Delta tables."""

    scale: float
    root: Path

    def parquet(self, table: str) -> Path:
        return self.root / "parquet" / f"{table}.parquet"

    def delta(self, table: str) -> Path:
        return self.root / "delta" / table

    @property
    def row_counts(self) -> dict[str, int]:
        manifest = json.loads((self.root / "manifest.json").read_text())
        return {name: int(n) for name, n in manifest["rows"].items()}

    def register(self, session: Session, fmt: Literal["parquet", "delta"] = "parquet") -> None:
        """Register the eight tables under their TPC-H names in ``session``."""
        if fmt == "delta" and not (self.root / "delta").is_dir():
            msg = f"{self.root} holds Parquet files only: use datasets.tpch({self.scale:g})"
            raise DatasetError(msg)
        if fmt == "parquet":
            register_parquet(session, self.root / "parquet", label=f"datasets.tpch({self.scale:g})")
            return
        for table in TABLES:
            session.ctx.deregister_table(table)
            session.register_delta(table, str(self.delta(table)))


def register_parquet(session: Session, directory: Path, *, label: str | None = None) -> None:
    """Register ``directory``'s ``<table>.parquet`` files under the eight TPC-H names.

    DDL-first: the registry records each statement and its provenance (``label``).
    """
    for table in TABLES:
        session.ctx.deregister_table(table)
        location = str(directory / f"{table}.parquet").replace("'", "''")
        session.sql(
            f"CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION '{location}'", label=label
        )


def _scale_name(scale: float) -> str:
    return f"sf{scale:g}"


def _tpchgen() -> str:
    beside_python = Path(sys.executable).parent / "tpchgen-cli"
    found = str(beside_python) if beside_python.exists() else shutil.which("tpchgen-cli")
    if found is None:
        msg = "tpchgen-cli is not installed; install the project (bash scripts/dev.sh test)"
        raise DatasetError(msg)
    return found


def tpch(
    scale: float = DEFAULT_SCALE, directory: Path | None = None, *, delta: bool = True
) -> TpchData:
    """The TPC-H data at ``scale``, generated first if it is not there yet.

    ``delta=False`` writes the Parquet files only, in a directory of their own
    (``sfN-parquet``): what bench/'s scale 10 needs, without 10 GB of Delta copies.
    """
    if scale <= 0:
        msg = f"scale factor must be positive, got {scale}"
        raise DatasetError(msg)
    base = (directory or data_dir()) / "tpch"
    final = base / (_scale_name(scale) + ("" if delta else "-parquet"))
    if (final / "manifest.json").exists():
        return TpchData(scale, final)
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=base))
    work.chmod(0o755)  # mkdtemp makes it private; the data is shared demo data
    try:
        _generate(scale, work, delta=delta)
        try:
            work.rename(final)
        except OSError:
            # Another process finished first: its copy is as good as ours.
            if not (final / "manifest.json").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return TpchData(scale, final)


def _generate(scale: float, work: Path, *, delta: bool) -> None:
    from deltalake import write_deltalake

    parquet_dir = work / "parquet"
    command = [_tpchgen(), "parquet", "-s", f"{scale:g}", "--output-dir", str(parquet_dir)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        msg = f"tpchgen-cli failed ({' '.join(command)}): {done.stderr.strip()[-500:]}"
        raise DatasetError(msg)
    rows = {}
    for table in TABLES:
        source = pq.ParquetFile(parquet_dir / f"{table}.parquet")
        rows[table] = source.metadata.num_rows
        if not delta:
            continue
        reader = source.iter_batches(batch_size=65_536)
        schema = source.schema_arrow

        write_deltalake(
            str(work / "delta" / table),
            pa.RecordBatchReader.from_batches(schema, reader),
            configuration=_CDF,
        )
    manifest = {"scale": scale, "generator": "tpchgen-cli", "rows": rows, "delta": delta}
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2))


def main(argv: list[str] | None = None) -> int:
    scales = [float(a) for a in (argv if argv is not None else sys.argv[1:])] or [DEFAULT_SCALE]
    for scale in scales:
        data = tpch(scale)
        print(f"TPC-H {_scale_name(scale)}: {data.root} ({sum(data.row_counts.values()):,} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

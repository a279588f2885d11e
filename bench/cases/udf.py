"""The UDF ladder: the Rust FFI ``stable_id`` against the same function in Python.

The Python variant is a DataFusion Python UDF computing the documented
algorithm with ``workbench.canonical`` (hashlib SHA-256 per row), i.e. what
a user would write without the extension. Both hash the same two columns.
"""

from __future__ import annotations

from typing import Any

import datafusion
import pyarrow as pa
import pyarrow.compute

import workbench
from bench.harness import Case
from workbench import canonical


def _python_stable_id(values: pa.Array, names: pa.Array) -> pa.Array:
    return pa.array(
        [
            canonical.stable_id(v, n)
            for v, n in zip(values.to_pylist(), names.to_pylist(), strict=True)
        ],
        type=pa.string(),
    )


def cases(quick: bool) -> list[Case]:  # noqa: FBT001
    rows = 100_000 if quick else 10_000_000
    return [_case(rows)]


def _case(rows: int) -> Case:
    session = workbench.RuntimeProfile().session()
    session.ctx.register_udf(
        datafusion.udf(
            _python_stable_id,
            [pa.int64(), pa.string()],
            pa.string(),
            "immutable",
            name="py_stable_id",
        )
    )
    # The input lives in memory so both variants time the function, not the data source.
    values = pa.array(range(rows), type=pa.int64())
    names = pa.compute.cast(pa.compute.bit_wise_and(values, 1023), pa.string())
    session.ctx.from_arrow(pa.table({"value": values, "name": names}), name="udf_input")

    def run(function: str) -> Any:
        sql = f"SELECT min({function}(value, name)) AS lo, max({function}(value, name)) AS hi FROM udf_input"
        return session.sql(sql).to_pyarrow().to_pylist()[0]

    def same(last: dict[str, Any]) -> None:
        assert last["rust stable_id"] == last["python udf"], last

    return Case(
        name=f"stable_id over {rows:,} rows",
        group="udf",
        baseline="rust stable_id",
        variants={
            "rust stable_id": lambda: run("stable_id"),
            "python udf": lambda: run("py_stable_id"),
        },
        repeats=3,
        note="target: the Rust UDF at least 10x faster than the Python UDF (ratio of python udf >= 10)",
        check=same,
        subject="rust stable_id",
    )

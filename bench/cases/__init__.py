"""Benchmark cases, one module per subject; each exposes ``cases(quick) -> list[Case]``.

A module may also expose ``summary(measurements, *, quick) -> str``: Markdown the
report prints under the group's heading (geometric means, what each tool returns).
"""

from bench.cases import (
    bigdata,
    cdf,
    cluster,
    delta,
    gate,
    hashing,
    ladder,
    large,
    layout,
    overhead,
    plans,
    profile,
    tpch,
    udf,
)

MODULES = {
    "bigdata": bigdata,
    "cdf": cdf,
    "cluster": cluster,
    "delta": delta,
    "gate": gate,
    "hashing": hashing,
    "ladder": ladder,
    "large": large,
    "layout": layout,
    "overhead": overhead,
    "plans": plans,
    "profile": profile,
    "tpch": tpch,
    "udf": udf,
}

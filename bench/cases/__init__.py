"""Benchmark cases, one module per subject; each exposes ``cases(quick) -> list[Case]``."""

from bench.cases import udf

MODULES = {"udf": udf}

"""The plan cache: a query's optimized plan and Substrait bytes, by what the query means.

The key is the query's normal form (for SQL: the tokens of the text DataFusion plans, as
written, without comments and spacing; for Ibis: the expression's hash), the gate policy's
hash, the catalog version (the live schema and the session's catalog changes, see
:class:`workbench.ingress.gate.Gate`) and the parameter values.

Not the gate's canonical SQL alone: two texts with one canonical form do not always give
the same rows in DataFusion (``FULL JOIN ... USING`` and its ``COALESCE`` form, a date
plus hours; open DataFusion bugs the rewrite harness found), so sharing a plan between
them would make a query's rows depend on which ran first. A hit builds the DataFrame
from the stored analysed plan, skipping SQL parsing, planning and analysis (the optimizer
runs at each execution, so ``now()`` and the like are the run's); a change to
an input's schema changes the catalog version, so the entry is not found again.

Tables are read when a plan executes, not when it is planned, so a hit still reads the
rows of now: new files of a listing table, inserted rows, a Delta table's newest version.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.ingress.tokens import tokenize

if TYPE_CHECKING:
    from collections.abc import Mapping

    import datafusion

CAPACITY = 256
"""Entries kept (least recently used first out). A plan is small next to its data."""


@dataclass(frozen=True)
class CachedPlan:
    """One cached query plan."""

    key: str
    logical: datafusion.LogicalPlan
    """The analysed plan a hit runs: optimized at each run, so ``now()`` is the run's time."""
    optimized: datafusion.LogicalPlan
    substrait: bytes | None
    """The plan as Substrait (``None`` when Substrait cannot carry it: see ``problem``)."""
    problem: str | None
    compile_s: float
    """Seconds the miss took to parse, plan and optimize."""


def _param(value: Any) -> list[str]:
    return [type(value).__name__, repr(value)]


def normal_form(sql: str) -> str:
    """``sql`` without what DataFusion ignores: comments and spacing.

    Each token is kept exactly as written (its raw text: ``E'a\\nb'`` is not ``E'anb'``).
    Case is not folded: placeholders (``$A``, ``$a``) and, with
    ``enable_ident_normalization`` off, names are case-sensitive.
    """
    return "\n".join(
        f"{token.token_type.name}:{sql[token.start : token.end + 1]}" for token in tokenize(sql)
    )


def cache_key(query: str, policy_hash: str, catalog_version: str, params: Mapping[str, Any]) -> str:
    """The key of a plan: what the query means, under which policy, catalog and values."""
    described = {
        "query": query,
        "policy": policy_hash,
        "catalog": catalog_version,
        "params": {name: _param(value) for name, value in sorted(params.items())},
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


class PlanCache:
    """Least-recently-used plans of one session, with hit and miss counts."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._plans: OrderedDict[str, CachedPlan] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._plans)

    def get(self, key: str) -> CachedPlan | None:
        plan = self._plans.get(key)
        if plan is None:
            self.misses += 1
            return None
        self._plans.move_to_end(key)
        self.hits += 1
        return plan

    def put(
        self, key: str, df: datafusion.DataFrame, ctx: datafusion.SessionContext, started: float
    ) -> CachedPlan:
        """Store the plan of ``df`` (planned from ``started``, a ``perf_counter`` time)."""
        optimized = df.optimized_logical_plan()
        compile_s = time.perf_counter() - started
        substrait, problem = _substrait(optimized, ctx)
        plan = CachedPlan(key, df.logical_plan(), optimized, substrait, problem, compile_s)
        self._plans[key] = plan
        while len(self._plans) > self.capacity:
            self._plans.popitem(last=False)
        return plan

    def discard(self, key: str) -> None:
        """Forget one plan (its run failed: the next run plans afresh)."""
        self._plans.pop(key, None)

    def clear(self) -> None:
        """Forget every plan (e.g. after replacing a table through ``ctx`` directly)."""
        self._plans.clear()


def _substrait(
    plan: datafusion.LogicalPlan, ctx: datafusion.SessionContext
) -> tuple[bytes | None, str | None]:
    """Substrait of the optimized plan: decorrelated, so subqueries convert too."""
    from datafusion.substrait import Producer

    try:
        return bytes(Producer.to_substrait_plan(plan, ctx).encode()), None
    except Exception as exc:  # noqa: BLE001  (the producer reports unsupported plans so)
        return None, f"Substrait cannot carry this plan: {str(exc).splitlines()[0]}"

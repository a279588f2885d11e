"""The SQL gate (issue 15, first step): parse, qualify, annotate and canonicalize with SQLGlot.

Against the session's live schema (read from ``information_schema``, never a hand-kept copy)
a query is parsed, its columns qualified, types annotated and the tree canonicalized, under a
:class:`Policy` whose hash is stable. What goes wrong becomes a structured
:class:`Diagnostic`: kind (``parse``, ``unknown table``, ``unknown column``, ``ambiguous
column``), message, line and column, the offending token, and the closest existing names.

SQLGlot is not a validator: DataFusion stays the judge. The gate rejects nothing; a
construct SQLGlot cannot handle is recorded as a gap and the query goes on unchanged.
The one exception is the gate's own SQL (:mod:`workbench.ingress.macros`): macros, named
arguments of the workbench's functions and the domain operators are rewritten, and a
statement that misuses them is refused with a diagnostic.

:class:`Gate` is what a session holds: the policy, the macros, and a memo of verdicts keyed
by the statement and the catalog version (a hash of the live schema and of the session's
catalog changes), so a repeated statement is not analysed twice.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.metadata
import json
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp, serde
from sqlglot.errors import OptimizeError, ParseError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.canonicalize import canonicalize
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from workbench.ingress import filterorder, semijoin
from workbench.ingress.macros import GateError, Macro, rewrite, rewrite_text

if TYPE_CHECKING:
    import datafusion

Schema = dict[str, dict[str, str]]
"""table -> column -> type, as SQLGlot's optimizer takes it."""


@dataclass(frozen=True)
class Policy:
    """How the gate reads SQL: dialect and rules. Its hash names it in runs and bundles."""

    dialect: str = "postgres"
    rules: tuple[str, ...] = (
        "qualify",
        "annotate_types",
        "canonicalize",
        "semi_join_reduction",
        "filter_order",
    )

    @cached_property
    def hash(self) -> str:
        version = importlib.metadata.version("sqlglot")
        described = {"sqlglot": version, "dialect": self.dialect, "rules": self.rules}
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Diagnostic:
    """One problem the gate found, where it is, and what the user may have meant."""

    kind: str
    message: str
    line: int | None = None
    column: int | None = None
    token: str | None = None
    suggestions: tuple[str, ...] = ()


@dataclass(frozen=True)
class GateResult:
    """What the gate made of one statement."""

    sql: str
    canonical: str | None
    """The qualified, canonicalized SQL (``None`` when the gate could not get that far)."""
    policy_hash: str
    diagnostics: tuple[Diagnostic, ...] = ()
    gaps: tuple[str, ...] = field(default=())
    """Constructs SQLGlot could not handle: recorded, never held against the query."""
    tree: exp.Expr | None = field(default=None, compare=False, repr=False)
    """The canonical tree (what ``canonical`` is the SQL of)."""

    def ast_json(self) -> str | None:
        """The canonical tree as SQLGlot serde JSON (bundles store it), or ``None``."""
        if self.tree is None:
            return None
        return json.dumps({"dialect": "postgres", "ast": serde.dump(self.tree)})


def live_schema(ctx: datafusion.SessionContext) -> Schema:
    """The tables and columns of ``ctx`` now, from ``information_schema.columns``."""
    rows = ctx.sql(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
    ).to_pydict()
    schema: Schema = {}
    for table, column, data_type in zip(
        rows["table_name"], rows["column_name"], rows["data_type"], strict=True
    ):
        schema.setdefault(table, {})[column] = _sqlglot_type(data_type)
    return schema


def _sqlglot_type(arrow: str) -> str:
    """An Arrow type name as a SQL type SQLGlot knows (unknown ones stay unknown)."""
    lowered = arrow.lower()
    for prefix, sql in (
        ("int64", "BIGINT"),
        ("int32", "INT"),
        ("int16", "SMALLINT"),
        ("int8", "TINYINT"),
        ("uint", "BIGINT"),
        ("float64", "DOUBLE"),
        ("float32", "FLOAT"),
        ("decimal", "DECIMAL"),
        ("utf8", "TEXT"),
        ("largeutf8", "TEXT"),
        ("date", "DATE"),
        ("timestamp", "TIMESTAMP"),
        ("boolean", "BOOLEAN"),
    ):
        if lowered.startswith(prefix):
            return sql
    return "UNKNOWN"


def _closest(name: str, candidates: list[str]) -> tuple[str, ...]:
    return tuple(difflib.get_close_matches(name, candidates, n=3, cutoff=0.6))


def _position(node: exp.Expr) -> tuple[int | None, int | None]:
    meta = node.meta if hasattr(node, "meta") else {}
    return meta.get("line"), meta.get("col")


def parse(sql: str, policy: Policy) -> exp.Expr | GateResult:
    """The tree of ``sql``, or the verdict when SQLGlot cannot parse it."""
    logger = logging.getLogger("sqlglot")
    level = logger.level
    # SQLGlot logs "unsupported syntax, falling back to a Command": that is a gap, not news.
    logger.setLevel(logging.ERROR)
    try:
        tree = sqlglot.parse_one(sql, read=policy.dialect)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        diagnostic = Diagnostic(
            "parse",
            str(first.get("description") or exc),
            first.get("line"),
            first.get("col"),
            first.get("highlight"),
        )
        return GateResult(sql, None, policy.hash, (diagnostic,))
    except Exception as exc:  # noqa: BLE001  (any other SQLGlot failure is a gap, not an error)
        return GateResult(sql, None, policy.hash, gaps=(f"parse: {exc}",))
    finally:
        logger.setLevel(level)
    if tree is None:
        return GateResult(sql, None, policy.hash, gaps=("parse: no statement",))
    return tree


def check(sql: str, schema: Schema, policy: Policy | None = None) -> GateResult:
    """The gate's verdict on one statement ``sql`` against ``schema``."""
    policy = policy or Policy()
    tree = parse(sql, policy)
    if isinstance(tree, GateResult):
        return tree
    return check_tree(tree, sql, schema, policy)


def check_tree(
    tree: exp.Expr,
    sql: str,
    schema: Schema,
    policy: Policy,
    mapping: MappingSchema | None = None,
) -> GateResult:
    """The verdict on the parsed statement ``tree`` (of ``sql``) against ``schema``.

    ``mapping`` is ``schema`` as SQLGlot's optimizer takes it, when the caller keeps one.
    """
    if isinstance(tree, exp.Command):  # SQLGlot kept it as text: nothing to analyse
        return GateResult(sql, None, policy.hash, gaps=(f"command: {tree.name}",))
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    if isinstance(tree, exp.Create):  # the table or view a CREATE defines is not read
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        ctes.add(target.name)
    tables = list(schema)
    unknown = [
        t
        for t in tree.find_all(exp.Table)
        if t.name and t.name not in schema and t.name not in ctes
    ]
    if unknown:
        diagnostics = tuple(
            Diagnostic(
                "unknown table",
                f"no table named {t.name!r}",
                *_position(t.this),
                t.name,
                _closest(t.name, tables),
            )
            for t in unknown
        )
        return GateResult(sql, None, policy.hash, diagnostics)
    try:
        catalog = mapping or MappingSchema(dict(schema), dialect=policy.dialect)
        qualified = qualify(tree, schema=catalog, dialect=policy.dialect)
        annotated = annotate_types(qualified, schema=catalog)
        canonical_tree = canonicalize(annotated)
        canonical = canonical_tree.sql(policy.dialect)
    except OptimizeError as exc:
        return GateResult(sql, None, policy.hash, (_column_diagnostic(str(exc), tree, schema),))
    except Exception as exc:  # noqa: BLE001  (a construct SQLGlot cannot handle: recorded)
        return GateResult(sql, None, policy.hash, gaps=(f"{type(exc).__name__}: {exc}",))
    return GateResult(sql, canonical, policy.hash, tree=canonical_tree)


def _column_diagnostic(message: str, tree: Any, schema: Schema) -> Diagnostic:
    """An unknown or ambiguous column, from SQLGlot's message, with the closest names."""
    read = {t.name for t in tree.find_all(exp.Table)} & set(schema)
    # The closest names among the columns of the tables the query reads (all, if none).
    columns = sorted({c for t, cols in schema.items() if not read or t in read for c in cols})
    name = message.split("'")[1] if message.count("'") >= 2 else None
    node = next((c for c in tree.find_all(exp.Column) if c.name == name), None)
    line, column = _position(node.this) if node is not None else (None, None)
    text = message.split(". Line:", maxsplit=1)[0]
    # SQLGlot says "could not be resolved" for a name two tables of the query have, too.
    # By alias: one table read twice (a self join) makes a name ambiguous too.
    having = sorted(
        {t.alias_or_name for t in tree.find_all(exp.Table) if name in schema.get(t.name, {})}
    )
    if name and len(having) > 1:
        message = f"column {name!r} is in {', '.join(having)}: qualify it"
        return Diagnostic(
            "ambiguous column", message, line, column, name, tuple(f"{t}.{name}" for t in having)
        )
    return Diagnostic(
        "unknown column", text, line, column, name, _closest(name, columns) if name else ()
    )


FUNCTION_DDL = re.compile(
    r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*"
    r"(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?FUNCTION|DROP\s+FUNCTION)\b",
    re.IGNORECASE | re.DOTALL,
)
"""``CREATE [OR REPLACE] FUNCTION`` and ``DROP FUNCTION``: the gate's own statements."""

_MEMO_SIZE = 512


def is_function_ddl(sql: str) -> bool:
    return FUNCTION_DDL.match(sql) is not None


@dataclass(frozen=True)
class Prepared:
    """A statement as the gate hands it to DataFusion."""

    text: str
    """What DataFusion plans: the statement as written unless the gate rewrote it."""
    verdict: GateResult
    rewrites: tuple[str, ...]
    """What the gate's own rewrites changed (macros, named arguments, operators)."""
    catalog_version: str
    cacheable: bool
    """Whether its plan may be cached: a query with canonical SQL that reads no table
    that differs on every run (``wb_runs``, ``information_schema``) or through a table
    function (whose rows depend on when it is planned)."""


class Gate:
    """A session's gate: its policy, macros, catalog version and memo of verdicts."""

    def __init__(self, ctx: datafusion.SessionContext, policy: Policy | None = None) -> None:
        self.ctx = ctx
        self.policy = policy or Policy()
        self.macros: dict[str, Macro] = {}
        self._changes = 0
        self._catalog_key: tuple[tuple[str, ...], int] | None = None
        self._catalog: tuple[Schema, str] = ({}, "")
        self._mapping = MappingSchema({}, dialect=self.policy.dialect)
        self._memo: OrderedDict[tuple[str, str], Prepared | GateError] = OrderedDict()

    def changed(self) -> None:
        """The session changed its catalog (DDL, a registration, a macro): new version."""
        self._changes += 1

    def catalog(self) -> tuple[Schema, str]:
        """The live schema and its version: a hash of it and of the session's changes.

        ``information_schema`` is read again when the default schema's table names or the
        session's change counter moved (DDL, SET, registrations, macros all count), not
        for every statement: reading it costs 1-2 ms, as much as planning a TPC-H query.
        """
        key = (tuple(sorted(self.ctx.catalog().schema().names())), self._changes)
        if key != self._catalog_key:
            schema = live_schema(self.ctx)
            described = json.dumps([schema, self._changes], sort_keys=True).encode()
            self._catalog = (schema, hashlib.sha256(described).hexdigest()[:16])
            self._mapping = MappingSchema(dict(schema), dialect=self.policy.dialect)
            self._catalog_key = key
        return self._catalog

    def prepare(self, sql: str) -> Prepared:
        """The gate's verdict on ``sql`` now; raises :class:`GateError` for misused gate SQL."""
        schema, version = self.catalog()
        key = (sql, version)
        known = self._memo.get(key)
        if known is None:
            try:
                known = self._prepare(sql, schema, version)
            except GateError as exc:
                known = exc
            except Exception as exc:  # noqa: BLE001  (a SQLGlot failure never stops a query)
                verdict = GateResult(sql, None, self.policy.hash, gaps=(f"gate: {exc!r}",))
                known = Prepared(sql, verdict, (), version, cacheable=False)
            self._memo[key] = known
            while len(self._memo) > _MEMO_SIZE:
                self._memo.popitem(last=False)
        else:
            self._memo.move_to_end(key)
        if isinstance(known, GateError):
            raise known
        return known

    def _prepare(self, sql: str, schema: Schema, version: str) -> Prepared:
        tree = parse(sql, self.policy)
        if isinstance(tree, GateResult):
            return Prepared(sql, tree, (), version, cacheable=False)
        rewritten, applied = rewrite(tree, self.macros)
        if not applied:
            text = sql
        elif any(a.startswith("operator") for a in applied):
            # An operator's operands have no span to splice: SQLGlot writes the statement
            # (function names in lower case: DataFusion finds table functions by exact name).
            text = rewritten.sql(self.policy.dialect, normalize_functions="lower")
        else:
            text = rewrite_text(sql, self.macros)  # the calls only; the rest as typed
        is_query = isinstance(rewritten, exp.Query) and self._reads_no_volatile_table(rewritten)
        # The tree is the gate's own (parsed or rewritten here): qualify may change it.
        verdict = check_tree(rewritten, text, schema, self.policy, self._mapping)
        canonical = verdict.tree if not applied and is_query else None
        # Both splice the text as typed and read the same tree: filters move first (whole
        # conjuncts, never a subquery), then the reduction finds its subquery in that text.
        ordered = (
            filterorder.order(text, canonical)
            if canonical is not None and "filter_order" in self.policy.rules
            else None
        )
        reduced = (
            semijoin.reduce(ordered[0] if ordered else text, canonical, self.policy.dialect)
            if canonical is not None and "semi_join_reduction" in self.policy.rules
            else None
        )
        for done in (ordered, reduced):
            if done is not None:
                text, described = done
                applied = (*applied, described)
        return Prepared(text, verdict, applied, version, is_query and verdict.canonical is not None)

    @staticmethod
    def _reads_no_volatile_table(tree: exp.Expr) -> bool:
        for table in tree.find_all(exp.Table):
            session_local = table.name.lower().startswith("wb_")  # wb_runs, wb_tables...
            # A table function's rows depend on when it is planned (a file, a Delta log).
            function = isinstance(table.this, exp.Func)
            if session_local or function or table.db.lower() == "information_schema":
                return False
        return True

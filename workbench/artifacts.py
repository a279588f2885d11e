"""Artifact bundles: everything needed to see a run and re-run it elsewhere.

``export(session, run_ids, directory)`` writes one folder per run: the
statement and its bound parameters, the whole cell, the DDL of the tables it
reads, the logical and physical plans, pgjson and graphviz renderings, the
metrics tree, the Substrait plan, the SQLGlot AST, the run record, the session
configuration and package versions. ``manifest.json`` lists every file with
its SHA-256 and, per run, the result's content hash and the *lanes* a replay
can take:

- ``substrait``: consume the Substrait plan. Available only when the plan
  serializes, loads back, and (for a run that executed) gives here the same
  rows as the run's own plan.
- ``sql``: plan the recorded statement again with the recorded parameters.

The result hash comes from the SQL lane, i.e. from executing the run's original
logical plan once more at export (streamed into :func:`content_hash`). A plan
Substrait cannot carry (a table function, a UDF the consumer does not know)
still exports, with the Substrait lane marked unavailable and why.

``replay(bundle, session)`` treats the bundle as untrusted input: it validates
the manifest, refuses file names and run ids that leave the bundle, reads only
the files the manifest lists (each checked against its SHA-256), never runs
the bundle's DDL, and plans every lane under read-only ``SQLOptions`` and a
check that the plan is a query. It then runs each run through its first
available lane and compares the content hash. See ``docs/bundles.md``.

The bundle appears atomically: it is built in a hidden sibling directory and
renamed into place, so a crash never leaves a half-written bundle.

Export never runs a write again: before it executes anything for a hash, it
checks the run's own logical plan (not only the recorded statement, which may
no longer plan) and a plan holding any node that is not a query is never
executed. Every run exports: a rendering that fails is written as an
``{"error": ...}`` placeholder, and a run that cannot be planned again at all
keeps its record and logical plan.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import secrets
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from workbench import hashing
from workbench.diagnostics import ARTIFACTS_TABLE, RUNS_TABLE
from workbench.errors import WorkbenchError
from workbench.hashing import ContentHash, content_hash
from workbench.runs import RunStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    import datafusion

    from workbench.runs import RunRecord
    from workbench.session import Session

SCHEMA_VERSION = 2
"""Version of the manifest format; replay refuses any other (v2: lanes, tables, params)."""
MANIFEST = "manifest.json"
LANES = ("substrait", "sql")
"""Replay lanes, in the order they are tried."""

_PACKAGES = (
    "datafusion",
    "pyarrow",
    "deltalake",
    "polars",
    "sqlglot",
    "ibis-framework",
    "datafusion-workbench",
)
# Logical plan nodes that only read. Anything else (Dml, CopyTo, Create*, Drop*,
# SetVariable, Prepare/Execute, Extension...) is refused before it can execute.
_QUERY_NODES = frozenset(
    {
        "Aggregate",
        "Analyze",
        "DescribeTable",
        "Distinct",
        "EmptyRelation",
        "Explain",
        "Filter",
        "Join",
        "Limit",
        "Projection",
        "RecursiveQuery",
        "Repartition",
        "Sort",
        "Subquery",
        "SubqueryAlias",
        "TableScan",
        "Union",
        "Unnest",
        "Values",
        "Window",
        "WindowExpr",
    }
)
# Subqueries in expressions are not among a node's inputs(); their plans show in
# the indented display, so writes hidden there are caught by their line.
_WRITE_LINE = re.compile(
    r"^\s*(Dml|CopyTo|Create\w*|Drop\w*|SetVariable|Prepare|Execute|Deallocate|"
    r"Transaction\w*|Extension)\b",
    re.MULTILINE,
)
_SCAN_LINE = re.compile(r"^\s*TableScan: (?P<name>.+?)\s*$", re.MULTILINE)
_REFUSED = re.compile(r"(DDL|DML|Statement) not supported: \w+")
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# A table reference as the plans display it: one to three non-empty dot-separated parts.
_TABLE_PART = r"[^.\x00-\x1f\x7f]{1,255}"
_TABLE_NAME = re.compile(rf"{_TABLE_PART}(?:\.{_TABLE_PART}){{0,2}}")
_SESSION_LOCAL = frozenset({RUNS_TABLE, ARTIFACTS_TABLE})
_UNKNOWN = "unknown"


class ArtifactError(WorkbenchError):
    """A bundle could not be written, is not a valid bundle, or does not replay as recorded."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().removeprefix("DataFusion error: ")
    return text.splitlines()[0] if text else type(exc).__name__


def _read_only() -> datafusion.SQLOptions:
    from datafusion import SQLOptions

    return (
        SQLOptions()
        .with_allow_ddl(allow=False)
        .with_allow_dml(allow=False)
        .with_allow_statements(allow=False)
    )


def _not_a_query(plan: datafusion.LogicalPlan) -> str | None:
    """The first node of ``plan`` that is not a read-only query node, or ``None``."""
    pending = [plan]
    while pending:
        node = pending.pop()
        try:
            name = type(node.to_variant()).__name__
        except Exception:  # noqa: BLE001  (a variant the bindings do not expose)
            return node.display().split(":", 1)[0] or "an unknown plan node"
        if name not in _QUERY_NODES:
            return name
        pending.extend(node.inputs())
    found = _WRITE_LINE.search(plan.display_indent())
    return found.group(1) if found else None


def _require_query(plan: datafusion.LogicalPlan, where: str) -> None:
    node = _not_a_query(plan)
    if node is not None:
        msg = (
            f"{where} is not a query (its plan holds {node}); replay runs only queries, "
            "so it was refused and nothing ran"
        )
        raise ArtifactError(msg)


def _hash_of(df: datafusion.DataFrame) -> ContentHash:
    """Execute ``df`` once more, streaming its rows into a content hash; queries only.

    Every execution of export and replay goes through here, so the check that
    the plan only reads is made right before anything runs, whatever the
    caller checked already.
    """
    node = _not_a_query(df.logical_plan())
    if node is not None:
        msg = f"the plan is not a query (it holds {node}); it was not run"
        raise ArtifactError(msg)
    return content_hash(batch.to_pyarrow() for batch in df.execute_stream())


# --- parameters --------------------------------------------------------------------------

_PARAM_DECODERS: dict[str, Any] = {
    "bool": lambda text: text == "true",
    "int": int,
    "float": float,
    "str": str,
    "bytes": bytes.fromhex,
    "decimal": decimal.Decimal,
    "date": dt.date.fromisoformat,
    "datetime": dt.datetime.fromisoformat,
    "time": dt.time.fromisoformat,
}


def _encode_param(value: Any) -> dict[str, str | None]:
    """A bound value as ``{"type", "value"}``, the value as text that round-trips exactly."""
    if value is None:
        return {"type": "null", "value": None}
    # Checked in this order: a bool is an int, a datetime is a date.
    if isinstance(value, bool):
        return {"type": "bool", "value": "true" if value else "false"}
    if isinstance(value, bytes):
        return {"type": "bytes", "value": value.hex()}
    if isinstance(value, dt.datetime | dt.date | dt.time):
        when = next(k for k in ("datetime", "date", "time") if isinstance(value, getattr(dt, k)))
        return {"type": when, "value": value.isoformat()}
    for kind, name in ((int, "int"), (float, "float"), (str, "str"), (decimal.Decimal, "decimal")):
        if isinstance(value, kind):
            return {"type": name, "value": repr(value) if name == "float" else str(value)}
    msg = f"a parameter of type {type(value).__name__} cannot be written to a bundle"
    raise ArtifactError(msg)


def _json(data: bytes, where: str) -> Any:
    """``data`` parsed as JSON, or an :class:`ArtifactError` saying what is wrong with it."""
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = f"{where} is not valid JSON ({exc}); the bundle is damaged: export it again"
        raise ArtifactError(msg) from None
    except RecursionError:
        msg = (
            f"{where} is nested too deeply to be read; a bundle's files are shallow, so it is "
            "damaged or was not written by the workbench: export it again"
        )
        raise ArtifactError(msg) from None


def _decode_params(data: bytes, where: str) -> dict[str, Any]:
    raw = _json(data, where)
    params: dict[str, Any] = {}
    for name, raw_spec in _expect(raw, dict, where).items():
        at = f"{where}: parameter {name!r}"
        spec = _expect(raw_spec, dict, at)
        kind, text = spec.get("type"), spec.get("value")
        if kind == "null" and text is None:
            params[name] = None
            continue
        if kind not in _PARAM_DECODERS or not isinstance(text, str):
            msg = f"{at} has type {kind!r} and value {text!r}, which the workbench cannot bind"
            raise ArtifactError(msg)
        try:
            params[name] = _PARAM_DECODERS[kind](text)
        except (ValueError, decimal.InvalidOperation) as exc:
            msg = f"{at}: {text!r} is not a valid {kind} ({exc})"
            raise ArtifactError(msg) from None
    return params


# --- export --------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Versions of the stack, for the bundle and for bug reports."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in _PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    try:
        from workbench import _ext  # type: ignore[attr-defined]

        found["workbench._ext"] = str(_ext.EXTENSION_VERSION)
    except ImportError:
        found["workbench._ext"] = "not built"
    return found


class _Recorded(logging.Handler):
    """Keeps the messages of a logger instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _sqlglot_ast(sql: str) -> str:
    """The SQLGlot AST as JSON; what SQLGlot warns about goes into it, not to the user.

    SQLGlot logs "contains unsupported syntax. Falling back to parsing as a
    'Command'" for statements its postgres dialect does not know (EXPLAIN,
    SHOW...); during export that is noise on the user's screen, so it is kept
    under ``"warnings"`` in the file instead.
    """
    import sqlglot
    from sqlglot import serde

    logger = logging.getLogger("sqlglot")
    recorded = _Recorded()
    propagate = logger.propagate
    logger.addHandler(recorded)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                trees = [serde.dump(tree) for tree in sqlglot.parse(sql, read="postgres") if tree]
                ast: dict[str, Any] = {"dialect": "postgres", "statements": trees}
            except Exception as exc:  # noqa: BLE001  (any SQLGlot failure is data for the file)
                ast = {"dialect": "postgres", "error": str(exc) or type(exc).__name__}
    finally:
        logger.removeHandler(recorded)
        logger.propagate = propagate
    said = recorded.messages + [str(warning.message) for warning in caught]
    if said:
        ast["warnings"] = said
    return json.dumps(ast)


def _gate(session: Session, run_id: str, record: RunRecord) -> bytes:
    """The SQL gate's view of the run: policy, canonical SQL and AST, gaps, lane, cache."""
    prepared = session.gate_verdict(run_id)
    policy = session.gate.policy
    verdict = prepared.verdict if prepared is not None else None
    ast = verdict.ast_json() if verdict is not None else None
    gate = {
        "policy": {
            "hash": policy.hash,
            "dialect": policy.dialect,
            "rules": list(policy.rules),
            "sqlglot": importlib.metadata.version("sqlglot"),
        },
        "canonical_sql": record.canonical_sql,
        "canonical_ast": json.loads(ast)["ast"] if ast is not None else None,
        "gaps": list(record.gate_gaps),
        "rewrites": list(record.rewrites),
        "lane": record.lane,
        "lane_gaps": list(record.lane_gaps),
        "plan_cache": record.plan_cache,
    }
    return json.dumps(gate, indent=2).encode()


def _rendered(render: Callable[[], str]) -> bytes:
    """A plan rendering, or ``{"error": ...}`` when the plan no longer renders here."""
    try:
        return render().encode()
    except Exception as exc:  # noqa: BLE001  (its files changed since it ran, say)
        return json.dumps({"error": str(exc).strip() or type(exc).__name__}).encode()


def _pgjson(session: Session, statement: str, params: Mapping[str, Any]) -> str:
    try:
        rows = session.ctx.sql(
            f"EXPLAIN FORMAT pgjson {statement}",
            options=_read_only(),
            param_values=dict(params) or None,
        ).to_pydict()
        return str(rows["plan"][0])
    except Exception as exc:  # noqa: BLE001  (a view dropped later in the cell, say)
        return json.dumps({"error": str(exc)})


def _config(session: Session) -> bytes:
    rows = session.ctx.sql(
        "SELECT name, value FROM information_schema.df_settings ORDER BY name"
    ).to_pydict()
    return json.dumps(dict(zip(rows["name"], rows["value"], strict=True)), indent=2).encode()


def _scanned_tables(plan: datafusion.LogicalPlan) -> list[str]:
    """Names of the tables ``plan`` scans, subqueries included; table functions left out."""
    names = (m.group("name") for m in _SCAN_LINE.finditer(plan.display_indent()))
    return sorted({name for name in names if not name.endswith(")")})


def _registration(name: str, registrations: Mapping[str, str]) -> str:
    # Names as the plan shows them: exact (a quoted "Cur2" and cur2 are two tables).
    key = name
    for prefix in ("datafusion.public.", "public."):
        key = key.removeprefix(prefix)
    return registrations.get(key, _UNKNOWN)


def _tables_sql(run_id: str, tables: Mapping[str, str]) -> bytes:
    lines = [
        f"-- Tables run {run_id} reads, as they were registered when it was exported.",
        "-- Review before running: a bundle is untrusted input. Replay never runs this file.",
    ]
    for name, ddl in tables.items():
        if ddl == _UNKNOWN:
            lines.append(f"-- {name}: unknown (not registered by DDL this session saw)")
        else:
            lines.append(ddl if ddl.startswith("--") else f"{ddl.rstrip().rstrip(';')};")
    return ("\n".join(lines) + "\n").encode()


def _unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


@dataclass(frozen=True)
class _ExportedRun:
    """A run's files (name -> bytes) and its manifest entry."""

    files: dict[str, bytes]
    entry: dict[str, Any]


def _recorded_only(
    session: Session,
    run_id: str,
    reason: str | None = None,
    extra: Mapping[str, bytes] | None = None,
) -> _ExportedRun:
    """What a bundle holds of a run it cannot plan: its ``wb_runs`` row (and ``extra`` files).

    ``reason`` says why; by default, that the run failed before it was planned
    or that the session no longer holds it.
    """
    session.diagnostics.publish()
    rows = (
        session.ctx.sql(
            "SELECT * FROM wb_runs WHERE run_id = $run_id", param_values={"run_id": run_id}
        )
        .to_arrow_table()
        .to_pylist()
    )
    if not rows:
        msg = f"no run {run_id!r} in this session; list the runs with %wb runs"
        raise ArtifactError(msg)
    row = rows[0]
    if reason is None and row["status"] == RunStatus.FAILED:
        error = str(row["error"] or "").strip().splitlines() or ["no error recorded"]
        reason = f"the run failed before it was planned: {error[0]}"
    elif reason is None:
        reason = "the session no longer holds this run's plan (it keeps the latest 200)"
    cell = str(row["sql"] or "")
    files = {
        "cell.sql": cell.encode(),
        "sqlglot_ast.json": _sqlglot_ast(cell).encode(),
        "run.json": json.dumps(row, default=str, indent=2).encode(),
        "config.json": _config(session),
        "versions.json": json.dumps(versions(), indent=2).encode(),
        **(extra or {}),
    }
    entry = {
        "run_id": run_id,
        "status": str(row["status"]),
        "label": row["label"],
        "result": None,
        "note": reason,
        "tables": {},
        "lanes": {lane: _unavailable(reason) for lane in LANES},
    }
    return _ExportedRun(files, entry)


def _entry(
    record: RunRecord,
    result: ContentHash | None,
    note: str | None,
    tables: Mapping[str, str],
    lanes: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "status": str(record.status),
        "label": record.label,
        "engine": record.engine,
        "result": None if result is None else {"hash": result.digest, "rows": result.rows},
        "note": note,
        "tables": dict(tables),
        "lanes": dict(lanes),
    }


def _substrait(
    session: Session, df: datafusion.DataFrame
) -> tuple[bytes | None, datafusion.LogicalPlan | None, str | None]:
    """The plan's Substrait bytes, the plan they load back as here, or why not."""
    from datafusion.substrait import Consumer, Producer, Serde

    try:
        data = bytes(Producer.to_substrait_plan(df.logical_plan(), session.ctx).encode())
    except Exception as exc:  # noqa: BLE001  (the producer reports unsupported plans so)
        return None, None, f"Substrait cannot carry this plan: {_first_line(exc)}"
    try:
        plan = Consumer.from_substrait_plan(session.ctx, Serde.deserialize_bytes(data))
    except Exception as exc:  # noqa: BLE001
        return data, None, f"the Substrait plan does not load back: {_first_line(exc)}"
    node = _not_a_query(plan)
    if node is not None:
        return data, None, f"the Substrait plan is not a query (it holds {node})"
    return data, plan, None


def _plan_files(session: Session, run_id: str) -> dict[str, bytes]:
    """The files every planned run gets: text, plans, AST, record, configuration."""
    df, record = session.recent(run_id)
    statement, params = session.statement(run_id), session.params(run_id)
    return {
        "query.sql": statement.encode(),
        "cell.sql": record.sql.encode(),
        "params.json": json.dumps(
            {name: _encode_param(value) for name, value in params.items()}, indent=2
        ).encode(),
        "logical_plan.txt": _rendered(lambda: df.optimized_logical_plan().display_indent()),
        "physical_plan.txt": _rendered(lambda: df.execution_plan().display_indent()),
        "plan.pgjson.json": _pgjson(session, statement, params).encode(),
        "plan.dot": _rendered(lambda: df.logical_plan().display_graphviz()),
        "metrics_tree.json": _rendered(lambda: session.plan(run_id).to_json()),
        "sqlglot_ast.json": _sqlglot_ast(statement).encode(),
        "gate.json": _gate(session, run_id, record),
        "run.json": json.dumps(asdict(record), default=str, indent=2).encode(),
        "config.json": _config(session),
        "versions.json": json.dumps(versions(), indent=2).encode(),
    }


def _sql_problem(session: Session, run_id: str) -> tuple[str | None, bool]:
    """Why the statement does not plan here (``None``: it does), and whether it writes.

    Planning read-only both tests the SQL lane and tells a query from a write
    (without the options, DataFusion would run DDL while planning it).
    """
    statement, params = session.statement(run_id), session.params(run_id)
    try:
        planned = session.ctx.sql(statement, options=_read_only(), param_values=params or None)
    except Exception as exc:  # noqa: BLE001
        problem = _first_line(exc)
        return problem, _REFUSED.search(problem) is not None
    node = _not_a_query(planned.logical_plan())
    return node, node is not None


def _not_run_again(df: datafusion.DataFrame) -> str | None:
    """Why export must not execute the run's own plan (it holds a write), or ``None``.

    The run's DataFrame is what export would execute, so it is checked itself:
    the recorded statement may no longer plan (a table dropped later in its
    cell), and then it cannot tell that the plan writes.
    """
    node = _not_a_query(df.logical_plan())
    if node is None:
        return None
    return f"the run's plan is not a query (it holds {node}); export does not run it again"


def _result(
    df: datafusion.DataFrame, record: RunRecord, tables: list[str]
) -> tuple[ContentHash | None, str | None]:
    """The SQL lane's result hash (the run's own plan, executed again), or why there is none."""
    refused = _not_run_again(df)
    if refused is not None:
        return None, refused
    local = [n for n in tables if n.lower() in _SESSION_LOCAL or "information_schema." in n]
    if record.status == RunStatus.PLANNED:
        return None, "the run was only planned (%explain without --analyze); export did not run it"
    if local:
        return None, f"it reads {', '.join(local)}, which differ in every session; not hashed"
    try:
        return _hash_of(df), None
    except Exception as exc:  # noqa: BLE001
        return None, f"the query failed when export ran it again: {_first_line(exc)}"


def _substrait_reproduces(
    session: Session, df: datafusion.DataFrame, plan: datafusion.LogicalPlan, expected: ContentHash
) -> str | None:
    """``None`` if ``plan`` gives the rows of the run's own ``df`` here, else why not."""
    refused = _not_run_again(df)
    if refused is not None:
        return refused
    node = _not_a_query(plan)
    if node is not None:
        return f"the Substrait plan is not a query (it holds {node})"
    try:
        got = _hash_of(session.ctx.create_dataframe_from_logical_plan(plan))
    except Exception as exc:  # noqa: BLE001
        return f"the Substrait plan does not run here: {_first_line(exc)}"
    if got == expected:
        return None
    return (
        f"the Substrait plan gives other rows here ({got.rows} rows, hash {got.digest[:12]}) "
        f"than the SQL lane ({expected.rows} rows, hash {expected.digest[:12]})"
    )


def _export_run(session: Session, run_id: str) -> _ExportedRun:
    try:
        df, record = session.recent(run_id)
    except WorkbenchError:
        return _recorded_only(session, run_id)
    try:
        return _planned_run(session, run_id, df, record)
    except Exception as exc:  # noqa: BLE001  (every run exports: keep what the session recorded)
        reason = (
            f"export could not plan the run again ({_first_line(exc)}); the bundle holds its "
            "record and logical plan only"
        )
        logical = {"logical_plan.txt": _rendered(lambda: df.logical_plan().display_indent())}
        return _recorded_only(session, run_id, reason, logical)


def _planned_run(
    session: Session, run_id: str, df: datafusion.DataFrame, record: RunRecord
) -> _ExportedRun:
    """Every file and both lanes of a run the session still holds the plan of."""
    files = _plan_files(session, run_id)
    refused = _not_run_again(df)
    sql_problem, writes = _sql_problem(session, run_id)
    if refused is not None or writes:
        reason = refused or (
            f"the statement is not a query ({sql_problem}); bundles replay queries only"
        )
        lanes = {lane: _unavailable(reason) for lane in LANES}
        return _ExportedRun(files, _entry(record, None, reason, {}, lanes))
    names = _scanned_tables(df.logical_plan())
    tables = {name: _registration(name, session.registrations) for name in names}
    files["tables.sql"] = _tables_sql(run_id, tables)
    data, consumed, substrait_problem = _substrait(session, df)
    if data is not None:
        files["plan.substrait"] = data
    result, note = _result(df, record, names)
    if result is not None and consumed is not None:
        substrait_problem = _substrait_reproduces(session, df, consumed, result)
    lanes = {
        "substrait": {"available": True, "plan": f"{run_id}/plan.substrait"}
        if substrait_problem is None
        else _unavailable(substrait_problem),
        "sql": {
            "available": True,
            "statement": f"{run_id}/query.sql",
            "params": f"{run_id}/params.json",
        }
        if sql_problem is None
        else _unavailable(f"the statement does not plan here any more: {sql_problem}"),
    }
    return _ExportedRun(files, _entry(record, result, note, tables, lanes))


def _missing_parents(target: Path) -> list[Path]:
    """The directories above ``target`` that do not exist yet, deepest first."""
    missing = []
    parent = target.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    return missing


def _unwritable(target: Path, exc: OSError) -> str:
    blocker = next((p for p in target.parents if os.path.lexists(p)), None)
    if blocker is not None and not blocker.is_dir():
        why = f"{blocker} is a file, not a directory"
    else:
        why = str(exc.strerror or exc) + (f" ({exc.filename})" if exc.filename else "")
    return (
        f"cannot write the bundle to {target}: {why}. Choose a directory you can create and "
        "write to; nothing was left behind"
    )


def _export_ids(session: Session, run_ids: Iterable[str]) -> list[str]:
    ids = list(dict.fromkeys(run_ids)) or ([session.last_run_id] if session.last_run_id else [])
    if not ids:
        raise ArtifactError("no run to export yet: run a query first")
    for run_id in ids:
        if not _RUN_ID.fullmatch(run_id):
            msg = f"{run_id!r} is not a run id (they look like 20261125T101500-1a2b3c4d)"
            raise ArtifactError(msg)
    return ids


def _write_runs(session: Session, ids: list[str], into: Path, manifest: dict[str, Any]) -> None:
    """Export each run into ``into``, then the manifest listing them and their files."""
    for run_id in ids:
        exported = _export_run(session, run_id)
        (into / run_id).mkdir()
        for name, data in exported.files.items():
            (into / run_id / name).write_bytes(data)
            manifest["files"][f"{run_id}/{name}"] = _sha256(data)
        manifest["runs"].append(exported.entry)
    (into / MANIFEST).write_text(json.dumps(manifest, indent=2))


def _remove_empty(directories: list[Path]) -> None:
    """Remove the directories export created above a bundle that was not written."""
    for made in directories:
        try:
            made.rmdir()
        except OSError:
            return


def export(session: Session, run_ids: Iterable[str], directory: str | Path) -> Path:
    """Write a bundle of ``run_ids`` (default: the last run) to ``directory``, atomically.

    Every run exports. A run that executed is executed once more (streamed,
    never materialised) for its result hash, twice when its Substrait plan is
    checked too; a run that was only planned, or whose plan is not a query, is
    not executed. ``~`` in ``directory`` is the home directory. A directory that
    cannot be written is an :class:`ArtifactError`, and leaves nothing behind.
    """
    target = Path(directory).expanduser()
    if os.path.lexists(target):
        msg = f"{target} already exists; choose a new directory (bundles are never overwritten)"
        raise ArtifactError(msg)
    ids = _export_ids(session, run_ids)
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "content_hash": hashing.ALGORITHM,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "versions": versions(),
        "runs": [],
        "files": {},
    }
    created = _missing_parents(target)
    partial = target.with_name(f".{target.name}.partial-{secrets.token_hex(4)}")
    try:
        # The place is made first, so a directory that cannot be written fails fast.
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.mkdir()
        _write_runs(session, ids, partial, manifest)
        partial.rename(target)
    except OSError as exc:
        raise ArtifactError(_unwritable(target, exc)) from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        if not os.path.lexists(target):
            _remove_empty(created)
    for name, digest in manifest["files"].items():
        session.diagnostics.artifact_written(name.split("/", 1)[0], target / name, digest)
    return target


# --- reading a bundle (untrusted input) ----------------------------------------------------


_KINDS: dict[Any, str] = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict | None: "an object or null",
    str | None: "a string or null",
}


def _expect(value: Any, kind: Any, where: str) -> Any:
    """``value`` if it is of ``kind`` (a type or a union with None), else a clear error."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        msg = (
            f"{where} should be {_KINDS.get(kind, str(kind))}, not {json.dumps(value)[:60]}; "
            "the bundle is damaged or was not written by the workbench: export it again"
        )
        raise ArtifactError(msg)
    return value


def _key(mapping: dict[str, Any], key: str, kind: Any, where: str) -> Any:
    if key not in mapping:
        msg = (
            f"{where} has no {key!r}; the bundle is damaged or was not written by the "
            "workbench: export it again"
        )
        raise ArtifactError(msg)
    return _expect(mapping[key], kind, f"{where}.{key}")


@dataclass(frozen=True)
class _Lane:
    available: bool
    reason: str | None
    files: dict[str, str]
    """Role ("plan", "statement", "params") -> bundle file name."""


@dataclass(frozen=True)
class _BundledRun:
    run_id: str
    expected: ContentHash | None
    note: str | None
    tables: dict[str, str]
    lanes: dict[str, _Lane]


_LANE_FILES = {"substrait": ("plan",), "sql": ("statement", "params")}


def _lane(raw: Any, name: str, run_id: str, files: Mapping[str, str], where: str) -> _Lane:
    spec = _expect(raw, dict, where)
    if not _key(spec, "available", bool, where):
        return _Lane(available=False, reason=_key(spec, "reason", str, where), files={})
    named = {}
    for role in _LANE_FILES[name]:
        file = _key(spec, role, str, where)
        if file not in files or not file.startswith(f"{run_id}/"):
            msg = (
                f"{where}.{role} names {file!r}, which is not one of run {run_id}'s files in "
                "the manifest; replay reads only listed files, so the bundle is refused"
            )
            raise ArtifactError(msg)
        named[role] = file
    return _Lane(available=True, reason=None, files=named)


def _parse_run(raw: Any, index: int, files: Mapping[str, str], where: str) -> _BundledRun:
    at = f"{where}: runs[{index}]"
    run = _expect(raw, dict, at)
    run_id = _key(run, "run_id", str, at)
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        msg = (
            f"{at}.run_id {run_id!r} is not a plain run id (letters, digits, '.', '_', '-'); "
            "it could name a place outside the bundle, so the bundle is refused"
        )
        raise ArtifactError(msg)
    result = _key(run, "result", dict | None, at)
    expected = None
    if result is not None:
        expected = ContentHash(
            _key(result, "hash", str, f"{at}.result"), _key(result, "rows", int, f"{at}.result")
        )
    note = _key(run, "note", str | None, at)
    tables = _key(run, "tables", dict, at)
    for name, ddl in tables.items():
        if not _TABLE_NAME.fullmatch(name):
            msg = (
                f"{at}.tables names {name[:80]!r}, which is not a table name (one to three "
                "non-empty parts separated by '.'); the bundle is damaged or was not written by "
                "the workbench: export it again"
            )
            raise ArtifactError(msg)
        _expect(ddl, str, f"{at}.tables.{name}")
    raw_lanes = _key(run, "lanes", dict, at)
    lanes = {
        name: _lane(
            _key(raw_lanes, name, dict, f"{at}.lanes"), name, run_id, files, f"{at}.lanes.{name}"
        )
        for name in LANES
    }
    return _BundledRun(run_id, expected, note, dict(tables), lanes)


def _member(root: Path, name: str, where: str) -> Path:
    """The path of bundle file ``name``, refused unless it stays inside ``root``."""
    pure = PurePosixPath(name)
    parts = name.split("/")
    if pure.is_absolute() or "\\" in name or any(p in {"", ".", ".."} for p in parts):
        msg = f"{where}: file name {name!r} leaves the bundle (absolute, '..' or empty part)"
        raise ArtifactError(msg)
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        msg = f"{where}: file {name!r} resolves to {path}, outside the bundle (a symlink?)"
        raise ArtifactError(msg)
    return path


def _check_version(manifest: dict[str, Any], where: str) -> None:
    version = manifest.get("schema_version")
    if version == SCHEMA_VERSION:
        return
    if not isinstance(version, int) or isinstance(version, bool):
        hint = "it is not a workbench bundle, or it is damaged: export the runs again"
    elif version < SCHEMA_VERSION:
        hint = "it was written by an older workbench: export the runs again"
    else:
        hint = "it was written by a newer workbench: update the workbench to replay it"
    msg = f"{where}: bundle schema version {version!r} is not {SCHEMA_VERSION}; {hint}"
    raise ArtifactError(msg)


def _check_algorithm(manifest: dict[str, Any], where: str) -> None:
    algorithm = manifest.get("content_hash")
    if algorithm != hashing.ALGORITHM:
        msg = (
            f"{where}: result hashes were computed with {algorithm!r}, this workbench computes "
            f"{hashing.ALGORITHM!r}; export the runs again with this workbench"
        )
        raise ArtifactError(msg)


def _read_manifest(root: Path) -> tuple[str, dict[str, Any]]:
    path = _member(root, MANIFEST, str(root))
    if not path.is_file():
        msg = f"{root} is not a bundle: it has no {MANIFEST} (export one with %wb export)"
        raise ArtifactError(msg)
    return str(path), _expect(_json(_read(path), str(path)), dict, str(path))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror or exc}; check the bundle's permissions"
        raise ArtifactError(msg) from None


def _verified(
    root: Path, files: Mapping[str, str], run_ids: list[str], where: str
) -> dict[str, bytes]:
    """The bytes of every listed file, each checked against its SHA-256; read once."""
    verified = {}
    for name, digest in files.items():
        path = _member(root, name, where)
        if name.split("/", 1)[0] not in run_ids:
            msg = f"{where}: file {name!r} belongs to no listed run; the bundle is refused"
            raise ArtifactError(msg)
        data = _read(path) if path.is_file() else None
        if data is None or _sha256(data) != digest:
            msg = f"{path} is missing or changed since export (SHA-256 differs from the manifest)"
            raise ArtifactError(msg)
        verified[name] = data
    return verified


def _open(bundle: str | Path) -> tuple[Path, list[_BundledRun], dict[str, bytes]]:
    """Validate a bundle; return its root, runs and the verified bytes of its files."""
    root = Path(bundle).expanduser().resolve()
    where, manifest = _read_manifest(root)
    _check_version(manifest, where)
    _check_algorithm(manifest, where)
    files = _key(manifest, "files", dict, where)
    for name, digest in files.items():
        _expect(digest, str, f"{where}: files[{name!r}]")
    runs_raw = _key(manifest, "runs", list, where)
    if not runs_raw:
        msg = f"{where} lists no runs; there is nothing to replay (export some runs)"
        raise ArtifactError(msg)
    runs = [_parse_run(raw, i, files, where) for i, raw in enumerate(runs_raw)]
    run_ids = [run.run_id for run in runs]
    if len(set(run_ids)) != len(run_ids):
        msg = f"{where} lists a run twice; the bundle is damaged: export it again"
        raise ArtifactError(msg)
    return root, runs, _verified(root, files, run_ids, where)


# --- replay ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayedRun:
    """One run of a bundle, replayed (or, when it has no result hash, re-planned) here."""

    run_id: str
    lane: str | None
    """"substrait" or "sql": the lane that ran; ``None`` when the run has no lane."""
    expected_hash: str | None
    """Content hash recorded at export (from the SQL lane); ``None``: nothing to compare."""
    actual_hash: str | None
    rows: int | None
    """Rows the replay produced; ``None`` when it only planned."""
    note: str | None = None
    """Why the run was not compared, or which lane was given up and why."""

    @property
    def compared(self) -> bool:
        return self.expected_hash is not None and self.actual_hash is not None

    @property
    def matches(self) -> bool:
        return self.compared and self.expected_hash == self.actual_hash

    def describe(self) -> str:
        """One line for people: the lane and the outcome."""
        if self.lane is None:
            return f"{self.run_id}: not replayed: {self.note}"
        head = f"{self.run_id} ({self.lane} lane)"
        if self.actual_hash is None:
            return f"{head}: planned only, no result hash to compare ({self.note})"
        tail = f" ({self.note})" if self.note else ""
        rows = f"{self.rows} row" + ("" if self.rows == 1 else "s")
        return f"{head}: {rows}, result hash matches: {self.matches}{tail}"


@dataclass(frozen=True)
class ReplayReport:
    bundle: str
    runs: tuple[ReplayedRun, ...]

    @property
    def ok(self) -> bool:
        """Every run with a recorded result hash was compared here, and matches.

        A run whose bundle offers no lane is not compared; if it has a hash, the
        replay proved nothing about it, so the report is not ok.
        """
        return all(run.matches for run in self.runs if run.expected_hash is not None)


def _require_tables(root: Path, runs: list[_BundledRun], session: Session) -> None:
    missing: dict[str, str] = {}
    for run in runs:
        if not any(lane.available for lane in run.lanes.values()):
            continue
        for name, ddl in run.tables.items():
            quoted = ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))
            try:
                exists = session.ctx.table_exist(quoted)
            except Exception:  # noqa: BLE001  (a catalog or schema this session does not have)
                exists = False
            if not exists:
                missing[name] = ddl
    if missing:
        recorded = "\n".join(
            f"  {name}: {ddl}" if ddl != _UNKNOWN else f"  {name}: (no DDL recorded)"
            for name, ddl in missing.items()
        )
        msg = (
            f"{root}: its runs read tables this session does not have: {', '.join(missing)}. "
            "Register them first; at export they were registered as follows (review this "
            f"before you run it: a bundle is untrusted input, and replay never runs it):\n"
            f"{recorded}"
        )
        raise ArtifactError(msg)


def _plan_lane(
    session: Session, run: _BundledRun, lane: str, files: Mapping[str, bytes], root: Path
) -> datafusion.DataFrame:
    """The lane's plan as a DataFrame, checked to be a query; nothing runs yet."""
    spec = run.lanes[lane]
    if lane == "substrait":
        from datafusion.substrait import Consumer, Serde

        where = f"{root}/{spec.files['plan']}"
        plan = Consumer.from_substrait_plan(
            session.ctx, Serde.deserialize_bytes(files[spec.files["plan"]])
        )
        _require_query(plan, f"{where} (run {run.run_id})")
        return session.ctx.create_dataframe_from_logical_plan(plan)
    where = f"{root}/{spec.files['statement']}"
    try:
        text = files[spec.files["statement"]].decode()
    except UnicodeDecodeError:
        msg = f"{where} is not UTF-8 text; the bundle is damaged: export it again"
        raise ArtifactError(msg) from None
    params = _decode_params(files[spec.files["params"]], f"{root}/{spec.files['params']}")
    try:
        df = session.ctx.sql(text, options=_read_only(), param_values=params or None)
    except Exception as exc:
        problem = _first_line(exc)
        if _REFUSED.search(problem):
            msg = (
                f"{where} (run {run.run_id}) is not a query ({problem}); replay runs only "
                "queries, so it was refused and nothing ran"
            )
            raise ArtifactError(msg) from None
        raise
    _require_query(df.logical_plan(), f"{where} (run {run.run_id})")
    return df


def _replay_run(
    session: Session, run: _BundledRun, files: Mapping[str, bytes], root: Path
) -> ReplayedRun:
    given_up: list[str] = []
    df, used = None, None
    for lane in LANES:
        if not run.lanes[lane].available:
            continue
        try:
            df, used = _plan_lane(session, run, lane, files, root), lane
            break
        except ArtifactError:
            raise
        except Exception as exc:  # noqa: BLE001  (a lane that does not load here: try the next)
            given_up.append(f"the {lane} lane does not plan here: {_first_line(exc)}")
    if df is None:
        if given_up:
            msg = f"{root}: run {run.run_id} did not plan here: {'; '.join(given_up)}"
            raise ArtifactError(msg)
        reasons = "; ".join(f"{lane}: {spec.reason}" for lane, spec in run.lanes.items())
        expected = run.expected.digest if run.expected is not None else None
        return ReplayedRun(run.run_id, None, expected, None, None, run.note or reasons)
    note = "; ".join(given_up) or None
    if run.expected is None:
        return ReplayedRun(run.run_id, used, None, None, None, run.note)
    try:
        actual = _hash_of(df)
    except Exception as exc:
        msg = f"{root}: run {run.run_id} did not run here ({used} lane): {_first_line(exc)}"
        raise ArtifactError(msg) from exc
    return ReplayedRun(run.run_id, used, run.expected.digest, actual.digest, actual.rows, note)


def replay(bundle: str | Path, session: Session, *, check: bool = True) -> ReplayReport:
    """Re-run a bundle's runs in ``session`` and compare their result hashes.

    ``session`` must have the tables the runs read registered (the bundle's
    ``tables.sql`` says how they were; replay never runs it). Each run goes
    through its first available lane (Substrait, else SQL), read-only. With
    ``check``, a run whose result differs, or that has a result hash but no lane
    to compare it through, raises :class:`ArtifactError`. ``~`` in ``bundle`` is
    the home directory.
    """
    root, runs, files = _open(bundle)
    _require_tables(root, runs, session)
    report = ReplayReport(str(root), tuple(_replay_run(session, run, files, root) for run in runs))
    if check and not report.ok:
        bad = [r for r in report.runs if r.compared and not r.matches]
        unchecked = [r for r in report.runs if r.expected_hash is not None and not r.compared]
        parts = []
        if bad:
            named = ", ".join(f"{r.run_id} ({r.lane} lane)" for r in bad)
            parts.append(
                f"gave different results for run(s) {named}: the data, the plan or the engine "
                "differ from export"
            )
        if unchecked:
            named = "; ".join(f"{r.run_id}: {r.note}" for r in unchecked)
            parts.append(
                f"could not compare run(s) that have a result hash, because no lane replays "
                f"them ({named}); replay with check=False to see the rest of the report"
            )
        msg = f"replay of {root} " + "; and it ".join(parts)
        raise ArtifactError(msg)
    return report

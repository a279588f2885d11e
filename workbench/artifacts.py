"""Artifact bundles: everything needed to see and re-run a query elsewhere.

``export(session, run_ids, directory)`` writes, per run: the SQL, the optimized
logical plan, the physical plan (with its metrics as a JSON tree), pgjson and
graphviz renderings, the Substrait plan bytes, the SQLGlot AST, the run
record, the session configuration and package versions. A ``manifest.json``
lists every file with its SHA-256 and, per run, the content hash of the
result obtained by executing the bundle's own Substrait plan.

The bundle appears atomically: it is built in a hidden sibling directory and
renamed into place, so a crash never leaves a half-written bundle.

``replay(bundle, session)`` checks every file against the manifest, consumes
the Substrait plan in ``session`` (which must have the same tables
registered), runs it and compares the content hash.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import secrets
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.hashing import ContentHash, content_hash

if TYPE_CHECKING:
    import datafusion

    from workbench.session import Session

SCHEMA_VERSION = 1
_PACKAGES = (
    "datafusion",
    "pyarrow",
    "deltalake",
    "polars",
    "sqlglot",
    "ibis-framework",
    "datafusion-workbench",
)


class ArtifactError(WorkbenchError):
    """A bundle could not be written, or does not replay as recorded."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _substrait_bytes(session: Session, df: datafusion.DataFrame) -> bytes:
    from datafusion.substrait import Producer

    return bytes(Producer.to_substrait_plan(df.logical_plan(), session.ctx).encode())


def _run_substrait(session: Session, data: bytes) -> ContentHash:
    """Execute a Substrait plan in ``session``, streaming its rows into a content hash."""
    from datafusion.substrait import Consumer, Serde

    try:
        logical = Consumer.from_substrait_plan(session.ctx, Serde.deserialize_bytes(data))
        stream = session.ctx.create_dataframe_from_logical_plan(logical).execute_stream()
        return content_hash(batch.to_pyarrow() for batch in stream)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"the Substrait plan did not run here: {first}; are its tables registered?"
        raise ArtifactError(msg) from exc


def _sqlglot_ast(sql: str) -> str:
    import sqlglot
    from sqlglot import serde

    try:
        trees = [serde.dump(tree) for tree in sqlglot.parse(sql, read="postgres") if tree]
    except sqlglot.errors.SqlglotError as exc:
        return json.dumps({"dialect": "postgres", "error": str(exc)})
    return json.dumps({"dialect": "postgres", "statements": trees})


def _pgjson(session: Session, statement: str) -> str:
    try:
        rows = session.ctx.sql(f"EXPLAIN FORMAT pgjson {statement}").to_pydict()
        return str(rows["plan"][0])
    except Exception as exc:  # noqa: BLE001  (a view dropped later in the cell, say)
        return json.dumps({"error": str(exc)})


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


def _run_files(session: Session, run_id: str) -> tuple[dict[str, bytes], dict[str, Any]]:
    df, record = session.run(run_id)
    statement = session.statement(run_id)
    tree = session.plan(run_id)
    substrait = _substrait_bytes(session, df)
    reference = _run_substrait(session, substrait)
    config = session.ctx.sql(
        "SELECT name, value FROM information_schema.df_settings ORDER BY name"
    ).to_pydict()
    files = {
        "query.sql": record.sql.encode(),
        "logical_plan.txt": df.optimized_logical_plan().display_indent().encode(),
        "physical_plan.txt": df.execution_plan().display_indent().encode(),
        "plan.pgjson.json": _pgjson(session, statement).encode(),
        "plan.dot": df.logical_plan().display_graphviz().encode(),
        "metrics_tree.json": tree.to_json().encode(),
        "plan.substrait": substrait,
        "sqlglot_ast.json": _sqlglot_ast(statement).encode(),
        "run.json": json.dumps(asdict(record), default=str, indent=2).encode(),
        "config.json": json.dumps(
            dict(zip(config["name"], config["value"], strict=True)), indent=2
        ).encode(),
        "versions.json": json.dumps(versions(), indent=2).encode(),
    }
    summary = {
        "run_id": run_id,
        "result_hash": reference.digest,
        "rows": reference.rows,
        "status": str(record.status),
    }
    return files, summary


def export(session: Session, run_ids: list[str], directory: str | Path) -> Path:
    """Write a bundle of ``run_ids`` (default: the last run) to ``directory``, atomically."""
    target = Path(directory)
    if target.exists():
        msg = f"{target} already exists; choose a new directory (bundles are never overwritten)"
        raise ArtifactError(msg)
    ids = run_ids or ([session.last_run_id] if session.last_run_id else [])
    if not ids:
        raise ArtifactError("no run to export yet: run a query first")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{secrets.token_hex(4)}")
    manifest: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "runs": [], "files": {}}
    try:
        for run_id in ids:
            files, summary = _run_files(session, run_id)
            (partial / run_id).mkdir(parents=True)
            for name, data in files.items():
                (partial / run_id / name).write_bytes(data)
                manifest["files"][f"{run_id}/{name}"] = _sha256(data)
            manifest["runs"].append(summary)
        manifest["versions"] = versions()
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=2))
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    for name, digest in manifest["files"].items():
        session.diagnostics.artifact_written(name.split("/", 1)[0], target / name, digest)
    return target


@dataclass(frozen=True)
class ReplayedRun:
    run_id: str
    expected_hash: str
    actual_hash: str
    rows: int

    @property
    def matches(self) -> bool:
        return self.expected_hash == self.actual_hash


@dataclass(frozen=True)
class ReplayReport:
    bundle: str
    runs: tuple[ReplayedRun, ...]

    @property
    def ok(self) -> bool:
        return all(run.matches for run in self.runs)


def replay(bundle: str | Path, session: Session, *, check: bool = True) -> ReplayReport:
    """Re-run a bundle's Substrait plans in ``session`` and compare result hashes."""
    root = Path(bundle)
    manifest_path = root / "manifest.json"
    if not manifest_path.exists():
        msg = f"{root} is not a bundle: it has no manifest.json"
        raise ArtifactError(msg)
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("schema_version") != SCHEMA_VERSION:
        found = manifest.get("schema_version")
        msg = f"{root}: bundle schema version {found} is not {SCHEMA_VERSION}; update the workbench"
        raise ArtifactError(msg)
    for name, digest in manifest["files"].items():
        path = root / name
        if not path.exists() or _sha256(path.read_bytes()) != digest:
            msg = f"{path} is missing or changed since export (SHA-256 differs from the manifest)"
            raise ArtifactError(msg)
    replayed = []
    for run in manifest["runs"]:
        plan_bytes = (root / run["run_id"] / "plan.substrait").read_bytes()
        replayed_hash = _run_substrait(session, plan_bytes)
        replayed.append(
            ReplayedRun(run["run_id"], run["result_hash"], replayed_hash.digest, replayed_hash.rows)
        )
    report = ReplayReport(str(root), tuple(replayed))
    if check and not report.ok:
        bad = ", ".join(r.run_id for r in report.runs if not r.matches)
        msg = f"replay of {root} gave different results for run(s) {bad}"
        raise ArtifactError(msg)
    return report

"""The table registry: how each table of a session came to be, and what it is now.

Tables are registered DDL-first: ``CREATE EXTERNAL TABLE`` (Parquet, CSV, JSON, Avro, Arrow,
partitioned or not; Delta through the workbench's provider), recorded with its provenance:
the statement or API call, when, and its parts (format, location, partition columns,
options), read from SQLGlot's tokens. DataFusion's ``SHOW CREATE TABLE`` drops
``PARTITIONED BY`` and ``OPTIONS``; the recorded statement keeps them, so
:func:`describe` hands back DDL that registers the same table in a fresh session.

Everything about a table's columns comes from ``information_schema``, never a kept copy.
Row and file counts are given where they are cheap: Parquet footers (a few bytes per file),
a Delta snapshot's file index; CSV and JSON rows are not counted (that reads the data).
"""

from __future__ import annotations

import datetime as dt
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import TokenType
from sqlglot.errors import TokenError

from workbench.delta.names import name_parts, resolve, table_name
from workbench.errors import WorkbenchError
from workbench.ingress.tokens import tokenize

if TYPE_CHECKING:
    from sqlglot import Token

    from workbench.session import Session

_MAX_FOOTERS = 2_000
"""Parquet files whose footers ``describe`` reads for a row count; more: no count."""


class RegistryError(WorkbenchError):
    """A table the registry does not know, or a statement it cannot read."""


@dataclass(frozen=True)
class Registration:
    """How one table was registered."""

    name: str
    ddl: str
    """SQL that registers the table again (or a ``--`` comment saying why there is none)."""
    source: str
    """``sql`` (a statement run in the session) or ``api`` (a Python call)."""
    by: str
    """The statement, or the call, that registered it."""
    registered_at: dt.datetime
    format: str | None = None
    location: str | None = None
    partition_columns: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ExternalTable:
    """The parts of a ``CREATE EXTERNAL TABLE`` statement."""

    name: str
    format: str | None
    location: str | None
    partition_columns: tuple[str, ...]
    options: tuple[tuple[str, str], ...]


def _words(tokens: list[Token]) -> list[str]:
    """Each token as a keyword (upper case, spaces collapsed), or "" for names and values."""
    keep = {TokenType.IDENTIFIER, TokenType.STRING, TokenType.NUMBER}
    return [" ".join(t.text.upper().split()) if t.token_type not in keep else "" for t in tokens]


def _head(words: list[str]) -> int | None:
    """The index after ``CREATE [OR REPLACE] [UNBOUNDED] EXTERNAL TABLE [IF NOT EXISTS]``."""
    if "EXTERNAL" not in words or words[:1] != ["CREATE"]:
        return None
    at = words.index("EXTERNAL")
    if words[at + 1 : at + 2] != ["TABLE"]:
        return None
    at += 2
    return at + 3 if words[at : at + 3] == ["IF", "NOT", "EXISTS"] else at


def parse_external(statement: str) -> ExternalTable | None:
    """The parts of ``CREATE [OR REPLACE] [UNBOUNDED] EXTERNAL TABLE ...``, else ``None``."""
    try:
        tokens = tokenize(statement)
    except TokenError:
        return None
    words = _words(tokens)
    at = _head(words)
    parts, end = name_parts(tokens, at) if at is not None else ([], 0)
    if at is None or not parts:
        return None
    name = resolve(parts, statement[tokens[at].start : tokens[end - 1].end + 1])
    found: dict[str, Any] = {"format": None, "location": None, "partitions": [], "options": []}
    depth, i = 0, end
    while i < len(tokens):
        depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(tokens[i].token_type, 0)
        i = _clause(tokens, words, i, found) if depth == 0 else i + 1
    return ExternalTable(
        name,
        found["format"],
        found["location"],
        tuple(found["partitions"]),
        tuple(found["options"]),
    )


def _clause(tokens: list[Token], words: list[str], i: int, found: dict[str, Any]) -> int:
    """Read the clause at ``i`` (outside parentheses) into ``found``; the next index."""
    if words[i : i + 2] == ["STORED", "AS"] and i + 2 < len(tokens):
        found["format"] = tokens[i + 2].text.upper()
        return i + 3
    if words[i] == "LOCATION" and i + 1 < len(tokens):
        found["location"] = tokens[i + 1].text
        return i + 2
    if words[i] in {"PARTITIONED BY", "PARTITION BY"} or words[i : i + 2] == ["PARTITIONED", "BY"]:
        at = i + (1 if " " in words[i] else 2)
        end, found["partitions"] = _partition_columns(tokens, at)
        return end
    if words[i] == "OPTIONS":
        end, found["options"] = _options(tokens, i + 1)
        return end
    return i + 1


def _partition_columns(tokens: list[Token], at: int) -> tuple[int, list[str]]:
    """The column names of ``( a [type], b [type] )`` from ``at``; the index after it."""
    names: list[str] = []
    expect_name = True
    depth = 0
    i = at
    while i < len(tokens):
        token = tokens[i]
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                return i + 1, names
        elif token.token_type == TokenType.COMMA and depth == 1:
            expect_name = True
        elif depth == 1 and expect_name:
            text = token.text if token.token_type == TokenType.IDENTIFIER else token.text.lower()
            names.append(text)
            expect_name = False
        i += 1
    return i, names


def _options(tokens: list[Token], at: int) -> tuple[int, list[tuple[str, str]]]:
    """The ``('key' 'value', ...)`` pairs from ``at``; the index after them."""
    pairs: list[tuple[str, str]] = []
    values: list[str] = []
    i = at
    depth = 0
    while i < len(tokens):
        token = tokens[i]
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                break
        elif token.token_type == TokenType.COMMA:
            pass
        elif depth == 1:
            values.append(token.text)
            if len(values) == 2:
                pairs.append((values[0], values[1]))
                values = []
        i += 1
    return i + 1, pairs


class Registry:
    """The registrations of one session, by exact table name."""

    def __init__(self) -> None:
        self._entries: dict[str, Registration] = {}

    def record(self, name: str, ddl: str | None, *, source: str, by: str) -> None:
        """Remember how ``name`` was registered (``ddl=None``: it was dropped)."""
        if ddl is None:
            self._entries.pop(name, None)
            return
        parsed = parse_external(ddl) if not ddl.lstrip().startswith("--") else None
        self._entries[name] = Registration(
            name=name,
            ddl=ddl,
            source=source,
            by=by,
            registered_at=dt.datetime.now(dt.UTC),
            format=parsed.format if parsed else None,
            location=parsed.location if parsed else None,
            partition_columns=parsed.partition_columns if parsed else (),
            options=parsed.options if parsed else (),
        )

    def get(self, name: str) -> Registration | None:
        return self._entries.get(name)

    def ddl(self) -> dict[str, str]:
        """Table name -> the DDL that registers it again."""
        return {name: entry.ddl for name, entry in self._entries.items()}


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    nullable: bool
    partition: bool = False


@dataclass(frozen=True)
class Description:
    """What ``%wb describe`` shows about one table."""

    name: str
    kind: str
    """``BASE TABLE`` or ``VIEW`` (information_schema's table_type)."""
    columns: tuple[Column, ...]
    registration: Registration | None
    files: int | None = None
    rows: int | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def ddl(self) -> str:
        if self.registration is not None:
            return self.registration.ddl
        return f"-- {self.name} was registered through Python objects; no DDL recreates it"

    def text(self) -> str:
        reg = self.registration
        lines = [f"{self.name} ({self.kind.lower()})"]
        if reg is not None:
            lines.append(f"  format: {reg.format or '-'}   location: {reg.location or '-'}")
            lines.append(f"  registered {reg.registered_at:%Y-%m-%d %H:%M:%S} UTC by {reg.source}")
        counts = [
            f"{self.files:,} files" if self.files is not None else None,
            f"{self.rows:,} rows" if self.rows is not None else None,
        ]
        if any(counts):
            lines.append("  " + ", ".join(c for c in counts if c))
        width = max((len(c.name) for c in self.columns), default=4)
        for column in self.columns:
            flags = " (partition)" if column.partition else ""
            null = "" if column.nullable else " not null"
            lines.append(f"  {column.name:<{width}}  {column.data_type}{null}{flags}")
        lines.extend(f"  note: {note}" for note in self.notes)
        lines.append("")
        lines.append(self.ddl)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        rows = "".join(
            f"<tr><td>{e(c.name)}</td><td>{e(c.data_type)}</td>"
            f"<td>{'' if c.nullable else 'not null'}</td>"
            f"<td>{'partition' if c.partition else ''}</td></tr>"
            for c in self.columns
        )
        reg = self.registration
        facts = [f"<b>{e(self.name)}</b> ({e(self.kind.lower())})"]
        if reg is not None:
            where = e(reg.location or "-")
            facts.append(f"format {e(reg.format or '-')}, location <code>{where}</code>")
        if self.files is not None:
            facts.append(f"{self.files:,} files")
        if self.rows is not None:
            facts.append(f"{self.rows:,} rows")
        return (
            f"<div>{' · '.join(facts)}</div><table><tr><th>column</th><th>type</th><th></th>"
            f"<th></th></tr>{rows}</table><pre>{e(self.ddl)}</pre>"
        )

    def __repr__(self) -> str:
        return self.text()


def describe(session: Session, name: str) -> Description:
    """The table ``name`` now: columns, provenance, counts and DDL.

    ``name`` is read as SQL reads it (``Events`` is ``events``; ``"Events"`` is exact).
    """
    name = table_name(name)
    tables = session.ctx.sql(
        "SELECT table_type FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_name = $name",
        param_values={"name": name},
    ).to_pydict()["table_type"]
    if not tables:
        known = ", ".join(session.tables()) or "none"
        raise RegistryError(f"no table {name!r} in this session (its tables: {known})")
    columns = session.ctx.sql(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = $name ORDER BY ordinal_position",
        param_values={"name": name},
    ).to_pydict()
    registration = session.registry.get(name)
    partitions = set(registration.partition_columns) if registration else set()
    delta = session.delta_tables.get(name)
    if delta is not None:
        partitions |= set(delta.partition_columns)
    described = tuple(
        Column(column, str(kind), nullable == "YES", column in partitions)
        for column, kind, nullable in zip(
            columns["column_name"], columns["data_type"], columns["is_nullable"], strict=True
        )
    )
    files, rows, notes = _counts(session, name, registration)
    return Description(name, str(tables[0]), described, registration, files, rows, notes)


def _counts(
    session: Session, name: str, registration: Registration | None
) -> tuple[int | None, int | None, tuple[str, ...]]:
    """(files, rows, notes) where counting is cheap."""
    delta = session.delta_tables.get(name)
    if delta is not None:
        delta.refresh()
        index = delta.file_index()
        records = index.column("num_records").to_pylist()
        rows = None if None in records else sum(records)
        return index.num_rows, rows, () if rows is not None else ("a file has no row count",)
    if registration is None or registration.location is None:
        return None, None, ()
    files = _listed(Path(registration.location).expanduser(), registration.format)
    if files is None:
        return None, None, (f"{registration.location} is not a local path: not counted",)
    if registration.format != "PARQUET":
        return len(files), None, ("rows are counted for Parquet and Delta only",)
    if len(files) > _MAX_FOOTERS:
        return len(files), None, (f"more than {_MAX_FOOTERS} files: rows not counted",)
    import pyarrow.parquet as pq

    return len(files), sum(pq.read_metadata(f).num_rows for f in files), ()


def _listed(location: Path, fmt: str | None) -> list[Path] | None:
    if not location.exists():
        return None
    if location.is_file():
        return [location]
    suffix = {"PARQUET": ".parquet", "CSV": ".csv", "JSON": ".json", "AVRO": ".avro"}.get(
        fmt or "", ""
    )
    found: list[Path] = []
    for root, _, names in os.walk(location):
        found.extend(
            Path(root) / n for n in names if n.endswith(suffix) and not n.startswith((".", "_"))
        )
    return sorted(found)


def tables(session: Session) -> list[dict[str, Any]]:
    """One row per table: name, kind, format, location, source and when."""
    listed = session.ctx.sql(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_schema = 'public' ORDER BY table_name"
    ).to_pydict()
    rows = []
    for name, kind in zip(listed["table_name"], listed["table_type"], strict=True):
        reg = session.registry.get(str(name))
        fmt = reg.format if reg else ("DELTA" if name in session.delta_tables else None)
        rows.append(
            {
                "name": name,
                "type": kind,
                "format": fmt,
                "location": reg.location if reg else None,
                "partitioned_by": list(reg.partition_columns) if reg else [],
                "source": reg.source if reg else None,
                "registered_by": reg.by if reg else None,
                "registered_at": reg.registered_at if reg else None,
            }
        )
    return rows

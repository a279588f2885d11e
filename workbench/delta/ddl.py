"""``CREATE EXTERNAL TABLE name STORED AS DELTA LOCATION 'uri' [OPTIONS (...)]``.

DataFusion's Python API cannot add a table factory, so this one statement is read by
the workbench itself (with SQLGlot's tokenizer, so quoting is SQL's) and turned into
``Session.register_delta``. Options are ``'key' 'value'`` pairs: ``version``,
``timestamp``, ``file_column_name``, ``wrap_partition_values``,
``enable_parquet_pushdown``, ``schema_force_view_types`` (true/false), ``files`` (comma
separated) and ``storage.<name>`` for the object store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import TokenType
from sqlglot.errors import TokenError

from workbench.delta.table import DeltaError, DeltaOptions
from workbench.ingress.tokens import tokenize

if TYPE_CHECKING:
    from sqlglot import Token

_HEAD = re.compile(
    r"^\s*CREATE\s+(?P<replace>OR\s+REPLACE\s+)?EXTERNAL\s+TABLE\s+"
    r"(?P<if_not_exists>IF\s+NOT\s+EXISTS\s+)?(?P<name>\"[^\"]+\"|[A-Za-z_][\w]*)\s+"
    r"STORED\s+AS\s+DELTA\b",
    re.IGNORECASE,
)
_BOOLEANS = {"true": True, "false": False}
_FLAGS = ("wrap_partition_values", "enable_parquet_pushdown", "schema_force_view_types")


@dataclass(frozen=True)
class DeltaDdl:
    """A parsed ``CREATE EXTERNAL TABLE ... STORED AS DELTA`` statement."""

    name: str
    uri: str
    options: DeltaOptions
    replace: bool
    if_not_exists: bool


def is_delta_ddl(statement: str) -> bool:
    """Whether ``statement`` is a ``CREATE EXTERNAL TABLE ... STORED AS DELTA``."""
    return _HEAD.match(statement) is not None


def parse_delta_ddl(statement: str) -> DeltaDdl:
    """The table name, location and options of the statement (a clear error if malformed)."""
    head = _HEAD.match(statement)
    if head is None:
        raise DeltaError("not a CREATE EXTERNAL TABLE ... STORED AS DELTA statement")
    try:
        tokens = tokenize(statement[head.end() :])
    except TokenError as exc:
        raise DeltaError(f"malformed Delta table statement: {exc}") from None
    if (
        len(tokens) < 2
        or tokens[0].text.upper() != "LOCATION"
        or tokens[1].token_type != TokenType.STRING
    ):
        msg = "STORED AS DELTA needs LOCATION 'uri' (a path or URL of the table's folder)"
        raise DeltaError(msg)
    uri = tokens[1].text
    pairs = _options(tokens[2:])
    return DeltaDdl(
        name=head.group("name").strip('"'),
        uri=uri,
        options=_delta_options(pairs),
        replace=head.group("replace") is not None,
        if_not_exists=head.group("if_not_exists") is not None,
    )


def _options(tokens: list[Token]) -> dict[str, str]:
    if not tokens:
        return {}
    kinds = [t.token_type for t in tokens]
    if (
        tokens[0].text.upper() != "OPTIONS"
        or len(tokens) < 3
        or kinds[1] != TokenType.L_PAREN
        or kinds[-1] != TokenType.R_PAREN
    ):
        msg = (
            f"unexpected {tokens[0].text!r} after LOCATION; only OPTIONS ('key' 'value', ...) "
            "may follow"
        )
        raise DeltaError(msg)
    body = [t for t in tokens[2:-1] if t.token_type != TokenType.COMMA]
    if len(body) % 2 or any(t.token_type != TokenType.STRING for t in body):
        raise DeltaError("OPTIONS takes quoted pairs: OPTIONS ('version' '3', 'files' 'a,b')")
    return {body[i].text: body[i + 1].text for i in range(0, len(body), 2)}


def _delta_options(pairs: dict[str, str]) -> DeltaOptions:
    storage = {k.removeprefix("storage."): v for k, v in pairs.items() if k.startswith("storage.")}
    flags = {}
    for name in _FLAGS:
        if name in pairs:
            if pairs[name].lower() not in _BOOLEANS:
                raise DeltaError(f"option {name} is true or false, not {pairs[name]!r}")
            flags[name] = _BOOLEANS[pairs[name].lower()]
    known = {"version", "timestamp", "file_column_name", "files", *_FLAGS}
    unknown = sorted(k for k in pairs if k not in known and not k.startswith("storage."))
    if unknown:
        msg = f"unknown Delta option {unknown[0]!r}; known: {', '.join(sorted(known))}, storage.*"
        raise DeltaError(msg)
    version = pairs.get("version")
    if version is not None and not version.isdigit():
        raise DeltaError(f"option version is a whole number, not {version!r}")
    files = pairs.get("files")
    return DeltaOptions(
        version=int(version) if version is not None else None,
        timestamp=pairs.get("timestamp"),
        storage_options=storage,
        file_column_name=pairs.get("file_column_name"),
        files=tuple(f.strip() for f in files.split(",") if f.strip()) if files else None,
        **flags,
    )

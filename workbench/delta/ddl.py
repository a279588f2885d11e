"""``CREATE [OR REPLACE] EXTERNAL TABLE [IF NOT EXISTS] name STORED AS DELTA LOCATION 'path'``.

DataFusion's Python API cannot add a table factory, so this one statement is read by
the workbench itself and turned into ``Session.register_delta``. It is read from
SQLGlot's tokens, so comments, quoting and case are SQL's: a leading ``-- note`` or
``/* ... */`` is skipped, ``"a""b"`` is the name ``a"b``, keywords take any case,
and the clauses come in any order, as DataFusion allows. The name resolves as
:mod:`workbench.delta.names` says (``public.name`` is the default schema's ``name``;
another schema is refused). A column list is refused (a Delta table's columns come from
its log), and so are the clauses a Delta table has no use for (``PARTITIONED BY``,
``WITH ORDER``...). :func:`is_delta_ddl` recognises every such statement, malformed
ones too, so none reaches DataFusion (whose error would be "Unable to find factory").

``LOCATION`` is a local path or a file:// URL: remote object stores are not built into
this workbench. ``OPTIONS ('key' 'value', ...)`` gives each key once: ``version``,
``timestamp``, ``file_column_name``, ``wrap_partition_values``,
``enable_parquet_pushdown``, ``schema_force_view_types`` (true/false) and ``files``
(comma separated). ``storage.*`` options are refused: they configure remote stores.

Such a refused statement may still hold a secret (``'storage.aws_secret_access_key'
'...'``, a presigned URL). :func:`redact` replaces those values before the session runs,
records or shows the statement: the values of ``storage.*`` options and of keys that look
secret (``secret``, ``key``, ``token``, ``password``, ``credential``, ``sas``,
``signature``), and a remote LOCATION's password and query. Nothing needs them: a
statement holding one is refused either way, and errors name keys, never values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import TokenType
from sqlglot.errors import TokenError

from workbench.delta.names import name_parts, resolve
from workbench.delta.table import (
    REDACTED,
    DeltaError,
    DeltaOptions,
    no_remote_stores,
    remote_scheme,
    shown_url,
)
from workbench.ingress.statements import position
from workbench.ingress.tokens import LITERALS, tokenize

if TYPE_CHECKING:
    from sqlglot import Token

_BOOLEANS = {"true": True, "false": False}
_FLAGS = ("wrap_partition_values", "enable_parquet_pushdown", "schema_force_view_types")
_KNOWN = ("version", "timestamp", "file_column_name", "files", *_FLAGS)
_VERSION = re.compile(r"[0-9]+")
# Every Delta CREATE says DELTA: statements without the word are not tokenized.
_MENTIONS_DELTA = re.compile(r"\bdelta\b", re.IGNORECASE)
_NOT_WORDS = frozenset({TokenType.IDENTIFIER, TokenType.STRING, TokenType.NUMBER})
_VALUES = frozenset({TokenType.STRING, TokenType.NUMBER, TokenType.TRUE, TokenType.FALSE})
_SECRET_WORDS = ("secret", "key", "token", "password", "credential", "sas", "signature")
_ENTRY_ENDS = frozenset({TokenType.COMMA, TokenType.R_PAREN})
# Text the tokenizer cannot read (broken quoting): a Delta CREATE, and its quoted strings.
_DELTA_CREATE = re.compile(
    r"\bCREATE\b.*\bEXTERNAL\s+TABLE\b.*\bDELTA\b", re.IGNORECASE | re.DOTALL
)
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


@dataclass(frozen=True)
class DeltaDdl:
    """A parsed ``CREATE EXTERNAL TABLE ... STORED AS DELTA`` statement."""

    name: str
    """The exact table name (unquoted names folded to lower case, as SQL does)."""
    uri: str
    options: DeltaOptions
    replace: bool
    if_not_exists: bool


class _Reader:
    """A cursor over a statement's tokens whose errors say where (line and column)."""

    def __init__(self, statement: str, tokens: list[Token]) -> None:
        self.statement = statement
        self.tokens = tokens
        self.at = 0

    def peek(self, ahead: int = 0) -> Token | None:
        at = self.at + ahead
        return self.tokens[at] if at < len(self.tokens) else None

    def take(self) -> Token | None:
        token = self.peek()
        self.at += token is not None
        return token

    def is_word(self, at: int, word: str) -> bool:
        if at >= len(self.tokens):
            return False
        token = self.tokens[at]
        return token.token_type not in _NOT_WORDS and token.text.upper() == word

    def words(self, *words: str) -> bool:
        """Take ``words`` (keywords, any case) if they come next."""
        if all(self.is_word(self.at + i, w) for i, w in enumerate(words)):
            self.at += len(words)
            return True
        return False

    def error(self, message: str, token: Token | None = None) -> DeltaError:
        """``message`` at ``token`` (the next one by default; the end when there is none)."""
        token = token or self.peek()
        offset = token.start if token is not None else len(self.statement.rstrip())
        line, column = position(self.statement, offset)
        # The parser's own position format: the session points at it and drops it.
        return DeltaError(f"{message} at Line: {line}, Column: {column}")


def _head(reader: _Reader) -> tuple[bool, bool] | None:
    """(OR REPLACE, UNBOUNDED) of ``CREATE [OR REPLACE] [UNBOUNDED] EXTERNAL TABLE``."""
    if not reader.words("CREATE"):
        return None
    replace = reader.words("OR", "REPLACE")
    unbounded = reader.words("UNBOUNDED")
    return (replace, unbounded) if reader.words("EXTERNAL", "TABLE") else None


def is_delta_ddl(statement: str) -> bool:
    """Whether ``statement`` is a ``CREATE EXTERNAL TABLE ... STORED AS DELTA`` (any form)."""
    if _MENTIONS_DELTA.search(statement) is None:
        return False
    try:
        reader = _Reader(statement, tokenize(statement))
    except TokenError:
        return False  # broken quoting: DataFusion's parser says where
    if _head(reader) is None:
        return False
    stored = ("STORED", "AS", "DELTA")
    return any(
        all(reader.is_word(at + i, w) for i, w in enumerate(stored))
        for at in range(reader.at, len(reader.tokens))
    )


def parse_delta_ddl(statement: str) -> DeltaDdl:
    """The table name, location and options of the statement (a clear error if malformed)."""
    try:
        reader = _Reader(statement, tokenize(statement))
    except TokenError as exc:
        raise DeltaError(f"malformed Delta table statement: {exc}") from None
    head = _head(reader)
    if head is None or not is_delta_ddl(statement):
        raise DeltaError("not a CREATE EXTERNAL TABLE ... STORED AS DELTA statement")
    replace, unbounded = head
    if unbounded:
        raise reader.error(
            "a Delta table is not UNBOUNDED (that is for streams); drop UNBOUNDED",
            reader.tokens[reader.at - 3],
        )
    if_not_exists = reader.words("IF", "NOT", "EXISTS")
    name = _name(reader)
    opening = reader.peek()
    if opening is not None and opening.token_type == TokenType.L_PAREN:
        msg = (
            "a Delta table takes its columns from its Delta log: drop the column list "
            "(CREATE EXTERNAL TABLE name STORED AS DELTA LOCATION '...')"
        )
        raise reader.error(msg)
    uri, pairs = _clauses(reader)
    return DeltaDdl(
        name=name,
        uri=uri,
        options=_delta_options(reader, pairs),
        replace=replace,
        if_not_exists=if_not_exists,
    )


def _name(reader: _Reader) -> str:
    first = reader.peek()
    parts, end = name_parts(reader.tokens, reader.at)
    if first is None or not parts:
        shown = f", not {first.text!r}" if first is not None else ""
        raise reader.error(f"CREATE EXTERNAL TABLE needs the table's name here{shown}")
    written = reader.statement[first.start : reader.tokens[end - 1].end + 1]
    try:
        name = resolve(parts, written)
    except DeltaError as exc:
        raise reader.error(str(exc), first) from None
    reader.at = end
    return name


def _clauses(reader: _Reader) -> tuple[str, dict[str, tuple[str, Token]]]:
    """LOCATION and OPTIONS (STORED AS DELTA once), in any order; nothing else."""
    seen: set[str] = set()
    uri: str | None = None
    pairs: dict[str, tuple[str, Token]] = {}
    while (token := reader.peek()) is not None:
        clause = token.text.upper()
        if token.token_type == TokenType.SEMICOLON and reader.peek(1) is None:
            break
        if clause in seen and clause in {"STORED", "LOCATION", "OPTIONS"}:
            raise reader.error(f"{clause} is given twice; give it once")
        if reader.words("STORED", "AS"):
            stored = reader.take()
            if stored is None or stored.text.upper() != "DELTA":
                raise reader.error("this statement is STORED AS DELTA; give one STORED AS", stored)
        elif reader.words("LOCATION"):
            uri = _location(reader)
        elif reader.words("OPTIONS"):
            pairs = _options(reader)
        else:
            msg = (
                f"unexpected {token.text!r}: a Delta table takes only STORED AS DELTA, "
                "LOCATION 'path' and OPTIONS ('key' 'value', ...)"
            )
            raise reader.error(msg, token)
        seen.add(clause)
    if uri is None:
        msg = "STORED AS DELTA needs LOCATION 'path' (the table's folder, or a file:// URL)"
        raise reader.error(msg)
    return uri, pairs


def _location(reader: _Reader) -> str:
    token = reader.take()
    if token is None or token.token_type != TokenType.STRING:
        msg = "LOCATION takes the table's folder as a quoted string: LOCATION '/data/events'"
        raise reader.error(msg, token)
    scheme = remote_scheme(token.text)
    if scheme is not None:
        what = f"LOCATION {shown_url(token.text)!r} is a {scheme}:// URL"
        raise reader.error(str(no_remote_stores(what)), token)
    return token.text


def _options(reader: _Reader) -> dict[str, tuple[str, Token]]:
    """``( 'key' 'value', ... )``: {key: (value, key token)}; a key given twice is refused."""
    usage = "OPTIONS takes quoted pairs: OPTIONS ('version' '3', 'files' 'a.parquet,b.parquet')"
    opening = reader.take()
    if opening is None or opening.token_type != TokenType.L_PAREN:
        raise reader.error(usage, opening)
    pairs: dict[str, tuple[str, Token]] = {}
    while True:
        key_token = reader.peek()
        key = _option_key(reader)
        value = _option_value(reader)
        if key is None or value is None or key_token is None:
            raise reader.error(usage)
        if key in pairs:
            msg = f"option {key!r} is given twice in OPTIONS; give it once"
            raise reader.error(msg, key_token)
        pairs[key] = (value, key_token)
        after = reader.take()
        if after is not None and after.token_type == TokenType.R_PAREN:
            return pairs
        if after is None or after.token_type != TokenType.COMMA:
            raise reader.error(usage, after)


def _option_key(reader: _Reader) -> str | None:
    """A quoted key, or dotted words (``storage.region``), lower-cased as DataFusion's are."""
    token = reader.peek()
    if token is not None and token.token_type == TokenType.STRING:
        reader.at += 1
        return token.text.lower()
    key, reader.at = _dotted_key(reader.tokens, reader.at)
    return key or None


def _dotted_key(tokens: list[Token], at: int) -> tuple[str, int]:
    """The unquoted key ``word[.word...]`` at ``tokens[at]`` (lower-cased), and the index after."""

    def is_word(at: int) -> bool:
        return (
            at < len(tokens)
            and tokens[at].token_type not in _NOT_WORDS | LITERALS
            and tokens[at].text.replace("_", "").isalnum()
        )

    if not is_word(at):
        return "", at
    end = at + 1
    while end + 1 < len(tokens) and tokens[end].token_type == TokenType.DOT and is_word(end + 1):
        end += 2
    return "".join(t.text for t in tokens[at:end]).lower(), end


def _option_value(reader: _Reader) -> str | None:
    token = reader.peek()
    sign = ""
    if token is not None and token.token_type == TokenType.DASH:
        sign, token = "-", reader.peek(1)
        reader.at += 1
    if token is None or token.token_type not in _VALUES:
        return None
    reader.at += 1
    return sign + (token.text if token.token_type == TokenType.STRING else token.text.lower())


def _delta_options(reader: _Reader, pairs: dict[str, tuple[str, Token]]) -> DeltaOptions:
    storage = [key for key in pairs if key.startswith("storage.")]
    if storage:
        what = f"OPTIONS {', '.join(repr(k) for k in storage)}"
        raise reader.error(str(no_remote_stores(what)), pairs[storage[0]][1])
    unknown = [key for key in pairs if key not in _KNOWN]
    if unknown:
        msg = f"unknown Delta option {unknown[0]!r}; known: {', '.join(sorted(_KNOWN))}"
        raise reader.error(msg, pairs[unknown[0]][1])
    values = {key: value for key, (value, _) in pairs.items()}
    flags = {}
    for name in _FLAGS:
        if name in values:
            if values[name].lower() not in _BOOLEANS:
                msg = f"option {name!r} is true or false, not {values[name]!r}"
                raise reader.error(msg, pairs[name][1])
            flags[name] = _BOOLEANS[values[name].lower()]
    version = values.get("version")
    if version is not None and not _VERSION.fullmatch(version):
        msg = f"option 'version' is a whole number >= 0 (0 is the first commit), not {version!r}"
        raise reader.error(msg, pairs["version"][1])
    files = values.get("files")
    try:
        return DeltaOptions(
            version=int(version) if version is not None else None,
            timestamp=values.get("timestamp"),
            file_column_name=values.get("file_column_name"),
            files=tuple(f.strip() for f in files.split(",") if f.strip()) if files else None,
            **flags,
        )
    except DeltaError as exc:
        at = pairs.get("timestamp") or next(iter(pairs.values()))
        raise reader.error(str(exc), at[1]) from None


def _is_secret(key: str) -> bool:
    """Whether the value of option ``key`` may be a secret (never a known Delta option)."""
    key = key.lower()
    if key in _KNOWN:
        return False
    return key.startswith("storage.") or any(word in key for word in _SECRET_WORDS)


def _secret_spans(tokens: list[Token]) -> list[tuple[int, int, str]]:
    """(start, end, replacement) of the secrets among a Delta statement's ``tokens``.

    Read loosely, so a malformed OPTIONS list is redacted too: each entry is its key (a
    quoted string or dotted words) and everything after it up to ``,`` or ``)``.
    """
    spans: list[tuple[int, int, str]] = []
    options = False
    at = 0
    while at < len(tokens):
        token = tokens[at]
        word = token.text.upper() if token.token_type not in _NOT_WORDS else ""
        if word == "LOCATION" and at + 1 < len(tokens):
            location = tokens[at + 1]
            shown = shown_url(location.text)
            if location.token_type in LITERALS and shown != location.text:
                spans.append((location.start, location.end, _string(shown)))
        if word in {"LOCATION", "STORED", "PARTITIONED"} or token.token_type == TokenType.R_PAREN:
            options = False
        elif word == "OPTIONS" or (options and token.token_type == TokenType.COMMA):
            options = True
            at += 1 + (at + 1 < len(tokens) and tokens[at + 1].token_type == TokenType.L_PAREN)
            end = at
            while end < len(tokens) and tokens[end].token_type not in _ENTRY_ENDS:
                end += 1
            spans.extend(_entry_secret(tokens[at:end]))
            at = end
            continue
        at += 1
    return spans


def _entry_secret(entry: list[Token]) -> list[tuple[int, int, str]]:
    """The span of the value of one ``'key' value`` entry, when the key looks secret."""
    if not entry:
        return []
    if entry[0].token_type in LITERALS | {TokenType.IDENTIFIER}:
        key, value = entry[0].text, entry[1:]
    else:
        key, end = _dotted_key(entry, 0)
        value = entry[end:]
    if not value or not _is_secret(key):
        return []
    return [(value[0].start, value[-1].end, _string(REDACTED))]


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def redact(sql: str) -> str:
    """``sql`` with the secrets of its Delta CREATE statements replaced by ``'<redacted>'``.

    Other statements are left as they are (their options are DataFusion's to use). The
    session runs, records and shows the redacted text of a cell.
    """
    if _MENTIONS_DELTA.search(sql) is None:
        return sql
    try:
        tokens = tokenize(sql)
    except TokenError:
        return _redact_unreadable(sql)
    spans: list[tuple[int, int, str]] = []
    group: list[Token] = []
    for token in [*tokens, None]:
        if token is not None and token.token_type != TokenType.SEMICOLON:
            group.append(token)
            continue
        if group and is_delta_ddl(sql[group[0].start : group[-1].end + 1]):
            spans.extend(_secret_spans(group))
        group = []
    for start, end, replacement in reversed(spans):
        sql = sql[:start] + replacement + sql[end + 1 :]
    return sql


def _redact_unreadable(sql: str) -> str:
    """Text with broken quoting: everything after the first secret-looking quoted key."""
    if _DELTA_CREATE.search(sql) is None:
        return sql
    for found in _QUOTED.finditer(sql):
        if _is_secret(found.group(1).replace("''", "'")):
            return f"{sql[: found.end()]} {_string(REDACTED)}"
    return sql

"""Delta table names: which table a name means, read as DataFusion's SQL reads it.

A name means the same table however it is given: ``register_delta(name, ...)``,
``CREATE EXTERNAL TABLE name STORED AS DELTA``, ``Session.prune(name, ...)``, ``%prune
name ...`` and ``wb_delta_files('name')``. As in SQL, an unquoted name folds to lower case
(``Events`` is the table ``events``; only ASCII letters fold, as in DataFusion), a
double-quoted one is taken as written (``"Events"``, ``"my table"``, ``"x.y"``; ``""``
inside stands for one ``"``). ``wb_delta_files`` reads its string argument the same way,
as PostgreSQL reads ``'Events'::regclass``. The reading itself is
:mod:`workbench.ingress.names`, which also names the tables a ``CREATE`` or ``DROP``
statement changes, so SQL that drops or replaces a Delta table always ends its registration.

A qualified name is accepted for the default schema, where every Delta table is
registered (``public.events``, ``datafusion.public.events``); another schema is refused,
because the table would not be found by the unqualified queries the workbench runs for
it (``%prune --analyze``, refresh, bundles).

Text given from Python that is no SQL name at all (``my table``, ``a-b``) is taken as
the exact name, as DataFusion's ``register_table`` takes it; quote it to be explicit.
Registered names go back to DataFusion quoted (:func:`quoted`), so DataFusion registers
exactly the resolved name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from sqlglot.errors import TokenError

from workbench.delta.table import DeltaError, quoted, sql_name
from workbench.ingress.names import DEFAULT_CATALOG, DEFAULT_SCHEMA, in_default_schema, name_parts
from workbench.ingress.tokens import tokenize

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

_T = TypeVar("_T")

__all__ = ["leading_name", "lookup", "name_parts", "quoted", "resolve", "sql_name", "table_name"]


def resolve(parts: Sequence[str], written: str) -> str:
    """The table name of ``parts``; a qualified name must be in the default schema."""
    table = parts[-1]
    if not in_default_schema(parts):
        whole = "" if '"' in written else f", or {quoted(written)} if the dot is part of the name"
        msg = (
            f"table name {written}: Delta tables are registered in the default schema "
            f"({DEFAULT_CATALOG}.{DEFAULT_SCHEMA}) only; write {sql_name(table)} or "
            f"{DEFAULT_SCHEMA}.{sql_name(table)}{whole}"
        )
        raise DeltaError(msg)
    if not table:
        raise DeltaError(f"table name {written}: a table name cannot be empty")
    return table


def table_name(text: str) -> str:
    """The table ``text`` (a name given from Python) refers to, as SQL resolves it."""
    if not isinstance(text, str) or not text.strip():
        msg = f"a Delta table name is a non-empty string, not {text!r}"
        raise DeltaError(msg)
    try:
        tokens = tokenize(text)
    except TokenError:
        tokens = []
    parts, end = name_parts(tokens, 0)
    if parts and end == len(tokens):
        return resolve(parts, text.strip())
    if '"' in text:
        msg = (
            f"table name {text!r} is not a name SQL can read: double-quote it as a whole, "
            f'doubling any " inside, e.g. {quoted(text.strip())}'
        )
        raise DeltaError(msg)
    return text.strip()  # no SQL name: the exact text, as DataFusion's register_table takes it


def leading_name(text: str) -> tuple[str, str]:
    """Split ``text`` into the table name it starts with (as written) and the rest.

    ``'"my table" WHERE x > 1'`` -> ``('"my table"', ' WHERE x > 1')``.
    """
    try:
        tokens = tokenize(text)
    except TokenError as exc:
        raise DeltaError(f"cannot read {text.strip()!r}: {exc}") from None
    parts, end = name_parts(tokens, 0)
    if not parts:
        shown = tokens[0].text if tokens else ""
        msg = (
            f"expected a table name first, not {shown!r}; write the name bare (events) or "
            'double-quoted ("my table")'
        )
        raise DeltaError(msg)
    stop = tokens[end - 1].end + 1
    return text[:stop].strip(), text[stop:]


def lookup(
    tables: Mapping[str, _T],
    text: str,
    *,
    where: str,
    missing: str,
    registered: Callable[[str], bool],
) -> _T:
    """The Delta table ``text`` names among ``tables`` (keyed by exact name).

    Errors start with ``where`` (the caller); ``missing`` says there is no such table.
    ``registered(name)`` says whether the session still has a table of that name (one
    dropped by SQL is not found).
    """
    try:
        name = table_name(text)
    except DeltaError as exc:
        raise DeltaError(f"{where}: {exc}") from None
    found = tables.get(name)
    if found is not None and registered(name):
        return found
    known = ", ".join(sorted(sql_name(n) for n in tables if registered(n))) or "none yet"
    folded = [n for n in tables if n != name and n.lower() == name.lower() and registered(n)]
    hint = (
        f"; unquoted names fold to lower case: write {quoted(folded[0])}, double-quoted, for "
        "that table"
        if folded
        else ""
    )
    msg = (
        f"{where}: {missing} in this session (registered: {known}){hint}; register one with "
        "register_delta or CREATE EXTERNAL TABLE ... STORED AS DELTA"
    )
    raise DeltaError(msg)

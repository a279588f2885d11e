"""Errors point at the token a careful reader would blame: the broken-SQL corpus.

Each case of ``fixtures/broken_sql.txt`` is checked twice. End to end, the way a
notebook runs it (``session.sql(cell).to_pyarrow()``, the error's ``location``);
and at the locator (``locate_error`` on DataFusion's own message for the failing
statement), so errors that surface on a path not yet wired to the locator still
test it. Cases are data: add one to the fixture, not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import workbench
from workbench.errors import SqlError, WorkbenchError
from workbench.ingress import Statement, locate_error, split_statements

if TYPE_CHECKING:
    from workbench.datasets import TpchData

CORPUS = Path(__file__).parent / "fixtures" / "broken_sql.txt"
PLACED_RIGHT_TARGET = 0.9
_EXPECTED = re.compile(r"=> (?:(?P<line>\d+):(?P<column>\d+)|none)")

Position = tuple[int, int] | None


@dataclass(frozen=True)
class Case:
    """One broken cell and the (line, column) a careful human points at."""

    name: str
    sql: str
    expected: Position


def _load_cases() -> list[Case]:
    cases = []
    for block in CORPUS.read_text().split("\n\n"):
        lines = block.splitlines()
        body = [line for line in lines if not line.startswith("#")]
        if not body:
            continue
        header = next(line for line in lines if line.startswith("# "))
        *sql, expectation = body
        found = _EXPECTED.fullmatch(expectation)
        assert found, f"{header}: bad expectation line {expectation!r}"
        expected = (int(found["line"]), int(found["column"])) if found["line"] else None
        name = header.removeprefix("# ").split(":")[0]
        cases.append(Case(name, "\n".join(sql), expected))
    return cases


CASES = _load_cases()


def _end_to_end(session: workbench.Session, sql: str) -> tuple[Position, WorkbenchError]:
    with pytest.raises(WorkbenchError) as info:
        session.sql(sql).to_pyarrow()
    location = getattr(info.value, "location", None)
    return (None if location is None else (location.line, location.column)), info.value


def _failure(session: workbench.Session, sql: str) -> tuple[Statement, str]:
    """The cell's first failing statement, run straight on DataFusion, and its message."""
    for statement in split_statements(sql):
        try:
            session.ctx.sql(statement.text).collect()
        except Exception as exc:  # noqa: BLE001 - DataFusion raises plain Exception at run time
            return statement, str(exc)
    pytest.fail("no statement of the cell failed")


def _by_locator(session: workbench.Session, sql: str) -> Position:
    statement, message = _failure(session, sql)
    location = locate_error(message, statement.text)
    if location is None:
        return None
    return statement.cell_position(location.line, location.column)


def _fresh_session(tpch: TpchData) -> workbench.Session:
    session = workbench.RuntimeProfile().session()
    tpch.register(session)
    return session


def test_corpus_is_well_formed():
    """Case names are unique and the corpus is not trivially small."""
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 70


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in CASES])
def test_session_error_points_at_the_token(tpch_session, case):
    """The error a notebook sees carries the corpus's (line, column) and a caret under it."""
    got, error = _end_to_end(tpch_session, case.sql)
    assert got == case.expected, str(error)
    if case.expected is not None:
        assert isinstance(error, SqlError)
        caret_line = error.caret().splitlines()[-1]
        assert caret_line.index("^") - 2 == case.expected[1] - 1


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in CASES])
def test_locator_points_at_the_token(tpch_session, case):
    """locate_error, given DataFusion's message for the failing statement, finds the token."""
    assert _by_locator(tpch_session, case.sql) == case.expected


def test_corpus_placed_right_ratio(tpch):
    """At least 90% of the corpus is placed right, end to end and at the locator."""
    end_to_end = [_end_to_end(_fresh_session(tpch), c.sql)[0] == c.expected for c in CASES]
    locator = [_by_locator(_fresh_session(tpch), c.sql) == c.expected for c in CASES]
    report = (
        f"placed right: end to end {sum(end_to_end)}/{len(CASES)}, "
        f"locator {sum(locator)}/{len(CASES)}"
    )
    print(report)  # the ratio is the point of this test; pytest -s shows it
    assert sum(end_to_end) >= PLACED_RIGHT_TARGET * len(CASES), report
    assert sum(locator) >= PLACED_RIGHT_TARGET * len(CASES), report


def test_locator_never_raises_and_stays_inside_the_statement(tpch):
    """Any corpus message against any corpus statement: None or a position inside it."""
    failures = [_failure(_fresh_session(tpch), case.sql) for case in CASES]
    statements = [statement.text for statement, _ in failures]
    for _, message in failures:
        for text in statements:
            location = locate_error(message, text)
            if location is None:
                continue
            lines = text.split("\n")
            assert 1 <= location.line <= len(lines), (message, text)
            assert 1 <= location.column <= len(lines[location.line - 1]) + 1, (message, text)

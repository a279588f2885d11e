"""The one flag parser of the workbench's magics.

Flags come first, separated by any whitespace; the text after the last flag
is the magic's operand (SQL for ``%explain``), passed on unchanged. A value
may be quoted (``--label "a b"``); ``--params`` takes a Python expression
that may contain spaces (``--params {'x': 5}``): it ends at the first
whitespace outside brackets and strings. An unknown flag is an error that
lists the known ones; ``--`` followed by a space starts a SQL comment, not a flag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from workbench.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_Function = TypeVar("_Function", bound="Callable[..., Any]")

_FLAG_WORD = re.compile(r"--?[A-Za-z][\w-]*")
_CLOSING = {"(": ")", "[": "]", "{": "}"}


class Takes(StrEnum):
    """What follows a flag."""

    NOTHING = "nothing"
    WORD = "word"
    COUNT = "count"
    """A whole number >= 0."""
    EXPRESSION = "expression"
    """A Python expression; spaces allowed inside brackets and strings."""
    TWO_WORDS = "two words"


@dataclass(frozen=True)
class Flag:
    """One flag of a magic: ``--name`` (and ``-x``), what it takes, its help."""

    name: str
    takes: Takes = Takes.NOTHING
    help: str = ""
    short: str | None = None
    metavar: str = ""

    @property
    def key(self) -> str:
        return self.name.removeprefix("--").replace("-", "_")

    def usage(self) -> str:
        value = f" {self.metavar}" if self.metavar else ""
        names = f"{self.short}{value}, {self.name}{value}" if self.short else f"{self.name}{value}"
        return f"  {names:<28} {self.help}"


def usage(magic: str, flags: Sequence[Flag], operand: str = "") -> str:
    """The usage block of a magic, for its docstring and its errors."""
    words = [magic, *(f"[{f.name}{' ' + f.metavar if f.metavar else ''}]" for f in flags)]
    head = " ".join([*words, operand] if operand else words)
    return "\n".join([f"usage: {head}", *(f.usage() for f in flags)])


def documented(
    magic: str, flags: Sequence[Flag], operand: str = ""
) -> Callable[[_Function], _Function]:
    """Append the usage block to a magic's docstring (what ``%magic?`` shows)."""

    def add_usage(function: _Function) -> _Function:
        function.__doc__ = f"{function.__doc__ or ''}\n{usage(magic, flags, operand)}\n"
        return function

    return add_usage


def _skip_space(line: str, at: int) -> int:
    while at < len(line) and line[at].isspace():
        at += 1
    return at


def _word(line: str, at: int) -> tuple[str, int]:
    """A whitespace-delimited word, or a quoted one, starting at ``at``."""
    if at < len(line) and line[at] in "'\"":
        end = line.find(line[at], at + 1)
        if end < 0:
            raise UsageError(f"unclosed quote in {line[at:]!r}")
        return line[at + 1 : end], end + 1
    end = at
    while end < len(line) and not line[end].isspace():
        end += 1
    return line[at:end], end


def _string_end(line: str, at: int) -> int:
    """Offset just past the Python string literal whose quote is at ``at``."""
    quote, end = line[at], at + 1
    while end < len(line) and line[end] != quote:
        end += 2 if line[end] == "\\" else 1
    if end >= len(line):
        raise UsageError(f"unclosed string in {line[at:]!r}")
    return end + 1


def _expression(line: str, at: int) -> tuple[str, int]:
    """A Python expression starting at ``at``: up to whitespace outside brackets and strings."""
    stack: list[str] = []
    end = at
    while end < len(line):
        char = line[end]
        if char in "'\"":
            end = _string_end(line, end)
            continue
        if char in _CLOSING:
            stack.append(_CLOSING[char])
        elif char in ")]}":
            if not stack or stack.pop() != char:
                raise UsageError(f"unbalanced {char!r} in the expression {line[at : end + 1]!r}")
        elif char.isspace() and not stack:
            break
        end += 1
    if stack:
        raise UsageError(f"unclosed bracket in {line[at:end]!r}")
    return line[at:end], end


def _value(flag: Flag, line: str, at: int, magic: str) -> tuple[Any, int]:
    at = _skip_space(line, at)
    if at >= len(line):
        raise UsageError(f"{magic}: {flag.name} needs {flag.metavar or 'a value'}")
    if flag.takes == Takes.EXPRESSION:
        return _expression(line, at)
    if flag.takes == Takes.TWO_WORDS:
        first, at = _word(line, at)
        second, at = _word(line, _skip_space(line, at))
        if not second:
            raise UsageError(f"{magic}: {flag.name} needs two values ({flag.metavar})")
        return (first, second), at
    word, at = _word(line, at)
    if flag.takes == Takes.COUNT:
        if not re.fullmatch(r"\d+", word):
            raise UsageError(f"{magic}: {flag.name} takes a whole number >= 0, not {word!r}")
        return int(word), at
    return word, at


def parse(
    line: str, flags: Sequence[Flag], *, magic: str, operand: str = ""
) -> tuple[dict[str, Any], str]:
    """Parse ``line`` into {flag key: value} (absent flags: None/False) and the operand text.

    Without ``operand`` the magic takes flags only, and any other text is an error.
    """
    by_name = {f.name: f for f in flags} | {f.short: f for f in flags if f.short}
    values: dict[str, Any] = {f.key: (False if f.takes == Takes.NOTHING else None) for f in flags}
    seen: set[str] = set()
    at = _skip_space(line, 0)
    while at < len(line):
        word, end = _word(line, at)
        if word not in by_name:
            if _FLAG_WORD.fullmatch(word):
                known = ", ".join(f.name for f in flags)
                help_text = usage(magic, flags, operand)
                msg = f"{magic}: unknown flag {word}; known flags: {known}\n{help_text}"
                raise UsageError(msg)
            break
        flag = by_name[word]
        if flag.key in seen:
            raise UsageError(f"{magic}: {flag.name} is given twice; give it once")
        seen.add(flag.key)
        if flag.takes == Takes.NOTHING:
            values[flag.key] = True
        else:
            values[flag.key], end = _value(flag, line, end, magic)
        at = _skip_space(line, end)
    rest = line[at:]
    if rest.strip() and not operand:
        msg = f"{magic}: unexpected {rest.strip()!r}\n{usage(magic, flags)}"
        raise UsageError(msg)
    return values, rest

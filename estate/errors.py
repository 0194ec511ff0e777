"""Errors about the user's input: one line, `FILE:LINE: field.path: message`, exit code 2."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def one_line(text: str) -> str:
    """`text` with every control, format or line-separator character escaped (`\\n`, `\\x1b`, `\\u202e`): a
    problem is one line whatever a file name or a value held."""
    if text.isprintable():
        return text
    return "".join(char if unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp")
                   else repr(char)[1:-1] if char.isascii() else f"\\u{ord(char):04x}" for char in text)


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        return one_line(text)


class EstateError(Exception):
    """Bad input. Carries one or more problems; the CLI prints each on one line and exits 2."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def one(cls, file: str | Path, line: int, field: str, message: str) -> EstateError:
        return cls([Problem(str(file), line, field, message)])


def format_path(loc: Iterable[str | int]) -> str:
    """('contracts', 1, 'end') -> 'contracts[1].end'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def describe(value: Any) -> str:
    """A JSON value's kind, as an error names it: 'a list', 'an object', 'NaN', 'a boolean', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "infinite"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__

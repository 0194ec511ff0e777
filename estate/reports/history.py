"""The score history of `estate check --history FILE`: one JSON object a line, one line per run.

A run on a date with the same sources as an earlier line of that date replaces it, so re-running a
check on one day leaves one point per day. The HTML report plots each council's trend from it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from estate.atomic import write_atomic
from estate.compliance.findings import Report
from estate.errors import EstateError
from estate.yamlsrc import LIMIT_JSON, display, read_text_bounded


@dataclass(frozen=True)
class Entry:
    date: dt.date
    framework_version: str
    sources: tuple[str, ...]
    scores: dict[str, float]
    by_area: dict[str, dict[str, float]]

    def to_json(self) -> str:
        return json.dumps({"date": self.date.isoformat(), "framework_version": self.framework_version,
                           "sources": list(self.sources), "scores": self.scores, "by_area": self.by_area},
                          sort_keys=True)


@dataclass
class History:
    entries: list[Entry] = field(default_factory=list)

    def councils(self) -> list[str]:
        seen: dict[str, None] = {}
        for e in self.entries:
            for k in e.scores:
                seen.setdefault(k, None)
        return list(seen)

    def series(self, council: str) -> list[tuple[dt.date, float]]:
        return [(e.date, e.scores[council]) for e in sorted(self.entries, key=lambda e: e.date)
                if council in e.scores]


def entry_of(report: Report) -> Entry:
    return Entry(report.today, report.framework_version, tuple(report.sources),
                 {k: round(r.score, 4) for k, r in report.councils.items()},
                 {k: {a: round(s, 4) for a, s in r.by_area.items()} for k, r in report.councils.items()})


def _score(value: Any) -> bool:
    """A score: a finite number from 0 to 1 (not a boolean, which Python counts as a number)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def _entry(data: Any, file: str, line: int) -> Entry:
    def bad(field_name: str, why: str) -> EstateError:
        return EstateError.one(file, line, field_name, why)

    if not isinstance(data, Mapping):
        raise bad("", "expected a JSON object")
    raw_date = data.get("date")
    try:
        if not isinstance(raw_date, str):
            raise ValueError
        date = dt.date.fromisoformat(raw_date)
    except ValueError:
        raise bad("date", f"{raw_date!r} is not a date (YYYY-MM-DD)") from None
    scores = data.get("scores")
    if not isinstance(scores, Mapping):
        raise bad("scores", "expected an object of council -> score between 0 and 1")
    for key, value in scores.items():
        if not _score(value):
            raise bad(f"scores.{key}", f"{value!r} is not a score between 0 and 1")
    by_area = data.get("by_area") or {}
    if not isinstance(by_area, Mapping):
        raise bad("by_area", "expected an object of council -> {area: score}")
    for key, areas in by_area.items():
        if not isinstance(areas, Mapping):
            raise bad(f"by_area.{key}", "expected an object of area -> score")
        for area, value in areas.items():
            if not _score(value):
                raise bad(f"by_area.{key}.{area}", f"{value!r} is not a score between 0 and 1")
    sources = data.get("sources") or []
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise bad("sources", "expected a list of strings")
    version = data.get("framework_version", "")
    if not isinstance(version, str):
        raise bad("framework_version", "expected a string")
    return Entry(date, version, tuple(sources),
                 {str(k): float(v) for k, v in scores.items()},
                 {str(k): {str(a): float(s) for a, s in v.items()} for k, v in by_area.items()})


def read_history(path: Path) -> History:
    """The history in a file; an absent file is an empty history; a corrupt line is an EstateError."""
    shown = display(path)
    try:
        os.stat(path)
    except FileNotFoundError:  # a new path (or a link to one): the history starts here
        return History()
    except OSError:
        pass  # a loop of links, a folder on the way, no permission: read_text_bounded says which, in one line
    # a history must be a regular file: a FIFO or device is refused without waiting on it (it would be read
    # here, then replaced), a file larger than LIMIT_JSON before it is read
    text = read_text_bounded(path, LIMIT_JSON)
    entries = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise EstateError.one(shown, n, "", f"not JSON: {exc.msg} (column {exc.colno})") from None
        except RecursionError:
            raise EstateError.one(shown, n, "", "nested too deeply to be a history line") from None
        entries.append(_entry(data, shown, n))
    return History(entries)


def with_report(path: Path, report: Report) -> History:
    """The history in `path` with the report's scores added (replacing a run of the same date and
    sources); nothing is written: `estate check` writes it only once its report is written."""
    history = read_history(path)
    new = entry_of(report)
    kept = [e for e in history.entries if (e.date, e.sources) != (new.date, new.sources)]
    kept.append(new)
    kept.sort(key=lambda e: (e.date, e.sources))
    return History(kept)


def write_history(path: Path, history: History) -> None:
    """The file written whole (estate.atomic): a reader, or a run killed half-way, never sees half a line."""
    write_atomic(path, "".join(e.to_json() + "\n" for e in history.entries))


def append(path: Path, report: Report) -> History:
    """Add the report's scores (replacing a run of the same date and sources) and write the file whole."""
    history = with_report(path, report)
    write_history(path, history)
    return history

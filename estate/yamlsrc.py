"""YAML loading that remembers where every value came from.

PyYAML's composer gives nodes with marks; we build plain Python values from them ourselves (with
the safe constructor for scalars) and keep a map from each value's path to its line. Duplicate keys,
which PyYAML would silently collapse, are errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from estate.errors import EstateError, format_path

Loc = tuple[str | int, ...]


@dataclass
class Sourced:
    """A parsed YAML document with the line of every path in it."""

    file: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int:
        """The line of `loc`, or of its nearest ancestor that has one (for missing fields)."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)

    def error(self, loc: Loc, message: str) -> EstateError:
        return EstateError.one(self.file, self.line(loc), format_path(loc), message)


# libyaml's parser when PyYAML was built with it (ten times faster on framework.yaml); same nodes and marks.
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    pass


class _PyLoader(yaml.SafeLoader):
    """The pure-Python parser: slower, but its syntax errors name the offending character."""


def _build(node: yaml.Node, loader: yaml.SafeLoader, loc: Loc, lines: dict[Loc, int], file: str) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise EstateError.one(file, key_node.start_mark.line + 1, format_path(loc),
                                      f"mapping key {key!r} is not a string")
            if key in out:
                raise EstateError.one(file, key_node.start_mark.line + 1, format_path((*loc, key)),
                                      "duplicate key")
            child = (*loc, key)
            out[key] = _build(value_node, loader, child, lines, file)
            lines[child] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, loader, (*loc, i), lines, file) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise EstateError.one(file, node.start_mark.line + 1, format_path(loc),
                              f"cannot read {node.value!r}: {exc}") from None


def parse(text: str, file: str | Path, *, loader_class: type[yaml.SafeLoader] = _Loader) -> Sourced:
    """Parse YAML text; a syntax error becomes an EstateError with the line."""
    name = str(file)
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise EstateError.one(name, 1, "", "the file is empty")
        lines: dict[Loc, int] = {}
        data = _build(root, loader, (), lines, name)
    except yaml.MarkedYAMLError as exc:
        if loader_class is not _PyLoader:
            return parse(text, file, loader_class=_PyLoader)  # raises, with the clearer message
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or str(exc)
        raise EstateError.one(name, line, "", f"YAML syntax: {problem}") from None
    except yaml.YAMLError as exc:
        raise EstateError.one(name, 1, "", f"YAML: {exc}") from None
    finally:
        loader.dispose()
    return Sourced(name, data, lines)


def display(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load(path: Path) -> Sourced:
    shown = display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EstateError.one(shown, 0, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EstateError.one(shown, 0, "", f"cannot read: {exc}") from None
    return parse(text, shown)


def load_json_list(path: Path, expected: str) -> list[Any]:
    """A JSON file that must hold a list (host facts, `az vm list-usage`): its items, or one line naming the
    file (and the JSON line) and what was wrong. `expected` says what the list should be."""
    import json

    shown = display(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EstateError.one(shown, 0, "", "file not found") from None
    except json.JSONDecodeError as exc:
        raise EstateError.one(shown, exc.lineno, "", f"not JSON: {exc.msg} (column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EstateError.one(shown, 0, "", f"cannot read: {exc}") from None
    if not isinstance(data, list):
        raise EstateError.one(shown, 0, "", f"expected {expected}")
    return data

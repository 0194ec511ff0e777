"""YAML loading that remembers where every value came from.

PyYAML's composer gives nodes with marks; we build plain Python values from them ourselves (with
the safe constructor for scalars) and keep a map from each value's path to its line. Duplicate keys,
which PyYAML would silently collapse, are errors.

Work is bounded whatever the file holds: a file is read only if it is a regular file no larger than
its kind could ever be (`read_text_bounded`), nesting is capped before anything recursive sees it, an
alias is built once and shared, and a document that expands past `MAX_VALUES` is refused. Every
string is one line of printable text, every number finite.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from estate.errors import EstateError, format_path

Loc = tuple[str | int, ...]

MiB = 1 << 20
# The most a real input could ever be (the example framework.yaml is 22 kB, a council.yml 3 kB): far above
# any real file, far below what would exhaust memory once parsed.
LIMIT_FRAMEWORK = 2 * MiB
LIMIT_COUNCIL = 8 * MiB  # council.yml: the asset register of a large council, imported from CSV
LIMIT_HOSTS = 2 * MiB
LIMIT_YAML = 2 * MiB  # any other YAML input (the lab's config, an Ansible inventory)
LIMIT_CSV = 4 * MiB  # an asset register or contracts CSV for `estate onboard` (it becomes council.yml)
LIMIT_JSON = 128 * MiB  # a `pulumi stack export`, host facts, `az vm list-usage`, a history file

MAX_DEPTH = 64  # nesting levels of a YAML or JSON document (framework.yaml uses 7)
MAX_VALUES = 1_000_000  # values of a YAML document once its aliases are expanded
MAX_SCALAR = 10_000  # characters of one YAML scalar


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


def shorten(value: object, most: int = 40) -> str:
    """A value for an error line, cut short: an error names the field, it does not echo the file."""
    text = repr(value)
    return text if len(text) <= most else text[: most - 3] + "..."


# Characters that are not text: controls (newline, NUL, escape, DEL, C1), format characters (bidi
# overrides, zero-width joiners, BOM), lone surrogates and the Unicode line and paragraph separators.
_NOT_TEXT = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def control_character(text: str) -> str | None:
    """What makes `text` unfit for a one-line free-text field (a control or format character), else None.

    Free text ends up in configuration (nftables comments, rsyslog, RT, Ansible): a newline there starts
    a new rule. The message names the character by code point, never quoting the text."""
    if text.isprintable():  # no Cc/Cf/Cs/Zl/Zp (and no Zs but the space): the common case, fast
        return None
    for i, char in enumerate(text):
        if unicodedata.category(char) in _NOT_TEXT:
            return (f"control character U+{ord(char):04X} at character {i + 1}: "
                    "free text is one line of printable characters")
    return None


_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


class _Builder:
    """Builds plain values from composed nodes. An aliased node is built once and shared at every use (a
    "billion laughs" costs its composed size, not its expansion), and the expanded size is counted against
    `MAX_VALUES` so nothing downstream can be made to walk an exponential document."""

    def __init__(self, loader: yaml.SafeLoader, file: str, lines: dict[Loc, int]) -> None:
        self.loader = loader
        self.file = file
        self.lines = lines
        self.built: dict[int, tuple[Any, int]] = {}  # id(node) -> (value, values once expanded)

    def fail(self, node: yaml.Node, loc: Loc, message: str) -> EstateError:
        return EstateError.one(self.file, node.start_mark.line + 1, format_path(loc), message)

    def build(self, node: yaml.Node, loc: Loc) -> tuple[Any, int]:
        self.lines[loc] = node.start_mark.line + 1
        seen = self.built.get(id(node))
        if seen is not None:
            return seen
        if len(loc) > MAX_DEPTH:  # the event scan caps nesting first; this guards a document built otherwise
            raise self.fail(node, loc, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
            raise self.fail(node, loc, f"the tag {shorten(node.tag)} is not read: plain mappings and lists only")
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            size = 1
            for key_node, value_node in node.value:
                key = self.key(key_node, loc)
                if key in out:
                    raise self.fail(key_node, (*loc, key), "duplicate key")
                child = (*loc, key)
                out[key], n = self.build(value_node, child)
                self.lines[child] = key_node.start_mark.line + 1
                size += n + 1
            result: tuple[Any, int] = (out, size)
        elif isinstance(node, yaml.SequenceNode):
            items = []
            size = 1
            for i, item in enumerate(node.value):
                value, n = self.build(item, (*loc, i))
                items.append(value)
                size += n
            result = (items, size)
        else:
            result = (self.scalar(node, loc), 1)
        if result[1] > MAX_VALUES:
            raise self.fail(node, loc, f"more than {MAX_VALUES:,} values once its aliases are expanded "
                                       "(an alias is counted at every use)")
        self.built[id(node)] = result
        return result

    def key(self, node: yaml.Node, loc: Loc) -> str | int:
        if node.tag == "tag:yaml.org,2002:merge":
            raise self.fail(node, loc, "YAML merge keys (<<) are not read: write the fields out")
        key = self.scalar(node, loc) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(key, str | int) or isinstance(key, bool):
            shown = shorten(key) if isinstance(node, yaml.ScalarNode) else "a collection"
            raise self.fail(node, loc, f"mapping key {shown} is not a string")
        return key

    def scalar(self, node: yaml.Node, loc: Loc) -> Any:
        if isinstance(node.value, str) and len(node.value) > MAX_SCALAR:
            raise self.fail(node, loc, f"a value of {len(node.value):,} characters (at most {MAX_SCALAR:,})")
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # PyYAML's constructors raise what they meet (AttributeError for a bad !!timestamp)
            raise self.fail(node, loc, f"cannot read {shorten(node.value)}: {_cut(str(exc), 80)}") from None
        if isinstance(value, str):
            bad = control_character(value)
            if bad:
                raise self.fail(node, loc, bad)
        elif isinstance(value, float) and not math.isfinite(value):
            raise self.fail(node, loc, f"{shorten(node.value)} is not a finite number")
        return value


def _scan(text: str, name: str, loader_class: type[yaml.SafeLoader]) -> None:
    """Walk the parse events (the parser keeps its own stack, so this never recurses) and refuse nesting deeper
    than MAX_DEPTH before anything recursive sees it: PyYAML's composer recurses per level (RecursionError in
    pure Python, a crash in libyaml's binding around 30,000 levels)."""
    loader = loader_class(text)
    try:
        depth = 0
        while loader.check_event():
            event = loader.get_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark else 1
                    raise EstateError.one(name, line, "",
                                          f"nested deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


def parse(text: str, file: str | Path, *, loader_class: type[yaml.SafeLoader] = _Loader) -> Sourced:
    """Parse YAML text; a syntax error becomes an EstateError with the line."""
    name = str(file)
    try:
        _scan(text, name, loader_class)
        loader = loader_class(text)
        try:
            root = loader.get_single_node()
            if root is None:
                raise EstateError.one(name, 1, "", "the file is empty")
            lines: dict[Loc, int] = {}
            data, _ = _Builder(loader, name, lines).build(root, ())
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        if loader_class is not _PyLoader:
            return parse(text, file, loader_class=_PyLoader)  # raises, with the clearer message
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or str(exc)
        raise EstateError.one(name, line, "", f"YAML syntax: {_cut(problem)}") from None
    except yaml.YAMLError as exc:
        raise EstateError.one(name, 1, "", f"YAML: {_cut(str(exc))}") from None
    return Sourced(name, data, lines)


def _cut(message: str, most: int = 120) -> str:
    """A parser's message on one line and cut short (it may quote a tag, an alias or a character of the file)."""
    flat = " ".join(message.split())
    return flat if len(flat) <= most else flat[: most - 3] + "..."


def display(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it. The last part is
    not resolved, so a link is shown by its own name (and a loop of links does not stop the message)."""
    try:
        absolute = Path(os.path.abspath(path))
        return str((absolute.parent.resolve() / absolute.name).relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):
        return str(path)


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB and n % MiB == 0 else f"{n:,} bytes"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def stat_regular(path: Path) -> os.stat_result:
    """The status of `path` if it is (or links to) a regular file, else one line naming it by `display` and saying
    what it is instead: missing, a link to nothing, a loop of links, a folder, a FIFO, a device, a socket. Only
    `stat` is called: nothing is opened, so a FIFO is never waited on."""
    shown = display(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        what = "a link to a missing file" if path.is_symlink() else "file not found"
        raise EstateError.one(shown, 0, "", what) from None
    except OSError as exc:
        what = ("a loop of links: refused" if exc.errno == errno.ELOOP
                else f"cannot read: {exc.strerror or type(exc).__name__}")
        raise EstateError.one(shown, 0, "", what) from None
    if not stat.S_ISREG(st.st_mode):
        kind = _kind(st.st_mode)
        if path.is_symlink() and kind.startswith("a "):
            kind = f"a link to {kind}"
        raise EstateError.one(shown, 0, "", f"{kind}, not a file: refused (not waited on)")
    return st


def read_bytes_bounded(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, else one line naming the file.

    A FIFO, a device, a socket or a folder is refused without opening it for reading (opening a FIFO
    blocks until a writer comes); the open itself is non-blocking and the file checked again after it,
    in case it was swapped in between. The read stops at `limit` + 1 bytes whatever the file claims."""
    shown = display(path)
    st = stat_regular(path)
    if st.st_size > limit:
        raise EstateError.one(shown, 0, "", f"{st.st_size:,} bytes: larger than the {_size(limit)} this file "
                                            "could ever be")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise EstateError.one(shown, 0, "", f"cannot read: {exc.strerror or type(exc).__name__}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise EstateError.one(shown, 0, "", f"{_kind(mode)}, not a file: refused (not waited on)")
        chunks: list[bytes] = []
        got = 0
        while got <= limit:
            chunk = os.read(fd, min(limit + 1 - got, MiB))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except OSError as exc:
        raise EstateError.one(shown, 0, "", f"cannot read: {exc.strerror or type(exc).__name__}") from None
    finally:
        os.close(fd)
    if got > limit:
        raise EstateError.one(shown, 0, "", f"larger than the {_size(limit)} this file could ever be")
    return b"".join(chunks)


def read_text_bounded(path: Path, limit: int, *, encoding: str = "utf-8") -> str:
    """`read_bytes_bounded`, decoded: a byte that is not UTF-8 is one line with its line and offset (never the text)."""
    data = read_bytes_bounded(path, limit)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise EstateError.one(display(path), line, "",
                              f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}") from None


def load(path: Path, limit: int = LIMIT_YAML) -> Sourced:
    """A YAML file, read with `read_text_bounded` and parsed with `parse`."""
    shown = display(path)
    return parse(read_text_bounded(path, limit), shown)


def _reject_constant(name: str) -> Any:
    raise _NotFinite(name)


class _NotFinite(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e309 overflows to inf
        raise _NotFinite(text)
    return value


def parse_json(text: str, shown: str) -> Any:
    """JSON text as data, or one line: a syntax error with its line, NaN/Infinity or a number too large for
    a float (`1e309`), nesting deeper than MAX_DEPTH. Every input JSON (state exports, host facts, history
    lines) goes through here so that no rule ever compares against NaN."""
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise EstateError.one(shown, exc.lineno, "", f"not JSON: {exc.msg} (column {exc.colno})") from None
    except _NotFinite as exc:
        raise EstateError.one(shown, 0, "", f"{shorten(str(exc))} is not a finite number") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise EstateError.one(shown, 0, "", f"not JSON Python can read: {_cut(str(exc))}") from None
    except RecursionError:
        raise EstateError.one(shown, 0, "", f"nested deeper than {MAX_DEPTH} levels") from None
    _check_depth(data, shown)
    return data


def _check_depth(data: Any, shown: str) -> None:
    stack: list[tuple[Any, Loc]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, dict | list):
            if len(loc) >= MAX_DEPTH:
                raise EstateError.one(shown, 0, format_path(loc[:8]) + "...",
                                      f"nested deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((v, (*loc, k)) for k, v in items)


def load_json(path: Path, limit: int = LIMIT_JSON) -> Any:
    """A JSON file (a state export, host facts, a history line's file) read bounded and parsed by `parse_json`."""
    return parse_json(read_text_bounded(path, limit), display(path))


def load_json_list(path: Path, expected: str, limit: int = LIMIT_JSON) -> list[Any]:
    """A JSON file that must hold a list (host facts, `az vm list-usage`): its items, or one line naming the
    file (and the JSON line) and what was wrong. `expected` says what the list should be."""
    data = load_json(path, limit)
    if not isinstance(data, list):
        raise EstateError.one(display(path), 0, "", f"expected {expected}")
    return data

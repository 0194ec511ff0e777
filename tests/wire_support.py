"""Walking and rewriting wire-format inputs (nested dicts and lists) for the tests that sweep every property
of a resource with values of the wrong type (test_compliance_inputs, test_contract)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Path = tuple[str | int, ...]


def paths(node: Any, prefix: Path = (), *, depth: int | None = None, items: int | None = None) -> Iterator[Path]:
    """Every path below `node`, parents first; down to `depth` parts and the first `items` of each list when given."""
    if prefix:
        yield prefix
    if depth is not None and len(prefix) >= depth:
        return
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k), depth=depth, items=items)
    elif isinstance(node, list):
        for i, v in enumerate(node[:items]):
            yield from paths(v, (*prefix, i), depth=depth, items=items)


def replace(node: Any, path: Path, value: Any) -> Any:
    """A copy of `node` with the value at `path` replaced; the rest shared."""
    if not path:
        return value
    if isinstance(node, dict):
        return {k: (replace(v, path[1:], value) if k == path[0] else v) for k, v in node.items()}
    return [replace(v, path[1:], value) if i == path[0] else v for i, v in enumerate(node)]

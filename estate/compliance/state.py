"""Reading `pulumi stack export` JSON: what is deployed, judged by the same rules as the plan.

A stack export is {"version": 3, "deployment": {"resources": [{"urn", "type", "inputs", "outputs",
"parent", ...}]}}. A resource is judged on its inputs overlaid with its outputs (after `pulumi refresh`
the outputs hold what Azure really has: that is the drift). Bad input is one line naming the file and
the field, as an EstateError.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from estate.controls.base import Resource, non_finite, urn_stack
from estate.errors import EstateError, Problem, describe, format_path
from estate.yamlsrc import LIMIT_JSON, display, read_text_bounded


def overlay(inputs: Any, outputs: Any) -> Any:
    """Outputs over inputs, recursively for mappings (outputs win: they are what is deployed)."""
    if isinstance(inputs, Mapping) and isinstance(outputs, Mapping):
        out = dict(inputs)
        for k, v in outputs.items():
            out[k] = overlay(inputs[k], v) if k in inputs else v
        return out
    return inputs if outputs is None else outputs


def refuse_non_finite(data: Any, file: str, line: int = 0, where: tuple[str | int, ...] = ()) -> None:
    """Refuse NaN and infinite numbers anywhere in parsed JSON: Python's json reads NaN, Infinity and 1e309
    (as inf), none of which is JSON (RFC 8259 section 6) or a value any property means; a NaN compares false
    with every threshold, so a rule comparing it would pass."""
    found = non_finite(data, where)
    if found is not None:
        raise EstateError.one(file, line, format_path(found[0]), f"{describe(found[1])} is not a number JSON allows")


def parse_state(text: str, file: str, stacks: Collection[str] | None = None) -> list[Resource]:
    """The resources of one stack export. `stacks`: the stacks of the estate (the hub and each council); a
    resource of any other stack (a typo such as prod-havering) is an error, never dropped."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EstateError.one(file, exc.lineno, "", f"not JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise EstateError.one(file, 0, "", "nested too deeply to be a stack export") from None
    if not isinstance(data, Mapping):
        raise EstateError.one(file, 0, "", "not a stack export: expected a JSON object")
    deployment = data.get("deployment")
    if not isinstance(deployment, Mapping):
        raise EstateError.one(file, 0, "deployment", "missing, or not an object: is this `pulumi stack export` output?")
    items = deployment.get("resources")
    if not isinstance(items, list):
        why = ("expected a list of resources" if items is not None else
               "null: the export holds no resources to judge" if "resources" in deployment else
               "missing: the export holds no resources to judge")
        raise EstateError.one(file, 0, "deployment.resources", why)
    if not items:
        raise EstateError.one(file, 0, "deployment.resources", "empty: the export holds no resources to judge")
    refuse_non_finite(items, file, 0, ("deployment", "resources"))
    out: list[Resource] = []
    problems: list[Problem] = []
    for i, item in enumerate(items):
        where: tuple[str | int, ...] = ("deployment", "resources", i)
        if not isinstance(item, Mapping):
            problems.append(Problem(file, 0, format_path(where), "expected an object"))
            continue
        fields_ok = True
        for key in ("urn", "type"):
            if not isinstance(item.get(key), str) or not item.get(key):
                problems.append(Problem(file, 0, format_path((*where, key)), "missing, or not a string"))
                fields_ok = False
        for key in ("inputs", "outputs"):
            if item.get(key) is not None and not isinstance(item.get(key), Mapping):
                problems.append(Problem(file, 0, format_path((*where, key)), "expected an object"))
                fields_ok = False
        parent = item.get("parent")
        if parent is not None and not isinstance(parent, str):
            problems.append(Problem(file, 0, format_path((*where, "parent")), "expected a URN string"))
            fields_ok = False
        if not fields_ok:
            continue
        urn = str(item["urn"])
        stack = urn_stack(urn)
        if not stack:
            problems.append(Problem(file, 0, format_path((*where, "urn")),
                                    f"{urn!r} is not a URN (urn:pulumi:STACK::PROJECT::TYPE::NAME)"))
            continue
        if stacks is not None and stack not in stacks:
            problems.append(Problem(file, 0, format_path((*where, "urn")),
                                    f"stack {stack!r} is no stack of the estate (known: {', '.join(stacks)})"))
            continue
        inputs = overlay(item.get("inputs") or {}, item.get("outputs") or {})
        out.append(Resource(urn=urn, type=str(item["type"]), name=urn.rsplit("::", 1)[-1], stack=stack,
                            parent=parent, inputs=inputs))
    if problems:
        raise EstateError(problems[:1])  # one line: the first problem
    if all(r.type.startswith("pulumi:") for r in out):
        # the stack resource (and providers) only: no rule has anything to judge, and a pass would be silent
        held = ", ".join(sorted({r.type for r in out}))
        raise EstateError.one(file, 0, "deployment.resources", f"only {held}: the export holds no resources "
                                                               "of the stack, only the stack itself")
    return out


def read_states(paths: Sequence[Path], stacks: Collection[str] | None = None) -> list[Resource]:
    """The resources of one or more stack exports (one per stack: the hub and each council). `stacks`: the
    stacks a resource may belong to (see parse_state)."""
    out: list[Resource] = []
    for path in paths:
        shown = display(path)
        # bounded: a FIFO or device is refused without waiting on it, a file larger than any export could be
        # (LIMIT_JSON) is refused before it is read; one line naming the file
        text = read_text_bounded(path, LIMIT_JSON)
        try:
            out.extend(parse_state(text, shown, stacks))
        except RecursionError:
            raise EstateError.one(shown, 0, "", "nested too deeply to be a stack export") from None
    return out

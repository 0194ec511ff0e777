"""Reading `pulumi stack export` JSON: what is deployed, judged by the same rules as the plan.

A stack export is {"version": 3, "deployment": {"resources": [{"urn", "type", "inputs", "outputs",
"parent", ...}]}}. A resource is judged on its inputs overlaid with its outputs (after `pulumi refresh`
the outputs hold what Azure really has: that is the drift). Bad input is one line naming the file and
the field, as an EstateError.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from estate.compliance.base import Resource, urn_stack
from estate.errors import EstateError, Problem, format_path
from estate.yamlsrc import display


def overlay(inputs: Any, outputs: Any) -> Any:
    """Outputs over inputs, recursively for mappings (outputs win: they are what is deployed)."""
    if isinstance(inputs, Mapping) and isinstance(outputs, Mapping):
        out = dict(inputs)
        for k, v in outputs.items():
            out[k] = overlay(inputs[k], v) if k in inputs else v
        return out
    return inputs if outputs is None else outputs


def parse_state(text: str, file: str) -> list[Resource]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EstateError.one(file, exc.lineno, "", f"not JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, Mapping):
        raise EstateError.one(file, 0, "", "not a stack export: expected a JSON object")
    deployment = data.get("deployment")
    if not isinstance(deployment, Mapping):
        raise EstateError.one(file, 0, "deployment", "missing, or not an object: is this `pulumi stack export` output?")
    items = deployment.get("resources", [])
    if items is None:
        items = []
    if not isinstance(items, list):
        raise EstateError.one(file, 0, "deployment.resources", "expected a list of resources")
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
        inputs = overlay(item.get("inputs") or {}, item.get("outputs") or {})
        out.append(Resource(urn=urn, type=str(item["type"]), name=urn.rsplit("::", 1)[-1], stack=stack,
                            parent=parent, inputs=inputs))
    if problems:
        raise EstateError(problems[:1])  # one line: the first problem
    return out


def read_states(paths: Sequence[Path]) -> list[Resource]:
    """The resources of one or more stack exports (one per stack: the hub and each council)."""
    out: list[Resource] = []
    for path in paths:
        shown = display(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise EstateError.one(shown, 0, "", "file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise EstateError.one(shown, 0, "", f"cannot read: {exc}") from None
        out.extend(parse_state(text, shown))
    return out

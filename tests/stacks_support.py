"""Helpers for the stacks tests: the repo's plan (once per test process) and readers of planned inputs."""

from __future__ import annotations

import importlib
import inspect
import math
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from estate.loader import Estate, load_estate
from estate.plan import Plan, PlannedResource, plan

REPO = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def repo_estate() -> Estate:
    return load_estate(REPO)


@lru_cache(maxsize=1)
def repo_plan() -> Plan:
    """The hub and the three example councils, planned once per test process (in process, one worker)."""
    return plan(repo_estate(), workers=1)


def only(resources: list[PlannedResource], name: str) -> PlannedResource:
    found = [r for r in resources if r.name == name]
    assert len(found) == 1, f"{name}: {len(found)} resources"
    return found[0]


def azure_class(token: str) -> type:
    """The azure-native resource class of a type token: azure-native:network:Subnet -> network.Subnet."""
    _, module, name = token.split(":")
    return getattr(importlib.import_module(f"pulumi_azure_native.{module}"), name)  # type: ignore[no-any-return]


def resource_parameters(token: str) -> set[str]:
    cls = azure_class(token)
    return {p for p in inspect.signature(cls._internal_init).parameters  # type: ignore[attr-defined]
            if p not in ("__self__", "resource_name", "opts", "__props__")}


def squash(name: str) -> str:
    """Python and wire spellings of one property compare equal: public_ip_address ~ publicIPAddress."""
    return name.replace("_", "").lower()


def prefixes(rule: dict[str, Any], side: str) -> frozenset[str]:
    """An NSG rule's source or destination prefixes, whichever of the singular/plural fields it uses."""
    plural = rule.get(f"{side}AddressPrefixes")
    return frozenset(plural) if plural else frozenset([rule[f"{side}AddressPrefix"]])


def ports(rule: dict[str, Any]) -> frozenset[str]:
    plural = rule.get("destinationPortRanges")
    return frozenset(plural) if plural else frozenset([rule["destinationPortRange"]])


def expected_session_hosts(desktop_users: int, concurrency: float, max_sessions: int) -> int:
    """Written out here independently of stacks.props: concurrent users, rounded up, over sessions per host."""
    concurrent = math.ceil(Fraction(str(concurrency)) * desktop_users)  # exact: 2750 x 0.6 is 1650, not 1650.0001
    return math.ceil(Fraction(concurrent, max_sessions))


def typed_argument_problems(folder: Path) -> list[str]:
    """Every call into azure-native in the program's source, checked against azure-native's signatures:
    resources take a name and one typed `*Args` object (plus opts); every keyword of an `*Args` class or
    function exists; no dict literal stands where an `*Args` type is expected (under mocks a dict with a
    misspelt key would pass unnoticed). Returns one line per problem."""
    import ast

    import pulumi

    problems: list[str] = []
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update({a.asname or a.name: a.name for a in node.names
                                if a.name.startswith("pulumi_azure_native")})
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in modules):
                continue
            where = f"{path.name}:{node.lineno}: {node.func.value.id}.{node.func.attr}"
            target = getattr(importlib.import_module(modules[node.func.value.id]), node.func.attr, None)
            if target is None:
                problems.append(f"{where}: no such class or function")
                continue
            if isinstance(target, type) and issubclass(target, pulumi.Resource):
                typed = (len(node.args) == 2 and isinstance(node.args[1], ast.Call)
                         and isinstance(node.args[1].func, ast.Attribute) and node.args[1].func.attr.endswith("Args"))
                if not typed or any(k.arg != "opts" for k in node.keywords):
                    problems.append(f"{where}: a resource takes its name and one typed *Args object")
                continue
            signature = inspect.signature(target)
            for keyword in node.keywords:
                if keyword.arg is None:
                    problems.append(f"{where}: **kwargs hide the argument names")
                elif keyword.arg not in signature.parameters:
                    problems.append(f"{where}: no argument {keyword.arg!r}")
                elif isinstance(keyword.value, ast.Dict) and "Args" in str(
                        signature.parameters[keyword.arg].annotation):
                    problems.append(f"{where}: {keyword.arg}= is a dict literal, not a typed *Args object")
            if node.args and isinstance(target, type) and target.__name__.endswith("Args"):
                problems.append(f"{where}: *Args classes take keywords only")
    return problems

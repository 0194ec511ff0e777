"""Every resource is built from typed azure-native arguments, so a misspelt argument fails: statically (the
program's source checked against azure-native's signatures) and when the program runs (TypeError)."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from estate.loader import Estate
from estate.plan import plan
from tests.stacks_support import REPO, repo_estate, repo_plan, resource_parameters, squash, typed_argument_problems

STACKS = REPO / "stacks"

# (file, correct text, misspelt text, the misspelt keyword): a top-level resource argument, a nested *Args
# field, and an argument of a desktop resource.
MISSPELLINGS = [
    ("network.py", "address_prefix=spec.prefix,", "adress_prefix=spec.prefix,", "adress_prefix"),
    ("network.py", "destination_port_ranges=None if any_port", "destination_ports_ranges=None if any_port",
     "destination_ports_ranges"),
    ("desktop.py", "max_session_limit=d.max_sessions,", "max_sessions_limit=d.max_sessions,", "max_sessions_limit"),
]


def test_the_program_uses_only_typed_arguments_azure_native_knows() -> None:
    assert typed_argument_problems(STACKS) == []


def test_every_planned_input_is_an_argument_of_its_resource_class() -> None:
    for r in repo_plan().resources:
        if r.custom:
            known = {squash(p) for p in resource_parameters(r.type)}
            unknown = [k for k in r.inputs if squash(k) not in known]
            assert unknown == [], f"{r.type} {r.name}: {unknown}"


def _mutant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file: str, right: str, wrong: str) -> Path:
    package = tmp_path / "stacks_misspelt"
    shutil.copytree(STACKS, package, ignore=shutil.ignore_patterns("__pycache__", "__main__.py"))
    source = (package / file).read_text()
    assert source.count(right) == 1, f"{file} no longer holds {right!r}: update this test"
    (package / file).write_text(source.replace(right, wrong))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("stacks_misspelt")]:
        monkeypatch.delitem(sys.modules, name)
    return package


@pytest.mark.parametrize(("file", "right", "wrong", "keyword"), MISSPELLINGS)
def test_a_misspelt_argument_fails_the_check_and_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          file: str, right: str, wrong: str, keyword: str) -> None:
    package = _mutant(tmp_path, monkeypatch, file, right, wrong)
    problems = typed_argument_problems(package)
    assert len(problems) == 1 and f"no argument {keyword!r}" in problems[0] and problems[0].startswith(file)

    program_module = importlib.import_module("stacks_misspelt.program")

    def program(estate: Estate, stack: str) -> dict[str, Any]:
        return program_module.run(estate, stack, program_module.read_config(stack))  # type: ignore[no-any-return]

    with pytest.raises(TypeError, match=keyword):
        plan(repo_estate(), ["newham"], program=program, workers=1)


def test_the_checker_rejects_dict_literals_and_untyped_resources(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "import pulumi_azure_native.network as network\n"
        "network.VirtualNetwork('v', resource_group_name='rg')\n"
        "network.SubnetInitArgs(network_security_group={'id': 'x'}, subnet_name='s')\n"
        "network.RouteArgs('r')\n"
    )
    problems = typed_argument_problems(tmp_path)
    assert problems == [
        "bad.py:2: network.VirtualNetwork: a resource takes its name and one typed *Args object",
        "bad.py:3: network.SubnetInitArgs: network_security_group= is a dict literal, not a typed *Args object",
        "bad.py:4: network.RouteArgs: *Args classes take keywords only",
    ]

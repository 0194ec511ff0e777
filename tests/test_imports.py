"""Imports flow one way (spec -> library -> stacks / policies / roles / compliance -> reports -> CLI): the
import-linter contract in pyproject.toml holds, names every module of estate, and catches an upward import,
at module level or hidden in a function; and no module outside the CLI hides an import in a function."""

from __future__ import annotations

import ast
import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import estate

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

# Function-level imports of the project's own modules left outside the CLI, each pointing down its layer: the
# report formats are imported when their format is asked for (matplotlib and jinja2 only for HTML).
LAZY_OUTSIDE_CLI = {
    "estate/reports/__init__.py",
    "estate/reports/sarif.py",
}
# Imports in code on its way out (issue 14), each only until it has moved: the loader's exemption check reading
# the rule catalogue (pyproject.toml's ignore_imports says the same).
LEAVING = {("estate/loader.py", "estate.compliance.catalogue")}


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, check=False,
                          timeout=300)


def _layer_names() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    return [name.strip() for contract in contracts for layer in contract["layers"]
            for name in layer.replace(":", "|").split("|")]


def _layers() -> list[str]:
    return [name.strip("()") for name in _layer_names()]


def _optional() -> set[str]:
    """Layers written `(module)`: import-linter lets them be absent (a module landing with its own change)."""
    return {name.strip("()") for name in _layer_names() if name.startswith("(")}


def test_the_contract_holds() -> None:
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 1 kept, 0 broken." in done.stdout


def test_every_module_of_estate_is_in_a_layer() -> None:
    named = set(_layers())
    modules = {f"estate.{info.name}" for info in pkgutil.iter_modules(estate.__path__)}
    assert modules - named == set()
    assert named - modules <= {"stacks", "policies"} | _optional()


def _copy(tmp_path: Path) -> Path:
    """The project's Python (estate, stacks, policies) and its pyproject.toml, for lint-imports to read."""
    for package in ("estate", "stacks", "policies"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(("module", "line", "broken"), [
    # the models (a bottom layer) reading the reports' palette (near the top)
    ("estate/models.py", "from estate.reports import palette\n",
     "estate.models is not allowed to import estate.reports"),
    # the loader running a compliance check, the import hidden in a function
    ("estate/loader.py", "def _hidden() -> None:\n    from estate.compliance import evaluate\n",
     "estate.loader is not allowed to import estate.compliance"),
    # a producer reaching up to the CLI
    ("estate/plan.py", "from estate.cli_common import guarded\n",
     "estate.plan is not allowed to import estate.cli_common"),
])
def test_the_contract_catches_an_upward_import(tmp_path: Path, module: str, line: str, broken: str) -> None:
    root = _copy(tmp_path)
    assert _lint(root).returncode == 0
    target = root / module
    target.write_text(target.read_text(encoding="utf-8") + "\n\n" + line, encoding="utf-8")
    done = _lint(root)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Contracts: 0 kept, 1 broken." in done.stdout
    assert broken in done.stdout


def _hidden_imports(path: Path) -> list[tuple[int, str]]:
    """`import estate...` / `from stacks...` inside a function, with its line (TYPE_CHECKING blocks are module
    level)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    names = [a.name for a in inner.names]
                elif isinstance(inner, ast.ImportFrom) and inner.level == 0:
                    names = [inner.module or ""]
                else:
                    continue
                found += [(inner.lineno, n) for n in names if n.split(".")[0] in ("estate", "stacks")]
    return found


def test_no_module_outside_the_cli_hides_an_import_in_a_function() -> None:
    hidden = {}
    for path in sorted([*REPO.glob("estate/**/*.py"), *REPO.glob("stacks/**/*.py"), *REPO.glob("policies/*.py")]):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith("estate/cli") or rel in LAZY_OUTSIDE_CLI:
            continue
        lines = [(line, name) for line, name in _hidden_imports(path) if (rel, name) not in LEAVING]
        if lines:
            hidden[rel] = lines
    assert hidden == {}

"""The CI templates councils copy (ci-templates/) and the pre-commit hooks (.pre-commit-hooks.yaml).

Each template is validated against the schema check-jsonschema ships for it (offline: `--builtin-schema
vendor.github-workflows` / `vendor.gitlab-ci`, the SchemaStore schemas vendored in the package), then run: its shell
steps, in order, in a copy of the estate, the way the runner runs them, with the project's venv standing in for the
cached one (the cache-hit path); the reports they write are checked (SARIF against the 2.1.0 schema, JUnit as XML
with test cases), and the upload steps, which only a runner can execute, are checked to point at those files and to
run after a failed step. The hooks are run through `pre-commit try-repo` on a clone of this repository at HEAD.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from estate.loader import load_estate

REPO = Path(__file__).resolve().parent.parent
GITHUB = REPO / "ci-templates" / "github" / "estate-compliance.yml"
GITLAB = REPO / "ci-templates" / "gitlab" / "estate-compliance.gitlab-ci.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
SARIF_SCHEMA = REPO / "tests" / "data" / "sarif-schema-2.1.0.json"
VENV = Path(sys.prefix)  # the project's venv, which runs these tests
BIN = VENV / "bin"
# How GitHub runs a `run:` step under `shell: bash` (the workflow's default):
# https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax#jobsjob_idstepsshell
GITHUB_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
# GitLab Runner runs before_script and script as one bash script under `set -eo pipefail` (its shells/bash.go;
# gitlab-org/gitlab-runner#25394): the first failing command ends the job with its exit code.
GITLAB_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
SHA_PIN = re.compile(r"^\s*(?:-\s+)?uses:\s+(\S+)@([0-9a-f]{40})\s+#\s+v\d+\.\d+\.\d+\s*$")


# --- helpers -----------------------------------------------------------------------------------------------------

def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema from the venv, against one of its built-in (vendored, offline) schemas."""
    return subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120, check=False)


def base_path() -> str:
    """PATH without the venv: the templates must put their own venv's bin on it."""
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and Path(p).resolve() != BIN.resolve())


def option(command: str, name: str) -> str:
    """The value of `name VALUE` in a shell command line."""
    words = command.split()
    return words[words.index(name) + 1]


def estate_commands(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if re.match(r"\s*estate\s", line)]


def check_outputs(commands: list[str]) -> dict[str, str]:
    """format -> --output path of each `estate check` command."""
    return {option(c, "--format"): option(c, "--output") for c in commands if c.startswith("estate check")}


def assert_sarif(path: Path) -> dict[str, Any]:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    errors = sorted(jsonschema.validators.validator_for(schema)(schema).iter_errors(doc), key=str)
    assert errors == []
    assert doc["version"] == "2.1.0"
    results = doc["runs"][0]["results"]
    assert results and any(r["level"] == "error" for r in results)  # the example estate fails mandatory rules
    return doc


def assert_junit(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    cases = root.findall(".//testcase")
    assert cases, "no test cases"
    assert any(case.find("failure") is not None for case in cases)
    assert all(case.get("name") and case.get("classname") for case in cases)
    return root


@pytest.fixture
def tree(repo_copy: Path) -> Path:
    """A council's checkout: the estate's inputs, the stack files, the schemas and pyproject.toml, with the
    project's venv as `.venv` (what a restored cache holds)."""
    for path in [*REPO.glob("Pulumi*.yaml"), *REPO.glob("*.schema.json"), REPO / "pyproject.toml"]:
        shutil.copy(path, repo_copy / path.name)
    (repo_copy / ".venv").symlink_to(VENV, target_is_directory=True)
    return repo_copy


def break_a_block(root: Path) -> tuple[str, int]:
    """Give the second council the first one's address block: `estate validate` refuses it with one line.
    Returns (the council file, the block's line)."""
    estate = load_estate(root)
    first, second = list(estate.councils)[:2]
    council_file = root / "inventories" / second / "council.yml"
    lines = council_file.read_text(encoding="utf-8").splitlines(keepends=True)
    line = next(i for i, text in enumerate(lines, 1) if text.startswith("block:"))
    lines[line - 1] = f"block: {estate.councils[first].council.block}\n"
    council_file.write_text("".join(lines), encoding="utf-8")
    return f"inventories/{second}/council.yml", line


# --- GitHub Actions -------------------------------------------------------------------------------------------------

def github_job() -> dict[str, Any]:
    jobs = load(GITHUB)["jobs"]
    assert list(jobs) == ["compliance"]
    job = jobs["compliance"]
    assert isinstance(job, dict)
    return job


def run_github_steps(tree: Path) -> tuple[list[tuple[str, subprocess.CompletedProcess[str]]], list[dict[str, Any]]]:
    """Run the job's `run:` steps in order as the runner does: each as a bash script, stopping at the first failing
    one (a step with no `if:` runs only while all before it succeeded); a line a step appends to $GITHUB_PATH is on
    PATH for the steps after it. Returns the steps run, each with its process, and the step list."""
    job = github_job()
    steps = job["steps"]
    github_path = tree.parent / "github_path"
    github_path.write_text("", encoding="utf-8")
    ran = []
    for i, step in enumerate(steps):
        if "run" not in step:
            continue
        assert "if" not in step, f"step {step['name']!r}: a run step here runs only after all before it succeeded"
        assert "${{" not in step["run"], "an expression the runner would substitute"
        script = tree.parent / f"step{i}.sh"
        script.write_text(step["run"], encoding="utf-8")
        added = [p for p in github_path.read_text(encoding="utf-8").splitlines() if p]
        env = {**os.environ, "GITHUB_PATH": str(github_path),
               "PATH": os.pathsep.join([*reversed(added), base_path()])}
        env.pop("ESTATE_ROOT", None)
        proc = subprocess.run([*GITHUB_BASH, str(script)], cwd=tree, env=env, capture_output=True, text=True,
                              timeout=600, check=False)
        ran.append((step["name"], proc))
        if proc.returncode != 0:
            break
    return ran, steps


def test_github_workflow_matches_the_github_workflow_schema() -> None:
    result = check_jsonschema("vendor.github-workflows", GITHUB)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_github_workflow_schema_catches_a_broken_workflow(tmp_path: Path) -> None:
    doc = load(GITHUB)
    del doc["jobs"]["compliance"]["runs-on"]
    doc["jobs"]["compliance"]["steps"][0]["run"] = "echo both uses and run"
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = check_jsonschema("vendor.github-workflows", broken)
    assert result.returncode == 1
    assert "runs-on" in result.stdout


def test_github_actions_are_pinned_by_full_commit_sha() -> None:
    uses = [line for line in GITHUB.read_text(encoding="utf-8").splitlines() if re.match(r"\s*(-\s+)?uses:", line)]
    assert len(uses) == len([s for s in github_job()["steps"] if "uses" in s]) == 6
    for line in uses:
        assert SHA_PIN.match(line), f"not pinned by a full SHA with its tag: {line.strip()}"


def test_github_job_has_what_uploading_sarif_needs_and_python_3_11() -> None:
    job = github_job()
    assert job["permissions"] == {"contents": "read", "security-events": "write"}
    assert load(GITHUB)["permissions"] == {"contents": "read"}
    steps = {s["uses"].split("@")[0]: s for s in job["steps"] if "uses" in s}
    assert steps["actions/setup-python"]["with"]["python-version"] == "3.11"


def test_github_venv_cache_is_keyed_on_pyproject_and_saved_even_when_the_job_fails() -> None:
    steps = github_job()["steps"]
    by_action = {s["uses"].split("@")[0]: (i, s) for i, s in enumerate(steps) if "uses" in s}
    i_restore, restore = by_action["actions/cache/restore"]
    i_save, save = by_action["actions/cache/save"]
    install = next(i for i, s in enumerate(steps) if "run" in s and "pip install" in s["run"])
    assert i_restore < install < i_save < next(i for i, s in enumerate(steps) if "estate check" in s.get("run", ""))
    assert restore["with"]["path"] == save["with"]["path"] == ".venv"
    assert "hashFiles('pyproject.toml')" in restore["with"]["key"]
    assert "steps.python.outputs.python-version" in restore["with"]["key"]
    assert save["with"]["key"] == f"${{{{ steps.{restore['id']}.outputs.cache-primary-key }}}}"
    assert save["if"] == f"steps.{restore['id']}.outputs.cache-hit != 'true'"
    assert "pip install --quiet --disable-pip-version-check -e ." in steps[install]["run"]


def test_github_steps_run_report_and_fail_and_the_uploads_take_their_files(tree: Path) -> None:
    ran, steps = run_github_steps(tree)
    names = [name for name, _ in ran]
    *passed, (last, check) = ran
    assert all(proc.returncode == 0 for _, proc in passed), [(n, p.stderr) for n, p in passed]
    assert len(ran) == len([s for s in steps if "run" in s]), f"stopped early at {last!r}"
    assert "valid" in dict(ran)[names[1]].stdout  # estate validate, found on PATH through $GITHUB_PATH
    # The example estate fails mandatory rules: the check step fails, after writing both reports.
    assert check.returncode == 1, check.stderr
    commands = estate_commands(next(s["run"] for s in steps if s.get("name") == last))
    outputs = check_outputs(commands)
    assert set(outputs) == {"sarif", "junit"}
    assert all("--plan" in c.split() for c in commands)
    assert_sarif(tree / outputs["sarif"])
    assert_junit(tree / outputs["junit"])
    uploads = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    sarif = uploads["github/codeql-action/upload-sarif"]
    assert sarif["with"]["sarif_file"] == outputs["sarif"]
    assert sarif["if"] == f"${{{{ !cancelled() && hashFiles('{outputs['sarif']}') != '' }}}}"
    artifact = uploads["actions/upload-artifact"]
    assert artifact["with"]["path"].split() == [outputs["sarif"], outputs["junit"]]
    assert artifact["if"] == "${{ !cancelled() }}"
    order = [s.get("name") for s in steps]
    assert order.index(last) < order.index(sarif["name"]) and order.index(last) < order.index(artifact["name"])


def test_github_steps_stop_at_a_broken_council_with_its_one_line(tree: Path) -> None:
    shown, line = break_a_block(tree)
    ran, _ = run_github_steps(tree)
    (_, install), (_, validate) = ran
    assert install.returncode == 0
    assert validate.returncode == 2
    errors = validate.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"{shown}:{line}: block: ")
    assert not (tree / "reports").exists()  # so the SARIF upload's hashFiles() guard skips it


# --- GitLab CI ----------------------------------------------------------------------------------------------------

def gitlab_job() -> dict[str, Any]:
    doc = load(GITLAB)
    job = doc["estate-compliance"]
    assert isinstance(job, dict)
    assert job["stage"] in doc["stages"]
    return job


def run_gitlab_job(tree: Path) -> subprocess.CompletedProcess[str]:
    """before_script then script, one bash script under -eo pipefail, in the project folder."""
    job = gitlab_job()
    lines = [*job["before_script"], *job["script"]]
    assert not any("$CI_" in line and "$CI_PROJECT_DIR" not in line for line in lines)
    script = tree.parent / "gitlab.sh"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, "CI_PROJECT_DIR": str(tree), "PATH": base_path()}
    env.pop("ESTATE_ROOT", None)
    return subprocess.run([*GITLAB_BASH, str(script)], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def test_gitlab_job_matches_the_gitlab_ci_schema() -> None:
    result = check_jsonschema("vendor.gitlab-ci", GITLAB)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_gitlab_ci_schema_catches_a_broken_job(tmp_path: Path) -> None:
    doc = load(GITLAB)
    doc["estate-compliance"]["artifacts"]["when"] = "sometimes"
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = check_jsonschema("vendor.gitlab-ci", broken)
    assert result.returncode == 1
    assert "sometimes" in result.stdout


def test_gitlab_job_uses_python_3_11_and_caches_the_venv_on_pyproject() -> None:
    job = gitlab_job()
    assert job["image"].startswith("python:3.11-")
    cache = job["cache"]
    assert cache["key"]["files"] == ["pyproject.toml"]
    assert cache["paths"] == [".venv/"]
    assert cache["when"] == "always"  # the job fails whenever a mandatory rule does: keep the venv anyway
    assert "pip install --quiet --disable-pip-version-check -e ." in job["before_script"][0]


def test_gitlab_script_runs_reports_and_fails_and_publishes_junit(tree: Path) -> None:
    job = gitlab_job()
    proc = run_gitlab_job(tree)
    assert proc.returncode == 1, proc.stderr  # the example estate fails mandatory rules
    assert "valid" in proc.stdout
    commands = estate_commands("\n".join(job["script"]))
    assert commands[0] == "estate validate"
    outputs = check_outputs(commands)
    assert set(outputs) == {"sarif", "junit"}
    assert_sarif(tree / outputs["sarif"])
    assert_junit(tree / outputs["junit"])
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["reports"]["junit"] == outputs["junit"]
    assert artifacts["paths"] == [outputs["sarif"], outputs["junit"]]


def test_gitlab_script_stops_at_a_broken_council_with_its_one_line(tree: Path) -> None:
    shown, line = break_a_block(tree)
    proc = run_gitlab_job(tree)
    assert proc.returncode == 2
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"{shown}:{line}: block: ")
    assert not (tree / "reports").exists()


# --- pre-commit hooks ---------------------------------------------------------------------------------------------

HOOK_IDS = ("estate-validate", "estate-schema-check")


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of this repository at HEAD: what a council's .pre-commit-config.yaml points at."""
    clone = tmp_path_factory.mktemp("hooks") / "shared-estate"
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(REPO), str(clone)], check=True, timeout=300)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", "HEAD"], check=True, timeout=300)
    return clone


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=estate", "-c", "user.email=estate@example.invalid",
                    *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def council_repo(tree: Path) -> Path:
    """A council's git repository holding a copy of the estate, every file committed."""
    (tree / ".venv").unlink()
    (tree / "README.md").write_text("a council's estate\n", encoding="utf-8")
    git(tree, "init", "--quiet")
    git(tree, "add", ".")
    git(tree, "commit", "--quiet", "-m", "the estate")
    return tree


def try_repo(council_repo: Path, hook_repo: Path, hook: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(council_repo.parent / "pre-commit-home"),
           "PATH": os.pathsep.join([str(BIN), base_path()])}
    env.pop("ESTATE_ROOT", None)
    return subprocess.run([str(BIN / "pre-commit"), "try-repo", str(hook_repo), hook, *args], cwd=council_repo,
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def test_hooks_offer_validate_and_schema_check_on_the_installed_project() -> None:
    hooks = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    assert [h["id"] for h in hooks] == list(HOOK_IDS)
    assert [h["entry"] for h in hooks] == ["estate validate", "estate schema --check"]
    for hook in hooks:
        assert hook["language"] == "unsupported"  # no environment of its own: the estate on PATH
        assert hook["pass_filenames"] is False
        pattern = re.compile(hook["files"])
        for path in ("framework.yaml", "inventories/any/council.yml", "inventories/any/hosts.yml"):
            assert pattern.search(path), (hook["id"], path)
        for path in ("README.md", "docs/framework.yaml.md", "roles/x/inventories/y.yml", "stacks/network.py"):
            assert not pattern.search(path), (hook["id"], path)


@pytest.mark.parametrize("hook", HOOK_IDS)
def test_hook_passes_on_the_estate(council_repo: Path, hook_repo: Path, hook: str) -> None:
    proc = try_repo(council_repo, hook_repo, hook, "--all-files")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    name = next(h["name"] for h in yaml.safe_load(HOOKS.read_text(encoding="utf-8")) if h["id"] == hook)
    assert re.search(rf"^{re.escape(name)}\.+Passed$", proc.stdout, re.MULTILINE)


def test_validate_hook_fails_on_a_broken_council_with_its_one_line(council_repo: Path, hook_repo: Path) -> None:
    shown, line = break_a_block(council_repo)
    proc = try_repo(council_repo, hook_repo, "estate-validate", "--all-files")
    assert proc.returncode == 1
    assert "estate validate" in proc.stdout and "Failed" in proc.stdout and "exit code: 2" in proc.stdout
    errors = [text for text in proc.stdout.splitlines() if text.startswith("inventories/")]
    assert len(errors) == 1 and errors[0].startswith(f"{shown}:{line}: block: ")


def test_schema_check_hook_fails_on_a_stale_schema(council_repo: Path, hook_repo: Path) -> None:
    (council_repo / "council.schema.json").write_text("{}\n", encoding="utf-8")
    proc = try_repo(council_repo, hook_repo, "estate-schema-check", "--all-files")
    assert proc.returncode == 1
    assert "out of date: council.schema.json" in proc.stdout


def test_hooks_run_only_when_the_estate_changes(council_repo: Path, hook_repo: Path) -> None:
    (council_repo / "README.md").write_text("a change elsewhere\n", encoding="utf-8")
    git(council_repo, "add", "README.md")
    proc = try_repo(council_repo, hook_repo, "estate-validate")
    assert proc.returncode == 0, proc.stdout
    assert re.search(r"estate validate\.+\(no files to check\)Skipped", proc.stdout)
    shown, _ = break_a_block(council_repo)
    git(council_repo, "add", shown)
    proc = try_repo(council_repo, hook_repo, "estate-validate")
    assert proc.returncode == 1
    assert f"{shown}:" in proc.stdout

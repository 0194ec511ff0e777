"""Pulumi stack files are checked, not ignored: every refusal is one line `FILE:LINE: key: message`, exit 2, from
`estate validate` and before the offline plan declares anything; and the program refuses the same under the
Pulumi CLI (the config the engine hands it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from estate.cli import app
from estate.errors import EstateError
from estate.loader import load_estate
from estate.plan import PLAN_SECRET, plan, stack_config
from tests.stacks_support import REPO

runner = CliRunner()
NEWHAM = "Pulumi.newham.yaml"
GOOD = "config:\n  azure-native:location: uksouth\n  shared-estate:council: newham\n"


@pytest.fixture
def repo(repo_copy: Path) -> Path:
    for path in REPO.glob("Pulumi*.yaml"):
        shutil.copy(path, repo_copy / path.name)
    return repo_copy


def _write(repo: Path, name: str, text: str | bytes) -> None:
    path = repo / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def _refused(repo: Path) -> str:
    result = runner.invoke(app, ["validate", "--root", str(repo)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_the_repo_s_stack_files_are_valid(repo: Path) -> None:
    result = runner.invoke(app, ["validate", "--root", str(repo)])
    assert result.exit_code == 0, result.output
    assert "3 councils valid; 4 stack files valid" in result.output


@pytest.mark.parametrize(("text", "expected"), [
    # a typo leaves the real key unset: an error, not a silent no-op
    (GOOD + "  shared-estate:adminGroupObjectID: 0b5c5a8e-0000-4000-8000-000000000000\n",
     "Pulumi.newham.yaml:4: shared-estate:adminGroupObjectID: not a key the stacks read"),
    (GOOD + "  desktopUsersGroup: x\n", "Pulumi.newham.yaml:4: shared-estate:desktopUsersGroup: not a key"),
    (GOOD + "  aws:region: eu-west-2\n", "Pulumi.newham.yaml:4: aws:region: not a key the stacks read"),
    (GOOD + "  azure-native:locaton: uksouth\n", "azure-native:locaton: not an azure-native provider setting"),
    # a key only the hub reads
    (GOOD + "  shared-estate:spokes: [newham]\n", "shared-estate:spokes: read only by the hub stacks"),
    # a secret in clear text: the pointer to `pulumi config set --secret`
    (GOOD + "  azure-native:clientSecret: hunter2-in-git\n",
     "Pulumi.newham.yaml:4: azure-native:clientSecret: a secret in clear text: store it encrypted "
     "(pulumi config set --secret clientSecret)"),
    # the retired per-council session host password, in clear text or not
    (GOOD + "  shared-estate:sessionHostAdminPassword: Passw0rd!\n",
     "shared-estate:sessionHostAdminPassword: no longer read: each session host gets its own generated password"),
    (GOOD + "  sessionHostAdminPassword:\n    secure: AAABAJx1\n", "sessionHostAdminPassword: no longer read"),
    # an integer key, a list where one value is meant, an unknown top-level setting
    (GOOD + "  12: x\n", "Pulumi.newham.yaml:4: config.12: 12 is not a config key"),
    (GOOD.replace("uksouth", "[uksouth, ukwest]"), "Pulumi.newham.yaml:2: azure-native:location: expected a "
                                                   "single value, not list"),
    ("conifg:\n  azure-native:location: uksouth\n", "Pulumi.newham.yaml:1: conifg: not a stack file setting"),
    ("config: [a, b]\n", "Pulumi.newham.yaml:1: config: expected a mapping of config keys"),
    # YAML errors: one line, not PyYAML's paragraph
    (GOOD + "  council: [newham\n", "Pulumi.newham.yaml:5: YAML syntax"),
    (b"config:\n  azure-native:location: uk\xffsouth\n", "Pulumi.newham.yaml:2: not UTF-8 (byte 0xff)"),
], ids=["typo", "bare-typo", "other-provider", "provider-typo", "hub-key", "clear-secret", "retired-password",
        "retired-secure", "integer-key", "list-value", "top-typo", "config-list", "yaml-syntax", "not-utf8"])
def test_a_bad_stack_file_is_one_line_and_exit_2(repo: Path, text: str | bytes, expected: str) -> None:
    _write(repo, NEWHAM, text)
    assert expected in _refused(repo)
    # the offline plan refuses the same file before declaring anything
    with pytest.raises(EstateError) as caught:
        stack_config(load_estate(repo), "newham")
    assert expected in str(caught.value.problems[0])


def test_an_encrypted_value_is_accepted_and_planned_with_a_stand_in(repo: Path) -> None:
    _write(repo, NEWHAM, GOOD + "  azure-native:clientSecret:\n    secure: AAABAJx1c2VjcmV0\n")
    result = runner.invoke(app, ["validate", "--root", str(repo)])
    assert result.exit_code == 0, result.output
    assert stack_config(load_estate(repo), "newham")["azure-native:clientSecret"] == PLAN_SECRET


def test_every_problem_of_a_file_is_listed(repo: Path) -> None:
    _write(repo, NEWHAM, GOOD + "  adminGroupObjectID: x\n  azure-native:clientSecret: y\n")
    result = runner.invoke(app, ["validate", "--root", str(repo)])
    assert result.exit_code == 2
    assert [line.split(": ")[1] for line in result.output.strip().splitlines()] == [
        "shared-estate:adminGroupObjectID", "azure-native:clientSecret"]


@pytest.mark.parametrize("kind", ["directory", "fifo", "dangling-link"])
def test_something_else_where_a_stack_file_should_be_is_refused(repo: Path, kind: str) -> None:
    path = repo / NEWHAM
    path.unlink()
    makers: dict[str, Callable[[], None]] = {
        "directory": path.mkdir,
        "fifo": lambda: os.mkfifo(path),  # never opened: a FIFO would block the reader
        "dangling-link": lambda: path.symlink_to(repo / "nowhere.yaml"),
    }
    makers[kind]()
    line = _refused(repo)
    assert line.startswith("Pulumi.newham.yaml: ")
    assert {"directory": "a directory where", "fifo": "not a regular file",
            "dangling-link": "a link that leads nowhere"}[kind] in line
    with pytest.raises(EstateError):
        plan(load_estate(repo), ["newham"], workers=1)


def test_a_stack_file_for_no_known_stack_is_refused(repo: Path) -> None:
    _write(repo, "Pulumi.prod-havering.yaml", GOOD)
    assert _refused(repo) == ("Pulumi.prod-havering.yaml: stack 'prod-havering' is neither the hub (shared) nor a "
                              "council in inventories/")


def test_the_hub_s_spokes_must_be_councils(repo: Path) -> None:
    _write(repo, "Pulumi.shared.yaml", "config:\n  azure-native:location: uksouth\n"
                                       "  shared-estate:spokes: [newham, havring]\n")
    assert _refused(repo) == ("Pulumi.shared.yaml:3: shared-estate:spokes[1]: 'havring' is not a council in "
                              "inventories/")
    _write(repo, "Pulumi.shared.yaml", "config:\n  shared-estate:spokes: newham\n")
    assert _refused(repo) == "Pulumi.shared.yaml:2: shared-estate:spokes: expected a list of council keys"


def test_a_huge_stack_file_is_refused_without_reading_it(repo: Path) -> None:
    _write(repo, NEWHAM, GOOD + "#" * (1 << 20) + "\n")
    assert "larger than a stack file can be (65536 bytes at most)" in _refused(repo)


# ---- under the Pulumi CLI: the config the engine hands the program ---------------------------------------


@pytest.fixture
def engine_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, str], list[str]], None]]:
    import pulumi
    from pulumi.runtime import config as runtime

    monkeypatch.setattr(pulumi, "get_project", lambda: "shared-estate")
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    before, secrets = dict(runtime.CONFIG.get()), set(runtime._SECRET_KEYS.get())

    def set_config(values: dict[str, str], secret: list[str]) -> None:
        runtime.set_all_config(values, secret)

    yield set_config
    runtime.set_all_config(before, list(secrets))


def test_the_program_refuses_unknown_keys_and_clear_text_secrets(
        engine_config: Callable[[dict[str, str], list[str]], None]) -> None:
    from stacks.program import check_config

    engine_config({"azure-native:location": "uksouth", "shared-estate:council": "newham",
                   "azure-native:clientSecret": "in-clear"}, [])
    with pytest.raises(EstateError) as caught:
        check_config("newham")
    assert [str(p) for p in caught.value.problems] == [
        "Pulumi.newham.yaml: azure-native:clientSecret: a secret in clear text: store it encrypted "
        "(pulumi config set --secret clientSecret) and remove this line"]

    engine_config({"shared-estate:council": "newham", "azure-native:clientSecret": "s3cret"},
                  ["azure-native:clientSecret"])
    check_config("newham")  # the same value as a secret: accepted

    engine_config({"shared-estate:sessionHostAdminPassword": "x", "shared-estate:adminGroupName": "ops"}, [])
    with pytest.raises(EstateError) as caught:
        check_config("newham")
    assert [p.field for p in caught.value.problems] == ["shared-estate:adminGroupName",
                                                        "shared-estate:sessionHostAdminPassword"]

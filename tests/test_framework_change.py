"""A framework change, seen before it is agreed (issue 15 item 2): `estate check --framework PROPOSED` and `estate
framework-diff OLD NEW` (estate.framework_change, estate.reports.framework_change, estate.cli_framework).

The acceptance test tightens one threshold in a copy of framework.yaml and asserts the exact councils and findings
that change, computed independently: `estate check` run on a tree with the proposed file swapped in, beside the
same run on the tree as it is."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner, Result

from estate.cli import _register_extensions, app
from estate.errors import EstateError
from estate.framework_change import MISSING, differences, framework_differences
from estate.loader import load_framework
from estate.models import Framework, calver
from estate.yamlsrc import load

REPO = Path(__file__).resolve().parent.parent
# Host facts of havering's two lab hosts, both with pwquality minlen 12 (gathered from the lab: tests/data/equivalence)
FACTS = REPO / "tests" / "data" / "equivalence" / "facts.json"
TODAY = "2026-11-29"
runner = CliRunner()

PASSWORDS = ("    min_length: 12\n", "    min_length: 14\n")
PASSWORDS_LOG = ("      - path: security.passwords.min_length\n        from: 12\n        to: 14\n"
                 "        reason: NCSC password guidance for privileged accounts\n")
# Debian 12's end of support brought forward past the judging date: the councils with Debian 12 servers fail DCN-009
DEBIAN = ('    supported:\n      - {os: Debian, version: "12", end_of_support: 2028-06-30}\n',
          '    supported:\n      - {os: Debian, version: "12", end_of_support: 2026-06-30}\n')
DEBIAN_LOG = ("      - path: data_centre.server_operating_systems.supported[0].end_of_support\n"
              "        from: 2028-06-30\n        to: 2026-06-30\n        reason: the estate plans on the LTS date\n")


def cli(*args: str) -> Result:
    _register_extensions()
    return runner.invoke(app, list(args))


def propose(root: Path, *edits: tuple[str, str], log: str | None = "", version: str = "2026.12",
            name: str = "proposed.yaml") -> Path:
    """A copy of root's framework.yaml as version `version` with `edits` made and, unless log is None, a change log
    entry for it on top holding `log` (its changes, as YAML lines)."""
    text = (root / "framework.yaml").read_text(encoding="utf-8")
    text = text.replace('version: "2026.11"', f'version: "{version}"', 1)
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    if log is not None:
        entry = (f'  - version: "{version}"\n    date: 2026-12-10\n    summary: proposed to the board\n'
                 f"    changes:{' []' if not log else ''}\n{log}")
        text = text.replace("changelog:\n", f"changelog:\n{entry}", 1)
    path = root / name
    path.write_text(text, encoding="utf-8")
    return path


def judged(root: Path, *planes: str) -> dict[str, Any]:
    """`estate check --format json` on the tree at root."""
    result = cli("check", "--root", str(root), "--format", "json", "--today", TODAY, *planes)
    assert result.exit_code in (0, 1), result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def swapped(root: Path, proposed: Path, where: Path) -> Path:
    """A tree like root's with the proposed framework as its framework.yaml."""
    where.mkdir()
    shutil.copytree(root / "inventories", where / "inventories")
    shutil.copy(proposed, where / "framework.yaml")
    return where


def statuses(report: dict[str, Any]) -> dict[tuple[str, str, str], list[str]]:
    out: dict[tuple[str, str, str], list[str]] = {}
    for key, council in report["councils"].items():
        for f in council["findings"]:
            out.setdefault((f["rule"], key, f["resource"]), []).append(f["status"])
    return out


# --------------------------------------------------------------------------- acceptance


@pytest.mark.parametrize(("edit", "planes", "councils", "changed"), [
    # passwords: judged on hosts; only havering's facts are given, so only havering can change
    (PASSWORDS, ("--facts", str(FACTS)), ["havering"],
     {("SEC-003", "havering", "hav-svc01", "pass", "fail"), ("SEC-003", "havering", "hav-tc01", "pass", "fail")}),
    # a supported OS's end: judged on the asset registers; havering's and newham's Debian 12 servers, none of
    # waltham-forest's
    (DEBIAN, (), ["havering", "newham"],
     {("DCN-009", "havering", "hav-app01", "pass", "fail"), ("DCN-009", "havering", "hav-file01", "pass", "fail"),
      ("DCN-009", "havering", "hav-svc01", "pass", "fail"), ("DCN-009", "newham", "nwm-app02", "pass", "fail"),
      ("DCN-009", "newham", "nwm-svc01", "pass", "fail")}),
    # the same with the offline plan: each framework's own plan of havering's stack (the stacks read the framework)
    (DEBIAN, ("--plan", "--council", "havering"), ["havering"],
     {("DCN-009", "havering", "hav-app01", "pass", "fail"), ("DCN-009", "havering", "hav-file01", "pass", "fail"),
      ("DCN-009", "havering", "hav-svc01", "pass", "fail")}),
])
def test_check_framework_shows_exactly_the_councils_and_findings_that_change(
        repo_copy: Path, tmp_path: Path, edit: tuple[str, str], planes: tuple[str, ...], councils: list[str],
        changed: set[tuple[str, str, str, str, str]]) -> None:
    proposed = propose(repo_copy, edit)
    result = cli("check", "--framework", str(proposed), "--format", "json", "--today", TODAY, *planes)
    assert result.exit_code in (0, 1), result.output
    change = json.loads(result.stdout)

    # independently: the same check on the tree as it is and on a tree with the proposed file swapped in
    before = judged(repo_copy, *planes)
    after = judged(swapped(repo_copy, proposed, tmp_path / "swapped"), *planes)
    old, new = statuses(before), statuses(after)
    expected = {(*key, b, a) for key in {*old, *new}
                for b, a in zip(old.get(key, ["not judged"]), new.get(key, ["not judged"]), strict=False) if b != a}
    moved = {k for k in before["councils"] if before["councils"][k]["score"] != after["councils"][k]["score"]}
    moved |= {c for _, c, _, _, _ in expected}

    listed = [*change["findings"]["newly_failing"], *change["findings"]["newly_passing"],
              *change["findings"]["changed"]]
    got = {(f["rule"], f["council"], f["resource"], f["status"]["before"], f["status"]["after"]) for f in listed}
    assert got == expected == changed
    assert change["changed_councils"] == councils
    assert set(councils) == moved
    if "--council" not in planes:
        assert set(before["councils"]) - set(councils)  # some councils change, not all
    assert change["sources"] == before["sources"]
    assert {(f["rule"], f["council"], f["resource"]) for f in change["findings"]["newly_failing"]} == {
        c[:3] for c in changed}
    for key, score in change["councils"].items():
        assert score["before"] == before["councils"][key]["score"]
        assert score["after"] == after["councils"][key]["score"]
        assert score["changed"] == (score["before"] != score["after"])  # a score may stay while findings change
    assert change["exit_code"] == {"before": before["exit_code"], "after": after["exit_code"]}
    assert result.exit_code == after["exit_code"]
    assert (change["current"]["version"], change["proposed"]["version"]) == ("2026.11", "2026.12")


def test_the_roadmap_moves_and_savings_that_shift_are_the_swapped_tree_s(repo_copy: Path, tmp_path: Path) -> None:
    proposed = propose(repo_copy, PASSWORDS)
    change = json.loads(cli("check", "--framework", str(proposed), "--format", "json", "--today", TODAY,
                            "--facts", str(FACTS)).stdout)
    roadmaps = []
    for root in (repo_copy, swapped(repo_copy, proposed, tmp_path / "swapped")):
        result = cli("roadmap", "--root", str(root), "--format", "json", "--today", TODAY)
        assert result.exit_code == 0, result.output
        roadmaps.append(json.loads(result.stdout))
    # the roadmap command judges the registers only: host facts change identity for havering here, so compare the
    # savings of the councils the change leaves alone, and check havering's new identity move by hand
    for key in ("newham", "waltham-forest"):
        saving = change["roadmap"]["savings"][key]
        assert saving["before"] == saving["after"] == roadmaps[0]["councils"][key]["savings"]["annual_saving"]
    (move,) = change["roadmap"]["moves"]
    assert (move["council"], move["area"], move["quarter"]["before"]) == ("havering", "identity", "converged")
    assert move["after"]["findings"] == {"fail": 2}
    saving = change["roadmap"]["savings"]["havering"]
    assert saving["change"] == pytest.approx(-move["after"]["shared_service_share"], abs=0.01)


def test_the_table_and_html_name_the_change(repo_copy: Path) -> None:
    proposed = propose(repo_copy, PASSWORDS)
    table = cli("check", "--framework", str(proposed), "--today", TODAY, "--facts", str(FACTS))
    assert table.exit_code == 1
    assert "SEC-003" in table.stdout and "hav-svc01" in table.stdout and "newly fails" in table.stdout
    assert "2 findings newly fail, 0 newly pass; exit 1" in table.stdout
    out = repo_copy / "reports" / "change.html"
    html = cli("check", "--framework", str(proposed), "--today", TODAY, "--facts", str(FACTS), "-f", "html",
               "-o", str(out))
    assert html.exit_code == 1, html.output
    assert "1 of 3 changed under 2026.12 (havering)" in html.stdout
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and '<section id="framework-change">' in page
    assert page.index('id="framework-change"') < page.index('id="scores"')  # the change first, then the proposal
    assert "hav-tc01 requires passwords of 12 characters, not 14" in page


def test_a_baseline_holds_the_same_findings_under_the_proposal(repo_copy: Path) -> None:
    """--baseline: today's failures are held under both frameworks; only what the proposal newly fails blocks."""
    base = repo_copy / "baseline.json"
    assert cli("check", "--facts", str(FACTS), "--today", TODAY, "--write-baseline", str(base)).exit_code == 1
    proposed = propose(repo_copy, PASSWORDS)
    result = cli("check", "--framework", str(proposed), "--facts", str(FACTS), "--today", TODAY, "-f", "json",
                 "--baseline", str(base))
    assert result.exit_code == 1, result.output
    change = json.loads(result.stdout)
    assert change["exit_code"] == {"before": 0, "after": 1}
    assert {(f["rule"], f["resource"]) for f in change["findings"]["newly_failing"]} == {
        ("SEC-003", "hav-svc01"), ("SEC-003", "hav-tc01")}
    assert change["findings"]["changed"] == []  # the baselined failures stay held, none "no longer blocks"


def test_an_unchanged_proposal_changes_nothing(repo_copy: Path) -> None:
    proposed = propose(repo_copy)
    change = json.loads(cli("check", "--framework", str(proposed), "-f", "json", "--today", TODAY).stdout)
    assert change["changed_councils"] == [] and change["roadmap"]["moves"] == []
    assert all(not v for v in change["findings"].values())


# --------------------------------------------------------------------------- refusals: one line, exit 2


@pytest.mark.parametrize("version", ["2026.11", "2026.11.0", "2026.10", "2025.12.3"])
def test_a_proposal_that_is_not_newer_is_one_line_at_its_version(repo_copy: Path, version: str) -> None:
    # the file's own change log says the same version (a log entry newer than the file's version is malformed)
    proposed = propose(repo_copy, PASSWORDS, ('  - version: "2026.11"\n', f'  - version: "{version}"\n'), log=None,
                       version=version)
    line = load(proposed).line(("version",))
    for args in (("check", "--framework", str(proposed)), ("framework-diff", "framework.yaml", str(proposed))):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        (said,) = result.stderr.splitlines()
        assert said.startswith(f"proposed.yaml:{line}: version: {version} is ")
        assert "2026.11" in said


@pytest.mark.parametrize(("old", "new", "field"), [
    ("    min_length: 12\n", '    min_length: "fourteen"\n', "security.passwords.min_length"),
    ("    critical_days: 14\n", "    critical_days: 14\n    critical_hours: 4\n", "security.patching.critical_hours"),
    ('  - version: "2026.11"\n', '  - version: "2026.13.1"\n', "changelog[0].version"),
])
def test_a_malformed_proposal_is_the_loader_s_one_line_and_nothing_is_written(
        repo_copy: Path, old: str, new: str, field: str) -> None:
    proposed = propose(repo_copy, (old, new), log=None)
    with pytest.raises(EstateError) as caught:
        load_framework(proposed)
    (expected,) = [str(p) for p in caught.value.problems]
    assert f": {field}: " in expected
    out = repo_copy / "out" / "change.json"
    for args in (("check", "--framework", str(proposed), "-f", "json", "-o", str(out)),
                 ("framework-diff", "framework.yaml", str(proposed), "-o", str(out))):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [expected]
        assert not out.exists() and not out.parent.exists()


def test_check_framework_takes_only_its_formats_and_no_history(repo_copy: Path) -> None:
    proposed = propose(repo_copy, PASSWORDS)
    result = cli("check", "--framework", str(proposed), "-f", "sarif")
    assert result.exit_code == 2 and result.stderr.startswith("--format: with --framework")
    result = cli("check", "--framework", str(proposed), "--history", "h.jsonl")
    assert result.exit_code == 2 and result.stderr.startswith("--history: ")
    assert not (repo_copy / "h.jsonl").exists()


# --------------------------------------------------------------------------- framework-diff


def test_framework_diff_passes_when_the_change_log_names_the_change(repo_copy: Path) -> None:
    proposed = propose(repo_copy, PASSWORDS, log=PASSWORDS_LOG)
    result = cli("framework-diff", "framework.yaml", str(proposed))
    assert result.exit_code == 0, result.output
    assert "security.passwords.min_length" in result.stdout and "12 -> 14" in result.stdout
    assert "exit 0: the change log entry for 2026.12 accounts for every difference" in result.stdout
    data = json.loads(cli("framework-diff", "framework.yaml", str(proposed), "-f", "json").stdout)
    assert data["differences"] == [{"path": "security.passwords.min_length", "kind": "changed", "from": 12, "to": 14}]
    assert data["problems"] == [] and data["exit_code"] == 0


def test_framework_diff_fails_when_the_change_log_does_not_name_it(repo_copy: Path) -> None:
    # an entry for the version that logs another change (Debian's date) but not the password length it also makes
    proposed = propose(repo_copy, PASSWORDS, DEBIAN, log=DEBIAN_LOG)
    result = cli("framework-diff", "framework.yaml", str(proposed), "-f", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    line = load(proposed).line(("security", "passwords", "min_length"))
    assert data["problems"] == [f"{proposed.name}:{line}: security.passwords.min_length: 12 -> 14: not in the "
                                "change log entry for 2026.12"]
    # no entry for the version at all: every difference is unaccounted for
    bare = propose(repo_copy, PASSWORDS, log=None, name="bare.yaml")
    result = cli("framework-diff", "framework.yaml", str(bare))
    assert result.exit_code == 1
    assert "changelog: no entry for version 2026.12" in result.stdout


def test_framework_diff_fails_on_a_logged_change_that_did_not_happen(repo_copy: Path) -> None:
    proposed = propose(repo_copy, log=PASSWORDS_LOG)
    result = cli("framework-diff", "framework.yaml", str(proposed), "-f", "json")
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)["problems"]
    assert "changelog[0].changes[0].path: security.passwords.min_length is logged as changed, but it does not " \
           "differ from 2026.11" in problem
    # a logged value that is not the actual one
    wrong = propose(repo_copy, PASSWORDS, log=PASSWORDS_LOG.replace("to: 14", "to: 16"), name="wrong.yaml")
    (problem,) = json.loads(cli("framework-diff", "framework.yaml", str(wrong), "-f", "json").stdout)["problems"]
    assert problem.endswith("changelog[0].changes[0].to: security.passwords.min_length: logged to 16, actually 14")


def test_differences_name_list_items_by_their_key_and_compare_lists_of_words_whole() -> None:
    old = {"vlans": [{"id": 10, "name": "management", "prefix": 24}, {"id": 20, "name": "servers", "prefix": 24}],
           "required": ["council", "service"], "supported": [{"os": "Debian", "version": "12"}]}
    new = {"vlans": [{"id": 20, "name": "servers", "prefix": 23}, {"id": 30, "name": "desktops", "prefix": 24}],
           "required": ["council"], "supported": [{"os": "Debian", "version": "13"}]}
    found = {d.path: (d.old, d.new) for d in differences(old, new)}
    assert found == {
        "vlans[servers].prefix": (24, 23),
        "vlans[desktops]": (MISSING, {"id": 30, "name": "desktops", "prefix": 24}),
        "vlans[management]": ({"id": 10, "name": "management", "prefix": 24}, MISSING),
        "required": (["council", "service"], ["council"]),
        "supported[0].version": ("12", "13"),
    }


def test_version_and_changelog_are_the_change_s_record_not_differences(repo_copy: Path) -> None:
    fw, _ = load_framework(propose(repo_copy, log=PASSWORDS_LOG))
    current, _ = load_framework(REPO / "framework.yaml")
    assert framework_differences(current, fw) == []


# --------------------------------------------------------------------------- the change log in framework.yaml


def test_framework_yaml_logs_its_own_version_first() -> None:
    fw, _ = load_framework(REPO / "framework.yaml")
    assert fw.changelog and calver(fw.changelog[0].version) == calver(fw.version)
    first = fw.changelog[-1]
    assert (first.version, first.changes) == ("2026.11", [])


@pytest.mark.parametrize(("versions", "message"), [
    (["2026.12"], "2026.12 is newer than the framework's version 2026.11"),
    (["2026.10", "2026.11"], "2026.11 is not older than changelog[0]'s 2026.10"),
    (["2026.11", "2026.11.0"], "2026.11.0 is not older than changelog[0]'s 2026.11"),
])
def test_the_change_log_runs_newest_first_each_version_once(versions: list[str], message: str) -> None:
    data = load(REPO / "framework.yaml").data
    data["changelog"] = [{"version": v, "date": dt.date(2026, 11, 22), "summary": "s", "changes": []} for v in versions]
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Framework.model_validate(data)


def test_calver_orders_versions() -> None:
    assert calver("2026.11") == calver("2026.11.0") < calver("2026.11.1") < calver("2026.12") < calver("2027.01")

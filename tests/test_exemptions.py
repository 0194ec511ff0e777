"""Exemption governance (issue 14, item 4): an owner and an approver on every exemption, a warning 30 days before one
expires, an error for one that matches nothing its rule judged, rule ids checked above the loader, the enforcement
level mandatory_on_create (a new resource fails, an existing one warns) and "exempt, not enforced" for an exemption
that also switches a control's tasks off on the council's hosts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner, Result

from estate.cli import _register_extensions, app
from estate.compliance import evaluate
from estate.compliance.fixtures import BASELINE_FILE, fixture_path, load_case, read
from estate.controls.base import registry
from estate.controls.facts import HostFacts
from estate.controls.spec import control_of
from estate.loader import Estate, load_estate
from estate.models import Exemption
from estate.reports import render
from estate.yamlsrc import load

REPO = Path(__file__).resolve().parent.parent
NEWHAM = Path("inventories") / "newham" / "council.yml"
# newham's DCN-004 exemption for nwm-file01 expires on 2026-06-30 (inventories/newham/council.yml)
EXPIRES = dt.date(2026, 6, 30)
runner = CliRunner()
HAVERING = Path("inventories") / "havering" / "council.yml"
# DSK-009 judges the desktop register: havering has no Windows 7 desktop for this exemption to match
STALE = ("  - {rule: DSK-009, scope: Windows 7 SP1, reason: kiosks go with the library refit, contract: HAV-C03,\n"
         "     expires: 2027-03-31, owner: 'Head of ICT, Havering',\n"
         "     approver: 'Chair, Shared Estate consortium security board'}\n")


def check(*args: str) -> Result:
    _register_extensions()
    return runner.invoke(app, ["check", *args])


def exemption_line(rule: str, council: str = "newham", root: Path = REPO) -> int:
    """The line of the council's exemption of this rule, read from the file itself."""
    src = load(root / "inventories" / council / "council.yml")
    (i,) = [i for i, ex in enumerate(src.data["exemptions"]) if ex["rule"] == rule]
    return src.line(("exemptions", i))


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


# --------------------------------------------------------------------------- owner and approver


def test_every_example_exemption_names_its_owner_and_approver(estate: Estate) -> None:
    exemptions = [ex for rec in estate.councils.values() for ex in rec.council.exemptions]
    assert exemptions
    for ex in exemptions:
        assert ex.owner.strip() and ex.approver.strip()
        assert ex.owner != ex.approver  # the one who owns the risk does not approve it


@pytest.mark.parametrize("missing", ["owner", "approver"])
def test_an_exemption_without_owner_or_approver_is_refused(missing: str) -> None:
    data = {"rule": "DCN-004", "reason": "r", "contract": "NWM-C01", "expires": dt.date(2027, 1, 1),
            "owner": "Head of ICT, Newham", "approver": "Chair, security board"}
    Exemption.model_validate(data)
    with pytest.raises(ValidationError, match=missing):
        Exemption.model_validate({k: v for k, v in data.items() if k != missing})


def test_a_missing_approver_is_one_line_with_its_file_and_line(repo_copy: Path) -> None:
    replace_in(repo_copy / NEWHAM, "    approver: Chair, Shared Estate consortium security board\n  - rule: DCN-009",
               "  - rule: DCN-009")
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2
    line = exemption_line("DSK-009", root=repo_copy)
    assert result.stderr.strip() == f"{NEWHAM}:{line}: exemptions[0].approver: Field required"


def test_the_json_report_carries_the_exemption_s_owner_and_approver(estate: Estate) -> None:
    report = evaluate(estate, councils=["newham"], today=EXPIRES - dt.timedelta(days=60))
    doc = json.loads(render(report, "json", estate=estate))
    (f,) = [f for f in doc["councils"]["newham"]["findings"] if f["rule"] == "DCN-004" and f["status"] == "exempt"]
    assert f["exemption"]["owner"] == "Senior Information Risk Owner, Newham"
    assert f["exemption"]["approver"] == "Chair, Shared Estate consortium security board"


# --------------------------------------------------------------------------- expiring within 30 days


@pytest.mark.parametrize(("days_left", "warns"), [(31, False), (30, True), (1, True), (0, False), (-5, False)])
def test_an_exemption_warns_in_its_last_30_days(estate: Estate, days_left: int, warns: bool) -> None:
    report = evaluate(estate, councils=["newham"], today=EXPIRES - dt.timedelta(days=days_left))
    warnings = [n for n in report.councils["newham"].warnings if n.rule == "DCN-004"]
    assert bool(warnings) == warns
    if warns:
        (n,) = warnings
        assert (n.file, n.line) == (str(NEWHAM), exemption_line("DCN-004"))
        assert f"expires on {EXPIRES}, in {days_left} day" in n.message
        assert "Senior Information Risk Owner, Newham" in n.message


def test_a_warning_is_no_failure(estate: Estate) -> None:
    # havering's NET-010 exemption for hav-core01 ends on 2027-03-31; its assets have no blocking finding then
    report = evaluate(estate, councils=["havering"], today=dt.date(2027, 3, 21))
    assert [n.rule for n in report.councils["havering"].warnings] == ["NET-010"]
    assert not report.councils["havering"].errors and not report.councils["havering"].blocking
    assert report.exit_code == 0


def test_a_warning_is_in_the_table_json_and_sarif(estate: Estate) -> None:
    report = evaluate(estate, councils=["newham"], today=EXPIRES - dt.timedelta(days=12))
    line = exemption_line("DCN-004")
    table = render(report, "table", estate=estate, width=400)
    assert "newham: exemptions to act on" in table
    assert f"{NEWHAM}:{line}" in table and "in 12 days" in table
    doc = json.loads(render(report, "json", estate=estate))
    (w,) = doc["councils"]["newham"]["warnings"]
    assert (w["rule"], w["scope"], w["file"], w["line"]) == ("DCN-004", "nwm-file01", str(NEWHAM), line)
    assert doc["councils"]["newham"]["errors"] == []
    run = json.loads(render(report, "sarif", estate=estate))["runs"][0]
    (note,) = [r for r in run["results"] if r["ruleId"] == "EXEMPTION-EXPIRING"]
    assert note["level"] == "note"
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == NEWHAM.as_posix()
    assert note["locations"][0]["physicalLocation"]["region"]["startLine"] == line
    rules = run["tool"]["driver"]["rules"]
    assert rules[note["ruleIndex"]]["id"] == "EXEMPTION-EXPIRING"


# --------------------------------------------------------------------------- matching nothing


def test_the_example_exemptions_each_match_something(estate: Estate) -> None:
    report = evaluate(estate, today=dt.date(2026, 1, 1))
    assert [n.message for n in report.notices if n.level == "error"] == []


def test_an_exemption_that_matches_nothing_fails_the_check_at_its_line(repo_copy: Path) -> None:
    replace_in(repo_copy / HAVERING, "exemptions:\n", "exemptions:\n" + STALE)
    line = exemption_line("DSK-009", "havering", root=repo_copy)
    # havering's assets have no blocking finding on this date: the stale exemption alone makes it exit 1
    result = check("--council", "havering", "--today", "2026-01-01", "--format", "json", "--root", str(repo_copy))
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    (err,) = doc["councils"]["havering"]["errors"]
    assert (err["file"], err["line"], err["rule"]) == (str(HAVERING), line, "DSK-009")
    assert "matches nothing DSK-009 judged for havering" in err["message"]
    assert doc["exit_code"] == 1 and not any(f["status"] == "fail" and f["enforcement"] == "mandatory"
                                             for f in doc["councils"]["havering"]["findings"])
    table = check("--council", "havering", "--today", "2026-01-01", "--root", str(repo_copy))
    assert table.exit_code == 1 and "Traceback" not in table.output
    assert f"exit 1: 1 exemption matches nothing ({HAVERING}:{line})" in " ".join(table.stdout.split())
    sarif = json.loads(check("--council", "havering", "--today", "2026-01-01", "--format", "sarif",
                             "--root", str(repo_copy)).stdout)
    (res,) = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "EXEMPTION-UNMATCHED"]
    assert res["level"] == "error"
    assert res["locations"][0]["physicalLocation"]["region"]["startLine"] == line
    junit = ET.fromstring(check("--council", "havering", "--today", "2026-01-01", "--format", "junit",
                                "--root", str(repo_copy)).stdout)
    (case,) = [c for c in junit.iter("testcase") if c.get("classname") == "havering.exemptions"]
    assert case.get("name") == f"{HAVERING}:{line}"
    assert case.find("failure") is not None


def test_the_unmodified_council_exits_0_on_that_date() -> None:
    """The control case of the test above: the same run on the example inventories exits 0."""
    result = check("--council", "havering", "--today", "2026-01-01", "--format", "json", "--root", str(REPO))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["councils"]["havering"]["errors"] == []


def _all_hosts(estate: Estate, key: str) -> list[HostFacts]:
    hosts = estate.councils[key].hosts
    assert hosts is not None
    return [HostFacts(host=h.name, council=key, role=h.role, reachable=True) for h in hosts.hosts]


def _with_exemption(estate: Estate, key: str, **fields: Any) -> Estate:
    rec = estate.councils[key]
    ex = Exemption(reason="test", contract=rec.council.contracts[0].id, expires=dt.date(2030, 1, 1),
                   owner="Head of ICT", approver="Chair, security board", **fields)
    council = rec.council.model_copy(update={"exemptions": [*rec.council.exemptions, ex]})
    return dataclasses.replace(estate, councils={**estate.councils, key: dataclasses.replace(rec, council=council)})


def test_an_exemption_is_judged_only_once_its_rule_s_planes_were(estate: Estate) -> None:
    """SEC-006 judges hosts: an exemption of it for a host that does not exist matches nothing only in a run that
    judged every host of the council; without host facts, or with some hosts' facts only, it is not judged."""
    e2 = _with_exemption(estate, "newham", rule="SEC-006", scope="nwm-nosuchhost")
    today = dt.date(2026, 1, 1)
    stale = [n for n in evaluate(e2, councils=["newham"], today=today).notices if n.level == "error"]
    assert stale == []
    facts = _all_hosts(estate, "newham")
    stale = [n for n in evaluate(e2, councils=["newham"], today=today, hosts=facts[:1]).notices if n.level == "error"]
    assert stale == []
    report = evaluate(e2, councils=["newham"], today=today, hosts=facts)
    (n,) = [n for n in report.notices if n.level == "error"]
    assert (n.rule, n.scope) == ("SEC-006", "nwm-nosuchhost")
    assert report.exit_code == 1
    # the same exemption naming a host the run judged matches it
    e3 = _with_exemption(estate, "newham", rule="SEC-006", scope=facts[0].host)
    assert [n for n in evaluate(e3, councils=["newham"], today=today, hosts=facts).notices if n.level == "error"] == []


# --------------------------------------------------------------------------- unknown rule ids, above the loader


def test_an_unknown_rule_is_refused_by_check_with_its_line(repo_copy: Path) -> None:
    replace_in(repo_copy / NEWHAM, "rule: DCN-009", "rule: DCN-099")
    line = load(repo_copy / NEWHAM).line(("exemptions", 1, "rule"))
    for command in (["validate"], ["check"]):
        _register_extensions()
        result = runner.invoke(app, command)
        assert result.exit_code == 2, command
        assert result.stderr.strip() == f"{NEWHAM}:{line}: exemptions[1].rule: unknown rule 'DCN-099'"
    # the loader alone loads it: the rule ids are no business of the layer below the rules
    assert load_estate(repo_copy).council("newham").council.exemptions[1].rule == "DCN-099"


def test_the_loader_imports_neither_compliance_nor_controls() -> None:
    code = ("import sys; from pathlib import Path; from estate.loader import load_estate; "
            "load_estate(Path(sys.argv[1])); "
            "print(sorted(m for m in sys.modules if m.startswith(('estate.compliance', 'estate.controls'))))")
    out = subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- mandatory_on_create


def _enforce(estate: Estate, rule_id: str, level: str) -> Estate:
    """The estate with the framework control of this rule enforced at `level`."""
    parts = registry()[rule_id].control.split(".")

    def down(node: Any, rest: list[str]) -> Any:
        if not rest:
            return node.model_copy(update={"enforcement": level})
        return node.model_copy(update={rest[0]: down(getattr(node, rest[0]), rest[1:])})

    return dataclasses.replace(estate, framework=down(estate.framework, parts))


def _on_create(estate: Estate) -> Estate:
    """data_centre.trusted_launch (DCN-016) enforced mandatory_on_create."""
    return _enforce(estate, "DCN-016", "mandatory_on_create")


def _judge_fixture(estate: Estate, deployed: list[str] | None) -> Any:
    baseline = read(BASELINE_FILE)
    case = load_case(estate, read(fixture_path("DCN-016"))["fail"], baseline)
    return evaluate(case.estate, resources=case.resources, councils=case.councils, today=baseline["today"],
                    rules=["DCN-016"], assets=False, deployed=deployed), case


def test_mandatory_on_create_fails_a_new_resource(estate: Estate) -> None:
    report, _ = _judge_fixture(_on_create(estate), deployed=None)  # no state: every planned resource is new
    failing = [f for f in report.findings if f.status == "fail"]
    assert failing and all(f.new is True and f.blocking for f in failing)
    assert all(f.enforcement == "mandatory_on_create" for f in report.findings)
    assert all("a new resource" in f.message for f in failing)
    assert report.exit_code == 1


def test_mandatory_on_create_warns_on_an_existing_resource(estate: Estate) -> None:
    e2 = _on_create(estate)
    first, case = _judge_fixture(e2, deployed=None)
    urns = [r.urn for r in case.resources]
    report, _ = _judge_fixture(e2, deployed=urns)  # every one of them deployed already
    failing = [f for f in report.findings if f.status == "fail"]
    assert [f.resource for f in failing] == [f.resource for f in first.findings if f.status == "fail"]
    assert all(f.new is False and not f.blocking for f in failing)
    assert all("an existing resource" in f.message for f in failing)
    assert report.exit_code == 0
    # one deployed, the others new: only the new ones block
    old = failing[0].resource
    mixed, _ = _judge_fixture(e2, deployed=[old])
    assert {f.resource for f in mixed.findings if f.blocking} == {f.resource for f in failing} - {old}
    table = render(report, "table", estate=e2, width=400)
    assert "mandatory_on_create (existing)" in table
    sarif = json.loads(render(report, "sarif", estate=e2))["runs"][0]["results"]
    assert {r["level"] for r in sarif if r["properties"]["status"] == "fail"} == {"warning"}


def test_mandatory_on_create_reads_registers_and_hosts_as_existing(estate: Estate) -> None:
    """An asset in a register exists already (legacy): DSK-009's failures warn when its control is on-create."""
    e2 = _enforce(estate, "DSK-009", "mandatory_on_create")
    report = evaluate(e2, councils=["newham"], today=dt.date(2028, 1, 1), rules=["DSK-009"])
    found = [f for f in report.findings if f.rule_id == "DSK-009"]
    assert found and all(f.new is False for f in found)
    assert not any(f.blocking for f in found)


def test_the_framework_model_accepts_mandatory_on_create(estate: Estate) -> None:
    from estate.models import Control

    c = Control.model_validate({"id": "3.11", "title": "t", "clause": "CE: x", "enforcement": "mandatory_on_create"})
    assert c.enforcement == "mandatory_on_create"
    with pytest.raises(ValidationError):
        Control.model_validate({"id": "3.11", "title": "t", "clause": "CE: x", "enforcement": "on_create"})


def test_check_with_plan_and_state_tells_new_from_existing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--plan with --state: the state is what is deployed, not what is judged (a planned resource it lacks is new)."""
    monkeypatch.chdir(REPO)
    state = tmp_path / "s.json"
    rg = {"urn": "urn:pulumi:havering::shared-estate::azure-native:resources:ResourceGroup::rg-deployed",
          "type": "azure-native:resources:ResourceGroup", "inputs": {}, "outputs": {}}
    state.write_text(json.dumps({"version": 3, "deployment": {"resources": [rg]}}), encoding="utf-8")
    result = check("--plan", "--state", str(state), "--council", "havering", "--format", "json", "--today",
                   "2026-11-29")
    assert result.exit_code in (0, 1), result.output
    doc = json.loads(result.stdout)
    assert doc["sources"] == ["assets", "plan", "deployed state"]
    assert any(f["kind"] == "cloud" for f in doc["councils"]["havering"]["findings"])


# --------------------------------------------------------------------------- exempt, not enforced


def test_an_exempt_finding_of_a_control_with_roles_is_exempt_not_enforced(estate: Estate) -> None:
    report = evaluate(estate, today=dt.date(2026, 1, 1))
    exempt = [f for f in report.findings if f.status == "exempt"]
    assert exempt
    for f in exempt:
        spec = control_of(f.rule_id)
        assert f.not_enforced == (spec is not None and bool(spec.roles)), f.rule_id
    assert all(not f.not_enforced for f in report.findings if f.status != "exempt")
    shown = [f for f in exempt if f.not_enforced]
    assert shown, "no example exemption reaches a control with roles"
    doc = json.loads(render(report, "json", estate=estate))
    flagged = {(f["council"], f["rule"], f["resource"]) for c in doc["councils"].values() for f in c["findings"]
               if f["not_enforced"]}
    assert flagged == {(f.council, f.rule_id, f.resource) for f in shown}
    assert all(f["status"] == "exempt" for c in doc["councils"].values() for f in c["findings"] if f["not_enforced"])
    table = render(report, "table", estate=estate, width=400)
    assert table.count("exempt, not enforced") == len(shown)
    html = render(report, "html", estate=estate)
    assert html.count("exempt, not enforced") == len(shown)

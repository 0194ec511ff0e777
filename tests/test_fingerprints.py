"""Stable finding fingerprints and the baseline (issue 15 item 4): a finding's fingerprint depends on its rule,
council, kind, resource and property path only; `estate check --write-baseline FILE` records today's failures and
`estate check --baseline FILE` exits 1 only on a blocking failure the file does not hold, showing the others marked
as baselined (table, JSON, SARIF baselineState); a file that is not a baseline is one line and exit 2."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner, Result

from estate.cli import _register_extensions, app
from estate.compliance import evaluate
from estate.compliance.baseline import KIND, apply_baseline, baseline_document, read_baseline
from estate.compliance.findings import FINGERPRINT_VERSION, Finding, Report
from estate.errors import EstateError
from estate.loader import load_estate
from estate.plan import plan

REPO = Path(__file__).resolve().parent.parent
SARIF_SCHEMA = REPO / "tests" / "data" / "sarif-schema-2.1.0.json"
TODAY = "2026-11-29"
HAVERING = Path("inventories") / "havering" / "council.yml"
# a server of havering that passes DCN-004 (encryption at host) today; the tests make it fail
FILE01 = ("name: hav-file01, role: file server, os: Debian, version: \"12\", location: azure, region: uksouth, "
          "sku: Standard_D2s_v5, encrypted: true")
runner = CliRunner()


def check(*args: str) -> Result:
    _register_extensions()
    return runner.invoke(app, ["check", "--today", TODAY, *args])


def finding(**changes: Any) -> Finding:
    base = Finding(rule_id="DCN-004", title="t", severity="high", enforcement="mandatory", control="4.2",
                   clause="CE: x", area="datacentre", council="newham", kind="asset", resource="nwm-app01",
                   status="fail", message="nwm-app01 is not encrypted", fix="encrypt it",
                   path="securityProfile.encryptionAtHost")
    return dataclasses.replace(base, **changes)


def json_report(result: Result, out: Path) -> dict[str, Any]:
    assert result.exit_code in (0, 1), result.output
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def findings_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for council in doc["councils"].values() for f in council["findings"]]


# --- the fingerprint

def test_the_recipe_is_pinned() -> None:
    """The same on every machine and Python (no hash seed, no locale): this value was computed once and must not
    change without a new recipe version."""
    assert FINGERPRINT_VERSION == "estateFinding/v1"
    assert finding().fingerprint == "b259f76b0ef89cc38d80dfabb866ff29114ce0c287fb98613419d52a16449a5e"


def test_the_message_values_status_and_exemption_do_not_change_it() -> None:
    fp = finding().fingerprint
    assert finding(message="nwm-app01 is encrypted").fingerprint == fp
    assert finding(status="pass", title="other", severity="low", fix="", enforcement="advisory").fingerprint == fp
    assert finding(status="expired", new=True, not_enforced=True, baselined=True).fingerprint == fp


def test_each_part_of_its_identity_changes_it() -> None:
    fp = finding().fingerprint
    others = [finding(rule_id="DCN-005"), finding(council="havering"), finding(kind="cloud"),
              finding(resource="nwm-file01"), finding(path=""), finding(path="securityProfile")]
    prints = {f.fingerprint for f in others}
    assert fp not in prints and len(prints) == len(others)
    # the parts are kept apart: moving text from one part to the next is another fingerprint
    assert finding(resource="a|b", path="c").fingerprint != finding(resource="a", path="b|c").fingerprint


def test_fingerprints_are_unique_and_name_the_property_a_value_check_judges() -> None:
    estate = load_estate(REPO)
    report = evaluate(estate, today=dt.date.fromisoformat(TODAY))
    prints = [f.fingerprint for f in report.findings]
    assert len(prints) == len(set(prints))
    paths = {(f.rule_id, f.path) for f in report.findings}
    assert ("DCN-004", "securityProfile.encryptionAtHost") in paths  # a ResourceValueCheck's key
    assert any(rule.startswith("DSK-") and path == "" for rule, path in paths)  # a rule on the whole asset


def test_a_rule_with_several_outcomes_on_one_resource_names_each() -> None:
    """NET-012 judges every egress purpose on the hub's one firewall policy: each outcome names its purpose
    (Outcome.path), so the plan's findings, like the registers', have a fingerprint each."""
    estate = load_estate(REPO)
    report = evaluate(estate, resources=plan(estate, None).resources, today=dt.date.fromisoformat(TODAY))
    prints = [f.fingerprint for f in report.findings]
    assert len(prints) == len(set(prints))
    egress = [f for f in report.findings if f.rule_id == "NET-012"]
    assert len({f.resource for f in egress}) == 1
    assert sorted(f.path for f in egress) == sorted(f"egress.purposes.{p.name}"
                                                    for p in estate.framework.network.egress.purposes)


def test_the_same_across_runs_processes_dates_and_orderings(repo_copy: Path) -> None:
    """Two runs, one in another process with another hash seed, give the same fingerprints; so do a date on which
    an exemption still holds and one after it expired (newham's DCN-004 on nwm-file01, 2026-06-30), and an
    inventory whose servers are listed in another order."""
    here = check("--format", "json", "-o", "a.json")
    first = {f["fingerprint"]: (f["rule"], f["resource"])
             for f in findings_of(json_report(here, repo_copy / "a.json"))}
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    proc = subprocess.run([str(Path(sys.executable).parent / "estate"), "check", "--today", TODAY, "--format", "json",
                           "-o", "b.json"], cwd=repo_copy, env=env, check=False, capture_output=True, text=True)
    assert proc.returncode == here.exit_code, proc.stderr
    second = {f["fingerprint"]: (f["rule"], f["resource"]) for f in
              findings_of(json.loads((repo_copy / "b.json").read_text(encoding="utf-8")))}
    assert second == first

    estate = load_estate(repo_copy)
    before = evaluate(estate, today=dt.date(2026, 6, 1))
    after = evaluate(estate, today=dt.date(2026, 11, 29))
    status = {f.fingerprint: f.status for f in before.findings}
    assert {f.fingerprint for f in before.findings} == {f.fingerprint for f in after.findings} == set(first)
    (expiring,) = [f for f in after.findings if f.council == "newham" and f.rule_id == "DCN-004"
                   and f.resource == "nwm-file01"]
    assert (status[expiring.fingerprint], expiring.status) == ("exempt", "expired")

    text = (repo_copy / HAVERING).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    servers = [i for i, line in enumerate(lines) if line.startswith("    - {name: hav-")
               and "location:" in line]
    assert len(servers) == 3
    lines[servers[0]], lines[servers[2]] = lines[servers[2]], lines[servers[0]]
    (repo_copy / HAVERING).write_text("".join(lines), encoding="utf-8")
    moved = load_estate(repo_copy)
    assert [s.name for s in moved.councils["havering"].council.assets.servers] == ["hav-svc01", "hav-file01",
                                                                                  "hav-app01"]
    reordered = evaluate(moved, today=dt.date.fromisoformat(TODAY))
    assert {f.fingerprint: (f.rule_id, f.resource) for f in reordered.findings} == first


def test_a_baseline_is_the_same_file_whatever_the_findings_order() -> None:
    report = evaluate(load_estate(REPO), today=dt.date.fromisoformat(TODAY))
    shuffled = dataclasses.replace(report, councils={
        key: dataclasses.replace(r, findings=list(reversed(r.findings)))
        for key, r in reversed(list(report.councils.items()))})
    assert baseline_document(shuffled) == baseline_document(report)
    doc = baseline_document(report)
    assert doc["kind"] == KIND and doc["version"] == 1 and doc["fingerprint"] == FINGERPRINT_VERSION
    assert doc["framework_version"] == report.framework_version and doc["date"] == TODAY
    assert {e["fingerprint"] for e in doc["findings"]} == {f.fingerprint for f in report.findings if f.failing}


# --- the baseline, through the CLI

def test_write_then_baseline_exits_0_and_a_new_failure_exits_1(repo_copy: Path) -> None:
    wrote = check("--write-baseline", "base.json", "--format", "json", "-o", "today.json")
    assert wrote.exit_code == 1  # today's estate has blocking failures: writing a baseline does not hide them
    assert "a baseline of" in wrote.stderr
    today = findings_of(json.loads((repo_copy / "today.json").read_text(encoding="utf-8")))
    failing = {f["fingerprint"] for f in today if f["status"] in ("fail", "expired")}
    assert failing
    recorded = json.loads((repo_copy / "base.json").read_text(encoding="utf-8"))
    assert {e["fingerprint"] for e in recorded["findings"]} == failing
    assert all(set(e) == {"fingerprint", "rule", "council", "resource", "path", "status"}
               for e in recorded["findings"])

    same = check("--baseline", "base.json")
    assert same.exit_code == 0, same.output
    assert "FAIL (baselined)" in same.stdout
    held = same.stdout.splitlines()
    assert f"baseline base.json: {len(failing)} failing findings held, shown as baselined" in "\n".join(held)
    assert held[-1] == "exit 0: no mandatory rule fails"

    text = (repo_copy / HAVERING).read_text(encoding="utf-8")
    assert text.count(FILE01) == 1
    (repo_copy / HAVERING).write_text(text.replace(FILE01, FILE01.replace("encrypted: true", "encrypted: false")),
                                      encoding="utf-8")
    worse = check("--baseline", "base.json")
    assert worse.exit_code == 1, worse.output
    assert worse.stdout.splitlines()[-1] == "exit 1: 1 mandatory finding fail (havering: DCN-004)"

    as_json = check("--baseline", "base.json", "--format", "json", "-o", "new.json")
    assert as_json.exit_code == 1
    assert "do not count; exit 1: 1 mandatory findings fail (havering:DCN-004)" in as_json.stdout
    doc = json.loads((repo_copy / "new.json").read_text(encoding="utf-8"))
    assert doc["baseline"] == "base.json" and doc["exit_code"] == 1
    new = [f for f in findings_of(doc) if f["status"] in ("fail", "expired") and not f["baselined"]]
    assert [(f["council"], f["rule"], f["resource"]) for f in new] == [("havering", "DCN-004", "hav-file01")]
    assert {f["fingerprint"] for f in findings_of(doc) if f["baselined"]} == failing

    sarif = check("--baseline", "base.json", "--format", "sarif", "-o", "new.sarif")
    assert sarif.exit_code == 1
    log = json.loads((repo_copy / "new.sarif").read_text(encoding="utf-8"))
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    assert sorted(jsonschema.validators.validator_for(schema)(schema).iter_errors(log), key=str) == []
    results = [r for r in log["runs"][0]["results"] if not r["ruleId"].startswith("EXEMPTION-")]
    by_print = {f["fingerprint"]: f for f in findings_of(doc)}
    assert [r["partialFingerprints"][FINGERPRINT_VERSION] for r in results] == [f["fingerprint"]
                                                                                for f in findings_of(doc)]
    states = {r["partialFingerprints"][FINGERPRINT_VERSION]: r.get("baselineState") for r in results}
    for fp, state in states.items():
        f = by_print[fp]
        if f["status"] not in ("fail", "expired"):
            assert state is None
        else:
            assert state == ("unchanged" if f["baselined"] else "new"), f
    assert [by_print[fp]["resource"] for fp, s in states.items() if s == "new"] == ["hav-file01"]


def test_a_baselined_failure_that_is_fixed_passes_and_is_no_longer_baselined(repo_copy: Path) -> None:
    report = evaluate(load_estate(repo_copy), today=dt.date.fromisoformat(TODAY))
    (repo_copy / "base.json").write_text(json.dumps(baseline_document(report)), encoding="utf-8")
    baseline = read_baseline(repo_copy / "base.json")
    fixed = dataclasses.replace(report, councils={
        key: dataclasses.replace(r, findings=[dataclasses.replace(f, status="pass") for f in r.findings])
        for key, r in report.councils.items()})
    held: Report = apply_baseline(fixed, baseline)
    assert not any(f.baselined for f in held.findings) and held.exit_code == 0
    assert apply_baseline(report, baseline).exit_code == 0 and report.exit_code == 1


@pytest.mark.parametrize(("text", "expected"), [
    ('{"kind": "checkov-baseline", "version": 1}\n',
     "base.json: kind: not an estate baseline (expected an object of kind 'estate-check-baseline', found kind "
     "'checkov-baseline'); write one with estate check --write-baseline FILE"),
    ('[1, 2]\n', "base.json: not an estate baseline (expected an object of kind 'estate-check-baseline', found a "
                 "list); write one with estate check --write-baseline FILE"),
    ('{\n  "kind": "estate-check-baseline",\n  "version": 1,\n  "findings": [\n}\n',
     "base.json:5: not JSON: Expecting value (column 1)"),
    ('{"kind": "estate-check-baseline", "version": 2, "fingerprint": "estateFinding/v1", "findings": []}',
     "base.json: version: version 2: this estate reads baseline version 1"),
    ('{"kind": "estate-check-baseline", "version": 1, "fingerprint": "estateFinding/v0", "findings": []}',
     "base.json: fingerprint: fingerprints made by 'estateFinding/v0', not 'estateFinding/v1': they cannot be "
     "compared; write the baseline again"),
    ('{"kind": "estate-check-baseline", "version": 1, "fingerprint": "estateFinding/v1", "findings": {}}',
     "base.json: findings: expected a list of findings, found an object"),
    ('{"kind": "estate-check-baseline", "version": 1, "fingerprint": "estateFinding/v1", '
     '"findings": [{"fingerprint": "DCN-004"}]}',
     "base.json: findings[0].fingerprint: expected a finding's fingerprint, 64 lowercase hex digits"),
])
def test_a_file_that_is_not_our_baseline_is_one_line_and_exit_2(repo_copy: Path, text: str, expected: str) -> None:
    (repo_copy / "base.json").write_text(text, encoding="utf-8")
    result = check("--baseline", "base.json", "--format", "json", "-o", "out.json")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [expected]
    assert result.stdout == "" and not (repo_copy / "out.json").exists()
    with pytest.raises(EstateError):
        read_baseline(repo_copy / "base.json")


def test_a_missing_baseline_is_one_line_and_exit_2(repo_copy: Path) -> None:
    result = check("--baseline", "nowhere.json")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("nowhere.json: ")

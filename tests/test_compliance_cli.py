"""`estate check`: sources, formats, exit codes 0/1/2, one-line errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from estate.cli import _register_extensions, app

REPO = Path(__file__).resolve().parent.parent
TODAY = "2026-11-22"
_register_extensions()
runner = CliRunner()


def check(*args: str) -> Any:
    return runner.invoke(app, ["check", "--root", str(REPO), "--today", TODAY, *args])


def export(*resources: dict[str, Any]) -> dict[str, Any]:
    """A `pulumi stack export` document holding these resources."""
    items = [{"urn": "urn:pulumi:newham::shared-estate::pulumi:pulumi:Stack::shared-estate-newham",
              "type": "pulumi:pulumi:Stack", "custom": False}]
    for r in resources:
        urn = f"urn:pulumi:{r.get('stack', 'newham')}::shared-estate::{r['type']}::{r['name']}"
        items.append({"urn": urn, "custom": True, "type": r["type"], "inputs": r.get("inputs", {}),
                      "outputs": r.get("outputs", {}), "parent": items[0]["urn"]})
    return {"version": 3, "deployment": {"manifest": {"time": "2026-11-22T00:00:00Z"}, "resources": items}}


def test_assets_only_exits_1_and_says_why() -> None:
    result = check()
    assert result.exit_code == 1
    out = result.stdout
    for key in ("havering", "newham", "waltham-forest"):
        assert key in out
    assert "exit 1:" in out and "mandatory" in out and "waltham-forest: " in out
    assert "fix:" in out


def test_one_converging_council_exits_0() -> None:
    result = check("--council", "havering")
    assert result.exit_code == 0, result.output
    assert "exit 0: no mandatory rule fails" in result.stdout


def test_json_gives_each_council_a_different_score() -> None:
    result = check("--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    scores = {k: v["score"] for k, v in doc["councils"].items()}
    assert len(set(scores.values())) == 3
    for council in doc["councils"].values():
        for f in council["findings"]:
            assert f["status"] in ("pass", "fail", "exempt", "expired")
            assert f["rule"] and f["fix"] and f["message"] and f["resource"]


NON_COMPLIANT = [
    {"type": "azure-native:network:NetworkInterface", "name": "nic-avd-0",
     "inputs": {"location": "uksouth", "ipConfigurations": [{"name": "ipconfig1", "subnet": {"id": "snet-desktops"},
                                                             "publicIPAddress": {"id": "pip-avd-0"}}]}},
    {"type": "azure-native:compute:VirtualMachineScaleSet", "name": "vmss-newham-avd",
     "inputs": {"location": "uksouth", "tags": {"service": "desktop"}, "sku": {"name": "Standard_NV36ads_A10_v5"}}},
    {"type": "azure-native:network:FirewallPolicyRuleCollectionGroup", "name": "afwp-flow-matrix", "stack": "shared",
     "inputs": {"ruleCollections": [{"name": "extra", "action": {"type": "Allow"},
                                     "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                                     "rules": [{"ruleType": "NetworkRule", "name": "guest-to-servers",
                                                "ipProtocols": ["TCP"], "sourceAddresses": ["10.64.38.0/23"],
                                                "destinationAddresses": ["10.64.41.0/24"],
                                                "destinationPorts": ["445"]}]}]}},
]


def test_non_compliant_state_fails_with_the_rule_ids(tmp_path: Path) -> None:
    """A public IP on a desktop subnet, a VM size off the list, a flow the matrix forbids."""
    state = tmp_path / "newham.json"
    state.write_text(json.dumps(export(*NON_COMPLIANT)), encoding="utf-8")
    result = check("--state", str(state), "--council", "newham", "--council", "shared", "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    failing = {(f["rule"], f["resource"].rsplit("::", 1)[-1]) for c in doc["councils"].values()
               for f in c["findings"] if f["status"] == "fail" and f["kind"] == "cloud"}
    assert ("NET-005", "nic-avd-0") in failing
    assert ("DSK-005", "vmss-newham-avd") in failing
    assert ("NET-006", "afwp-flow-matrix") in failing
    table = check("--state", str(state), "--council", "newham", "--council", "shared")
    assert "NET-005" in table.stdout and "DSK-005" in table.stdout and "NET-006" in table.stdout


def test_state_outputs_override_inputs_as_drift(tmp_path: Path) -> None:
    res = {"type": "azure-native:keyvault:Vault", "name": "kv-newham",
           "inputs": {"properties": {"enablePurgeProtection": True, "enableRbacAuthorization": True}},
           "outputs": {"properties": {"enableRbacAuthorization": False}}}
    state = tmp_path / "s.json"
    state.write_text(json.dumps(export(res)), encoding="utf-8")
    doc = json.loads(check("--state", str(state), "--council", "newham", "--format", "json").stdout)
    (f,) = [f for f in doc["councils"]["newham"]["findings"] if f["rule"] == "DCN-010"]
    assert f["status"] == "fail" and "RBAC" in f["message"]


@pytest.mark.parametrize(("day", "status"), [("2026-06-29", "exempt"), ("2026-06-30", "expired")])
def test_exemption_expires_on_its_date(day: str, status: str) -> None:
    result = runner.invoke(app, ["check", "--root", str(REPO), "--today", day, "--council", "newham",
                                 "--format", "json"])
    doc = json.loads(result.stdout)
    (f,) = [f for f in doc["councils"]["newham"]["findings"]
            if f["rule"] == "DCN-004" and f["resource"] == "nwm-file01"]
    assert f["status"] == status
    assert f["exemption"]["contract"] == "NWM-C02"


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", "s.json:1: not JSON: Expecting property name enclosed in double quotes (column 2)"),
    ("[]", "s.json: not a stack export: expected a JSON object"),
    ('{"version": 3}', "s.json: deployment: missing, or not an object: is this `pulumi stack export` output?"),
    ('{"deployment": {"resources": {}}}', "s.json: deployment.resources: expected a list of resources"),
    ('{"deployment": {"resources": [{"type": "azure-native:network:Subnet"}]}}',
     "s.json: deployment.resources[0].urn: missing, or not a string"),
    ('{"deployment": {"resources": [{"urn": "x", "type": "t"}]}}',
     "s.json: deployment.resources[0].urn: 'x' is not a URN (urn:pulumi:STACK::PROJECT::TYPE::NAME)"),
    ('{"deployment": {"resources": [{"urn": "urn:pulumi:a::p::t::n", "type": "t", "inputs": []}]}}',
     "s.json: deployment.resources[0].inputs: expected an object"),
])
def test_bad_state_file_is_one_line_and_exit_2(content: str, expected: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.json").write_text(content, encoding="utf-8")
    result = check("--state", "s.json")
    assert result.exit_code == 2
    assert result.stderr.strip() == expected


@pytest.mark.parametrize(("args", "expected"), [
    (["--today", "22/11/2026"], "--today: '22/11/2026' is not a date (YYYY-MM-DD)"),
    (["--format", "pdf"],
     "--format: unknown format 'pdf' (known: table, json, junit, sarif, html, caf, caf-json, ce, ce-json)"),
    (["--plan", "--state", "x.json"], "x.json: file not found"),  # with --plan, the deployed state
    (["--council", "camden"],
     "inventories: council: unknown council 'camden' (known: havering, newham, waltham-forest)"),
    (["--state", "missing.json"], "missing.json: file not found"),
])
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], expected: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["check", *args])
    assert result.exit_code == 2
    assert result.stderr.strip() == expected


def test_host_facts_file_adds_host_findings(tmp_path: Path) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps([{"host": "nwm-tc01", "council": "newham", "role": "thin_client", "reachable": True,
                                  "screen_lock_minutes": 45}]), encoding="utf-8")
    doc = json.loads(check("--facts", str(facts), "--council", "newham", "--format", "json").stdout)
    assert "hosts" in doc["sources"]
    (f,) = [f for f in doc["councils"]["newham"]["findings"] if f["rule"] == "DSK-006"]
    assert f["status"] == "fail" and f["kind"] == "host" and "45 minutes" in f["message"]
    facts.write_text(json.dumps([{"host": "x", "council": "newham", "role": "router", "reachable": True,
                                  "colour": "blue"}]), encoding="utf-8")
    bad = check("--facts", str(facts))
    assert bad.exit_code == 2 and bad.stderr.strip().endswith("facts.json: [0].colour: unknown field")


def test_output_file_is_written_whole_with_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "c.json"
    result = check("--format", "json", "--output", str(out))
    assert result.exit_code == 1
    assert result.stdout.startswith(f"wrote {out}: havering ")
    assert "exit 1:" in result.stdout
    assert json.loads(out.read_text(encoding="utf-8"))["exit_code"] == 1
    assert [p.name for p in out.parent.iterdir()] == ["c.json"]


def test_check_with_the_offline_plan_in_its_own_process(tmp_path: Path) -> None:
    """`estate check --plan` runs the stacks under mocks and judges the planned resources too."""
    out = tmp_path / "plan.json"
    proc = subprocess.run([str(Path(sys.executable).parent / "estate"), "check", "--plan", "--today", TODAY,
                           "--format", "json", "--output", str(out)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "ESTATE_ROOT": ""}, check=False)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["sources"] == ["assets", "plan"]
    assert set(doc["councils"]) == {"havering", "newham", "waltham-forest", "shared"}
    cloud = [f for c in doc["councils"].values() for f in c["findings"] if f["kind"] == "cloud"]
    assert len(cloud) > 300
    assert [f for f in cloud if f["status"] != "pass"] == []  # the planned estate meets every cloud rule
    assert len({c["score"] for c in doc["councils"].values()}) == 4

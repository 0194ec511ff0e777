"""The policy pack as the Pulumi engine runs it: its own process, driven over the analyzer's gRPC protocol.

The pack (`python -m pulumi.policy ENGINE policies`, as the engine starts a Python pack) prints its port;
the test calls GetAnalyzerInfo, Configure, Analyze (each planned resource of the example estate) and
AnalyzeStack (each stack), and checks that the pack's verdicts equal the in-process engine's, resource
by resource.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from estate.compliance import evaluate
from estate.compliance.findings import Finding
from estate.controls.base import registry
from estate.loader import Estate, load_estate
from estate.plan import PlannedResource

REPO = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 11, 22)
PLAN_SCRIPT = "import sys; from estate.loader import load_estate; from estate.plan import plan; " \
              "sys.stdout.write(plan(load_estate()).to_json())"


@pytest.fixture(scope="module")
def planned() -> list[PlannedResource]:
    """The example estate's offline plan, made in its own process (the mock runtime is process-global)."""
    out = subprocess.run([sys.executable, "-c", PLAN_SCRIPT], cwd=REPO, capture_output=True, text=True,
                         check=True, env={**os.environ, "ESTATE_ROOT": str(REPO)})
    return [PlannedResource(**r) for r in json.loads(out.stdout)["resources"]]


class Pack:
    def __init__(self, root: Path) -> None:
        env = {**os.environ, "ESTATE_ROOT": str(root), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "pulumi.policy", "127.0.0.1:1", str(REPO / "policies")],
                                     cwd=REPO / "policies", stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.isdigit():
            self.proc.kill()
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            raise AssertionError(f"the pack printed {line!r} instead of its port: {err}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def configure(self, names: list[str], today: dt.date) -> None:
        config = {}
        for name in names:
            props = struct_pb2.Struct()
            props.update({"today": today.isoformat()})
            config[name] = analyzer_pb2.PolicyConfig(enforcementLevel=analyzer_pb2.MANDATORY, properties=props)
        self.stub.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=config))

    def analyze(self, res: PlannedResource) -> list[Any]:
        req = analyzer_pb2.AnalyzeRequest(type=res.type, properties=_struct(res.inputs), urn=res.urn, name=res.name,
                                          options=analyzer_pb2.AnalyzerResourceOptions(parent=res.parent or ""))
        return list(self.stub.Analyze(req).diagnostics)

    def analyze_stack(self, resources: list[PlannedResource]) -> list[Any]:
        req = analyzer_pb2.AnalyzeStackRequest(resources=[
            analyzer_pb2.AnalyzerResource(type=r.type, properties=_struct(r.inputs), urn=r.urn, name=r.name,
                                          parent=r.parent or "",
                                          options=analyzer_pb2.AnalyzerResourceOptions(parent=r.parent or ""))
            for r in resources])
        return list(self.stub.AnalyzeStack(req).diagnostics)


def _struct(inputs: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(inputs)
    return s


@pytest.fixture
def pack() -> Iterator[Pack]:
    p = Pack(REPO)
    yield p
    p.close()


def _configured_policies(p: Pack) -> list[str]:
    info = p.stub.GetAnalyzerInfo(empty_pb2.Empty())
    names = [pol.name for pol in info.policies]
    p.configure(names, TODAY)
    return names


def _failing(findings: list[Finding]) -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """In-process verdicts: per URN the resource rules that fail there; (rule, URN) of stack rules."""
    reg = registry()
    per_resource: dict[str, set[str]] = defaultdict(set)
    per_stack: set[tuple[str, str]] = set()
    for f in findings:
        if f.kind != "cloud" or not f.failing:
            continue
        if reg[f.rule_id].implements("stack"):
            per_stack.add((f.rule_id, f.resource))
        else:
            per_resource[f.resource].add(f.rule_id)
    return per_resource, per_stack


def test_analyzer_info_describes_every_cloud_rule(pack: Pack, estate: Estate) -> None:
    info = pack.stub.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "shared-estate"
    cloud_rules = {rid for rid, cls in registry().items() if "cloud" in cls.kinds()}
    assert {p.name for p in info.policies} == cloud_rules
    from estate.controls.base import control_at

    for pol in info.policies:
        cls = registry()[pol.name]
        control = control_at(estate.framework, cls.control)
        want = analyzer_pb2.MANDATORY if control.enforcement == "mandatory" else analyzer_pb2.ADVISORY
        assert pol.enforcementLevel == want, pol.name
        assert pol.framework.reference == control.id and pol.framework.specification == control.clause
        assert pol.framework.version == estate.framework.version
        assert pol.severity != analyzer_pb2.POLICY_SEVERITY_UNSPECIFIED
        assert pol.remediation_steps
        assert set(pol.configSchema.properties) == {"today", "honourExemptions"}
        kind = analyzer_pb2.POLICY_TYPE_STACK if cls.implements("stack") else analyzer_pb2.POLICY_TYPE_RESOURCE
        assert pol.policy_type == kind


def degrade(planned: list[PlannedResource]) -> list[PlannedResource]:
    """The plan with a spread of deliberate faults, so that both sides have violations to agree on."""
    out: list[PlannedResource] = []
    dropped_peering = False
    for i, res in enumerate(planned):
        inputs = copy.deepcopy(res.inputs)
        t = res.type
        if t == "azure-native:network:VirtualNetworkPeering" and res.stack != "shared" and not dropped_peering:
            dropped_peering = True  # NET-008 (a stack policy) fails for that council
            continue
        if "tags" in inputs and i % 5 == 0:
            inputs["tags"].pop("cost-centre", None)
        if "location" in inputs and i % 7 == 0:
            inputs["location"] = "westeurope"
        if t == "azure-native:keyvault:Vault":
            inputs["properties"]["enablePurgeProtection"] = False
        if t == "azure-native:operationalinsights:Workspace":
            inputs["retentionInDays"] = 30.0
        if t == "azure-native:desktopvirtualization:HostPool" and i % 2 == 0:
            inputs["maxSessionLimit"] = 50.0
        if t == "azure-native:network:NetworkSecurityGroup" and i % 3 == 0:
            inputs["securityRules"].append({"name": "rdp-in", "access": "Allow", "direction": "Inbound",
                                            "protocol": "Tcp", "priority": 300.0, "sourceAddressPrefix": "Internet",
                                            "sourcePortRange": "*", "destinationAddressPrefix": "*",
                                            "destinationPortRange": "3389"})
        if t == "azure-native:network:RouteTable" and res.stack != "shared":
            inputs["routes"][0]["nextHopType"] = "Internet"
        out.append(PlannedResource(res.urn, res.type, res.name, res.stack, res.parent, inputs))
    assert dropped_peering
    return out


@pytest.mark.parametrize("variant", ["as planned", "degraded"])
def test_pack_verdicts_equal_the_engine_for_every_planned_resource(variant: str, pack: Pack, estate: Estate,
                                                                   planned: list[PlannedResource]) -> None:
    resources = planned if variant == "as planned" else degrade(planned)
    _configured_policies(pack)
    report = evaluate(estate, resources=resources, today=TODAY, assets=False)
    per_resource, per_stack = _failing(report.findings)
    judged = violations = 0
    for res in resources:
        diags = pack.analyze(res)
        assert all(d.urn == "" for d in diags)
        assert {d.policyName for d in diags} == per_resource.get(res.urn, set()), res.urn
        judged += 1
        violations += len(diags)
    assert judged == len(resources) > 100
    stacks: dict[str, list[PlannedResource]] = defaultdict(list)
    for res in resources:
        stacks[res.stack].append(res)
    seen: set[tuple[str, str]] = set()
    for group in stacks.values():
        seen |= {(d.policyName, d.urn) for d in pack.analyze_stack(group)}
    assert seen == per_stack
    if variant == "as planned":
        assert violations == 0 and not seen  # the example estate's plan meets every cloud rule
    else:
        rules = {rule for rules in per_resource.values() for rule in rules} | {rule for rule, _ in seen}
        assert {"SEC-010", "DCN-001", "DCN-010", "DCN-008", "DSK-002", "NET-003", "NET-009", "NET-008"} <= rules
        assert violations >= 30


def test_non_compliant_changes_fail_with_the_rule_id_in_both(pack: Pack, estate: Estate,
                                                             planned: list[PlannedResource]) -> None:
    """A public IP on a desktop subnet, a VM size off the list, a flow the matrix forbids."""
    _configured_policies(pack)
    nic = next(r for r in planned if r.type == "azure-native:network:NetworkInterface" and r.stack != "shared")
    vmss = next(r for r in planned if r.type == "azure-native:compute:VirtualMachineScaleSet")
    rcg = next(r for r in planned if r.type == "azure-native:network:FirewallPolicyRuleCollectionGroup")
    bad_nic = copy.deepcopy(nic.inputs)
    bad_nic["ipConfigurations"][0]["publicIPAddress"] = {"id": "pip-id"}
    bad_vmss = copy.deepcopy(vmss.inputs)
    bad_vmss["sku"]["name"] = "Standard_NC24ads_A100_v4"
    bad_rcg = copy.deepcopy(rcg.inputs)
    site = estate.addresses
    keys = list(site.councils)
    bad_rcg["ruleCollections"][0]["rules"].append({
        "ruleType": "NetworkRule", "name": "desktops-to-desktops", "ipProtocols": ["TCP"],
        "sourceAddresses": [str(site.councils[keys[0]].segment("desktops").network)],
        "destinationAddresses": [str(site.councils[keys[1]].segment("desktops").network)],
        "destinationPorts": ["445"]})
    for original, inputs, rule in ((nic, bad_nic, "NET-005"), (vmss, bad_vmss, "DSK-005"), (rcg, bad_rcg, "NET-006")):
        changed = PlannedResource(original.urn, original.type, original.name, original.stack, original.parent, inputs)
        diags = pack.analyze(changed)
        assert [d.policyName for d in diags] == [rule]
        assert diags[0].enforcementLevel == analyzer_pb2.MANDATORY
        assert f"[{rule}]" in diags[0].message and "Fix:" in diags[0].message
        report = evaluate(estate, resources=[changed], today=TODAY, assets=False)
        assert [(f.rule_id, f.status) for f in report.findings if f.status != "pass"] == [(rule, "fail")]


def test_pack_honours_exemptions_until_they_expire(tmp_path: Path, planned: list[PlannedResource]) -> None:
    shutil.copy(REPO / "framework.yaml", tmp_path / "framework.yaml")
    shutil.copytree(REPO / "inventories", tmp_path / "inventories")
    nic = next(r for r in planned if r.type == "azure-native:network:NetworkInterface" and r.stack != "shared")
    council = tmp_path / "inventories" / nic.stack / "council.yml"
    estate = load_estate(tmp_path)
    contract = estate.council(nic.stack).council.contracts[0].id
    text = council.read_text(encoding="utf-8").replace("exemptions:\n", (
        "exemptions:\n"
        f"  - {{rule: NET-005, scope: {nic.name}, reason: test exemption, contract: {contract}, "
        "expires: 2027-01-01, owner: Head of ICT, approver: 'Chair, security board'}\n"), 1)
    council.write_text(text, encoding="utf-8")
    estate = load_estate(tmp_path)
    inputs = copy.deepcopy(nic.inputs)
    inputs["ipConfigurations"][0]["publicIPAddress"] = {"id": "pip-id"}
    changed = PlannedResource(nic.urn, nic.type, nic.name, nic.stack, nic.parent, inputs)
    p = Pack(tmp_path)
    try:
        names = [pol.name for pol in p.stub.GetAnalyzerInfo(empty_pb2.Empty()).policies]
        for day, status in ((TODAY, "exempt"), (dt.date(2027, 1, 1), "expired")):
            p.configure(names, day)
            diags = p.analyze(changed)
            report = evaluate(estate, resources=[changed], today=day, assets=False)
            found = [f for f in report.findings if f.rule_id == "NET-005"]
            assert [f.status for f in found] == [status]
            assert [d.policyName for d in diags] == ([] if status == "exempt" else ["NET-005"])
            if status == "expired":
                assert "expired on 2027-01-01" in diags[0].message
    finally:
        p.close()

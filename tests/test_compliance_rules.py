"""Every rule has a pair of fixtures: the passing one passes, the failing one fails with the rule's id, and
each case names exactly which resources pass (`passes:`) and which fail (`fails:`), as Checkov's tests do.

Fixtures live in the control's home, estate/controls/<area>/<control>/fixtures/<RULE-ID>.yml (see
estate/compliance/fixtures.py for the format).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from estate.compliance import evaluate
from estate.compliance.findings import Finding
from estate.compliance.fixtures import BASELINE_FILE, fixture_files, fixture_path, load_case, read
from estate.controls.base import control_at, registry
from estate.controls.network.flows import fqdn_covers, judge_egress
from estate.loader import Estate

BASELINE: dict[str, Any] = read(BASELINE_FILE)
TODAY: dt.date = BASELINE["today"]
RULES = sorted(registry())


def judge(estate: Estate, rule_id: str, case: dict[str, Any]) -> list[Finding]:
    c = load_case(estate, case, BASELINE)
    report = evaluate(c.estate, resources=c.resources, hosts=c.hosts, councils=c.councils, today=TODAY,
                      rules=[rule_id], assets=c.council is not None)
    return [f for f in report.findings if f.rule_id == rule_id]


def named(findings: list[Finding], status: str) -> list[str]:
    """The names of the resources with this status: a host's or asset's name, a cloud resource's URN's last part."""
    return sorted({f.resource.rsplit("::", 1)[-1] for f in findings if f.status == status})


def check_names(rule_id: str, findings: list[Finding], case: dict[str, Any]) -> None:
    """The case's `passes:` and `fails:` are exactly the resources that pass and fail."""
    if "passes" in case or "fails" in case:
        assert named(findings, "pass") == sorted(case.get("passes") or []), f"{rule_id}: passing resources"
        assert named(findings, "fail") == sorted(case.get("fails") or []), f"{rule_id}: failing resources"


def test_there_are_at_least_30_rules_across_every_domain() -> None:
    assert len(RULES) >= 30
    assert {r.split("-")[0] for r in RULES} == {"NET", "DSK", "DCN", "HLP", "SEC"}


def test_every_fixture_names_a_rule() -> None:
    files = set(fixture_files())
    assert files == set(RULES)


@pytest.mark.parametrize("rule_id", RULES)
def test_rule_metadata_comes_from_the_framework(rule_id: str, estate: Estate) -> None:
    cls = registry()[rule_id]
    assert re.fullmatch(r"(NET|DSK|DCN|HLP|SEC)-\d{3}", rule_id)
    control = control_at(estate.framework, cls.control)
    assert control.clause.split(":")[0] in {s.id for s in estate.framework.standards}
    assert cls.severity in ("critical", "high", "medium", "low")
    fix = cls().remediation(estate.framework)
    assert fix and "{" not in fix
    assert cls.kinds(), f"{rule_id} judges nothing"


@pytest.mark.parametrize("rule_id", RULES)
def test_passing_fixture_passes(rule_id: str, estate: Estate) -> None:
    fixture = read(fixture_path(rule_id))
    findings = judge(estate, rule_id, fixture["pass"])
    assert findings, f"{rule_id}: the passing fixture is not judged at all"
    check_names(rule_id, findings, fixture["pass"])
    assert [f.status for f in findings] == ["pass"] * len(findings), [f.message for f in findings]
    kinds = {f.kind for f in findings}
    assert kinds == set(registry()[rule_id].kinds()), f"{rule_id}: fixture covers {kinds}"


@pytest.mark.parametrize("rule_id", RULES)
def test_failing_fixture_fails_with_the_rule_id(rule_id: str, estate: Estate) -> None:
    fixture = read(fixture_path(rule_id))
    findings = judge(estate, rule_id, fixture["fail"])
    check_names(rule_id, findings, fixture["fail"])
    failures = [f for f in findings if f.status == "fail"]
    assert failures, f"{rule_id}: the failing fixture passes: {[f.message for f in findings]}"
    cls = registry()[rule_id]
    control = control_at(estate.framework, cls.control)
    for f in failures:
        assert f.rule_id == rule_id
        assert f.control == control.id and f.clause == control.clause and f.enforcement == control.enforcement
        assert f.message and f.fix
        assert f.resource
    kinds = {f.kind for f in failures}
    assert kinds == set(cls.kinds()), f"{rule_id}: the failing fixture fails only for {kinds}"


def test_auditd_is_judged_on_machines_not_in_containers(estate: Estate) -> None:
    """Only the kernel's initial PID namespace may run an audit daemon: a container's audit trail is its
    host machine's, so SEC-008 does not apply to it, while an unreachable container still fails."""
    assert judge(estate, "SEC-008", {"hosts": [{"role": "dc_services", "auditd_active": False,
                                                "container": True}]}) == []
    unreachable = judge(estate, "SEC-008", {"hosts": [{"role": "dc_services", "container": True,
                                                       "reachable": False}]})
    assert [f.status for f in unreachable] == ["fail"]


def test_network_rules_with_fqdns_need_the_dns_proxy(estate: Estate) -> None:
    case = read(fixture_path("NET-012"))["pass"]
    case["resources"][0]["inputs"] = {}  # the firewall policy without dnsSettings.enableProxy
    failures = [f for f in judge(estate, "NET-012", case) if f.status == "fail"]
    assert [f.message for f in failures] == [
        "network rules windows-activation name FQDNs but the policy's DNS proxy is off (dnsSettings.enableProxy): "
        "they match nothing"]


@pytest.mark.parametrize(("pattern", "name", "covered"), [
    ("*", "*", True), ("*.debian.org", "*", False), ("deb.debian.org", "*", False),
    ("*.monitor.core.windows.net", "a.prod.warm.ingest.monitor.core.windows.net", True),
    ("*.monitor.core.windows.net", "*.ingest.monitor.core.windows.net", True),
    ("*.ingest.monitor.core.windows.net", "*.monitor.core.windows.net", False),
    ("deb.debian.org", "DEB.debian.org.", True), ("deb.debian.org", "security.debian.org", False),
])
def test_a_purposes_fqdn_covers_a_rules_fqdn(pattern: str, name: str, covered: bool) -> None:
    assert fqdn_covers(pattern, name) is covered


def test_an_application_rule_allowing_everything_fails_unless_a_purpose_names_it_for_those_sources(
        estate: Estate) -> None:
    """`*` is guest-internet's, for the guest VLAN: from the guest VLAN it passes, from guest and desktops it fails."""
    plan = estate.addresses
    guest = [str(c.segment("guest").network) for c in plan.councils.values()]
    desktops = [str(c.segment("desktops").network) for c in plan.councils.values()]
    purposes = estate.framework.network.egress.purposes
    web = [("http", (80, 80)), ("https", (443, 443))]
    assert judge_egress(plan, purposes, guest, [("fqdn", "*")], web) == []
    wrong = judge_egress(plan, purposes, guest + desktops[:1], [("fqdn", "*")], web)
    assert len(wrong) == 2 and all("desktops -> * http" in w for w in wrong)
    assert judge_egress(plan, purposes, ["*"], [("fqdn", "deb.debian.org")], web)
    assert judge_egress(plan, purposes, guest, [("fqdn", "*")], [("https", (8443, 8443))])


def test_at_preview_the_bastion_nsg_is_the_one_holding_exactly_bastions_rules(estate: Estate) -> None:
    """During a preview the subnet's reference to an NSG not yet created is unknown: the stack's one NSG holding
    exactly Bastion's required rules is taken for AzureBastionSubnet's, and no other NSG gains its exception."""
    case = read(fixture_path("NET-003"))["pass"]
    resources = [dict(r) for r in case["resources"]]
    subnet = next(r for r in resources if r["type"].endswith(":Subnet"))
    subnet["inputs"] = {**subnet["inputs"], "networkSecurityGroup": {"id": "[unknown]"}}
    assert {f.status for f in judge(estate, "NET-003", {"resources": resources})} == {"pass"}
    assert {f.status for f in judge(estate, "NET-007", {"resources": resources})} == {"pass"}
    https = next(r for r in resources if r.get("name") == "nsg-shared-bastion")["inputs"]["securityRules"][:1]
    lone = {"type": "azure-native:network:NetworkSecurityGroup", "name": "nsg-shared-management", "stack": "shared",
            "inputs": {"networkSecurityGroupName": "nsg-shared-management", "securityRules": https}}
    failed = [f for f in judge(estate, "NET-003", {"resources": [*resources, lone]}) if f.status == "fail"]
    assert [f.message for f in failed] == ["nsg-shared-management: rule AllowHttpsInbound allows Internet in"]

"""The policy pack in process: a policy per cloud rule with the spec's metadata, the same verdicts as
the engine on every rule's fixtures, and a __main__ that only constructs the PolicyPack."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

from estate.compliance.fixtures import BASELINE_FILE, fixture_path, load_case, read
from estate.compliance.pack import CONFIG_SCHEMA, plain, policies
from estate.controls.base import Resource, control_at, registry
from estate.loader import Estate

REPO = Path(__file__).resolve().parent.parent
BASELINE: dict[str, Any] = read(BASELINE_FILE)
CLOUD = sorted(rid for rid, cls in registry().items() if "cloud" in cls.kinds())


def _opts(parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)


def run_policy(policy: Any, resources: list[Resource], config: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(message, urn) of each violation the policy reports, as the analyzer would collect them."""
    reported: list[tuple[str, str | None]] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append((message, urn))

    if isinstance(policy, ResourceValidationPolicy):
        for r in resources:
            props = unknown_checking_proxy(dict(r.inputs))
            args = ResourceValidationArgs(r.type, props, r.urn, r.name, _opts(r.parent), None, config)
            policy.validate(args, report)
    else:
        assert isinstance(policy, StackValidationPolicy)
        stack = [PolicyResource(r.type, unknown_checking_proxy(dict(r.inputs)), r.urn, r.name, _opts(r.parent), None,
                                None, [], {}) for r in resources]
        policy.validate(StackValidationArgs(stack, config), report)
    return reported


def test_a_policy_per_cloud_rule_with_the_spec_metadata(estate: Estate) -> None:
    built = {p.name: p for p in policies(estate)}
    assert sorted(built) == CLOUD
    for name, p in built.items():
        cls = registry()[name]
        control = control_at(estate.framework, cls.control)
        level = EnforcementLevel.MANDATORY if control.enforcement == "mandatory" else EnforcementLevel.ADVISORY
        assert p.enforcement_level == level
        assert p.severity is not None and p.severity.value == cls.severity
        assert p.framework.reference == control.id and p.framework.specification == control.clause
        assert p.framework.name == estate.framework.name
        assert p.config_schema is not None and p.config_schema.properties == CONFIG_SCHEMA
        assert p.remediation_steps == cls().remediation(estate.framework)
        assert isinstance(p, StackValidationPolicy) == cls.implements("stack")


@pytest.mark.parametrize("rule_id", CLOUD)
@pytest.mark.parametrize("case", ["pass", "fail"])
def test_policy_verdict_on_the_rule_fixtures(rule_id: str, case: str, estate: Estate) -> None:
    fixture = read(fixture_path(rule_id))[case]
    c = load_case(estate, {"resources": fixture["resources"]}, BASELINE)
    assert c.resources
    policy = next(p for p in policies(c.estate) if p.name == rule_id)
    reported = run_policy(policy, c.resources, {"today": str(BASELINE["today"])})
    if case == "pass":
        assert reported == []
    else:
        assert reported, f"{rule_id}: the failing fixture raises no violation"
        assert all(msg.startswith(f"[{rule_id}] ") and "Fix:" in msg for msg, _ in reported)


def test_plain_unwraps_proxies_and_marks_unknowns() -> None:
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    props = unknown_checking_proxy({"a": [{"b": 1.0}, UNKNOWN_STRING_VALUE], "c": {"d": UNKNOWN_STRING_VALUE}})
    assert plain(props) == {"a": [{"b": 1.0}, "[unknown]"], "c": {"d": "[unknown]"}}


def test_audit_config_reports_exempt_findings(estate: Estate, tmp_path: Path) -> None:
    """honourExemptions false: an exempt finding is a violation too."""
    import dataclasses

    from estate.models import Council, Exemption

    rec = estate.councils[BASELINE["key"]]
    ex = Exemption(rule="NET-009", scope="rt-*", reason="test", contract=rec.council.contracts[0].id,
                   expires=BASELINE["today"].replace(year=BASELINE["today"].year + 1), owner="Head of ICT",
                   approver="Chair, security board")
    council = Council.model_validate({**rec.council.model_dump(), "exemptions": [ex.model_dump()]})
    exempted = dataclasses.replace(estate, councils={**estate.councils,
                                                     rec.key: dataclasses.replace(rec, council=council)})
    fixture = read(fixture_path("NET-009"))["fail"]
    c = load_case(exempted, {"resources": fixture["resources"]}, BASELINE)
    policy = next(p for p in policies(exempted) if p.name == "NET-009")
    today = str(BASELINE["today"])
    assert run_policy(policy, c.resources or [], {"today": today}) == []
    assert run_policy(policy, c.resources or [], {"today": today, "honourExemptions": False})


def test_main_only_constructs_the_policy_pack() -> None:
    tree = ast.parse((REPO / "policies" / "__main__.py").read_text(encoding="utf-8"))
    statements = [n for n in tree.body if not isinstance(n, ast.Import | ast.ImportFrom)]
    statements = [n for n in statements if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert len(statements) == 1
    call = statements[0]
    assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
    assert isinstance(call.value.func, ast.Name) and call.value.func.id == "PolicyPack"


def test_pulumi_policy_yaml_names_the_python_runtime() -> None:
    import yaml

    spec = yaml.safe_load((REPO / "policies" / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    assert spec["runtime"]["name"] == "python"
    assert spec["version"]

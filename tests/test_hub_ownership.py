"""A council's stack needs no rights on the hub: the hub's side of every spoke's peering and the spokes' links on
the hub's private DNS zones belong to the hub stack, which also pins each spoke's subnets to its route table and
NSGs with an Azure Policy deny assignment on the spoke's network resource group."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from estate.contract import check_plan
from estate.loader import load_estate
from estate.plan import Plan, PlannedResource, plan
from stacks.guard import P_FIREWALL, P_NSGS, P_ROUTE_TABLE, policy_rule
from tests.stacks_support import REPO, only, repo_estate, repo_plan

PEERING = "azure-native:network:VirtualNetworkPeering"
LINK = "azure-native:privatedns:VirtualNetworkLink"
ASSIGNMENT = "azure-native:authorization:PolicyAssignment"
DEFINITION = "azure-native:authorization:PolicyDefinition"
COUNCILS = sorted(repo_estate().councils)


def _id(res: PlannedResource, _planned: Plan) -> str:
    """The planned resource's Azure id, as the mocks gave it (a resource referenced by another shows it)."""
    from estate.plan import mock_id

    return mock_id(res.type, res.name, res.inputs)


@pytest.mark.parametrize("council", COUNCILS)
def test_a_council_s_plan_holds_nothing_in_the_hub_s_groups_nor_above_its_own(council: str) -> None:
    planned = repo_plan()
    hub_groups = {r.inputs["resourceGroupName"] for r in planned.for_stack("shared")
                  if r.type == "azure-native:resources:ResourceGroup"}
    own_groups = {r.inputs["resourceGroupName"] for r in planned.for_stack(council)
                  if r.type == "azure-native:resources:ResourceGroup"}
    for res in planned.for_stack(council):
        if not res.custom:
            continue
        group = res.inputs.get("resourceGroupName")
        assert group not in hub_groups, f"{res.name} is in the hub's {group}"
        # Network Watcher's resource group is Azure's, per region: the VNet flow log is its child
        assert group is None or group in own_groups or group == "NetworkWatcherRG", (res.name, group)
        scope = res.inputs.get("scope")
        if isinstance(scope, str):  # role assignments: on the council's own resources only
            assert any(f"/resourceGroups/{g}" in scope for g in own_groups), (res.name, scope)
        assert res.type not in (DEFINITION, ASSIGNMENT)
    assert not planned.of_type(LINK, council)
    assert [p.name for p in planned.of_type(PEERING, council)] == [f"peer-{council}-to-hub"]


def test_the_hub_plan_holds_the_hub_side_of_every_peering_and_every_spoke_s_dns_links() -> None:
    planned = repo_plan()
    zones = {z.inputs["privateZoneName"] for z in planned.of_type("azure-native:privatedns:PrivateZone", "shared")}
    hub_vnet = only(planned.of_type("azure-native:network:VirtualNetwork", "shared"), "vnet-shared")
    for council in COUNCILS:
        spoke = only(planned.of_type("azure-native:network:VirtualNetwork", council), f"vnet-{council}")
        back = only(planned.of_type(PEERING, "shared"), f"peer-hub-to-{council}").inputs
        # the hub names the spoke by the naming convention: the id the council's stack gives its VNet
        assert back["remoteVirtualNetwork"]["id"] == _id(spoke, planned)
        assert back["virtualNetworkName"] == hub_vnet.inputs["virtualNetworkName"]
        links = {link.inputs["privateZoneName"] for link in planned.of_type(LINK, "shared")
                 if link.inputs["virtualNetwork"]["id"] == _id(spoke, planned)}
        assert links == zones


@pytest.mark.parametrize("council", COUNCILS)
def test_the_hub_pins_each_spoke_to_the_route_table_and_nsgs_its_stack_gives_it(council: str) -> None:
    planned = repo_plan()
    (definition,) = planned.of_type(DEFINITION, "shared")
    assignment = only(planned.of_type(ASSIGNMENT, "shared"), f"pa-{council}-spoke-guard").inputs
    network_rg = only(planned.of_type("azure-native:resources:ResourceGroup", council), f"rg-{council}-network")
    assert assignment["scope"] == _id(network_rg, planned)
    assert assignment["policyDefinitionId"] == _id(definition, planned)
    assert assignment.get("enforcementMode") == "Default"
    params = {k: v["value"] for k, v in assignment["parameters"].items()}
    subnets = planned.of_type("azure-native:network:Subnet", council)
    assert {s.inputs["routeTable"]["id"] for s in subnets} == {params[P_ROUTE_TABLE]}
    assert {s.inputs["networkSecurityGroup"]["id"] for s in subnets} == set(params[P_NSGS])
    firewall = only(planned.of_type("azure-native:network:AzureFirewall", "shared"), "afw-shared")
    assert firewall  # the default route the policy keeps is the one to the hub firewall's address
    route_table = only(planned.of_type("azure-native:network:RouteTable", council), f"rt-{council}").inputs
    assert {"addressPrefix": "0.0.0.0/0", "nextHopIpAddress": params[P_FIREWALL]}.items() <= next(
        r for r in route_table["routes"] if r["addressPrefix"] == "0.0.0.0/0").items()
    # what the council's stack writes passes the policy; taking a subnet off its route table or NSG does not
    rule = definition.inputs["policyRule"]
    for subnet in subnets:
        body = {"type": "Microsoft.Network/virtualNetworks/subnets", "name": subnet.inputs["subnetName"],
                "properties": {k: subnet.inputs[k] for k in ("routeTable", "networkSecurityGroup")}}
        assert not _denied(rule, body, params), subnet.name
        props: dict[str, Any] = body["properties"]
        assert _denied(rule, {**body, "properties": {"networkSecurityGroup": props["networkSecurityGroup"]}},
                       params)
        assert _denied(rule, {**body, "properties": {**props, "networkSecurityGroup": {"id": "/elsewhere"}}},
                       params)
    entries = [{"name": r["name"], "properties": r} for r in route_table["routes"]]
    routes: dict[str, Any] = {"type": "Microsoft.Network/routeTables", "name": f"rt-{council}",
                              "properties": {"routes": entries}}
    assert not _denied(rule, routes, params)
    without_default = [r for r in entries if r["properties"]["addressPrefix"] != "0.0.0.0/0"]
    assert _denied(rule, {**routes, "properties": {"routes": without_default}}, params)


def test_the_policy_and_its_assignments_pass_the_platform_contract() -> None:
    planned = repo_plan()
    guard = [r for r in planned.resources if r.type in (DEFINITION, ASSIGNMENT)]
    assert len(guard) == 1 + len(COUNCILS)
    assert [f for f in check_plan(guard) if f.rule.startswith("ARM-")] == []
    broken = PlannedResource(guard[-1].urn, guard[-1].type, guard[-1].name, "shared", None,
                             {**guard[-1].inputs, "enforcementMode": "Sometimes"})
    assert [f.rule for f in check_plan([broken])] == ["ARM-SCHEMA"]


def test_a_hub_with_no_spoke_deployed_yet_connects_none(repo_copy: Path) -> None:
    """The order of a first deployment: the hub (no spoke exists: Azure refuses a peering to a VNet that does not
    exist), then the council, then the hub again with the council in `spokes`."""
    for path in REPO.glob("Pulumi*.yaml"):
        shutil.copy(path, repo_copy / path.name)
    (repo_copy / "Pulumi.shared.yaml").write_text("config:\n  azure-native:location: uksouth\n"
                                                  "  shared-estate:spokes: []\n")
    first = plan(load_estate(repo_copy), ["shared"], workers=1)
    assert not [r.name for r in first.resources if r.type in (PEERING, ASSIGNMENT)]
    assert {r.name for r in first.of_type(LINK)} == {"link-vaultcore-shared", "link-postgres-shared"}
    (repo_copy / "Pulumi.shared.yaml").write_text("config:\n  azure-native:location: uksouth\n"
                                                  "  shared-estate:spokes: [newham]\n")
    second = plan(load_estate(repo_copy), ["shared"], workers=1)
    assert [r.name for r in second.of_type(PEERING)] == ["peer-hub-to-newham"]
    assert [r.name for r in second.of_type(ASSIGNMENT)] == ["pa-newham-spoke-guard"]


def test_the_rule_denies_and_names_only_real_aliases() -> None:
    rule = policy_rule()
    assert rule["then"] == {"effect": "deny"}
    fields = set(_fields(rule["if"]))
    assert fields == {
        "type", "name",
        "Microsoft.Network/virtualNetworks/subnets/routeTable.id",
        "Microsoft.Network/virtualNetworks/subnets/networkSecurityGroup.id",
        "Microsoft.Network/virtualNetworks/subnets[*]",
        "Microsoft.Network/virtualNetworks/subnets[*].name",
        "Microsoft.Network/virtualNetworks/subnets[*].routeTable.id",
        "Microsoft.Network/virtualNetworks/subnets[*].networkSecurityGroup.id",
        "Microsoft.Network/routeTables/routes[*]",
        "Microsoft.Network/routeTables/routes[*].addressPrefix",
        "Microsoft.Network/routeTables/routes[*].nextHopIpAddress",
        "Microsoft.Network/routeTables/routes/addressPrefix",
        "Microsoft.Network/routeTables/routes/nextHopIpAddress",
    }


# ---- a small evaluator for the policy language the rule uses (field, count, allOf/anyOf, equals/notEquals/in/
# notIn/less/greater; string comparison case-insensitive, a missing field compares as not equal: Azure Policy's
# definition-structure-policy-rule). Aliases map to the request body's properties.

_ALIASES = {
    "Microsoft.Network/virtualNetworks/subnets/routeTable.id": "routeTable.id",
    "Microsoft.Network/virtualNetworks/subnets/networkSecurityGroup.id": "networkSecurityGroup.id",
    "Microsoft.Network/routeTables/routes/addressPrefix": "addressPrefix",
    "Microsoft.Network/routeTables/routes/nextHopIpAddress": "nextHopIpAddress",
}
_ARRAYS = {"Microsoft.Network/virtualNetworks/subnets[*]": "subnets",
           "Microsoft.Network/routeTables/routes[*]": "routes"}


def _fields(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["field"]] if "field" in node else []
        return out + [f for v in node.values() for f in _fields(v)]
    if isinstance(node, list):
        return [f for v in node for f in _fields(v)]
    return []


def _get(props: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        props = props.get(part) if isinstance(props, dict) else None
    return props


def _field(name: str, body: dict[str, Any], item: dict[str, Any] | None) -> Any:
    if name in ("type", "name"):
        return body[name]
    if "[*]." in name and item is not None:
        tail = name.split("[*].", 1)[1]
        return item.get("name") if tail == "name" else _get(item.get("properties", {}), tail)
    return _get(body.get("properties", {}), _ALIASES[name])


def _value(value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("[parameters('"):
        return params[value[len("[parameters('"):-len("')]")]]
    return value


def _norm(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


def _holds(cond: dict[str, Any], body: dict[str, Any], params: dict[str, Any],
           item: dict[str, Any] | None = None) -> bool:
    if "allOf" in cond:
        return all(_holds(c, body, params, item) for c in cond["allOf"])
    if "anyOf" in cond:
        return any(_holds(c, body, params, item) for c in cond["anyOf"])
    if "count" in cond:
        items = body.get("properties", {}).get(_ARRAYS[cond["count"]["field"]]) or []
        n = sum(1 for it in items if _holds(cond["count"]["where"], body, params, it))
        op = next(k for k in cond if k != "count")
        limit = int(cond[op])
        return {"greater": n > limit, "less": n < limit, "equals": n == limit}[op]
    actual = _norm(_field(cond["field"], body, item))
    op = next(k for k in cond if k != "field")
    expected = _value(cond[op], params)
    if op == "equals":
        return bool(actual == _norm(expected))
    if op == "notEquals":
        return bool(actual != _norm(expected))
    if op == "notIn":
        return actual not in [_norm(e) for e in expected]
    raise AssertionError(f"operator {op} not modelled")


def _denied(rule: dict[str, Any], body: dict[str, Any], params: dict[str, Any]) -> bool:
    return _holds(rule["if"], body, params)

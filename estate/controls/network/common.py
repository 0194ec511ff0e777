"""What the network controls share: the Azure network resource types they judge, the address plan's site of a
stack, a resource's subnets, and the allow rules of the hub firewall's policy."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from estate.controls.base import CloudResource, Context, as_list, get
from estate.ipam import HUB, SitePlan

VNET = "azure-native:network:VirtualNetwork"
SUBNET = "azure-native:network:Subnet"
NSG = "azure-native:network:NetworkSecurityGroup"
PEERING = "azure-native:network:VirtualNetworkPeering"
ROUTE_TABLE = "azure-native:network:RouteTable"
RULE_GROUP = "azure-native:network:FirewallPolicyRuleCollectionGroup"
FIREWALL_POLICY = "azure-native:network:FirewallPolicy"
FLOW_LOG = "azure-native:network:FlowLog"


def site(ctx: Context, stack: str) -> SitePlan | None:
    """The address plan's site of a stack: the hub's, a council's, or None for a stack that is no site."""
    plan = ctx.addresses
    if stack == HUB:
        return plan.hub
    return plan.councils.get(stack)


def subnet_name(res: CloudResource) -> str:
    value = res.inputs.get("subnetName") or res.inputs.get("name") or res.name
    return str(value)


def inline_subnets(res: CloudResource) -> list[Mapping[str, Any]]:
    """The subnets a VirtualNetwork declares inline."""
    return [s for s in as_list(res.inputs.get("subnets")) if isinstance(s, Mapping)]


def subnet_values(res: CloudResource, key: str) -> list[tuple[str, Any]]:
    """(subnet name, its value at `key`) of a Subnet resource, or of each subnet a VirtualNetwork declares inline."""
    if res.type == SUBNET:
        return [(subnet_name(res), res.inputs.get(key))]
    return [(str(s.get("name")), s.get(key)) for s in inline_subnets(res)]


def allow_rules(group: CloudResource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The rules of a firewall policy rule collection group's Allow collections, each with its collection's name."""
    for coll in as_list(group.inputs.get("ruleCollections")):
        if isinstance(coll, Mapping) and str(get(coll, "action.type", "")).lower() == "allow":
            for r in as_list(coll.get("rules")):
                if isinstance(r, Mapping):
                    yield str(coll.get("name")), r


def app_protocols(r: Mapping[str, Any]) -> list[tuple[str, int]]:
    """An application rule's protocols as ("https", 443); a port that is no number reads as 0 (no purpose's)."""
    out: list[tuple[str, int]] = []
    for p in as_list(r.get("protocols")):
        if not isinstance(p, Mapping):
            continue
        value = p.get("port")
        try:
            number = float(str(value))
            port = int(number) if number.is_integer() and 0 <= number <= 65535 else 0
        except (ValueError, OverflowError):
            port = 0
        out.append((str(p.get("protocolType", "")).lower(), port))
    return out

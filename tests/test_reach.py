"""Reachability (estate.reach): hop-level Azure semantics on small hand-made networks, the plan-wide properties on
the example estate's plan, deliberately broken copies of that plan caught with the deciding rule named, and the
cloud plane's table equal to the lab probe's."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from typer.testing import CliRunner

from estate.cli import _register_extensions, app
from estate.compliance import evaluate
from estate.compliance.engine import judge_estate
from estate.controls.base import Context, Outcome, Rule, passed, registry
from estate.isolation import exchange_pairs
from estate.lab.probe import build_matrix
from estate.lab.topology import build, load_config
from estate.loader import Estate
from estate.plan import PlannedResource
from estate.reach import Network, Trace, verify
from estate.reach.addresses import Population
from estate.reach.network import Uniform
from estate.reach.verify import verdict_table
from tests.stacks_support import REPO, repo_plan

RG = "rg"
NET = "/resourceGroups/rg/providers/Microsoft.Network"
ANYP = "*"


# --------------------------------------------------------------------------- hand-made networks


def res(type_: str, name: str, stack: str = "c1", **inputs: Any) -> PlannedResource:
    return PlannedResource(f"urn:pulumi:{stack}::p::{type_}::{name}", f"azure-native:network:{type_}", name, stack,
                           None, {"resourceGroupName": RG, **inputs})


def vnet(name: str, prefix: str, stack: str = "c1") -> PlannedResource:
    return res("VirtualNetwork", name, stack, virtualNetworkName=name, addressSpace={"addressPrefixes": [prefix]})


def subnet(net: str, name: str, prefix: str, nsg: str | None = None, rt: str | None = None, stack: str = "c1",
           **extra: Any) -> PlannedResource:
    inputs: dict[str, Any] = {"subnetName": name, "virtualNetworkName": net, "addressPrefix": prefix, **extra}
    if nsg:
        inputs["networkSecurityGroup"] = {"id": f"{NET}/networkSecurityGroups/{nsg}"}
    if rt:
        inputs["routeTable"] = {"id": f"{NET}/routeTables/{rt}"}
    return res("Subnet", f"{net}-{name}", stack, **inputs)


def rule(name: str, priority: int, direction: str, access: str, src: str = ANYP, dst: str = ANYP,
         port: str = ANYP, protocol: str = "*") -> dict[str, Any]:
    return {"name": name, "priority": float(priority), "direction": direction, "access": access,
            "protocol": protocol, "sourceAddressPrefix": src, "destinationAddressPrefix": dst,
            "sourcePortRange": ANYP, "destinationPortRange": port}


def nsg(name: str, *rules: dict[str, Any], stack: str = "c1") -> PlannedResource:
    return res("NetworkSecurityGroup", name, stack, networkSecurityGroupName=name, securityRules=list(rules))


def route_table(name: str, *routes: tuple[str, str, str, str | None], stack: str = "c1") -> PlannedResource:
    return res("RouteTable", name, stack, routeTableName=name, routes=[
        {"name": n, "addressPrefix": p, "nextHopType": t, **({"nextHopIpAddress": ip} if ip else {})}
        for n, p, t, ip in routes])


def peering(local: str, remote: str, *, access: bool = True, forwarded: bool = True,
            stack: str = "c1") -> PlannedResource:
    return res("VirtualNetworkPeering", f"{local}-to-{remote}", stack, virtualNetworkPeeringName=f"to-{remote}",
               virtualNetworkName=local, remoteVirtualNetwork={"id": f"{NET}/virtualNetworks/{remote}"},
               allowVirtualNetworkAccess=access, allowForwardedTraffic=forwarded)


def firewall_hub(*collections: dict[str, Any], group_priority: int = 100, dns_proxy: bool = False,
                 more_groups: Iterable[PlannedResource] = ()) -> list[PlannedResource]:
    """A hub VNet 10.0.0.0/16 with AzureFirewallSubnet 10.0.1.0/26 (the firewall at 10.0.1.4) and its policy."""
    return [
        vnet("hub", "10.0.0.0/16", "hub"),
        subnet("hub", "AzureFirewallSubnet", "10.0.1.0/26", stack="hub"),
        res("AzureFirewall", "afw", "hub", azureFirewallName="afw",
            firewallPolicy={"id": f"{NET}/firewallPolicies/afwp"},
            ipConfigurations=[{"name": "ip", "subnet": {"id": f"{NET}/virtualNetworks/hub/subnets/AzureFirewallSubnet"},
                               "publicIPAddress": {"id": f"{NET}/publicIPAddresses/pip"}}]),
        res("FirewallPolicy", "afwp", "hub", firewallPolicyName="afwp",
            **({"dnsSettings": {"enableProxy": True}} if dns_proxy else {})),
        res("FirewallPolicyRuleCollectionGroup", "rcg", "hub", firewallPolicyName="afwp",
            ruleCollectionGroupName="main", priority=float(group_priority), ruleCollections=list(collections)),
        *more_groups,
    ]


def collection(name: str, priority: int, action: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "priority": float(priority), "action": {"type": action},
            "ruleCollectionType": "FirewallPolicyFilterRuleCollection", "rules": list(rules)}


def net_rule(name: str, src: str, dst: str, port: str, protocol: str = "TCP", fqdns: list[str] | None = None
             ) -> dict[str, Any]:
    return {"ruleType": "NetworkRule", "name": name, "sourceAddresses": [src], "destinationAddresses": [dst] if dst
            else [], "destinationPorts": [port], "ipProtocols": [protocol], "destinationFqdns": fqdns or []}


def app_rule(name: str, src: str, fqdns: list[str], port: int = 443) -> dict[str, Any]:
    return {"ruleType": "ApplicationRule", "name": name, "sourceAddresses": [src], "targetFqdns": fqdns,
            "protocols": [{"protocolType": "Https", "port": float(port)}]}


def spoke(name: str, prefix: str, workload: str, stack: str, *, nsg_name: str | None = None,
          via_firewall: bool = True) -> list[PlannedResource]:
    """A spoke VNet with one subnet, peered with the hub both ways, its traffic routed to the firewall."""
    out = [vnet(name, prefix, stack), subnet(name, "work", workload, nsg_name, f"rt-{name}" if via_firewall else None,
                                             stack), peering(name, "hub", stack=stack),
           peering("hub", name, stack=stack)]
    if via_firewall:
        out.append(route_table(f"rt-{name}", ("default", "0.0.0.0/0", "VirtualAppliance", "10.0.1.4"),
                               ("supernet", "10.0.0.0/8", "VirtualAppliance", "10.0.1.4"), stack=stack))
    return out


def one_vnet(*resources: PlannedResource) -> Network:
    return Network.from_plan([vnet("v", "10.1.0.0/16"), subnet("v", "a", "10.1.1.0/24", "nsg-a"),
                              subnet("v", "b", "10.1.2.0/24", "nsg-b"), *resources])


def decided(trace: Trace) -> tuple[str, str, bool]:
    return trace.deciding.where, trace.deciding.rule, trace.allowed


def test_nsg_rules_apply_in_priority_order_not_listing_order() -> None:
    net = one_vnet(nsg("nsg-a"), nsg("nsg-b", rule("allow-https", 200, "Inbound", "Allow", port="443"),
                                     rule("deny-https", 100, "Inbound", "Deny", port="443")))
    assert decided(net.trace("c1/a", "c1/b", "tcp", 443)) == ("nsg-b", "deny-https", False)
    net = one_vnet(nsg("nsg-a"), nsg("nsg-b", rule("allow-https", 100, "Inbound", "Allow", port="443"),
                                     rule("deny-https", 200, "Inbound", "Deny", port="443")))
    assert decided(net.trace("c1/a", "c1/b", "tcp", 443)) == ("nsg-b", "allow-https", True)


def test_default_rules_allow_the_virtual_network_and_deny_the_rest() -> None:
    net = Network.from_plan([vnet("v", "10.1.0.0/16"), subnet("v", "a", "10.1.1.0/24", "nsg-a"),
                             subnet("v", "b", "10.1.2.0/24", "nsg-b"), nsg("nsg-a"), nsg("nsg-b"),
                             vnet("w", "10.2.0.0/16", "c2"), subnet("w", "x", "10.2.1.0/24", "nsg-x", stack="c2"),
                             nsg("nsg-x", stack="c2")])
    t = net.trace("c1/a", "c1/b", "udp", 53)
    assert [h.rule for h in t.hops] == ["AllowVnetOutBound", "VnetLocal", "AllowVnetInBound"] and t.allowed
    # out to the internet: no UDR, so the VirtualNetwork tag is the VNet's space and AllowInternetOutBound decides
    assert net.trace("c1/a", "example.org", "tcp", 443).hops[0].rule == "AllowInternetOutBound"
    # an unpeered private network is neither VirtualNetwork nor Internet: DenyAllOutBound
    t = net.trace("c1/a", "c2/x", "tcp", 22)
    assert (t.deciding.step, t.deciding.rule, t.allowed) == ("nsg-out", "DenyAllOutBound", False)
    # and with no NSG in the way, the system route sends it nowhere (10.0.0.0/8 -> None)
    bare = Network.from_plan([vnet("v", "10.1.0.0/16"), subnet("v", "a", "10.1.1.0/24"),
                              vnet("w", "10.2.0.0/16", "c2"), subnet("w", "x", "10.2.1.0/24", stack="c2")])
    t = bare.trace("c1/a", "c2/x", "tcp", 22)
    assert (t.deciding.step, t.deciding.rule, t.allowed) == ("route", "default", False)
    assert "10.0.0.0/8 -> None" in t.deciding.detail


def test_virtual_network_tag_covers_peered_networks_and_udr_prefixes() -> None:
    hub = firewall_hub(collection("c", 100, "Allow", app_rule("web", "10.20.1.0/24", ["*"])))
    spoke_a = spoke("a", "10.20.0.0/16", "10.20.1.0/24", "c1", nsg_name="nsg-a")
    only_vnet_out = nsg("nsg-a", rule("vnet-only", 100, "Outbound", "Allow", dst="VirtualNetwork"),
                        rule("deny-rest", 200, "Outbound", "Deny"), stack="c1")
    net = Network.from_plan([*hub, *spoke_a, only_vnet_out])
    # the subnet's UDR for 0.0.0.0/0 puts every address in its VirtualNetwork tag (MicrosoftDocs/azure-docs#22178)
    t = net.trace("c1/a/work" if "c1/a/work" in net.names else "c1/work", "example.org", "tcp", 443)
    assert t.hops[0].rule == "vnet-only" and t.allowed
    # the hub's firewall subnet is in the peered space: VirtualNetwork on the hub side covers the spoke
    hub_side = Network.from_plan([*hub, *spoke_a, only_vnet_out,
                                  subnet("hub", "mgmt", "10.0.2.0/24", "nsg-m", stack="hub"),
                                  nsg("nsg-m", rule("from-vnet", 100, "Inbound", "Allow", src="VirtualNetwork",
                                                    port="22"), stack="hub")])
    assert hub_side._vnet_tag(hub_side.names["hub/mgmt"]).contains(int.from_bytes(bytes([10, 20, 1, 9]), "big"))


def test_longest_prefix_wins_and_a_route_to_none_drops() -> None:
    wide = route_table("rt", ("wide-none", "10.1.0.0/8", "None", None))
    net = one_vnet(nsg("nsg-a"), nsg("nsg-b"), wide)
    net = Network.from_plan([vnet("v", "10.1.0.0/16"), subnet("v", "a", "10.1.1.0/24", "nsg-a", "rt"),
                             subnet("v", "b", "10.1.2.0/24", "nsg-b"), nsg("nsg-a"), nsg("nsg-b"), wide])
    assert net.trace("c1/a", "c1/b", "tcp", 22).allowed  # the /16 VnetLocal route is longer than the /8
    narrow = route_table("rt", ("blackhole-b", "10.1.2.0/24", "None", None))
    net = Network.from_plan([vnet("v", "10.1.0.0/16"), subnet("v", "a", "10.1.1.0/24", "nsg-a", "rt"),
                             subnet("v", "b", "10.1.2.0/24", "nsg-b"), nsg("nsg-a"), nsg("nsg-b"), narrow])
    assert decided(net.trace("c1/a", "c1/b", "tcp", 22)) == ("rt", "blackhole-b", False)


def test_a_user_route_overrides_the_system_route_of_the_same_prefix() -> None:
    same = route_table("rt", ("vnet-to-none", "10.1.0.0/16", "None", None))
    net = Network.from_plan([vnet("v", "10.1.0.0/16"), subnet("v", "a", "10.1.1.0/24", "nsg-a", "rt"),
                             subnet("v", "b", "10.1.2.0/24", "nsg-b"), nsg("nsg-a"), nsg("nsg-b"), same])
    assert decided(net.trace("c1/a", "c1/b", "tcp", 22)) == ("rt", "vnet-to-none", False)


def test_a_peering_needs_both_sides_access_and_forwarded_traffic() -> None:
    base = [vnet("a", "10.1.0.0/16"), subnet("a", "x", "10.1.1.0/24"), vnet("b", "10.2.0.0/16", "c2"),
            subnet("b", "y", "10.2.1.0/24", stack="c2")]
    one_way = Network.from_plan([*base, peering("a", "b")])
    t = one_way.trace("c1/x", "c2/y", "tcp", 22)
    assert (t.deciding.step, t.deciding.rule, t.allowed) == ("peering", "not connected", False)
    no_access = Network.from_plan([*base, peering("a", "b", access=False), peering("b", "a", stack="c2")])
    assert decided(no_access.trace("c1/x", "c2/y", "tcp", 22))[1:] == ("allowVirtualNetworkAccess", False)
    both = Network.from_plan([*base, peering("a", "b"), peering("b", "a", stack="c2")])
    assert both.trace("c1/x", "c2/y", "tcp", 22).allowed
    # through the hub firewall into a spoke that refuses forwarded traffic
    hub = firewall_hub(collection("c", 100, "Allow", net_rule("any", "*", "*", "*", "Any")))
    spokes = [*spoke("s1", "10.1.0.0/16", "10.1.1.0/24", "c1"), *spoke("s2", "10.2.0.0/16", "10.2.1.0/24", "c2")]
    spokes = [peering("s2", "hub", forwarded=False, stack="c2") if r.name == "s2-to-hub" else r for r in spokes]
    t = Network.from_plan([*hub, *spokes]).trace("c1/work", "c2/work", "tcp", 443)
    assert (t.deciding.where, t.deciding.rule, t.allowed) == ("to-hub", "allowForwardedTraffic", False)


def test_firewall_network_rules_before_application_rules_whatever_the_group_priority() -> None:
    allow_app = collection("web", 100, "Allow", app_rule("any-web", "10.1.1.0/24", ["*"]))
    deny_net = res("FirewallPolicyRuleCollectionGroup", "rcg-late", "hub", firewallPolicyName="afwp",
                   ruleCollectionGroupName="late", priority=900.0,
                   ruleCollections=[collection("no-https", 100, "Deny", net_rule("https", "*", "*", "443"))])
    net = Network.from_plan([*firewall_hub(allow_app, more_groups=[deny_net]),
                             *spoke("s1", "10.1.0.0/16", "10.1.1.0/24", "c1")])
    t = net.trace("c1/work", "example.org", "tcp", 443)
    assert decided(t) == ("afwp", "late/no-https/https", False)
    assert net.trace("c1/work", "example.org", "tcp", 443).deciding.detail.startswith("network rule")


def test_firewall_collections_by_priority_and_application_rules_only_for_http() -> None:
    deny = collection("deny-web", 200, "Deny", app_rule("all", "*", ["*"]))
    allow = collection("allow-web", 100, "Allow", app_rule("all", "*", ["*.example.org"]))
    net = Network.from_plan([*firewall_hub(deny, allow), *spoke("s1", "10.1.0.0/16", "10.1.1.0/24", "c1")])
    assert decided(net.trace("c1/work", "www.example.org", "tcp", 443)) == ("afwp", "main/allow-web/all", True)
    assert decided(net.trace("c1/work", "www.example.net", "tcp", 443)) == ("afwp", "main/deny-web/all", False)
    # application rules do not see UDP; nothing else matches: the firewall denies by default
    assert decided(net.trace("c1/work", "www.example.org", "udp", 443)) == ("afwp", "(no rule matched)", False)


def test_network_rules_with_fqdns_need_the_dns_proxy() -> None:
    kms = collection("kms", 100, "Allow", net_rule("kms", "10.1.1.0/24", "", "1688", fqdns=["kms.example.org"]))
    off = Network.from_plan([*firewall_hub(kms), *spoke("s1", "10.1.0.0/16", "10.1.1.0/24", "c1")])
    t = off.trace("c1/work", "kms.example.org", "tcp", 1688)
    assert not t.allowed and "DNS proxy is off" in t.deciding.detail
    on = Network.from_plan([*firewall_hub(kms, dns_proxy=True), *spoke("s1", "10.1.0.0/16", "10.1.1.0/24", "c1")])
    assert decided(on.trace("c1/work", "kms.example.org", "tcp", 1688)) == ("afwp", "main/kms/kms", True)


def test_a_reply_that_bypasses_the_firewall_is_dropped() -> None:
    anything = collection("c", 100, "Allow", net_rule("any", "*", "*", "*", "Any"))
    # s1 sends to s2 through the firewall; s2 has no route table, and peers with s1 directly: replies go around
    resources = [*firewall_hub(anything), *spoke("s1", "10.1.0.0/16", "10.1.1.0/24", "c1"),
                 *spoke("s2", "10.2.0.0/16", "10.2.1.0/24", "c2", via_firewall=False),
                 peering("s1", "s2"), peering("s2", "s1", stack="c2")]
    resources = [route_table("rt-s1", ("to-s2", "10.2.0.0/16", "VirtualAppliance", "10.0.1.4"))
                 if r.name == "rt-s1" else r for r in resources]
    t = Network.from_plan(resources).trace("c1/work", "c2/work", "tcp", 443)
    assert t.firewall and not t.allowed
    assert t.deciding.step == "return" and "asymmetric" in t.deciding.detail


def test_platform_subnets_take_no_connections_and_the_internet_needs_a_public_entry() -> None:
    hub = firewall_hub(collection("c", 100, "Allow", net_rule("any", "*", "*", "*", "Any")))
    nic = res("NetworkInterface", "nic", "c1", networkInterfaceName="nic", ipConfigurations=[
        {"name": "ip", "privateIPAddress": "10.1.1.10", "subnet": {"id": f"{NET}/virtualNetworks/s1/subnets/work"},
         "publicIPAddress": {"id": f"{NET}/publicIPAddresses/pip-vm"}}])
    platform = subnet("hub", "AzureBastionSubnet", "10.0.2.0/26", stack="hub")
    net = Network.from_plan([*hub, platform, *spoke("s1", "10.1.0.0/16", "10.1.1.0/24", "c1", nsg_name="nsg",
                                                    via_firewall=False), nsg("nsg"), nic])
    t = net.trace("hub/AzureFirewallSubnet", "hub/AzureBastionSubnet", "tcp", 22)
    assert (t.deciding.step, t.deciding.rule, t.allowed) == ("service", "Azure Bastion", False)
    # a public IP on the NIC: the NSG decides (the default rules deny the internet in)
    t = net.trace("Internet", "10.1.1.10", "tcp", 22)
    assert [h.rule for h in t.hops] == ["public IP", "DenyAllInBound"] and not t.allowed
    t = net.trace("Internet", "10.1.1.11", "tcp", 22)
    assert decided(t)[1:] == ("(no public entry)", False)
    # with a UDR for 0.0.0.0/0 on the subnet the VirtualNetwork tag holds every address, the internet too, so
    # AllowVnetInBound lets it in (MicrosoftDocs/azure-docs#22178): a reason the plan's NSGs deny VirtualNetwork
    tunnelled = Network.from_plan([*hub, *spoke("s1", "10.1.0.0/16", "10.1.1.0/24", "c1", nsg_name="nsg"),
                                   nsg("nsg"), nic])
    assert decided(tunnelled.trace("Internet", "10.1.1.10", "tcp", 22)) == ("nsg", "AllowVnetInBound", True)


# --------------------------------------------------------------------------- the example estate's plan


@pytest.fixture(scope="module")
def planned() -> list[PlannedResource]:
    return list(repo_plan().resources)


@pytest.fixture(scope="module")
def network(planned: list[PlannedResource], estate: Estate) -> Network:
    return Network.from_plan(planned, estate)


# Probes the cloud plane does not judge, and why: the lab's gateway segment is a host that sends, but in Azure only
# a VPN gateway sits in GatewaySubnet and the plan deploys none, so no packet starts there (Network.idle). With a
# gateway deployed, on-premises traffic through it would reach the firewall's DNS proxy (udp/53): the spec would
# then need a flow for it. The list is checked to be exactly the gateway-sourced probes, so it cannot grow silently.
NOT_JUDGED = {"shared/gateway": "nothing deployed in GatewaySubnet"}


def test_the_cloud_table_equals_the_lab_probe_table(network: Network, estate: Estate) -> None:
    """Every probe the lab's isolation test sends (same segments, protocols and ports, from the lab probe's own
    expansion of the matrix): the planned network allows it exactly when the lab expects it to connect, but for the
    probes from a segment where nothing can send in the plan (NOT_JUDGED), excluded by name with the reason."""
    probes = build_matrix(estate.framework, build(estate, load_config(REPO)))
    assert len(probes) > 5000
    excluded = {p.src.segment.label: why for p in probes
                if (why := network.idle(network.names[p.src.segment.label])) is not None}
    assert excluded == NOT_JUDGED
    skipped = [p for p in probes if p.src.segment.label in NOT_JUDGED]
    assert skipped and all(p.src.segment.name == "gateway" and p.src.segment.site == "shared" for p in skipped)
    wrong = []
    for p in probes:
        if p.src.segment.label in NOT_JUDGED:
            continue
        trace = network.trace(p.src.segment.label, p.dst.segment.label, p.protocol, p.port)
        if trace.allowed != p.expected:
            hop = trace.deciding
            wrong.append(f"{p.src.segment.label} -> {p.dst.segment.label} {p.protocol}/{p.port}: lab "
                         f"{p.flow or 'denied'}, cloud {'allowed' if trace.allowed else 'denied'} by {hop.where} "
                         f"{hop.rule}")
    assert not wrong, f"{len(wrong)} probes differ:\n" + "\n".join(wrong[:20])


def test_verdicts_and_traces_agree(network: Network) -> None:
    services = (("tcp", 22), ("tcp", 443), ("udp", 53), ("tcp", 3389))
    labels = sorted(network.names)
    for a in labels:
        for b in labels:
            if a != b:
                ea, eb = network.endpoint(a), network.endpoint(b)
                assert network.verdicts(ea, eb, services) == tuple(t.allowed for t in network.traces(ea, eb, services))


@pytest.mark.parametrize("check", ["segmentation", "hub_routing", "administration", "egress"])
def test_every_property_holds_on_the_plan(network: Network, estate: Estate, check: str) -> None:
    found = verify(network, estate, [check])
    t = found.total(check)
    assert t.allowed + t.denied > 0 and not found.unplanned and not t.outside
    assert not t.failed, found.summary(limit=15)
    if check == "segmentation":  # the gateway segment sends nothing: counted, named, not judged
        assert found.idle == NOT_JUDGED and t.idle > 0
        assert "not judged as a source: shared/gateway: nothing deployed in GatewaySubnet" in found.summary()


def test_bastion_reaches_the_firewalls_dns_proxy_no_more(network: Network) -> None:
    """The firewall answers DNS on its private IP (its policy's DNS proxy, for the FQDNs of network rules); the
    Bastion NSG's deny of the rest of the virtual network stops Bastion there, as the matrix lists no such flow,
    while Bastion still reaches the hosts on their admin ports (FL-20) through Microsoft's AllowSshRdpOutbound."""
    t = network.trace("shared/bastion", "shared/firewall", "udp", 53)
    assert (t.deciding.step, t.deciding.where, t.deciding.rule, t.allowed) == (
        "nsg-out", "nsg-shared-bastion", "deny-vnet-out", False)
    t = network.trace("shared/bastion", "shared/shared-services", "tcp", 22)
    assert t.allowed and t.hops[0].rule == "AllowSshRdpOutbound"


def test_a_gateway_subnet_sends_only_once_a_gateway_is_planned(planned: list[PlannedResource],
                                                               estate: Estate) -> None:
    network = Network.from_plan(planned, estate)
    gateway = network.names["shared/gateway"]
    assert network.idle(gateway) == "nothing deployed in GatewaySubnet"
    subnet = next(r for r in planned if r.inputs.get("subnetName") == "GatewaySubnet").inputs
    group = subnet["resourceGroupName"]
    where = f"/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/{subnet['virtualNetworkName']}"
    vgw = PlannedResource("urn:pulumi:shared::p::azure-native:network:VirtualNetworkGateway::vgw",
                          "azure-native:network:VirtualNetworkGateway", "vgw", "shared", None,
                          {"resourceGroupName": group, "virtualNetworkGatewayName": "vgw", "ipConfigurations": [
                              {"name": "ip", "subnet": {"id": f"{where}/subnets/GatewaySubnet"}}]})
    with_gateway = Network.from_plan([*planned, vgw], estate)
    assert with_gateway.idle(with_gateway.names["shared/gateway"]) is None
    found = verify(with_gateway, estate, ["segmentation"])
    assert not found.idle and found.total("segmentation").idle == 0
    # and then the firewall's DNS proxy answers it: the spec would need a flow (or the proxy a rule) for it
    assert any("shared/gateway -> shared/firewall udp/53" in f.message for f in found.failing("segmentation"))


def _broken(planned: list[PlannedResource], name: str, change: Callable[[dict[str, Any]], None]
            ) -> list[PlannedResource]:
    out = []
    for r in planned:
        if r.name == name:
            inputs = copy.deepcopy(r.inputs)
            change(inputs)
            r = dataclasses.replace(r, inputs=inputs)
        out.append(r)
    return out


def _prefix(planned: list[PlannedResource], subnet_resource: str) -> str:
    return str(next(r for r in planned if r.name == subnet_resource).inputs["addressPrefix"])


def test_an_nsg_rule_shadowing_an_allow_is_caught_by_name(planned: list[PlannedResource], estate: Estate) -> None:
    desktops = _prefix(planned, "snet-havering-desktops")
    shadow = rule("shadow-thin-clients", 99, "Inbound", "Deny", src=desktops, port="443", protocol="Tcp")
    broken = _broken(planned, "nsg-havering-servers", lambda i: i["securityRules"].append(shadow))
    found = verify(Network.from_plan(broken, estate), estate, ["segmentation"])
    hit = [f for f in found.failing("segmentation", "havering")
           if (f.source, f.service) == ("havering/desktops", ("tcp", 443))]
    assert hit and hit[0].trace.deciding.rule == "shadow-thin-clients" and hit[0].expected
    assert hit[0].trace.deciding.where == "nsg-havering-servers"


def _route(name: str, **change: Any) -> Callable[[dict[str, Any]], None]:
    def apply(inputs: dict[str, Any]) -> None:
        for route in inputs["routes"]:
            if route["name"] == name:
                route.update(change)
                if change.get("nextHopType") != "VirtualAppliance":
                    route.pop("nextHopIpAddress", None)
    return apply


def test_a_supernet_route_around_the_firewall_is_caught_by_name(planned: list[PlannedResource],
                                                                estate: Estate) -> None:
    broken = _broken(planned, "rt-havering", _route("consortium-via-hub-firewall", nextHopType="VnetLocal"))
    found = verify(Network.from_plan(broken, estate), estate, ["segmentation"])
    inter = [f for f in found.failing("segmentation", "havering") if f.source == "havering/servers"
             and f.destination.endswith("/servers") and f.service == ("tcp", 443)]
    assert inter and {f.trace.deciding.rule for f in inter} == {"consortium-via-hub-firewall"}


def test_a_default_route_to_the_internet_is_caught_by_name(planned: list[PlannedResource], estate: Estate) -> None:
    broken = _broken(planned, "rt-havering", _route("default-via-hub-firewall", nextHopType="Internet"))
    # with default outbound access the subnets would really get out: around the hub firewall
    broken = [dataclasses.replace(r, inputs={**r.inputs, "defaultOutboundAccess": True})
              if r.type.endswith(":Subnet") and r.stack == "havering" else r for r in broken]
    found = verify(Network.from_plan(broken, estate), estate, ["hub_routing"])
    bypass = found.failing("hub_routing", "havering")
    assert bypass and {f.trace.deciding.rule for f in bypass} == {"default-via-hub-firewall"}
    assert {f.destination for f in bypass} == {"Internet"}
    assert not found.failing("hub_routing", "newham")


def test_a_firewall_rule_letting_desktops_reach_any_name_is_caught_by_name(planned: list[PlannedResource],
                                                                            estate: Estate) -> None:
    desktops = _prefix(planned, "snet-havering-desktops")
    anything = collection("desktops-anywhere", 100, "Allow", app_rule("any-name", desktops, ["*"]))
    group = next(r for r in planned if r.type.endswith(":FirewallPolicyRuleCollectionGroup"))
    broken = _broken(planned, group.name, lambda i: i["ruleCollections"].insert(0, anything))
    found = verify(Network.from_plan(broken, estate), estate, ["egress"])
    hit = [f for f in found.failing("egress", "havering")
           if f.source == "havering/desktops" and not f.expected and f.service == ("tcp", 443)]
    assert hit and {f.trace.deciding.rule for f in hit} == {
        f"{group.inputs['ruleCollectionGroupName']}/desktops-anywhere/any-name"}
    assert "unlisted-destination.example" in {f.destination for f in hit}


# --------------------------------------------------------------------------- the fast path against the reference


def _same_both_ways(network: Network, estate: Estate) -> Any:
    """The segmentation verdicts of every pair, by classes (the fast path) and pair by pair (the reference), equal;
    and verify's tallies and failures equal too. Returns the fast Verification."""
    fast, slow = verdict_table(network, estate), verdict_table(network, estate, fast=False)
    assert fast.keys() == slow.keys() and len(fast) > 100
    differ = [k for k in slow if fast[k] != slow[k]]
    assert not differ, differ[:10]
    one, other = verify(network, estate), verify(network, estate, fast=False)
    assert one.tallies == other.tallies
    key = lambda f: (f.check, f.stack, f.source, f.destination, f.service, f.trace)  # noqa: E731
    assert sorted(map(key, one.failures), key=str) == sorted(map(key, other.failures), key=str)
    return one


def test_the_fast_path_equals_the_per_pair_path_on_the_plan(network: Network, estate: Estate) -> None:
    assert _same_both_ways(network, estate).ok


@pytest.mark.parametrize("broken", ["shadow", "route-around", "internet-route", "firewall-any-name",
                                    "fl14-one-council", "peering-refuses"])
def test_the_fast_path_equals_the_per_pair_path_on_broken_plans(planned: list[PlannedResource], estate: Estate,
                                                                broken: str) -> None:
    desktops = _prefix(planned, "snet-havering-desktops")
    group = next(r for r in planned if r.type.endswith(":FirewallPolicyRuleCollectionGroup"))

    def fl14_in_one(inputs: dict[str, Any]) -> None:  # newham's servers let in from the wrong council, not havering
        for r in inputs["securityRules"]:
            if r["name"] == "FL-14-in":
                r["sourceAddressPrefix"] = _prefix(planned, "snet-waltham-forest-servers")
                r["sourceAddressPrefixes"] = None

    changes: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
        "shadow": ("nsg-havering-servers", lambda i: i["securityRules"].append(
            rule("shadow", 99, "Inbound", "Deny", src=desktops, port="443", protocol="Tcp"))),
        "route-around": ("rt-havering", _route("consortium-via-hub-firewall", nextHopType="VnetLocal")),
        "internet-route": ("rt-havering", _route("default-via-hub-firewall", nextHopType="Internet")),
        "firewall-any-name": (group.name, lambda i: i["ruleCollections"].insert(0, collection(
            "desktops-anywhere", 100, "Allow", app_rule("any-name", desktops, ["*"])))),
        "fl14-one-council": ("nsg-newham-servers", fl14_in_one),
        "peering-refuses": (next(r.name for r in planned if r.type.endswith(":VirtualNetworkPeering")
                                 and r.stack != "shared"), lambda i: i.update(allowForwardedTraffic=False)),
    }
    name, change = changes[broken]
    found = _same_both_ways(Network.from_plan(_broken(planned, name, change), estate), estate)
    assert not found.ok


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Estate, list[PlannedResource]]:
    """Six synthetic councils, each agreeing FL-14 (servers to servers) with its neighbours, and their plan."""
    from estate.loader import load_estate
    from estate.plan import plan
    from estate.synthetic import write_synthetic

    estate = load_estate(write_synthetic(tmp_path_factory.mktemp("reach") / "syn", 6, REPO / "framework.yaml"))
    return estate, list(plan(estate).resources)


def _servers_class(network: Network, estate: Estate) -> Uniform | None:
    """What Network.uniform_verdicts proves of the servers -> servers class (FL-14's), with its declared pairs."""
    ends = [(c, network.segment(network.names[f"{c}/servers"])) for c in sorted(estate.councils)]
    population = Population({"servers": [e.address for _, e in ends]})
    declared = {(a, b) for _, a, b in exchange_pairs(estate)}
    return network.uniform_verdicts(ends, ends, (("tcp", 443), ("tcp", 22)), population, ("servers", "servers"),
                                    declared)


def test_the_fast_path_equals_the_per_pair_path_on_a_synthetic_estate(
        synthetic: tuple[Estate, list[PlannedResource]]) -> None:
    estate, planned = synthetic
    network = Network.from_plan(planned, estate)
    assert _same_both_ways(network, estate).ok
    # the class FL-14 joins some pairs of is still proven at once (linear), but for exactly its declared pairs
    proven = _servers_class(network, estate)
    neighbours = {(f"syn-00{i}", f"syn-00{j}") for i in range(1, 7) for j in (i - 1, i + 1) if 1 <= j <= 6}
    assert proven == Uniform((False, False), frozenset(neighbours))
    # one council's servers NSG leaves one of its partners' servers out of FL-14 (syn-003 agrees FL-14 with syn-002
    # and syn-004): traced pair by pair, the deciding rule named
    servers = next(r for r in planned if r.name.startswith("nsg-syn-003-servers"))
    left_out = next(r for r in servers.inputs["securityRules"] if r["name"] == "FL-14-in")["sourceAddressPrefixes"][0]

    def drop_one(inputs: dict[str, Any]) -> None:
        for r in inputs["securityRules"]:
            if r["name"] == "FL-14-in":
                r["sourceAddressPrefixes"] = r["sourceAddressPrefixes"][1:]

    found = _same_both_ways(Network.from_plan(_broken(planned, servers.name, drop_one), estate), estate)
    failed = found.failing("segmentation")
    assert failed and {(f.destination, f.service, f.trace.deciding.where, f.trace.deciding.rule) for f in failed} == {
        ("syn-003/servers", ("tcp", 443), servers.inputs["networkSecurityGroupName"], "deny-consortium-in")}
    assert len(failed) == 1 and left_out


@pytest.mark.parametrize("layers", [("nsg-out",), ("firewall",), ("nsg-in",), ("nsg-out", "firewall", "nsg-in"),
                                    ("firewall-every-council", "nsg-out", "nsg-in")])
def test_an_undeclared_pair_opened_by_rules_naming_it_is_caught_by_the_fast_path(
        synthetic: tuple[Estate, list[PlannedResource]], layers: tuple[str, ...]) -> None:
    """syn-001 and syn-004 declare no FL-14 with each other: rules naming the other's servers prefix specifically
    (one layer at a time: still denied; all three: opened; or a firewall rule letting every council's servers
    reach every other's, where the two NSG rules alone open it) make the pair an exception of the servers class,
    traced one by one, so the fast path still equals the per-pair one and names the pair that was wrongly opened."""
    estate, planned = synthetic
    one, four = _prefix(planned, "snet-syn-001-servers"), _prefix(planned, "snet-syn-004-servers")
    group = next(r for r in planned if r.type.endswith(":FirewallPolicyRuleCollectionGroup")
                 and any(x["name"].startswith("FL-14-") for c in r.inputs["ruleCollections"] for x in c["rules"]))
    fl14 = next(c["name"] for c in group.inputs["ruleCollections"] if any(x["name"].startswith("FL-14-")
                                                                          for x in c["rules"]))

    every = [_prefix(planned, f"snet-{c}-servers") for c in sorted(estate.councils)]

    def firewall(inputs: dict[str, Any]) -> None:
        for c in inputs["ruleCollections"]:
            if c["name"] == fl14:
                c["rules"].append(net_rule("FL-14-syn-001-syn-004", one, four, "443"))

    def firewall_every(inputs: dict[str, Any]) -> None:
        for c in inputs["ruleCollections"]:
            if c["name"] == fl14:
                c["rules"].append({**net_rule("servers-to-servers", "", "", "443"), "sourceAddresses": every,
                                   "destinationAddresses": every})

    changes: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
        "nsg-out": (next(r.name for r in planned if r.name.startswith("nsg-syn-001-servers")), lambda i: i[
            "securityRules"].append(rule("to-syn-004", 125, "Outbound", "Allow", one, four, "443", "Tcp"))),
        "firewall": (group.name, firewall),
        "firewall-every-council": (group.name, firewall_every),
        "nsg-in": (next(r.name for r in planned if r.name.startswith("nsg-syn-004-servers")), lambda i: i[
            "securityRules"].append(rule("from-syn-001", 155, "Inbound", "Allow", one, four, "443", "Tcp"))),
    }
    broken = planned
    for layer in layers:
        broken = _broken(broken, *changes[layer])
    network = Network.from_plan(broken, estate)
    found = _same_both_ways(network, estate)
    proven = _servers_class(network, estate)
    assert proven is not None and ("syn-001", "syn-004") in proven.exceptions and proven.verdicts == (False, False)
    if len(layers) == 1:
        assert found.ok
        return
    failed = found.failing("segmentation")
    assert {(f.source, f.destination, f.service, f.expected) for f in failed} == {
        ("syn-001/servers", "syn-004/servers", ("tcp", 443), False)}
    opened_by = "FL-14-syn-001-syn-004" if "firewall" in layers else "servers-to-servers"
    assert failed[0].trace.deciding.rule.endswith(f"/{opened_by}")


# --------------------------------------------------------------------------- the engine's cross-stack hook


class _EveryStack(Rule):
    id = "TST-001"
    title = "sees every stack"
    severity = "low"
    control = "network.segmentation"
    area = "network"
    fix = "none"
    calls: list[set[str]] = []

    def estate(self, resources: Any, ctx: Context) -> Iterable[tuple[str, Outcome]]:
        stacks = {r.stack for r in resources}
        self.calls.append(stacks)
        for s in sorted(stacks):
            yield s, passed(f"seen:{s}", "seen")


def test_the_estate_hook_sees_every_stack_once_and_attributes_outcomes(planned: list[PlannedResource],
                                                                       estate: Estate) -> None:
    import datetime as dt

    hook = _EveryStack()
    found = judge_estate(hook, planned, Context(estate, dt.date(2026, 11, 22)))
    assert hook.calls == [{"shared", *estate.councils}]
    assert {f.council for f in found} == {"shared", *estate.councils} and {f.kind for f in found} == {"estate"}
    assert _EveryStack.kinds() == ("estate",)


def test_reachability_rules_in_the_engine_and_not_in_the_pack(planned: list[PlannedResource],
                                                             estate: Estate) -> None:
    import datetime as dt

    from estate.compliance.pack import policies

    ids = ["NET-021", "NET-022", "NET-024"]
    report = evaluate(estate, resources=planned, councils=["havering"], rules=ids, assets=False,
                      today=dt.date(2026, 11, 22))
    assert {f.council for f in report.findings} == {"havering"}  # the rest of the estate was still traced
    assert {f.rule_id for f in report.findings} == set(ids)
    assert all(f.status == "pass" and f.kind == "estate" for f in report.findings), [
        f.message for f in report.findings if f.status != "pass"]
    built = {p.name for p in policies(estate)}
    estate_only = {rid for rid, cls in registry().items() if cls.kinds() == ("estate",)}
    assert {"NET-021", "NET-022", "NET-023", "NET-024"} <= estate_only and not built & estate_only


# --------------------------------------------------------------------------- the command line

_register_extensions()
runner = CliRunner()


def test_cli_traces_hop_by_hop_and_exits_by_the_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    ok = runner.invoke(app, ["reach", "havering/desktops", "havering/servers", "--port", "443"])
    assert ok.exit_code == 0, ok.output
    assert "FL-01-out" in ok.stdout and "FL-01-in" in ok.stdout and "ALLOWED" in ok.stdout
    no = runner.invoke(app, ["reach", "havering/desktops", "havering/servers", "--port", "22"])
    assert no.exit_code == 1 and "DENIED by nsg-havering-desktops: deny-consortium-out" in no.stdout
    bad = runner.invoke(app, ["reach", "havering/nowhere", "havering/servers", "--port", "22"])
    assert bad.exit_code == 2 and "unknown endpoint 'havering/nowhere'" in bad.output
    bad = runner.invoke(app, ["reach", "havering/desktops", "havering/servers", "--protocol", "icmp"])
    assert bad.exit_code == 2 and "unknown protocol" in bad.output

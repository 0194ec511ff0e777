"""The Pulumi program under the SDK's mocks: the plan of the repo's hub and three councils says what the
framework and the inventories say (subnets, NSG rules, peerings, session hosts, tags, RBAC, spec values)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from estate.loader import Estate, host_addresses
from estate.plan import Plan, PlannedResource
from tests.stacks_support import (
    expected_session_hosts,
    only,
    ports,
    prefixes,
    repo_estate,
    repo_plan,
    resource_parameters,
)

COUNCILS = ["havering", "newham", "waltham-forest"]
NSG = "azure-native:network:NetworkSecurityGroup"
SUBNET = "azure-native:network:Subnet"


@pytest.fixture(scope="module")
def estate() -> Estate:
    return repo_estate()


@pytest.fixture(scope="module")
def planned() -> Plan:
    return repo_plan()


def _net(estate: Estate, site: str, segment: str) -> str:
    return str(estate.addresses.site(site).segment(segment).network)


def test_the_plan_has_the_hub_and_the_three_councils(planned: Plan) -> None:
    assert planned.stacks == ("shared", *COUNCILS)
    for stack in planned.stacks:
        kinds = {r.type for r in planned.for_stack(stack)}
        assert "pulumi:pulumi:Stack" in kinds
        assert "azure-native:network:VirtualNetwork" in kinds
    assert {r.type for r in planned.for_stack("shared")} >= {
        "shared-estate:network:Hub", "shared-estate:datacentre:Hub", "shared-estate:helpdesk:Helpdesk",
        "azure-native:network:AzureFirewall", "azure-native:network:BastionHost",
        "azure-native:operationalinsights:Workspace"}
    for council in COUNCILS:
        assert {r.type for r in planned.for_stack(council)} >= {
            "shared-estate:network:Spoke", "shared-estate:datacentre:Council", "shared-estate:desktop:Desktop",
            "shared-estate:access:Access", "pulumi:pulumi:StackReference"}


@pytest.mark.parametrize("site", ["shared", *COUNCILS])
def test_subnets_equal_the_catalogue_with_ipam_prefixes(estate: Estate, planned: Plan, site: str) -> None:
    subnets = planned.of_type(SUBNET, site)
    got = {(r.inputs["subnetName"], r.inputs["addressPrefix"]) for r in subnets}
    if site == "shared":
        catalogue = [(s.azure_name, s.name) for s in estate.framework.network.hub.segments]
    else:
        catalogue = [(f"snet-{v.name}", v.name) for v in estate.framework.network.vlans]
    assert got == {(azure, _net(estate, site, name)) for azure, name in catalogue}
    vnet = only(planned.of_type("azure-native:network:VirtualNetwork", site), f"vnet-{site}")
    assert vnet.inputs["addressSpace"]["addressPrefixes"] == [str(estate.addresses.site(site).block)]
    assert all(r.inputs["virtualNetworkName"] == f"vnet-{site}" for r in subnets)


@pytest.mark.parametrize("site", ["shared", *COUNCILS])
def test_one_nsg_per_subnet_and_egress_through_the_hub_firewall(estate: Estate, planned: Plan, site: str) -> None:
    nsgs = {r.inputs["networkSecurityGroupName"] for r in planned.of_type(NSG, site)}
    firewall = ipaddress.ip_network(_net(estate, "shared", "firewall")).network_address + 4
    for subnet in planned.of_type(SUBNET, site):
        name = subnet.inputs["subnetName"]
        if name in ("AzureFirewallSubnet", "GatewaySubnet"):
            assert "networkSecurityGroup" not in subnet.inputs, "Azure refuses an NSG on these platform subnets"
        if name in ("AzureFirewallSubnet", "AzureBastionSubnet", "GatewaySubnet"):
            assert "routeTable" not in subnet.inputs and "defaultOutboundAccess" not in subnet.inputs
            continue
        nsg_id = subnet.inputs["networkSecurityGroup"]["id"]
        assert nsg_id.rsplit("/", 1)[-1] in nsgs
        assert subnet.inputs["routeTable"]["id"].endswith(f"/rt-{site}")
        assert subnet.inputs["defaultOutboundAccess"] is False
    ids = [s.inputs["networkSecurityGroup"]["id"] for s in planned.of_type(SUBNET, site)
           if "networkSecurityGroup" in s.inputs]
    assert len(ids) == len(set(ids)) == len(nsgs)
    routes = only(planned.of_type("azure-native:network:RouteTable", site), f"rt-{site}").inputs["routes"]
    assert {(r["addressPrefix"], r["nextHopType"], r["nextHopIpAddress"]) for r in routes} >= {
        ("0.0.0.0/0", "VirtualAppliance", str(firewall))}
    if site != "shared":
        assert (estate.framework.network.supernet, "VirtualAppliance", str(firewall)) in {
            (r["addressPrefix"], r["nextHopType"], r["nextHopIpAddress"]) for r in routes}


def _agreed(estate: Estate, flow: str, a: str, b: str) -> bool:
    """Both councils' council.yml declare the inter flow with each other (read here, not from Estate.exchanges)."""
    def says(x: str, y: str) -> bool:
        return any(e.flow == flow and e.partner == y for e in estate.councils[x].council.exchanges)
    return a != b and says(a, b) and says(b, a)


def _expected_rules(estate: Estate, site: str, segment: str) -> set[tuple[Any, ...]]:
    """The flow matrix for one segment, worked out here from framework.yaml and IPAM."""
    councils = sorted(estate.councils)
    own = _net(estate, site, segment)
    out = set()
    for flow in estate.framework.network.flows:
        for direction, here, there in (("Inbound", flow.destination, flow.source),
                                       ("Outbound", flow.source, flow.destination)):
            if site == "shared":
                if here != f"hub/{segment}":
                    continue
                if there.startswith("hub/"):  # hub-internal: inside the hub VNet
                    peers = [_net(estate, "shared", there[4:])]
                else:
                    peers = [_net(estate, c, there) for c in councils]
            else:
                if here != segment:
                    continue
                if there.startswith("hub/"):
                    peers = [_net(estate, "shared", there[4:])]
                elif flow.scope == "inter":  # the councils that agreed the flow with this one
                    peers = [_net(estate, c, there) for c in councils if _agreed(estate, flow.id, site, c)]
                else:
                    peers = [_net(estate, site, there)]
            if not peers:
                continue
            src, dst = (peers, [own]) if direction == "Inbound" else ([own], peers)
            out.add((flow.id, direction, flow.protocol.capitalize(), frozenset(src), frozenset(dst),
                     frozenset(flow.ports)))
    return out


def _planned_rules(nsg: PlannedResource) -> set[tuple[Any, ...]]:
    return {(r["name"].rsplit("-", 1)[0], r["direction"], r["protocol"], prefixes(r, "source"),
             prefixes(r, "destination"), ports(r))
            for r in nsg.inputs["securityRules"] if r["name"].startswith("FL-")}


@pytest.mark.parametrize("site", ["shared", *COUNCILS])
def test_nsg_rules_equal_the_flow_matrix(estate: Estate, planned: Plan, site: str) -> None:
    nsgs = {r.name: r for r in planned.of_type(NSG, site)}
    segments = [s for s in estate.addresses.site(site).segments
                if s.azure_name not in ("AzureFirewallSubnet", "AzureBastionSubnet", "GatewaySubnet")]
    bastion = [f"nsg-{site}-{s.name}" for s in estate.addresses.site(site).segments
               if s.azure_name == "AzureBastionSubnet"]
    assert set(nsgs) == {f"nsg-{site}-{s.name}" for s in segments} | set(bastion)
    supernet = estate.framework.network.supernet
    for seg in segments:
        nsg = nsgs[f"nsg-{site}-{seg.name}"]
        assert _planned_rules(nsg) == _expected_rules(estate, site, seg.name), seg.name
        rules = nsg.inputs["securityRules"]
        allows = [r for r in rules if r["access"] == "Allow"]
        denies = [r for r in rules if r["access"] == "Deny"]
        # nothing but the matrix, the segment itself and its egress purposes (out to the Internet tag, on the
        # purpose's ports) is allowed; the rest of the consortium and of the internet is denied
        end = f"hub/{seg.name}" if site == "shared" else seg.name
        purposes = [p for p in estate.framework.network.egress.purposes if end in p.sources]
        assert {r["name"] for r in allows if not r["name"].startswith("FL-")} == {
            "allow-within-segment-in", "allow-within-segment-out", *(f"egress-{p.name}-out" for p in purposes)}
        assert all(prefixes(r, "source") == prefixes(r, "destination") == {str(seg.network)}
                   for r in allows if r["name"].startswith("allow-within-segment"))
        egress = {r["name"]: r for r in allows if r["name"].startswith("egress-")}
        for p in purposes:
            rule = egress[f"egress-{p.name}-out"]
            assert (rule["direction"], rule["protocol"]) == ("Outbound", p.protocol.capitalize())
            assert prefixes(rule, "source") == {str(seg.network)} and prefixes(rule, "destination") == {"Internet"}
            assert ports(rule) == set(p.ports)
        assert {(r["direction"], *prefixes(r, "source"), *prefixes(r, "destination")) for r in denies} >= {
            ("Inbound", supernet, "*"), ("Outbound", "*", supernet), ("Outbound", "*", "Internet")}
        assert max(r["priority"] for r in allows) < min(r["priority"] for r in denies)
        for direction in ("Inbound", "Outbound"):
            taken = [r["priority"] for r in rules if r["direction"] == direction]
            assert len(taken) == len(set(taken)), f"{seg.name}: two {direction} rules share a priority"


@pytest.mark.parametrize("council", COUNCILS)
def test_other_councils_are_denied_unless_the_matrix_allows(estate: Estate, planned: Plan, council: str) -> None:
    others = [ipaddress.ip_network(r.council.block) for k, r in estate.councils.items() if k != council]
    inter = {f.id for f in estate.framework.network.flows if f.scope == "inter"}
    for nsg in planned.of_type(NSG, council):
        for rule in nsg.inputs["securityRules"]:
            if rule["access"] != "Allow":
                continue
            named = (prefixes(rule, "source") | prefixes(rule, "destination")) - {"Internet"}  # egress: a tag
            foreign = [p for p in named if any(ipaddress.ip_network(p).subnet_of(o) for o in others)]  # type: ignore[arg-type]
            if foreign:
                assert rule["name"].rsplit("-", 1)[0] in inter, (nsg.name, rule["name"], foreign)


def test_the_firewall_policy_carries_the_inter_council_flows(estate: Estate, planned: Plan) -> None:
    group = only(planned.of_type("azure-native:network:FirewallPolicyRuleCollectionGroup", "shared"),
                 "afwp-shared-flow-matrix")
    collections = {c["name"]: c for c in group.inputs["ruleCollections"]}
    rules = {r["name"]: r for r in collections["inter-council-flows"]["rules"]}
    inter = [f for f in estate.framework.network.flows if f.scope == "inter"]
    # one rule per flow and council that agreed it with another: from its source VLAN to its partners' (Havering
    # and Newham agree FL-14; Waltham Forest agrees nothing, so no rule names it)
    expected = {f"{f.id}-{c}": (f, c) for f in inter for c in COUNCILS
                if any(_agreed(estate, f.id, c, other) for other in COUNCILS)}
    assert set(rules) == set(expected) == {"FL-14-havering", "FL-14-newham"}
    for name, (flow, council) in expected.items():
        rule = rules[name]
        assert rule["ipProtocols"] == [flow.protocol.upper()]
        assert set(rule["sourceAddresses"]) == {_net(estate, council, flow.source)}
        assert set(rule["destinationAddresses"]) == {_net(estate, c, flow.destination) for c in COUNCILS
                                                     if _agreed(estate, flow.id, council, c)}
        assert rule["destinationPorts"] == flow.ports
    firewall = only(planned.of_type("azure-native:network:AzureFirewall", "shared"), "afw-shared")
    policy = only(planned.of_type("azure-native:network:FirewallPolicy", "shared"), "afwp-shared")
    assert firewall.inputs["firewallPolicy"]["id"].endswith("/afwp-shared")
    assert firewall.inputs["ipConfigurations"][0]["subnet"]["id"].endswith("/subnets/AzureFirewallSubnet")
    tier = next(s.sku for s in estate.framework.network.hub.segments if s.azure_name == "AzureFirewallSubnet")
    assert firewall.inputs["sku"]["tier"] == policy.inputs["sku"]["tier"] == tier


def _purpose_sources(estate: Estate, sources: list[str]) -> set[str]:
    return {_net(estate, "shared", s[4:]) if s.startswith("hub/") else _net(estate, c, s)
            for s in sources for c in (["shared"] if s.startswith("hub/") else COUNCILS)}


def test_the_firewall_policy_carries_every_egress_purpose(estate: Estate, planned: Plan) -> None:
    """An application rule per application purpose (two when it names both FQDNs and FQDN tags: Azure's
    ApplicationRule takes one or the other), a network rule per network purpose (KMS on TCP 1688 to an FQDN) with
    the policy's DNS proxy on; all from the prefixes of the purpose's sources; no session-host-egress left."""
    group = only(planned.of_type("azure-native:network:FirewallPolicyRuleCollectionGroup", "shared"),
                 "afwp-shared-egress")
    assert 100 <= group.inputs["priority"] <= 65000
    collections = {c["name"]: c for c in group.inputs["ruleCollections"]}
    assert set(collections) == {"egress-network", "egress-application"}
    assert all(100 <= c["priority"] <= 65000 and c["action"]["type"] == "Allow" for c in collections.values())
    app = collections["egress-application"]["rules"]
    net = collections["egress-network"]["rules"]
    assert {r["ruleType"] for r in app} == {"ApplicationRule"} and {r["ruleType"] for r in net} == {"NetworkRule"}
    for p in estate.framework.network.egress.purposes:
        sources = _purpose_sources(estate, p.sources)
        if p.application is not None:
            mine = [r for r in app if r["name"].startswith(p.name)]
            assert len(mine) == bool(p.application.fqdns) + bool(p.application.fqdn_tags), p.name
            for r in mine:
                assert set(r["sourceAddresses"]) == sources
                assert {f"{x['protocolType']}:{x['port']:g}" for x in r["protocols"]} == set(p.application.protocols)
                assert ("targetFqdns" in r) != ("fqdnTags" in r), r["name"]  # one or the other
            assert {f for r in mine for f in r.get("targetFqdns", [])} == set(p.application.fqdns)
            assert {t for r in mine for t in r.get("fqdnTags", [])} == set(p.application.fqdn_tags)
        else:
            assert p.network is not None
            (rule,) = [r for r in net if r["name"] == p.name]
            assert set(rule["sourceAddresses"]) == sources
            assert rule["ipProtocols"] == [p.network.protocol.upper()] and rule["destinationPorts"] == p.network.ports
            assert rule.get("destinationFqdns", []) == p.network.fqdns
            assert rule.get("destinationAddresses", []) == p.network.service_tags
    activation = next(r for r in net if r["name"] == "windows-activation")
    assert activation["destinationFqdns"] and activation["destinationPorts"] == ["1688"]
    policy = only(planned.of_type("azure-native:network:FirewallPolicy", "shared"), "afwp-shared")
    assert policy.inputs["dnsSettings"]["enableProxy"] is True  # network rules with FQDNs need the DNS proxy
    flows = only(planned.of_type("azure-native:network:FirewallPolicyRuleCollectionGroup", "shared"),
                 "afwp-shared-flow-matrix")
    assert [c["name"] for c in flows.inputs["ruleCollections"]] == ["inter-council-flows"]
    assert flows.inputs["priority"] != group.inputs["priority"]


@pytest.mark.parametrize("council", COUNCILS)
def test_bastion_reaches_the_session_hosts_on_rdp_before_the_deny(estate: Estate, planned: Plan,
                                                                 council: str) -> None:
    """The defect: every NSG denied the consortium inbound at 4000 and nothing let AzureBastionSubnet in."""
    nsg = only(planned.of_type(NSG, council), f"nsg-{council}-desktops")
    rules = nsg.inputs["securityRules"]
    bastion = _net(estate, "shared", "bastion")
    rdp = estate.framework.network.administration.windows_port
    allow = [r for r in rules if r["access"] == "Allow" and r["direction"] == "Inbound"
             and bastion in prefixes(r, "source") and rdp in ports(r)]
    assert len(allow) == 1 and allow[0]["protocol"] == "Tcp"
    assert prefixes(allow[0], "destination") == {_net(estate, council, "desktops")}
    deny = next(r for r in rules if r["name"] == "deny-consortium-in")
    assert allow[0]["priority"] < deny["priority"]
    assert not [r for r in rules if r["access"] == "Allow" and bastion in prefixes(r, "source")
                and not set(ports(r)) <= {rdp}]  # RDP only: SSH is for the Linux segments


def test_the_bastion_nsg_holds_microsofts_rules_and_denies_the_rest_of_the_network(estate: Estate,
                                                                                   planned: Plan) -> None:
    """learn.microsoft.com/azure/bastion/bastion-nsg: every required rule (the one to the target VMs on the
    framework's administration ports), then the rest of the virtual network denied both ways, so the default
    AllowVnetOutBound no longer lets Bastion reach the firewall's DNS proxy or anything the matrix does not list."""
    subnet = next(r for r in planned.of_type(SUBNET, "shared") if r.inputs["subnetName"] == "AzureBastionSubnet")
    nsg = only(planned.of_type(NSG, "shared"), "nsg-shared-bastion")
    assert subnet.inputs["networkSecurityGroup"]["id"].endswith("/networkSecurityGroups/nsg-shared-bastion")
    rules = {r["name"]: r for r in nsg.inputs["securityRules"]}
    admin = estate.framework.network.administration
    expected = {
        "AllowHttpsInbound": ("Inbound", "Internet", "*", {"443"}),
        "AllowGatewayManagerInbound": ("Inbound", "GatewayManager", "*", {"443"}),
        "AllowAzureLoadBalancerInbound": ("Inbound", "AzureLoadBalancer", "*", {"443"}),
        "AllowBastionHostCommunication": ("Inbound", "VirtualNetwork", "VirtualNetwork", {"8080", "5701"}),
        "AllowSshRdpOutbound": ("Outbound", "*", "VirtualNetwork", {admin.linux_port, admin.windows_port}),
        "AllowAzureCloudOutbound": ("Outbound", "*", "AzureCloud", {"443"}),
        "AllowBastionCommunication": ("Outbound", "VirtualNetwork", "VirtualNetwork", {"8080", "5701"}),
        "AllowHttpOutbound": ("Outbound", "*", "Internet", {"80"}),
    }
    allows = {n: r for n, r in rules.items() if r["access"] == "Allow"}
    assert set(allows) == set(expected)
    for name, (direction, source, destination, wanted) in expected.items():
        r = allows[name]
        assert (r["direction"], r["protocol"], prefixes(r, "source"), prefixes(r, "destination"), ports(r)) == (
            direction, "Tcp", frozenset({source}), frozenset({destination}), frozenset(wanted)), name
    denies = {n: r for n, r in rules.items() if r["access"] == "Deny"}
    assert set(denies) == {"deny-vnet-in", "deny-vnet-out"}
    assert prefixes(denies["deny-vnet-in"], "source") == {"VirtualNetwork"}
    assert prefixes(denies["deny-vnet-out"], "destination") == {"VirtualNetwork"}
    for deny in denies.values():
        assert deny["protocol"] == "*" and deny["destinationPortRange"] == "*"
        assert all(r["priority"] < deny["priority"] for r in allows.values() if r["direction"] == deny["direction"])


@pytest.mark.parametrize("council", COUNCILS)
def test_the_guest_nsg_lets_the_web_out_and_nothing_of_the_estate(estate: Estate, planned: Plan,
                                                                 council: str) -> None:
    nsg = only(planned.of_type(NSG, council), f"nsg-{council}-guest")
    rules = sorted(nsg.inputs["securityRules"], key=lambda r: r["priority"])
    supernet = ipaddress.ip_network(estate.framework.network.supernet)
    own = _net(estate, council, "guest")
    out_allows = [r for r in rules if r["direction"] == "Outbound" and r["access"] == "Allow"]
    web = [r for r in out_allows if prefixes(r, "destination") == {"Internet"}]
    assert len(web) == 1 and web[0]["protocol"] == "Tcp" and ports(web[0]) == {"80", "443"}
    for r in out_allows:  # nothing of the supernet but the guest segment itself
        for p in prefixes(r, "destination") - {"Internet"}:
            assert p == own or not ipaddress.ip_network(p).overlaps(supernet), r["name"]
    denies = {r["name"]: r for r in rules if r["direction"] == "Outbound" and r["access"] == "Deny"}
    assert prefixes(denies["deny-internet-out"], "destination") == {"Internet"}
    assert web[0]["priority"] < denies["deny-internet-out"]["priority"]
    assert not [r for r in rules if r["direction"] == "Inbound" and r["access"] == "Allow"
                and not r["name"].startswith("allow-within-segment")]


def test_hub_internal_flows_stay_in_the_hub_vnet(estate: Estate, planned: Plan) -> None:
    """Hub-internal flows (FL-20, FL-21) are allowed by the NSGs of the segments that have one (Bastion's NSG
    holds Microsoft's rules instead: its admin rule to VirtualNetwork covers them) and stay local: the hub's route
    table sends only 0.0.0.0/0 to the firewall, and the VNet's own VnetLocal system route (the hub block) is more
    specific."""
    nsgs = {r.name: r for r in planned.of_type(NSG, "shared")}
    for flow in (f for f in estate.framework.network.flows if f.scope == "hub-internal"):
        src, dst = flow.source[4:], flow.destination[4:]
        inbound = {r["name"]: r for r in nsgs[f"nsg-shared-{dst}"].inputs["securityRules"]}[f"{flow.id}-in"]
        assert prefixes(inbound, "source") == {_net(estate, "shared", src)}
        names = {r["name"]: r for r in nsgs[f"nsg-shared-{src}"].inputs["securityRules"]}
        if src == "bastion":
            assert set(flow.ports) <= ports(names["AllowSshRdpOutbound"])
        else:
            assert f"{flow.id}-out" in names
    routes = only(planned.of_type("azure-native:network:RouteTable", "shared"), "rt-shared").inputs["routes"]
    block = estate.addresses.hub.block
    assert [r["addressPrefix"] for r in routes] == ["0.0.0.0/0"]
    assert all(ipaddress.ip_network(r["addressPrefix"]).prefixlen < block.prefixlen for r in routes)


@pytest.mark.parametrize("council", COUNCILS)
def test_peerings_exist_both_ways(planned: Plan, council: str) -> None:
    hub = only(planned.of_type("azure-native:network:VirtualNetwork", "shared"), "vnet-shared").inputs
    spoke = only(planned.of_type("azure-native:network:VirtualNetwork", council), f"vnet-{council}").inputs
    # each stack owns the side in its own VNet: the council's in its stack, the hub's in the hub stack
    out = only(planned.of_type("azure-native:network:VirtualNetworkPeering", council), f"peer-{council}-to-hub").inputs
    back = only(planned.of_type("azure-native:network:VirtualNetworkPeering", "shared"),
                f"peer-hub-to-{council}").inputs
    assert (out["virtualNetworkName"], out["resourceGroupName"]) == (spoke["virtualNetworkName"],
                                                                     spoke["resourceGroupName"])
    assert out["remoteVirtualNetwork"]["id"].endswith(_vnet_path(hub))
    # the hub's side, on the hub's VNet, names the spoke by the naming convention (no StackReference to it)
    assert (back["virtualNetworkName"], back["resourceGroupName"]) == (hub["virtualNetworkName"],
                                                                       hub["resourceGroupName"])
    assert back["remoteVirtualNetwork"]["id"].endswith(_vnet_path(spoke))
    for p in (out, back):
        assert p["allowVirtualNetworkAccess"] and p["allowForwardedTraffic"]
        assert not p["useRemoteGateways"]


def _vnet_path(vnet: dict[str, Any]) -> str:
    return (f"/resourceGroups/{vnet['resourceGroupName']}/providers/Microsoft.Network/virtualNetworks/"
            f"{vnet['virtualNetworkName']}")


@pytest.mark.parametrize("council", COUNCILS)
def test_session_hosts_follow_users_concurrency_and_sessions_per_host(
        estate: Estate, planned: Plan, council: str) -> None:
    avd = estate.framework.desktop.avd
    users = estate.councils[council].council.users.desktop
    vmss = only(planned.of_type("azure-native:compute:VirtualMachineScaleSet", council), f"vmss-{council}-avd")
    assert vmss.inputs["sku"]["capacity"] == expected_session_hosts(users, avd.concurrency, avd.max_sessions_per_host)
    assert vmss.inputs["sku"]["name"] == estate.framework.desktop.vm_sizes.default
    image = vmss.inputs["virtualMachineProfile"]["storageProfile"]["imageReference"]
    spec = estate.framework.desktop.image
    assert (image["publisher"], image["offer"], image["sku"]) == (spec.publisher, spec.offer, spec.sku)
    pool = only(planned.of_type("azure-native:desktopvirtualization:HostPool", council), f"vdpool-{council}")
    assert pool.inputs["maxSessionLimit"] == avd.max_sessions_per_host
    assert pool.inputs["hostPoolType"] == avd.host_pool_type
    assert pool.inputs["loadBalancerType"] == avd.load_balancer_type
    subnet = vmss.inputs["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0][
        "ipConfigurations"][0]["subnet"]["id"]
    assert subnet.endswith("/subnets/snet-desktops")


@pytest.mark.parametrize(("users", "concurrency", "per_host", "hosts"), [
    (0, 0.6, 12, 0), (1, 0.6, 12, 1), (20, 0.6, 12, 1), (21, 0.6, 12, 2), (2400, 0.6, 12, 120),
    (2750, 0.6, 12, 138), (3900, 0.6, 12, 195), (100, 0.1, 10, 1), (101, 0.1, 10, 2), (10, 0.7, 7, 1),
])
def test_session_host_arithmetic(users: int, concurrency: float, per_host: int, hosts: int) -> None:
    from stacks.props import session_host_count

    assert session_host_count(users, concurrency, per_host) == hosts == expected_session_hosts(
        users, concurrency, per_host)


@pytest.mark.parametrize("council", COUNCILS)
def test_the_desktop_users_group_is_assigned_to_its_application_group(planned: Plan, council: str) -> None:
    from estate.plan import stack_config

    users = stack_config(repo_estate(), council)["shared-estate:desktopUsersGroupObjectId"]
    group = only(planned.of_type("azure-native:desktopvirtualization:ApplicationGroup", council),
                 f"vdag-{council}-desktop")
    assert group.inputs["applicationGroupType"] == "Desktop"
    assert group.inputs["hostPoolArmPath"].endswith(f"/hostPools/vdpool-{council}")
    assigned = [r for r in planned.of_type("azure-native:authorization:RoleAssignment", council)
                if r.inputs["principalId"] == users]
    scopes = {r.inputs["scope"].rsplit("/", 1)[-1]: r.inputs["roleDefinitionId"].rsplit("/", 1)[-1] for r in assigned}
    assert scopes[f"vdag-{council}-desktop"] == "1d18fff3-a72a-46b5-b4a9-0b38a3cd7e63"  # Desktop Virtualization User
    workspace = only(planned.of_type("azure-native:desktopvirtualization:Workspace", council), f"vdws-{council}")
    assert workspace.inputs["applicationGroupReferences"][0].endswith(f"/vdag-{council}-desktop")


def _nic_configs(resource: PlannedResource) -> list[dict[str, Any]]:
    if resource.type == "azure-native:network:NetworkInterface":
        return list(resource.inputs["ipConfigurations"])
    profile = resource.inputs["virtualMachineProfile"]["networkProfile"]
    return [ip for nic in profile["networkInterfaceConfigurations"] for ip in nic["ipConfigurations"]]


def test_no_desktop_or_server_has_a_public_ip(planned: Plan) -> None:
    machines = planned.of_type("azure-native:network:NetworkInterface") + planned.of_type(
        "azure-native:compute:VirtualMachineScaleSet")
    assert len(planned.of_type("azure-native:compute:VirtualMachineScaleSet")) == len(COUNCILS)
    assert machines
    for machine in machines:
        for ip in _nic_configs(machine):
            assert "publicIPAddress" not in ip and "publicIPAddressConfiguration" not in ip, machine.name
    for vm in planned.of_type("azure-native:compute:VirtualMachine"):
        assert set(vm.inputs["networkProfile"]) == {"networkInterfaces"}  # NICs only, no inline public IP
    public = planned.of_type("azure-native:network:PublicIPAddress")
    assert {p.stack for p in public} == {"shared"}
    users = {r.name: r for r in planned.resources if "publicIPAddress" in str(r.inputs)
             and r.type != "azure-native:network:PublicIPAddress"}
    assert set(users) == {"afw-shared", "bas-shared"}, "only the firewall and Bastion face the internet"


def test_every_taggable_resource_is_tagged(estate: Estate, planned: Plan) -> None:
    required = estate.framework.security.tagging.required
    taggable = 0
    for r in planned.resources:
        if not r.custom or "tags" not in resource_parameters(r.type):
            continue
        taggable += 1
        tags = r.inputs.get("tags")
        assert isinstance(tags, dict), f"{r.urn} has no tags"
        assert set(required) <= set(tags), f"{r.urn}: {sorted(tags)}"
        assert tags["council"] == r.stack
        assert tags["framework-version"] == estate.framework.version
        assert tags["service"] and tags["cost-centre"]
        if r.stack != "shared":
            assert tags["cost-centre"] == estate.councils[r.stack].council.code
    assert taggable >= 100  # not vacuous: most of the estate is taggable


def test_admin_groups_hold_only_their_own_resource_groups(estate: Estate, planned: Plan) -> None:
    from estate.plan import stack_config

    admins = {s: stack_config(estate, s)["shared-estate:adminGroupObjectId"] for s in planned.stacks}
    assert len(set(admins.values())) == len(admins)
    groups = {s: {r.inputs["resourceGroupName"] for r in planned.of_type("azure-native:resources:ResourceGroup", s)}
              for s in planned.stacks}
    for stack in planned.stacks:
        mine = [r for r in planned.of_type("azure-native:authorization:RoleAssignment", stack)
                if r.inputs["principalId"] == admins[stack]]
        contributor = {r.inputs["scope"].split("/resourceGroups/")[1] for r in mine
                       if r.inputs["roleDefinitionId"].endswith("b24988ac-6180-42a0-ab88-20f7382dd24c")}
        assert contributor == groups[stack], stack  # Contributor on each of its own groups
        for r in mine:
            assert r.inputs["scope"].split("/resourceGroups/")[1].split("/")[0] in groups[stack]
            assert r.inputs["principalType"] == "Group"
    every = planned.of_type("azure-native:authorization:RoleAssignment")
    for stack, principal in admins.items():
        assert all(r.stack == stack for r in every if r.inputs["principalId"] == principal)


@pytest.mark.parametrize("council", COUNCILS)
def test_servers_are_the_framework_target_state_and_backed_up(estate: Estate, planned: Plan, council: str) -> None:
    dc = estate.framework.data_centre
    vms = {r.inputs["vmName"]: r for r in planned.of_type("azure-native:compute:VirtualMachine", council)}
    assets = estate.councils[council].council.assets.servers
    assert set(vms) == {s.name for s in assets}
    policy = only(planned.of_type("azure-native:recoveryservices:ProtectionPolicy", council), f"bkpol-{council}-vm")
    protected = {r.inputs["properties"]["sourceResourceId"].rsplit("/", 1)[-1]: r
                 for r in planned.of_type("azure-native:recoveryservices:ProtectedItem", council)}
    for asset in assets:
        vm = vms[asset.name].inputs
        assert vm["hardwareProfile"]["vmSize"] in dc.vm_skus.allowed
        if asset.sku in dc.vm_skus.allowed:
            assert vm["hardwareProfile"]["vmSize"] == asset.sku
        image = vm["storageProfile"]["imageReference"]
        assert (image["publisher"], image["offer"], image["sku"]) == (
            dc.server_image.publisher, dc.server_image.offer, dc.server_image.sku)
        assert vm["securityProfile"]["encryptionAtHost"] is dc.encryption_at_host.required
        assert vm["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is True
        item = protected[asset.name].inputs
        assert item["properties"]["policyId"].endswith(f"/{policy.inputs['policyName']}")
        assert item["vaultName"] == f"rsv-{council}"
    schedule = policy.inputs["properties"]["schedulePolicy"]
    retention = policy.inputs["properties"]["retentionPolicy"]
    assert schedule["scheduleRunFrequency"] == dc.backup.frequency
    runs = schedule["dailySchedule" if dc.backup.frequency == "Daily" else "weeklySchedule"]["scheduleRunTimes"]
    assert runs[0][11:16] == dc.backup.time
    assert retention["dailySchedule"]["retentionDuration"]["count"] == dc.backup.retention_days
    assert retention["weeklySchedule"]["retentionDuration"]["count"] == dc.backup.weekly_retention_weeks


def test_servers_placed_in_hosts_yml_keep_their_address(estate: Estate, planned: Plan) -> None:
    nics = {r.name.removeprefix("nic-"): r.inputs for r in planned.of_type("azure-native:network:NetworkInterface")}
    checked = 0
    for site in ["shared", *COUNCILS]:
        for name, _, segment, address in host_addresses(estate, site):
            if name in nics:
                ip = nics[name]["ipConfigurations"][0]
                assert ip["privateIPAddress"] == str(address)
                assert ip["subnet"]["id"].endswith(f"/subnets/{segment.azure_name}")
                checked += 1
    assert checked >= 4


def test_platform_services_follow_the_spec(estate: Estate, planned: Plan) -> None:
    dc = estate.framework.data_centre
    workspace = only(planned.of_type("azure-native:operationalinsights:Workspace", "shared"), "log-shared")
    assert workspace.inputs["retentionInDays"] == dc.log_analytics.retention_days
    assert workspace.inputs["sku"]["name"] == dc.log_analytics.sku
    vaults = planned.of_type("azure-native:keyvault:Vault")
    assert {v.stack for v in vaults} == set(COUNCILS)
    for vault in vaults:
        props = vault.inputs["properties"]
        assert props["enableRbacAuthorization"] is dc.key_vault.rbac
        assert props["enablePurgeProtection"] is dc.key_vault.purge_protection
        assert props["softDeleteRetentionInDays"] == dc.key_vault.soft_delete_days
        assert props["publicNetworkAccess"] == "Disabled"
    network_types = {"azure-native:network:VirtualNetwork", NSG, "azure-native:network:AzureFirewall",
                     "azure-native:network:BastionHost"}
    targets = {r.inputs["resourceUri"] for r in planned.of_type("azure-native:monitor:DiagnosticSetting")}
    for r in planned.resources:
        if r.type in network_types:
            assert any(t.endswith("/" + r.name) for t in targets), f"{r.name} has no diagnostic setting"
    for setting in planned.of_type("azure-native:monitor:DiagnosticSetting"):
        assert setting.inputs["workspaceId"].endswith("/workspaces/log-shared")


def test_private_dns_zones_are_linked_to_the_hub_and_every_spoke(planned: Plan) -> None:
    zones = {z.inputs["privateZoneName"] for z in planned.of_type("azure-native:privatedns:PrivateZone", "shared")}
    assert zones
    links = planned.of_type("azure-native:privatedns:VirtualNetworkLink")
    linked = {(link.inputs["privateZoneName"], link.inputs["virtualNetwork"]["id"].rsplit("/", 1)[-1])
              for link in links}
    assert linked == {(z, f"vnet-{s}") for z in zones for s in ["shared", *COUNCILS]}
    assert all(link.inputs["resourceGroupName"] == "rg-shared-datacentre" for link in links)


def test_the_helpdesk_is_reachable_from_every_desktop_vlan_on_the_matrix_ports_only(
        estate: Estate, planned: Plan) -> None:
    helpdesk = next(s for _, role, s, _ in host_addresses(estate, "shared") if role == "helpdesk")
    vm = only(planned.of_type("azure-native:network:NetworkInterface", "shared"), "nic-hub-hd01")
    assert vm.inputs["ipConfigurations"][0]["subnet"]["id"].endswith(f"/subnets/{helpdesk.azure_name}")
    nsg = only(planned.of_type(NSG, "shared"), f"nsg-shared-{helpdesk.name}")
    desktops = {_net(estate, c, "desktops") for c in COUNCILS}
    inbound = [r for r in nsg.inputs["securityRules"] if r["direction"] == "Inbound" and r["access"] == "Allow"]
    from_desktops = [r for r in inbound if prefixes(r, "source") & desktops]
    flows = [f for f in estate.framework.network.flows
             if f.source == "desktops" and f.destination == f"hub/{helpdesk.name}"]
    assert flows
    assert {(r["name"].rsplit("-", 1)[0], ports(r)) for r in from_desktops} == {
        (f.id, frozenset(f.ports)) for f in flows}
    assert all(prefixes(r, "source") == desktops for r in from_desktops)
    [server] = planned.of_type("azure-native:dbforpostgresql:Server", "shared")
    platform = estate.framework.helpdesk.platform
    assert (server.inputs["sku"]["name"], server.inputs["version"]) == (platform.database_sku,
                                                                        platform.database_version)
    assert server.inputs["network"]["publicNetworkAccess"] == "Disabled"
    assert server.inputs["storage"]["storageSizeGB"] == platform.database_storage_gb


def test_the_cli_entry_declares_the_same_hub() -> None:
    """stacks/__main__.py, the file the Pulumi CLI runs, under the same mocks: the hub it declares is the plan's."""
    import runpy

    from estate.plan import plan
    from tests.stacks_support import REPO

    def entry(estate: Estate, stack: str) -> dict[str, Any]:
        runpy.run_path(str(REPO / "stacks" / "__main__.py"), run_name="__main__")
        return {}

    via_cli = plan(repo_estate(), ["shared"], program=entry, workers=1)
    assert via_cli.resources == repo_plan().for_stack("shared")


def test_read_config_defaults_the_registration_expiry_from_the_clock() -> None:
    import datetime as dt

    import pulumi

    from stacks.program import read_config

    project = pulumi.get_project()  # the project namespace of config: shared-estate once a program has run
    pulumi.runtime.set_all_config({"azure-native:location": "uksouth", f"{project}:council": "newham"})
    config = read_config("newham", now=dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.UTC))
    assert config.registration_expiry == "2026-12-19T09:00:00Z"
    assert (config.location, config.council, config.admin_group) == ("uksouth", "newham", None)
    assert config.hub_stack is not None and config.hub_stack.endswith("/shared") and config.hub_stack.count("/") == 2
    assert read_config("newham").registration_expiry is None

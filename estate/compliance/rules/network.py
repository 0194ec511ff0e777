"""Network rules (NET): the address plan, segmentation by the flow matrix, routing through the hub. (No public
addresses and network equipment in support, NET-005 and NET-010, judge data-centre controls: they live in
estate/controls/data_centre/.)"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from estate import bastion
from estate.azure import BASTION_SUBNET, FIREWALL_SUBNET, NO_NSG_SUBNETS
from estate.controls.base import (
    CloudResource,
    Context,
    Outcome,
    Rule,
    as_list,
    failed,
    get,
    mapping,
    number,
    passed,
    rule,
)
from estate.controls.network.flows import (
    ANYWHERE,
    Destination,
    Service,
    fqdn_covers,
    judge_allow,
    judge_egress,
    port_covered,
    port_ranges,
    protocols,
    purpose_destinations,
    purpose_prefixes,
    purpose_services,
)
from estate.ipam import HUB, SitePlan

VNET = "azure-native:network:VirtualNetwork"
SUBNET = "azure-native:network:Subnet"
NSG = "azure-native:network:NetworkSecurityGroup"
PEERING = "azure-native:network:VirtualNetworkPeering"
ROUTE_TABLE = "azure-native:network:RouteTable"
ROUTE = "azure-native:network:Route"
RULE_GROUP = "azure-native:network:FirewallPolicyRuleCollectionGroup"
FIREWALL_POLICY = "azure-native:network:FirewallPolicy"
INTERNET_TAG = "internet"  # the NSG service tag of everything outside the virtual networks
UNKNOWN = "[unknown]"  # a value the policy pack cannot know during preview (estate.compliance.pack)


def site(ctx: Context, stack: str) -> SitePlan | None:
    plan = ctx.addresses
    if stack == HUB:
        return plan.hub
    return plan.councils.get(stack)


def subnet_name(res: CloudResource) -> str:
    value = res.inputs.get("subnetName") or res.inputs.get("name") or res.name
    return str(value)


def inline_subnets(res: CloudResource) -> list[Mapping[str, Any]]:
    return [s for s in as_list(res.inputs.get("subnets")) if isinstance(s, Mapping)]


def _subnet_nsgs(resources: Iterable[CloudResource]) -> list[tuple[str, Any]]:
    """(subnet name, its networkSecurityGroup reference) of the Subnet resources and the VNets' inline subnets."""
    out: list[tuple[str, Any]] = []
    for res in resources:
        if res.type == SUBNET:
            out.append((subnet_name(res), res.inputs.get("networkSecurityGroup")))
        elif res.type == VNET:
            out += [(str(s.get("name")), s.get("networkSecurityGroup")) for s in inline_subnets(res)]
    return out


def _nsg_name(res: CloudResource) -> str:
    return str(res.inputs.get("networkSecurityGroupName") or res.name)


def _refers_to(reference: Any, nsg: CloudResource) -> bool:
    """A subnet's networkSecurityGroup.id names this NSG (its name, and its resource group when both say one)."""
    rid = reference.get("id") if isinstance(reference, Mapping) else None
    if not isinstance(rid, str):
        return False
    parts = [p.lower() for p in rid.strip("/").split("/")]
    if len(parts) < 2 or parts[-2] != "networksecuritygroups" or parts[-1] != _nsg_name(nsg).lower():
        return False
    group = parts[parts.index("resourcegroups") + 1] if "resourcegroups" in parts[:-1] else None
    mine = nsg.inputs.get("resourceGroupName")
    return group is None or not isinstance(mine, str) or mine.lower() == group


def _only_bastions(nsg: CloudResource, ctx: Context) -> bool:
    """The NSG allows exactly what Bastion needs: every required rule and nothing else."""
    rules = [r for r in as_list(nsg.inputs.get("securityRules")) if isinstance(r, Mapping)]
    admin = _admin_ports(ctx)
    return not bastion.missing(rules, admin) and all(bastion.platform_rule(r, admin) for r in _allows(nsg, None))


def bastion_nsgs(resources: Sequence[CloudResource], ctx: Context) -> set[str]:
    """The urns of the stack's NSGs on AzureBastionSubnet, found by the subnet's reference. During a preview the
    reference to an NSG not yet created is unknown: then the stack's one NSG that holds exactly Bastion's rules is
    taken for it (none when there are several), so a council's NSG never counts as Bastion's."""
    nsgs = [r for r in resources if r.type == NSG]
    refs = [ref for name, ref in _subnet_nsgs(resources) if name == BASTION_SUBNET]
    out = {n.urn for n in nsgs for ref in refs if _refers_to(ref, n)}
    if any(isinstance(ref, Mapping) and ref.get("id") == UNKNOWN for ref in refs):
        candidates = [n for n in nsgs if n.urn not in out and _only_bastions(n, ctx)]
        if len(candidates) == 1:
            out.add(candidates[0].urn)
    return out


def _admin_ports(ctx: Context) -> tuple[str, ...]:
    admin = ctx.fw.network.administration
    return tuple(dict.fromkeys((admin.linux_port, admin.windows_port)))


@rule
class VnetAddressSpace(Rule):
    id = "NET-001"
    title = "each virtual network uses its site's address block"
    severity = "high"
    control = "network.address_plan"
    area = "network"
    fix = "Set addressSpace.addressPrefixes to the block `estate ipam` gives the site (supernet {fw.network.supernet})."
    types = (VNET,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        plan = site(ctx, res.stack)
        got = [str(p) for p in as_list(get(res.inputs, "addressSpace.addressPrefixes"))]
        if plan is None:
            return [failed(res.urn, f"{res.name} is in stack {res.stack!r}, which is no site of the address plan")]
        if got == [str(plan.block)]:
            return [passed(res.urn, f"{res.name} uses {plan.block}")]
        return [failed(res.urn, f"{res.name} uses {', '.join(got) or 'no address space'}, not {plan.block}")]


@rule
class SubnetPrefixes(Rule):
    id = "NET-002"
    title = "each subnet is a segment of the address plan with its planned prefix"
    severity = "high"
    control = "network.address_plan"
    area = "network"
    fix = "Name subnets after their segment (snet-<vlan>, or the hub's azure_name) with the prefix `estate ipam` gives."
    types = (SUBNET, VNET)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        plan = site(ctx, res.stack)
        if res.type == SUBNET:
            subnets = [(subnet_name(res), res.inputs.get("addressPrefix"))]
        else:
            subnets = [(str(s.get("name")), s.get("addressPrefix")) for s in inline_subnets(res)]
            if not subnets:
                return []
        if plan is None:
            return [failed(res.urn, f"{res.name} is in stack {res.stack!r}, which is no site of the address plan")]
        by_name = {seg.azure_name: seg for seg in plan.segments}
        wrong = []
        for name, prefix in subnets:
            seg = by_name.get(name)
            if seg is None:
                wrong.append(f"subnet {name} is no segment of {plan.key}")
            elif str(prefix) != str(seg.network):
                wrong.append(f"subnet {name} is {prefix}, not {seg.network}")
        if wrong:
            return [failed(res.urn, "; ".join(wrong))]
        return [passed(res.urn, ", ".join(f"{n} {p}" for n, p in subnets) + " as planned")]


def _allows(res: CloudResource, direction: str | None = "inbound") -> list[Mapping[str, Any]]:
    """The NSG's allow rules (of one direction, or both for None)."""
    return [r for r in as_list(res.inputs.get("securityRules")) if isinstance(r, Mapping)
            and str(r.get("access", "")).lower() == "allow"
            and (direction is None or str(r.get("direction", "")).lower() == direction)]


def _prefixes(r: Mapping[str, Any], single: str, plural: str) -> list[str]:
    out = [str(p) for p in as_list(r.get(plural))]
    if r.get(single) is not None:
        out.append(str(r.get(single)))
    return out


def _is_public(address: str, ctx: Context) -> bool:
    if address.strip().lower() in ANYWHERE:
        return True
    try:
        net = ipaddress.IPv4Network(address.strip(), strict=False)
    except ValueError:
        return False  # another service tag (AzureLoadBalancer...) is not the internet
    return not net.subnet_of(ctx.addresses.supernet) and not net.is_private


@rule
class NoInboundFromInternet(Rule):
    id = "NET-003"
    title = "no network security group, the hub's included, allows anything (RDP, SSH) in from the internet"
    severity = "critical"
    control = "network.segmentation"
    area = "network"
    fix = ("Remove the inbound allow rule from the internet (Internet, *, Any, 0.0.0.0/0 or a public range); reach "
           "hosts over SSH and RDP only through the hub's Bastion, and publish services through the hub firewall "
           "(framework control {c.id}). Only the NSG of AzureBastionSubnet may let HTTPS (443) in from the "
           "Internet tag, as Azure Bastion requires (learn.microsoft.com/azure/bastion/bastion-nsg).")

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        # A stack rule: whether an NSG is Bastion's is said by the subnet that references it. The hub's NSGs are
        # judged too: an NSG in the hub that lets the internet in (SSH or RDP to the shared servers) is as wrong
        # as a council's. Bastion's NSG may let in exactly what Bastion needs and nothing else: the users' HTTPS
        # from the Internet tag, and its instances' 8080 and 5701 from VirtualNetwork (which holds the internet
        # only on a subnet with a UDR to it, and Azure allows no route table on AzureBastionSubnet).
        on_bastion = bastion_nsgs(resources, ctx)
        inbound = [p for p in bastion.REQUIRED if p.direction == "Inbound"]
        for res in resources:
            if res.type != NSG:
                continue
            bad, platform = [], []
            for r in _allows(res):
                sources = _prefixes(r, "sourceAddressPrefix", "sourceAddressPrefixes")
                public = [s for s in sources if _is_public(s, ctx)]
                if not public:
                    continue
                if res.urn in on_bastion and any(bastion.within(r, p) for p in inbound):
                    platform.append(str(r.get("name")))
                    continue
                bad.append(f"rule {r.get('name')} allows {', '.join(public)} in")
            if bad:
                yield failed(res.urn, f"{res.name}: " + "; ".join(bad))
            elif platform:
                yield passed(res.urn, f"{res.name} lets in only what Azure Bastion requires on AzureBastionSubnet "
                                      f"({', '.join(platform)}; {bastion.BASTION_NSG_URL})")
            else:
                yield passed(res.urn, f"{res.name} allows nothing in from the internet")


@rule
class SubnetHasNsg(Rule):
    id = "NET-004"
    title = "every subnet has a network security group"
    severity = "high"
    control = "network.segmentation"
    area = "network"
    fix = "Attach the segment's network security group (networkSecurityGroup.id) to the subnet."
    types = (SUBNET, VNET)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if res.type == SUBNET:
            subnets: list[tuple[str, Any]] = [(subnet_name(res), res.inputs.get("networkSecurityGroup"))]
        else:
            subnets = [(str(s.get("name")), s.get("networkSecurityGroup")) for s in inline_subnets(res)]
        subnets = [(n, nsg) for n, nsg in subnets if n not in NO_NSG_SUBNETS]
        if not subnets:
            return []
        bare = [n for n, nsg in subnets if not (isinstance(nsg, Mapping) and nsg.get("id"))]
        if bare:
            return [failed(res.urn, f"subnet {', '.join(bare)} has no network security group")]
        return [passed(res.urn, f"subnet {', '.join(n for n, _ in subnets)} has a network security group")]


def allow_rules(group: CloudResource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The rules of a firewall policy rule collection group's Allow collections, each with its collection's name."""
    for coll in as_list(group.inputs.get("ruleCollections")):
        if isinstance(coll, Mapping) and str(get(coll, "action.type", "")).lower() == "allow":
            for r in as_list(coll.get("rules")):
                if isinstance(r, Mapping):
                    yield str(coll.get("name")), r


@rule
class FirewallWithinMatrix(Rule):
    id = "NET-006"
    title = "hub firewall rules allow only the flows of the matrix and the egress purposes"
    severity = "critical"
    control = "network.segmentation"
    area = "network"
    fix = ("Allow only the flows of framework.yaml network.flows (source, destination, protocol, ports) and, to the "
           "internet, the egress purposes of network.egress (their sources, FQDNs, FQDN tags or service tags, "
           "protocols and ports); add a flow or a purpose to the spec first if the consortium agrees it.")
    types = (RULE_GROUP,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        problems: list[str] = []
        judged = 0
        for coll, r in allow_rules(res):
            if r.get("ruleType") not in ("NetworkRule", "ApplicationRule"):
                continue
            judged += 1
            why = _network_rule(r, ctx) if r.get("ruleType") == "NetworkRule" else _application_rule(r, ctx)
            problems.extend(f"{coll}/{r.get('name')}: {w}" for w in why)
        if not judged:
            return []
        if problems:
            return [failed(res.urn, "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)"
                                                               if len(problems) > 5 else ""))]
        return [passed(res.urn, f"{res.name}: {judged} rules, all flows of the matrix or egress purposes")]


def _in_estate(address: str, ctx: Context) -> bool:
    """An address (not a wildcard or tag) that overlaps the supernet: the flow matrix judges it."""
    try:
        return ipaddress.IPv4Network(address.strip(), strict=False).overlaps(ctx.addresses.supernet)
    except ValueError:
        return False


def _is_address(text: str) -> bool:
    try:
        ipaddress.IPv4Network(text.strip(), strict=False)
    except ValueError:
        return False
    return True


def _network_rule(r: Mapping[str, Any], ctx: Context) -> list[str]:
    """A firewall network rule: to the estate, a flow of the matrix; to FQDNs or service tags, an egress purpose;
    to a wildcard, neither; to another public address, no purpose names one."""
    sources = [str(a) for a in as_list(r.get("sourceAddresses"))]
    protos = [str(p) for p in as_list(r.get("ipProtocols"))]
    ports = [str(p) for p in as_list(r.get("destinationPorts"))]
    addresses = [str(a) for a in as_list(r.get("destinationAddresses"))]
    estate = [a for a in addresses if _in_estate(a, ctx) or a.strip().lower() in ANYWHERE]
    public = [a for a in addresses if a not in estate and _is_address(a)]
    tags = [a for a in addresses if a not in estate and a not in public]
    out: list[str] = []
    if estate:
        out += judge_allow(ctx.addresses, ctx.fw.network.flows, sources, estate, protos, ports,
                           exchanges=ctx.estate.exchanges)
    out += [f"{a} is outside the estate and no egress purpose names an address" for a in public]
    dests = [("service_tag", t) for t in tags] + [("fqdn", str(f)) for f in as_list(r.get("destinationFqdns"))]
    if dests:
        try:
            services = [(p, rng) for p in protocols(protos) for rng in port_ranges(ports)]
        except ValueError as exc:
            return [*out, f"cannot read a port: {exc}"]
        out += judge_egress(ctx.addresses, ctx.fw.network.egress.purposes, sources, dests, services)
    return out


def _app_protocols(r: Mapping[str, Any]) -> list[tuple[str, int]]:
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


def _application_rule(r: Mapping[str, Any], ctx: Context) -> list[str]:
    """A firewall application rule: its sources, target FQDNs or FQDN tags and protocols are an egress purpose's."""
    out = [f"{field} names no egress purpose" for field in ("targetUrls", "webCategories") if as_list(r.get(field))]
    dests = ([("fqdn", str(f)) for f in as_list(r.get("targetFqdns"))]
             + [("fqdn_tag", str(t)) for t in as_list(r.get("fqdnTags"))])
    services = [(kind, (port, port)) for kind, port in _app_protocols(r)]
    if not dests or not services:
        return out or ["names no target FQDN, FQDN tag or protocol: no egress purpose"]
    return out + judge_egress(ctx.addresses, ctx.fw.network.egress.purposes,
                              [str(a) for a in as_list(r.get("sourceAddresses"))], dests, services)


@rule
class NsgWithinMatrix(Rule):
    id = "NET-007"
    title = "network security groups allow only the flows of the matrix between segments and the egress purposes out"
    severity = "high"
    control = "network.segmentation"
    area = "network"
    fix = ("Narrow the NSG rule to a flow of framework.yaml network.flows or, outbound to the Internet service tag, "
           "to the protocol and ports of an egress purpose (network.egress) of the segment; or remove it. On "
           "AzureBastionSubnet, keep Microsoft's required rules (learn.microsoft.com/azure/bastion/bastion-nsg) as "
           "they are, the one to the target VMs on the administration ports ({fw.network.administration.linux_port}, "
           "{fw.network.administration.windows_port}) only.")

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        # A stack rule: Bastion's NSG (known by the subnet that references it) holds Azure's platform rules, judged
        # against Bastion's required set rather than the matrix.
        on_bastion = bastion_nsgs(resources, ctx)
        for res in resources:
            if res.type == NSG:
                yield self._nsg(res, ctx, res.urn in on_bastion)

    def _nsg(self, res: CloudResource, ctx: Context, on_bastion: bool) -> Outcome:
        rules = _allows(res, None)
        if not rules:
            return passed(res.urn, f"{res.name} allows nothing of its own")
        admin = _admin_ports(ctx)
        problems: list[str] = []
        platform = 0
        for r in rules:
            if on_bastion:
                if bastion.platform_rule(r, admin) is not None:
                    platform += 1
                    continue
                if bastion.to_target_vms(r):
                    problems.append(f"rule {r.get('name')}: Bastion's rule to the target VMs opens more than the "
                                    f"administration ports ({', '.join(admin)})")
                    continue
            problems.extend(f"rule {r.get('name')}: {w}" for w in _within_matrix(r, ctx))
        if problems:
            return failed(res.urn, "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)"
                                                              if len(problems) > 5 else ""))
        if platform:
            return passed(res.urn, f"{res.name}: {platform} rules Azure Bastion requires ({bastion.BASTION_NSG_URL}), "
                                   f"{len(rules) - platform} within the flow matrix")
        return passed(res.urn, f"{res.name}: {len(rules)} allow rules, all within the flow matrix")


def _within_matrix(r: Mapping[str, Any], ctx: Context) -> list[str]:
    """Why one allow rule goes beyond the flow matrix and the egress purposes: [] when it does not."""
    sources = _prefixes(r, "sourceAddressPrefix", "sourceAddressPrefixes")
    inbound = str(r.get("direction", "")).lower() == "inbound"
    if inbound and any(_is_public(s, ctx) and s.strip().lower() != "virtualnetwork" for s in sources):
        return []  # the internet in: NET-003's concern (outbound, a source '*' is the segment's own hosts: judged)
    destinations = _prefixes(r, "destinationAddressPrefix", "destinationAddressPrefixes")
    internet = [d for d in destinations if d.strip().lower() == INTERNET_TAG]
    ports = _prefixes(r, "destinationPortRange", "destinationPortRanges")
    why: list[str] = []
    if internet:
        try:
            services = [(p, rng) for p in protocols([str(r.get("protocol", "*"))]) for rng in port_ranges(ports)]
        except ValueError as exc:
            services, why = [], [f"cannot read a port: {exc}"]
        why += judge_egress(ctx.addresses, ctx.fw.network.egress.purposes, sources,
                            [("internet", d) for d in internet], services)
    rest = [d for d in destinations if d not in internet]
    if rest or not internet:
        why += judge_allow(ctx.addresses, ctx.fw.network.flows, sources, rest, [str(r.get("protocol", "*"))], ports,
                           exchanges=ctx.estate.exchanges)
    return why


@rule
class SpokePeered(Rule):
    id = "NET-008"
    title = "each council network is peered with the hub and accepts forwarded traffic"
    severity = "high"
    control = "network.hub_routing"
    area = "network"
    fix = "Peer the council VNet with the hub VNet (remoteVirtualNetwork.id) with allowForwardedTraffic true."

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        vnets = [r for r in resources if r.type == VNET and r.stack != HUB]
        peerings = [r for r in resources if r.type == PEERING]
        for vnet in vnets:
            names = {vnet.name, str(vnet.inputs.get("virtualNetworkName", ""))}
            mine = [p for p in peerings
                    if not isinstance(p.inputs.get("virtualNetworkName"), str)
                    or p.inputs.get("virtualNetworkName") in names]
            good = [p for p in mine if get(p.inputs, "remoteVirtualNetwork.id")
                    and p.inputs.get("allowForwardedTraffic") is True]
            if good:
                yield passed(vnet.urn, f"{vnet.name} is peered with the hub by {good[0].name}")
            elif mine:
                yield failed(vnet.urn, f"{vnet.name}'s peering {mine[0].name} does not accept forwarded traffic "
                                       "or names no remote network")
            else:
                yield failed(vnet.urn, f"{vnet.name} is not peered with the hub")


@rule
class DefaultRouteViaHub(Rule):
    id = "NET-009"
    title = "council route tables send the default route to the hub firewall"
    severity = "high"
    control = "network.hub_routing"
    area = "network"
    fix = ("Add route 0.0.0.0/0 with nextHopType VirtualAppliance and nextHopIpAddress the hub firewall's "
           "address (in the hub's AzureFirewallSubnet).")
    types = (ROUTE_TABLE,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if res.stack == HUB:
            return []
        firewall = [seg.network for seg in ctx.addresses.hub.segments if seg.azure_name == FIREWALL_SUBNET]
        for route in as_list(res.inputs.get("routes")):
            if not isinstance(route, Mapping) or route.get("addressPrefix") != "0.0.0.0/0":
                continue
            hop = str(route.get("nextHopIpAddress", ""))
            try:
                addr = ipaddress.IPv4Address(hop)
            except ValueError:
                addr = None
            if route.get("nextHopType") == "VirtualAppliance" and addr and any(addr in n for n in firewall):
                return [passed(res.urn, f"{res.name} sends 0.0.0.0/0 to the hub firewall {hop}")]
            return [failed(res.urn, f"{res.name} sends 0.0.0.0/0 to {route.get('nextHopType')} {hop or ''}, "
                                    "not the hub firewall")]
        return [failed(res.urn, f"{res.name} has no default route to the hub firewall")]


FLOW_LOG = "azure-native:network:FlowLog"


@rule
class VnetFlowLogs(Rule):
    id = "NET-011"
    title = "every virtual network keeps flow logs for the agreed days, analysed in Log Analytics"
    severity = "medium"
    control = "network.flow_logs"
    area = "network"
    fix = ("Give the VNet a Network Watcher flow log (targetResourceId the VNet, enabled) keeping records "
           "{c.retention_days} days (retentionPolicy) in storage of SKU {c.storage_sku}, with traffic analytics every "
           "{c.traffic_analytics_minutes} minutes to the hub's Log Analytics workspace.")

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        c = ctx.fw.network.flow_logs
        logs = [r for r in resources if r.type == FLOW_LOG]
        for vnet in (r for r in resources if r.type == VNET):
            name = str(vnet.inputs.get("virtualNetworkName") or vnet.name)
            mine = [f for f in logs
                    if str(f.inputs.get("targetResourceId", "")).lower().endswith(f"/virtualnetworks/{name.lower()}")]
            if not mine:
                yield failed(vnet.urn, f"{vnet.name} keeps no flow logs")
                continue
            wrong: list[str] = []
            for f in mine:
                days = number(f, "retentionPolicy.days")
                analytics = mapping(f, "flowAnalyticsConfiguration.networkWatcherFlowAnalyticsConfiguration")
                problems = []
                if f.inputs.get("enabled") is not True:
                    problems.append("is not enabled")
                if get(f.inputs, "retentionPolicy.enabled") is not True or days is None or days < c.retention_days:
                    problems.append(f"keeps records {days!r} days, not {c.retention_days}")
                if analytics.get("enabled") is not True or not analytics.get("workspaceResourceId"):
                    problems.append("has no traffic analytics")
                elif analytics.get("trafficAnalyticsInterval") != c.traffic_analytics_minutes:
                    problems.append(f"analyses every {analytics.get('trafficAnalyticsInterval')!r} minutes, "
                                    f"not {c.traffic_analytics_minutes}")
                if not problems:
                    yield passed(vnet.urn, f"{vnet.name} keeps flow logs {days:g} days ({f.name})")
                    break
                wrong.append(f"{f.name} " + ", ".join(problems))
            else:
                yield failed(vnet.urn, f"{vnet.name}: " + "; ".join(wrong))


class _Sources:
    """A firewall rule's source addresses, parsed once: whether they cover a prefix is a look-up of the prefix
    and its supernets (at most 33), not a scan of every address (a rule lists every council's prefix)."""

    def __init__(self, addresses: Iterable[str]) -> None:
        self.anywhere = False
        self.networks: set[ipaddress.IPv4Network] = set()
        for a in addresses:
            text = a.strip()
            if text.lower() in ("*", "any", "0.0.0.0/0"):
                self.anywhere = True
                continue
            try:
                self.networks.add(ipaddress.IPv4Network(text, strict=False))
            except ValueError:
                continue

    def cover(self, prefix: ipaddress.IPv4Network) -> bool:
        if self.anywhere or prefix in self.networks:
            return True
        return any(prefix.supernet(new_prefix=length) in self.networks for length in range(prefix.prefixlen))


def _rule_allows(r: Mapping[str, Any], sources: _Sources, prefix: ipaddress.IPv4Network, dest: Destination,
                 service: Service) -> bool:
    """Whether one firewall allow rule (its sources parsed) lets `prefix` reach `dest` with `service` (as a
    purpose names them)."""
    if not sources.cover(prefix):
        return False
    kind, value = dest
    proto, rng = service
    if r.get("ruleType") == "ApplicationRule":
        if (proto, rng[0]) not in _app_protocols(r) or rng[0] != rng[1]:
            return False
        if kind == "fqdn":
            return any(fqdn_covers(str(t), value) for t in as_list(r.get("targetFqdns")))
        return kind == "fqdn_tag" and value.lower() in {str(t).lower() for t in as_list(r.get("fqdnTags"))}
    if r.get("ruleType") != "NetworkRule":
        return False
    protos = set(protocols(str(p) for p in as_list(r.get("ipProtocols"))))
    try:
        ports = port_ranges(str(p) for p in as_list(r.get("destinationPorts")))
    except ValueError:
        return False
    if not ({proto, "any"} & protos) or not port_covered(rng, ports):
        return False
    if kind == "fqdn":
        return any(fqdn_covers(str(t), value) for t in as_list(r.get("destinationFqdns")))
    addresses = {str(a).strip().lower() for a in as_list(r.get("destinationAddresses"))}
    return kind == "service_tag" and (value.lower() in addresses or "*" in addresses)


@rule
class EgressPurposesAllowed(Rule):
    id = "NET-012"
    title = "each egress purpose has its firewall rule: its destinations are allowed from its sources"
    severity = "high"
    control = "network.egress"
    area = "network"
    fix = ("Give the hub's firewall policy the rules of every purpose of framework.yaml network.egress: an application "
           "rule (targetFqdns or fqdnTags, the purpose's protocols) or a network rule (destinationFqdns with the "
           "policy's DNS proxy on, or service tags as destinationAddresses; its protocol and ports), from the "
           "prefixes of the purpose's sources in every council and the hub (`estate plan` generates them).")

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        groups = [r for r in resources if r.type == RULE_GROUP]
        anchor = next((r for r in resources if r.type == FIREWALL_POLICY), groups[0] if groups else None)
        if anchor is None or anchor.stack != HUB:
            return
        allows = [r for g in groups for _, r in allow_rules(g)]
        # Network rules match FQDNs only through the policy's DNS proxy
        # (learn.microsoft.com/azure/firewall/fqdn-filtering-network-rules).
        by_name = [str(r.get("name")) for r in allows if r.get("ruleType") == "NetworkRule"
                   and as_list(r.get("destinationFqdns"))]
        if by_name and anchor.type == FIREWALL_POLICY and get(anchor.inputs, "dnsSettings.enableProxy") is not True:
            yield failed(anchor.urn, f"network rules {', '.join(by_name)} name FQDNs but the policy's DNS proxy is off "
                                     "(dnsSettings.enableProxy): they match nothing")
        parsed = [(r, _Sources(str(a) for a in as_list(r.get("sourceAddresses")))) for r in allows]
        for purpose in ctx.fw.network.egress.purposes:
            missing = [f"{label} -> {dest[1]} {proto}/{rng[0]}" + (f"-{rng[1]}" if rng[1] != rng[0] else "")
                       for label, prefix in purpose_prefixes(ctx.addresses, purpose)
                       for dest in purpose_destinations(purpose)
                       for proto, rng in purpose_services(purpose)
                       if not any(_rule_allows(r, src, prefix, dest, (proto, rng)) for r, src in parsed)]
            if missing:
                yield failed(anchor.urn, f"egress purpose {purpose.name}: no firewall rule allows "
                                         + ", ".join(missing[:4]) + (f" (+{len(missing) - 4} more)"
                                                                      if len(missing) > 4 else ""))
            else:
                yield passed(anchor.urn, f"egress purpose {purpose.name} is allowed from its sources by the firewall")

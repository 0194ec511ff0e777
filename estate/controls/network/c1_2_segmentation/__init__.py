"""1.2 Traffic between segments follows the flow matrix; anything not listed is denied (framework.yaml
`network.segmentation`, the flow matrix `network.flows`).

The stacks turn the flow matrix into each segment's network security group rules and the hub firewall's network
rules; in the lab and on council premises the router role renders it as the router's nftables ruleset. Judged on
the planned or deployed networks: no NSG lets anything in from the internet (NET-003), every subnet has an NSG
(NET-004), the hub firewall's rules (NET-006) and the NSGs' rules (NET-007) allow nothing beyond the matrix and the
egress purposes, and the planned network as a whole allows exactly the matrix, end to end (NET-021). Bastion's NSG
holds the rules Azure Bastion requires (learn.microsoft.com/azure/bastion/bastion-nsg), judged against that set.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from estate import bastion
from estate.azure import BASTION_SUBNET, NO_NSG_SUBNETS
from estate.controls.base import CloudResource, Context, Outcome, Rule, as_list, failed, passed, rule
from estate.controls.network.common import (
    NSG,
    RULE_GROUP,
    SUBNET,
    VNET,
    allow_rules,
    app_protocols,
    subnet_values,
)
from estate.controls.network.flows import ANYWHERE, judge_allow, judge_egress, port_ranges, protocols
from estate.controls.network.reachability import Reachability
from estate.controls.spec import declare
from estate.reach import Tally

CONTROL = declare()

INTERNET_TAG = "internet"  # the NSG service tag of everything outside the virtual networks
UNKNOWN = "[unknown]"  # a value the policy pack cannot know during preview (estate.compliance.pack)


def _subnet_nsgs(resources: Iterable[CloudResource]) -> list[tuple[str, Any]]:
    """(subnet name, its networkSecurityGroup reference) of the Subnet resources and the VNets' inline subnets."""
    return [pair for res in resources if res.type in (SUBNET, VNET)
            for pair in subnet_values(res, "networkSecurityGroup")]


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
    types = (SUBNET, VNET)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        subnets = [(n, nsg) for n, nsg in subnet_values(res, "networkSecurityGroup") if n not in NO_NSG_SUBNETS]
        if not subnets:
            return []
        bare = [n for n, nsg in subnets if not (isinstance(nsg, Mapping) and nsg.get("id"))]
        if bare:
            return [failed(res.urn, f"subnet {', '.join(bare)} has no network security group")]
        return [passed(res.urn, f"subnet {', '.join(n for n, _ in subnets)} has a network security group")]


@rule
class FirewallWithinMatrix(Rule):
    id = "NET-006"
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
        out += judge_allow(ctx.addresses, ctx.estate.resolved, sources, estate, protos, ports)
    out += [f"{a} is outside the estate and no egress purpose names an address" for a in public]
    dests = [("service_tag", t) for t in tags] + [("fqdn", str(f)) for f in as_list(r.get("destinationFqdns"))]
    if dests:
        try:
            services = [(p, rng) for p in protocols(protos) for rng in port_ranges(ports)]
        except ValueError as exc:
            return [*out, f"cannot read a port: {exc}"]
        out += judge_egress(ctx.addresses, ctx.fw.network.egress.purposes, sources, dests, services)
    return out


def _application_rule(r: Mapping[str, Any], ctx: Context) -> list[str]:
    """A firewall application rule: its sources, target FQDNs or FQDN tags and protocols are an egress purpose's."""
    out = [f"{field} names no egress purpose" for field in ("targetUrls", "webCategories") if as_list(r.get(field))]
    dests = ([("fqdn", str(f)) for f in as_list(r.get("targetFqdns"))]
             + [("fqdn_tag", str(t)) for t in as_list(r.get("fqdnTags"))])
    services = [(kind, (port, port)) for kind, port in app_protocols(r)]
    if not dests or not services:
        return out or ["names no target FQDN, FQDN tag or protocol: no egress purpose"]
    return out + judge_egress(ctx.addresses, ctx.fw.network.egress.purposes,
                              [str(a) for a in as_list(r.get("sourceAddresses"))], dests, services)


@rule
class NsgWithinMatrix(Rule):
    id = "NET-007"

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
        why += judge_allow(ctx.addresses, ctx.estate.resolved, sources, rest, [str(r.get("protocol", "*"))], ports)
    return why


@rule
class MatrixReachable(Reachability):
    """Every flow the matrix allows is reachable through the planned NSGs, routes, peerings and firewall, and every
    pair of segments it does not list is denied: all scopes, every port the matrix names (the lab probe's table)."""

    id = "NET-021"
    check = "segmentation"

    def summary(self, t: Tally) -> str:
        return (f"{t.allowed_ok}/{t.allowed} allowed probes reach, {t.denied_ok}/{t.denied} others denied "
                "(every pair of segments, every port of the matrix)")

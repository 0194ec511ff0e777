"""The framework's flow matrix and egress purposes as NSG rules and Azure Firewall rules. Pure functions of the
estate; the flow matrix is read as its paths (`Estate.resolved`, estate.resolved), never expanded here.

Where each rule is enforced:
- every subnet with an NSG (each council VLAN, the hub's own segments) allows, inbound, exactly the flows whose
  destination it is and, outbound, exactly the flows whose source it is; then denies the rest of the consortium
  (the supernet) and, inbound, the rest of the virtual network; traffic inside one VLAN stays allowed, as on a
  switch;
- Azure's platform subnets carry no matrix rules: AzureFirewallSubnet and GatewaySubnet no NSG at all (Azure
  refuses one: learn.microsoft.com/azure/firewall/firewall-faq, learn.microsoft.com/azure/vpn-gateway/
  vpn-gateway-about-vpn-gateway-settings); AzureBastionSubnet the NSG Microsoft requires (`bastion_rules`:
  learn.microsoft.com/azure/bastion/bastion-nsg, estate.bastion) with its rule to the target VMs on the framework's
  administration ports, then a deny of the rest of the virtual network both ways (else the default
  AllowVnetOutBound lets Bastion reach what the matrix does not list, the firewall's DNS proxy among them); a flow
  *from* one of them (the administration flows from hub/bastion) is allowed at its destination's NSG, and a flow
  *to* one makes no rule there;
- `intra` flows stay inside a council's VNet; `hub` flows cross the hub<->spoke peering directly (the peering's
  system route, a /20, is more specific than the spokes' supernet and default routes to the firewall);
  `hub-internal` flows stay inside the hub VNet (its VnetLocal route is more specific than the hub's default route
  to the firewall); all three are enforced by the NSGs at both ends;
- `inter` flows (one council to another) join only the pairs of councils that both declare them (council.yml
  `exchanges`, `Estate.exchanges`): they are routed through the hub's Azure Firewall by the spokes' route tables,
  so they are the firewall policy's network rules, one per flow and source council naming its partners' prefixes
  (linear in the declared pairs), and the NSGs at both ends allow exactly the partners' prefixes too; a council
  with no partner for a flow gets no rule for it;
- egress (framework.yaml `network.egress`): every segment with an NSG allows, outbound to the `Internet` service
  tag, the protocol and ports of each purpose it is a source of, then denies the rest of the internet; the spokes'
  and hub segments' default route takes that traffic to the hub firewall, whose policy allows each purpose's
  destinations (FQDNs, FQDN tags, service tags) from the purpose's sources and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from estate import bastion, ipam
from estate.loader import Estate
from estate.models import Flow
from estate.resolved import by_flow, networks

FIRST_PRIORITY = 100
STEP = 10
BASELINE_PRIORITY = 3900  # allow within the segment; deny rules follow
DENY_CONSORTIUM_PRIORITY = 4000
DENY_VNET_PRIORITY = 4010
DENY_INTERNET_PRIORITY = 4020  # outbound, after the purposes' allows
ANY = "*"
VIRTUAL_NETWORK = "VirtualNetwork"  # the NSG service tag of the VNet, its peered VNets and its UDRs' prefixes
INTERNET = "Internet"  # the NSG service tag of every address outside the virtual networks


@dataclass(frozen=True)
class RuleSpec:
    name: str
    priority: int
    direction: str  # Inbound | Outbound
    access: str  # Allow | Deny
    protocol: str  # Tcp | Udp | *
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    ports: tuple[str, ...]
    description: str
    flow: str | None = None  # the flow id this rule comes from
    baseline: bool = False  # not from the matrix: the within-segment allow and the deny rules
    purpose: str | None = None  # the egress purpose this rule comes from
    platform: bool = False  # required by the Azure service in the subnet (Bastion's rules, estate.bastion)


@dataclass(frozen=True)
class FirewallRule:
    """A network rule: TCP/UDP ports to addresses (prefixes or service tags) or to FQDNs."""

    name: str  # the flow id, or the egress purpose
    description: str
    protocol: str  # TCP | UDP
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    ports: tuple[str, ...]
    fqdns: tuple[str, ...] = ()  # destinationFqdns: resolved by the firewall's DNS proxy


@dataclass(frozen=True)
class ApplicationRule:
    """An application rule: HTTP/S to FQDNs or to FQDN tags (Azure takes one or the other in one rule)."""

    name: str
    description: str
    sources: tuple[str, ...]
    protocols: tuple[tuple[str, int], ...]  # ("Https", 443)
    fqdns: tuple[str, ...] = ()
    fqdn_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Egress:
    """The hub firewall's egress rules, one or two per purpose."""

    application: tuple[ApplicationRule, ...]
    network: tuple[FirewallRule, ...]

    @property
    def dns_proxy(self) -> bool:
        """Network rules with FQDNs need the firewall policy's DNS proxy
        (learn.microsoft.com/azure/firewall/fqdn-filtering-network-rules)."""
        return any(r.fqdns for r in self.network)


def _protocol(flow: Flow) -> str:
    return flow.protocol.capitalize()


def _prefixes(estate: Estate, sites: list[str], segment: str) -> tuple[str, ...]:
    plan = estate.addresses
    return tuple(str(plan.site(s).segment(segment).network) for s in sites)


def _in_matrix_order(estate: Estate, flow_ids: list[str]) -> list[str]:
    """Flow ids, each once, in the order of the flow matrix (the order of estate.resolved's paths)."""
    rank = {flow_id: i for i, flow_id in enumerate(by_flow(estate.resolved.paths))}
    return sorted(dict.fromkeys(flow_ids), key=rank.__getitem__)


def segment_rules(estate: Estate, site: str, segment: str) -> list[RuleSpec]:
    """The NSG rules of one segment (a council VLAN, or a hub segment when site is "shared")."""
    own = _prefixes(estate, [site], segment)
    supernet = estate.framework.network.supernet
    rules: list[RuleSpec] = []
    priority = {"Inbound": FIRST_PRIORITY, "Outbound": FIRST_PRIORITY}
    into = by_flow(estate.resolved.into(site, segment))
    out_of = by_flow(estate.resolved.out_of(site, segment))
    for flow_id in _in_matrix_order(estate, [*into, *out_of]):
        for direction, paths, suffix in (("Inbound", into.get(flow_id), "in"),
                                         ("Outbound", out_of.get(flow_id), "out")):
            if not paths:
                continue  # the segment is the flow's other end only
            flow = paths[0].flow
            sources, destinations = ((networks(paths, "source"), own) if direction == "Inbound"
                                     else (own, networks(paths, "destination")))
            rules.append(RuleSpec(
                name=f"{flow.id}-{suffix}", priority=priority[direction], direction=direction, access="Allow",
                protocol=_protocol(flow), sources=sources, destinations=destinations, ports=tuple(flow.ports),
                description=f"{flow.id}: {flow.description}", flow=flow.id,
            ))
            priority[direction] += STEP
    name = f"hub/{segment}" if site == ipam.HUB else segment
    for purpose in estate.framework.network.egress.purposes:
        if name not in purpose.sources:
            continue
        rules.append(RuleSpec(
            name=f"egress-{purpose.name}-out", priority=priority["Outbound"], direction="Outbound", access="Allow",
            protocol=purpose.protocol.capitalize(), sources=own, destinations=(INTERNET,),
            ports=tuple(purpose.ports), description=f"egress {purpose.name}: {purpose.description}",
            purpose=purpose.name,
        ))
        priority["Outbound"] += STEP
    rules += [
        RuleSpec("allow-within-segment-in", BASELINE_PRIORITY, "Inbound", "Allow", ANY, own, own, (ANY,),
                 "hosts on one segment reach each other, as on one VLAN", baseline=True),
        RuleSpec("allow-within-segment-out", BASELINE_PRIORITY, "Outbound", "Allow", ANY, own, own, (ANY,),
                 "hosts on one segment reach each other, as on one VLAN", baseline=True),
        RuleSpec("deny-consortium-in", DENY_CONSORTIUM_PRIORITY, "Inbound", "Deny", ANY, (supernet,), (ANY,), (ANY,),
                 "the flow matrix denies everything it does not list", baseline=True),
        RuleSpec("deny-vnet-in", DENY_VNET_PRIORITY, "Inbound", "Deny", ANY, ("VirtualNetwork",), (ANY,), (ANY,),
                 "nothing else on the network reaches this segment", baseline=True),
        RuleSpec("deny-consortium-out", DENY_CONSORTIUM_PRIORITY, "Outbound", "Deny", ANY, (ANY,), (supernet,),
                 (ANY,), "the flow matrix denies everything it does not list", baseline=True),
        RuleSpec("deny-internet-out", DENY_INTERNET_PRIORITY, "Outbound", "Deny", ANY, (ANY,), (INTERNET,), (ANY,),
                 "the internet only for the egress purposes of the framework", baseline=True),
    ]
    return rules


def bastion_rules(estate: Estate) -> list[RuleSpec]:
    """The NSG of AzureBastionSubnet: Microsoft's required rules in the page's order (TCP, as the page's script
    creates them), the one to the target VMs on the administration ports, then the rest of the virtual network
    denied both ways."""
    admin = estate.framework.network.administration
    ports = tuple(dict.fromkeys((admin.linux_port, admin.windows_port)))
    rules: list[RuleSpec] = []
    priority = {"Inbound": FIRST_PRIORITY, "Outbound": FIRST_PRIORITY}
    for p in bastion.required(ports):
        rules.append(RuleSpec(
            name=p.name, priority=priority[p.direction], direction=p.direction, access="Allow", protocol="Tcp",
            sources=(p.source,), destinations=(p.destination,), ports=p.ports,
            description=f"{p.description} ({bastion.BASTION_NSG_URL})", platform=True))
        priority[p.direction] += STEP
    why = "Bastion reaches only its own instances and the administration ports the flow matrix lists"
    rules += [
        RuleSpec("deny-vnet-in", DENY_VNET_PRIORITY, "Inbound", "Deny", ANY, (VIRTUAL_NETWORK,), (ANY,), (ANY,),
                 "nothing else on the network reaches Bastion", baseline=True),
        RuleSpec("deny-vnet-out", DENY_VNET_PRIORITY, "Outbound", "Deny", ANY, (ANY,), (VIRTUAL_NETWORK,), (ANY,),
                 why, baseline=True),
    ]
    return rules


def firewall_rules(estate: Estate) -> list[FirewallRule]:
    """The firewall policy's network rules: per `inter` flow and council with partners for it, one rule from the
    council's source VLAN to its partners' destination VLAN (named `<flow>-<council>`)."""
    out: list[FirewallRule] = []
    inter = [p for p in estate.resolved.paths if p.flow.scope == "inter"]
    for paths in by_flow(inter).values():
        flow = paths[0].flow
        for council, from_council in groupby(paths, key=lambda p: p.source.site):  # paths in source council order
            group = list(from_council)
            out.append(FirewallRule(
                name=f"{flow.id}-{council}",
                description=f"{flow.description} (from {council})",
                protocol=flow.protocol.upper(),
                sources=networks(group, "source"),
                destinations=networks(group, "destination"),
                ports=tuple(flow.ports),
            ))
    return out


def purpose_sources(estate: Estate, sources: list[str]) -> tuple[str, ...]:
    """The prefixes of egress sources: hub/<segment> in the hub, a VLAN in every council."""
    out: list[str] = []
    for end in sources:
        if end.startswith("hub/"):
            out += _prefixes(estate, [ipam.HUB], end[4:])
        else:
            out += _prefixes(estate, sorted(estate.councils), end)
    return tuple(out)


def egress_rules(estate: Estate) -> Egress:
    """The hub firewall's rules for framework.yaml `network.egress`: per `application` purpose one application
    rule for its FQDNs and one for its FQDN tags (Azure's ApplicationRule takes `targetFqdns` or `fqdnTags`), per
    `network` purpose a network rule for its FQDNs (`destinationFqdns`) and one for its service tags
    (`destinationAddresses`)."""
    application: list[ApplicationRule] = []
    network: list[FirewallRule] = []
    for purpose in estate.framework.network.egress.purposes:
        sources = purpose_sources(estate, purpose.sources)
        if not sources:
            continue  # a VLAN of no council yet
        if purpose.application is not None:
            app = purpose.application
            protocols = tuple((kind, int(port)) for kind, port in (p.split(":") for p in app.protocols))
            both = bool(app.fqdns) and bool(app.fqdn_tags)
            if app.fqdns:
                application.append(ApplicationRule(
                    name=f"{purpose.name}-fqdns" if both else purpose.name, description=purpose.description,
                    sources=sources, protocols=protocols, fqdns=tuple(app.fqdns)))
            if app.fqdn_tags:
                application.append(ApplicationRule(
                    name=f"{purpose.name}-fqdn-tags" if both else purpose.name, description=purpose.description,
                    sources=sources, protocols=protocols, fqdn_tags=tuple(app.fqdn_tags)))
        elif purpose.network is not None:
            # one destination type per rule, as the portal offers them: FQDNs, or service tags
            net = purpose.network
            both = bool(net.fqdns) and bool(net.service_tags)
            if net.fqdns:
                network.append(FirewallRule(
                    name=f"{purpose.name}-fqdns" if both else purpose.name, description=purpose.description,
                    protocol=net.protocol.upper(), sources=sources, destinations=(), ports=tuple(net.ports),
                    fqdns=tuple(net.fqdns)))
            if net.service_tags:
                network.append(FirewallRule(
                    name=f"{purpose.name}-service-tags" if both else purpose.name, description=purpose.description,
                    protocol=net.protocol.upper(), sources=sources, destinations=tuple(net.service_tags),
                    ports=tuple(net.ports)))
    return Egress(tuple(application), tuple(network))

"""The framework's flow matrix as NSG rules and Azure Firewall rules. Pure functions of the estate.

Where each rule is enforced:
- every subnet with an NSG (each council VLAN, the hub's own segments) allows, inbound, exactly the flows whose
  destination it is and, outbound, exactly the flows whose source it is; then denies the rest of the consortium
  (the supernet) and, inbound, the rest of the virtual network; traffic inside one VLAN stays allowed, as on a
  switch;
- `intra` flows stay inside a council's VNet; `hub` flows cross the hub<->spoke peering directly; both are
  enforced by the NSGs at both ends;
- `inter` flows (one council to another) are routed through the hub's Azure Firewall by the spokes' route
  tables, so they are the firewall policy's network rules (and the NSGs at both ends allow them too).
"""

from __future__ import annotations

from dataclasses import dataclass

from estate import ipam
from estate.loader import Estate
from estate.models import Flow

FIRST_PRIORITY = 100
STEP = 10
BASELINE_PRIORITY = 3900  # allow within the segment; deny rules follow
DENY_CONSORTIUM_PRIORITY = 4000
DENY_VNET_PRIORITY = 4010
ANY = "*"


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


@dataclass(frozen=True)
class FirewallRule:
    name: str  # the flow id
    description: str
    protocol: str  # TCP | UDP
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    ports: tuple[str, ...]


def _protocol(flow: Flow) -> str:
    return flow.protocol.capitalize()


def _prefixes(estate: Estate, sites: list[str], segment: str) -> tuple[str, ...]:
    plan = estate.addresses
    return tuple(str(plan.site(s).segment(segment).network) for s in sites)


def _endpoint(estate: Estate, site: str, end: str, *, others: bool) -> tuple[str, ...]:
    """Prefixes of a flow endpoint seen from `site`: hub/<segment>, the site's own VLAN, or (inter) the
    same VLAN of every other council."""
    if end.startswith("hub/"):
        return _prefixes(estate, [ipam.HUB], end[4:])
    councils = sorted(estate.councils)
    if site == ipam.HUB:
        return _prefixes(estate, councils, end)
    if others:
        return _prefixes(estate, [c for c in councils if c != site], end)
    return _prefixes(estate, [site], end)


def _names_segment(site: str, end: str, segment: str) -> bool:
    if site == ipam.HUB:
        return end == f"hub/{segment}"
    return end == segment


def segment_rules(estate: Estate, site: str, segment: str) -> list[RuleSpec]:
    """The NSG rules of one segment (a council VLAN, or a hub segment when site is "shared")."""
    own = _prefixes(estate, [site], segment)
    supernet = estate.framework.network.supernet
    rules: list[RuleSpec] = []
    priority = {"Inbound": FIRST_PRIORITY, "Outbound": FIRST_PRIORITY}
    for flow in estate.framework.network.flows:
        inter = flow.scope == "inter"
        for direction, here, there, suffix in (("Inbound", flow.destination, flow.source, "in"),
                                               ("Outbound", flow.source, flow.destination, "out")):
            if not _names_segment(site, here, segment):
                continue
            peers = _endpoint(estate, site, there, others=inter)
            if not peers:
                continue  # e.g. an inter flow in a consortium of one council
            sources, destinations = (peers, own) if direction == "Inbound" else (own, peers)
            rules.append(RuleSpec(
                name=f"{flow.id}-{suffix}", priority=priority[direction], direction=direction, access="Allow",
                protocol=_protocol(flow), sources=sources, destinations=destinations, ports=tuple(flow.ports),
                description=f"{flow.id}: {flow.description}", flow=flow.id,
            ))
            priority[direction] += STEP
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
    ]
    return rules


def firewall_rules(estate: Estate) -> list[FirewallRule]:
    """The firewall policy's network rules: the `inter` flows, between every pair of councils."""
    councils = sorted(estate.councils)
    out: list[FirewallRule] = []
    if len(councils) < 2:
        return out
    for flow in estate.framework.network.flows:
        if flow.scope != "inter":
            continue
        out.append(FirewallRule(
            name=flow.id,
            description=flow.description,
            protocol=flow.protocol.upper(),
            sources=_prefixes(estate, councils, flow.source),
            destinations=_prefixes(estate, councils, flow.destination),
            ports=tuple(flow.ports),
        ))
    return out

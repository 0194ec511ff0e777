"""Following a packet through the planned network as Azure would, hop by hop, with the rule that decided each hop.

The walk (sources: Microsoft Learn, each page named where its behaviour is implemented):

1. the source's NSGs, outbound: the NIC's NSG, then the subnet's (network-security-group-how-it-works); rules by
   priority, Azure's default rules last (network-security-groups-overview#default-security-rules); the
   `VirtualNetwork` tag is the network's address space, the peered networks' spaces and the prefixes of the
   subnet's user-defined routes (service-tags-overview; with a UDR for 0.0.0.0/0 the tag covers every address:
   MicrosoftDocs/azure-docs#22178), `Internet` is the public address space;
2. the source subnet's effective routes (virtual-networks-udr-overview): system routes (the network's space:
   VnetLocal; each peered network's space: VNetPeering; 0.0.0.0/0: Internet; the private and shared ranges: None),
   user routes over system routes of the same prefix, the longest prefix first;
3. a peering carries a packet only when both networks peer with each other (virtual-network-manage-peering:
   "Connected"), the sending side allows access to the remote network, and, for traffic that did not start in the
   sending network (forwarded by an appliance), the receiving side accepts forwarded traffic;
4. a next hop VirtualAppliance that is the Azure Firewall's private IP: its policy (firewall/rule-processing):
   DNAT, then network, then application rules, each kind by rule collection group priority then rule collection
   priority; rules are terminating; application rules apply to HTTP/S (and MSSQL) only; what no rule allows is
   denied; network rules with FQDNs need the DNS proxy (firewall/fqdn-filtering-network-rules); application
   rules SNAT to the firewall. Then the firewall subnet's own routes take the packet on;
5. the destination subnet's NSGs, inbound: the subnet's, then the NIC's. A platform subnet (AzureFirewallSubnet,
   AzureBastionSubnet, GatewaySubnet) holds a service, not hosts (only AzureBastionSubnet may have an NSG:
   bastion/bastion-nsg): what it listens on is below. A platform subnet whose appliance the plan does not deploy
   (GatewaySubnet without a VirtualNetworkGateway in it) sends nothing: `Network.idle` names it, and the plan-wide
   checks do not judge it as a source;
6. NSGs and the firewall are stateful: replies are implied, but the reply must come back the same way: a reply
   that would bypass (or newly cross) the firewall is dropped by it (firewall/integrate-lb, asymmetric routing).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from estate.azure import BASTION_SUBNET, FIREWALL_SUBNET, GATEWAY_SUBNET
from estate.reach.addresses import (
    INTERNET,
    AddressSet,
    Classifier,
    Population,
    address_set,
    is_global,
    parse_address,
    parse_network,
    show,
)
from estate.reach.model import (
    Firewall,
    FirewallRule,
    Machine,
    Model,
    Nic,
    Nsg,
    Planned,
    Route,
    Subnet,
    VNet,
    fqdn_matches,
    read,
)

if TYPE_CHECKING:
    from estate.loader import Estate

Service = tuple[str, int]  # (tcp | udp, port)
Services = tuple[Service, ...]

# Azure's default system routes besides the network's own space (virtual-networks-udr-overview, "Default"):
# the internet, and the private and shared address ranges, dropped unless a more specific route says otherwise.
SYSTEM_ROUTES = (("0.0.0.0/0", "Internet"), ("10.0.0.0/8", "None"), ("172.16.0.0/12", "None"),
                 ("192.168.0.0/16", "None"), ("100.64.0.0/10", "None"))
# What the platform services in their subnets take connections on, from inside the network. Azure Firewall: DNS on
# 53 when its DNS proxy is on (firewall/dns-settings), nothing else (it forwards; DNAT is on its public IP). Azure
# Bastion: 8080 and 5701 between its own instances (bastion/bastion-nsg; 443 comes from the internet). A VPN
# gateway: IKE on its public IP only.
DNS_PORT = 53
BASTION_DATA_PLANE = (8080, 5701)


class ReachError(ValueError):
    """An endpoint the network does not know (one line, for the CLI)."""


@dataclass(frozen=True)
class Hop:
    step: str      # nsg-out | route | peering | firewall | edge | nsg-in | service | return
    where: str     # the resource that decided: NSG, route table, peering, firewall policy, subnet, NIC
    rule: str      # the deciding rule: NSG rule, route, collection group/collection/rule, ...
    detail: str    # what that rule says
    allowed: bool

    def __str__(self) -> str:
        return f"{self.step:<8} {self.where}: {self.rule} ({self.detail}) -> {'pass' if self.allowed else 'DENY'}"


@dataclass(frozen=True)
class Trace:
    hops: tuple[Hop, ...]
    allowed: bool
    outside: bool = False  # the packet left the planned networks (an unplanned stack): not judged

    @property
    def deciding(self) -> Hop:
        """The hop that denied; for an allowed packet the rule that let it through: a platform service that
        answers, else the firewall rule it passed, else the destination's inbound NSG rule, else the last hop."""
        if not self.allowed:
            return self.hops[-1]
        for step in ("service", "firewall", "nsg-in"):
            found = [h for h in self.hops if h.step == step]
            if found:
                return found[-1]
        return self.hops[-1]

    @property
    def firewall(self) -> bool:
        return any(h.step == "firewall" for h in self.hops)


@dataclass(frozen=True)
class Endpoint:
    label: str
    address: int
    subnet: Subnet | None = None     # None: on the internet
    nic: Nic | None = None
    fqdn: str | None = None
    fqdn_tag: str | None = None
    public: bool = False             # a public IP on the host (or on a host of the segment)

    @property
    def internet(self) -> bool:
        return self.subnet is None


@dataclass(frozen=True)
class Path:
    """The port-independent part of a walk: routes and peerings, up to the firewall and after it."""

    before: tuple[Hop, ...]
    firewall: Firewall | None = None
    after: tuple[Hop, ...] = ()
    vnet: VNet | None = None         # delivered into this network
    internet: bool = False           # left for the internet
    dropped: bool = False
    outside: bool = False


@dataclass(frozen=True)
class Uniform:
    """What `Network.uniform_verdicts` proves of a class of pairs: every pair but the exceptions (source site,
    destination site), which some rule names specifically, gets these verdicts, one per service."""

    verdicts: tuple[bool, ...]
    exceptions: frozenset[tuple[str, str]]


_DROP = Path((), dropped=True)
_FQDN = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}\.?$", re.IGNORECASE)


class _RouteTable:
    """A subnet's effective routes (system, peering, user) with the longest-prefix match cached per address class."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = sorted(routes, key=lambda r: (-r.length, not r.user, r.next_hop == "None"))
        self.classes = Classifier([AddressSet(((r.first, r.last),)) for r in routes])
        self.memo: dict[int, Route] = {}

    def lookup(self, addr: int) -> Route:
        key = self.classes.key(addr)
        hit = self.memo.get(key)
        if hit is None:
            probe = 0 if addr == INTERNET else addr  # an unnamed internet address takes the default route
            hit = next(r for r in self.routes if r.first <= probe <= r.last and (addr != INTERNET or r.length == 0))
            self.memo[key] = hit
        return hit


class _NsgCheck:
    """One NSG's rules of one direction as seen from one address of one subnet, decided per class of the other
    address and per service."""

    def __init__(self, nsg: Nsg, inbound: bool, vnet_tag: AddressSet, own: int) -> None:
        self.nsg = nsg
        self.step = "nsg-in" if inbound else "nsg-out"
        rules = []
        for r in nsg.ordered(inbound):
            mine, other = (r.destinations, r.sources) if inbound else (r.sources, r.destinations)
            if address_set(mine, vnet_tag).contains(own):
                rules.append((r, address_set(other, vnet_tag)))
        self.rules = rules
        self.classes = Classifier([s for _, s in rules])
        self.memo: dict[tuple[int, Services], tuple[Hop, ...]] = {}

    def decide(self, other: int, services: Services) -> tuple[Hop, ...]:
        key = (self.classes.key(other), services)
        hit = self.memo.get(key)
        if hit is None:
            hit = tuple(self._one(other, s) for s in services)
            self.memo[key] = hit
        return hit

    def _one(self, other: int, service: Service) -> Hop:
        for r, where in self.rules:
            if r.matches(*service) and where.contains(other):
                default = ", a default rule" if r.default else ""
                what = f"priority {r.priority}, {'Allow' if r.allow else 'Deny'}{default}"
                return Hop(self.step, self.nsg.name, r.name, what, r.allow)
        return Hop(self.step, self.nsg.name, "(none)", "no rule applies to this address", False)  # pragma: no cover


class _FirewallCheck:
    """A firewall's policy decided per class of source and destination address, destination name and service."""

    def __init__(self, fw: Firewall) -> None:
        self.fw = fw
        self.rules = [r for r in fw.policy.rules if r.kind != "dnat"] if fw.policy else []
        self.sources = Classifier([r.sources for r in self.rules])
        self.destinations = Classifier([r.destinations for r in self.rules])
        self.memo: dict[tuple[int, int, str | None, str | None, Services], tuple[tuple[Hop, bool], ...]] = {}
        self.by_source: dict[int, list[FirewallRule]] = {}  # per class of source address: the rules holding it

    def decide(self, src: int, dst: Endpoint, services: Services) -> tuple[tuple[Hop, bool], ...]:
        """Per service: the deciding hop and whether the firewall SNATs the packet (application rules)."""
        key = (self.sources.key(src), self.destinations.key(dst.address), dst.fqdn, dst.fqdn_tag, services)
        hit = self.memo.get(key)
        if hit is None:
            hit = tuple(self._one(src, dst, s) for s in services)
            self.memo[key] = hit
        return hit

    def _one(self, src: int, dst: Endpoint, service: Service) -> tuple[Hop, bool]:
        protocol, port = service
        policy = self.fw.policy
        if policy is None:
            return Hop("firewall", self.fw.name, "(no policy)", "Azure Firewall denies all traffic until rules allow "
                       "it", False), False
        notes: list[str] = []
        key = self.sources.key(src)
        rules = self.by_source.get(key)
        if rules is None:  # one class of sources is held by the same rules (Classifier)
            rules = self.by_source[key] = [r for r in self.rules if r.sources.contains(src)]
        for r in rules:
            if r.kind == "network":
                if not ({"any", protocol} & r.protocols) or port not in r.ports:
                    continue
                by_name = bool(dst.fqdn) and any(fqdn_matches(f, dst.fqdn or "") for f in r.fqdns)
                if by_name and not policy.dns_proxy:
                    notes.append(f"network rule {r.label} names {dst.fqdn} but the policy's DNS proxy is off")
                    by_name = False
                if not (by_name or r.destinations.contains(dst.address)):
                    continue
            else:
                if protocol != "tcp" or port not in r.app_ports:
                    continue  # application rules: HTTP, HTTPS and MSSQL only
                if dst.fqdn:
                    named = any(fqdn_matches(f, dst.fqdn) for f in r.fqdns)
                elif dst.fqdn_tag:
                    named = dst.fqdn_tag.lower() in r.fqdn_tags or "*" in r.fqdns
                else:
                    named = "*" in r.fqdns  # an address with no name: only a rule for any name matches it
                if not named:
                    continue
            what = (f"{r.kind} rule, group priority {r.group_priority}, collection priority "
                    f"{r.collection_priority}: {'Allow' if r.allow else 'Deny'}")
            return Hop("firewall", policy.name, r.label, what, r.allow), r.kind == "application" and r.allow
        why = "Azure Firewall denies what no rule allows" + (f"; {'; '.join(notes)}" if notes else "")
        return Hop("firewall", policy.name, "(no rule matched)", why, False), False


class Network:
    """The planned network, and packets traced through it."""

    def __init__(self, model: Model, names: dict[str, Subnet] | None = None) -> None:
        self.model = model
        self.names = names or {f"{s.stack}/{s.name}": s for s in model.subnets.values()}
        self.label_of = {s.key: label for label, s in reversed(list(self.names.items()))}
        spans = sorted((s.first, s.last, s) for s in model.subnets.values())
        self._starts = [first for first, _, _ in spans]
        self._spans = spans
        self._nic_at: dict[int, Nic] = {}
        self._public: set[str] = set()
        for nic in model.nics.values():
            for subnet_key, addr, public in nic.configs:
                if addr is not None:
                    self._nic_at.setdefault(addr, nic)
                if public:
                    self._public.add(subnet_key)
        for machine in model.machines:
            if machine.public:
                self._public.update(machine.subnet_keys)
        self._nic_addrs = sorted(self._nic_at)
        self._firewall_at = {fw.address: fw for fw in model.firewalls if fw.address is not None}
        self._routes: dict[str, _RouteTable] = {}
        self._nsg_checks: dict[tuple[str, bool, str, int], _NsgCheck] = {}
        self._fw_checks: dict[str, _FirewallCheck] = {}
        self._walks: dict[tuple[str, bool, int, bool, str], Path] = {}
        self._joined: dict[tuple[int, int], Path] = {}
        self._nsg_memo: dict[tuple[object, ...], list[tuple[Hop, ...]]] = {}
        self._vnet_tags: dict[str, AddressSet] = {}

    @classmethod
    def from_plan(cls, resources: Iterable[Planned], estate: Estate | None = None) -> Network:
        """The network of the planned resources. With the estate, segments are also named as the lab names them
        (`<council>/<vlan>`, `shared/<hub segment>`): the address plan maps a segment to its Azure subnet name."""
        model = read(resources)
        names = {f"{s.stack}/{s.name}": s for s in model.subnets.values()}
        if estate is not None:
            by_stack_name = {(s.stack, s.name): s for s in model.subnets.values()}
            plan = estate.addresses
            segmented = {}
            for site in (plan.hub, *plan.councils.values()):
                for seg in site.segments:
                    subnet = by_stack_name.get((site.key, seg.azure_name))
                    if subnet is not None:
                        segmented[f"{site.key}/{seg.name}"] = subnet
            names = {**segmented, **{k: v for k, v in names.items() if k not in segmented}}
        return cls(model, names)

    # ------------------------------------------------------------------ endpoints

    def subnet_at(self, addr: int) -> Subnet | None:
        if addr == INTERNET:
            return None
        i = bisect_right(self._starts, addr) - 1
        if i >= 0 and self._spans[i][0] <= addr <= self._spans[i][1]:
            return self._spans[i][2]
        return None

    def segment(self, subnet: Subnet) -> Endpoint:
        """A segment as a probe's end: the address of its first NIC, else the subnet's first free address."""
        i = bisect_left(self._nic_addrs, subnet.first)  # the lowest NIC address in the subnet, by search
        addr = self._nic_addrs[i] if i < len(self._nic_addrs) and self._nic_addrs[i] <= subnet.last else None
        if addr is None:
            addr = subnet.first_free()
        return Endpoint(self.label_of.get(subnet.key, subnet.label), addr, subnet, self._nic_at.get(addr),
                        public=subnet.key in self._public)

    def endpoint(self, text: str) -> Endpoint:
        """`<site>/<segment>`, an IPv4 address, a VM's name, `Internet`, an FQDN or `tag:<FQDN tag>`."""
        raw = text.strip()
        if raw.lower() == "internet":
            return Endpoint("Internet", INTERNET)
        if raw in self.names:
            return self.segment(self.names[raw])
        addr = parse_address(raw)
        if addr is not None:
            subnet = self.subnet_at(addr)
            nic = self._nic_at.get(addr)
            label = f"{raw} ({self.label_of.get(subnet.key, subnet.label)})" if subnet else raw
            return Endpoint(label, addr, subnet, nic, public=bool(nic and any(p for _, _, p in nic.configs)))
        machine = next((m for m in self.model.machines if m.name == raw), None)
        if machine is not None:
            found = self.machine_endpoints(machine)
            if found:
                return found[0]
        if raw.lower().startswith("tag:") and len(raw) > 4:
            return Endpoint(raw, INTERNET, fqdn_tag=raw[4:])
        if "/" not in raw and _FQDN.fullmatch(raw):
            return Endpoint(raw, INTERNET, fqdn=raw.lower())
        known = ", ".join(sorted(self.names)[:6])
        raise ReachError(f"unknown endpoint {raw!r}: give a segment (e.g. {known} ...), an address, a VM's name, "
                         "Internet, an FQDN or tag:<FQDN tag>")

    def machine_endpoints(self, machine: Machine) -> list[Endpoint]:
        """Where a VM is (its NICs' addresses) or a scale set's instances are (its subnets)."""
        out: list[Endpoint] = []
        for key in machine.nic_keys:
            nic = self.model.nics.get(key)
            for subnet_key, addr, public in nic.configs if nic else []:
                subnet = self.model.subnets.get(subnet_key)
                if subnet is not None and addr is not None:
                    out.append(Endpoint(f"{machine.name} ({show(addr)})", addr, subnet, nic, public=public))
        for key in machine.subnet_keys:
            subnet = self.model.subnets.get(key)
            if subnet is not None:
                base = self.segment(subnet)
                out.append(Endpoint(f"{machine.name} ({self.label_of.get(key, subnet.label)})", base.address,
                                    subnet, None, public=machine.public))
        return out

    def idle(self, subnet: Subnet) -> str | None:
        """Why no packet can start in this subnet, or None: a GatewaySubnet holds only a gateway ("don't deploy other
        resources to the gateway subnet": vpn-gateway/vpn-gateway-about-vpn-gateway-settings), and the plan deploys
        none in it."""
        if subnet.name == GATEWAY_SUBNET and subnet.key not in self.model.gateway_subnets:
            return "nothing deployed in GatewaySubnet"
        return None

    # ------------------------------------------------------------------ tracing

    def path(self, src: Endpoint, dst: Endpoint) -> Path:
        """The routes, peerings and firewall a packet from `src` to `dst` passes, whatever the NSGs say."""
        if src.subnet is None:
            return Path((Hop("edge", "internet", "(outside)", "the source is not in a planned network", False),),
                        dropped=True)
        return self._walk(src.subnet, src.subnet.vnet.key, dst.address)

    def trace(self, src: Endpoint | str, dst: Endpoint | str, protocol: str = "tcp", port: int = 443) -> Trace:
        a = self.endpoint(src) if isinstance(src, str) else src
        b = self.endpoint(dst) if isinstance(dst, str) else dst
        return self.traces(a, b, ((protocol.lower(), port),))[0]

    def traces(self, src: Endpoint, dst: Endpoint, services: Services) -> tuple[Trace, ...]:
        """One trace per service from `src` to `dst` (the walk is shared; NSGs and firewall decide per service)."""
        if src.subnet is None:
            return self._from_internet(dst, services)
        outs, path, fws, ends, reply = self._parts(src, dst, services)
        if path.outside:
            return tuple(Trace((*o, *path.before, *path.after), False, True) for o in outs)
        out = []
        for i in range(len(services)):
            fw = fws[i]
            out.append(_trace(outs[i], path.before, (fw[0],) if fw else (), path.after, ends[i], reply))
        return tuple(out)

    def verdicts(self, src: Endpoint, dst: Endpoint, services: Services) -> tuple[bool | None, ...]:
        """Per service: allowed, denied, or None when the packet leaves the planned networks. The same parts as
        `traces` (so the same answer), without building the hops: what the plan-wide checks call per pair."""
        if src.subnet is None:
            return tuple(t.allowed for t in self._from_internet(dst, services))
        outs, path, fws, ends, reply = self._parts(src, dst, services)
        if path.outside:
            return (None,) * len(services)
        if path.dropped or (reply and not reply[-1].allowed):
            return (False,) * len(services)
        return tuple(outs[i][-1].allowed and (fws[i] is None or fws[i][0].allowed) and ends[i][-1].allowed  # type: ignore[index]
                     for i in range(len(services)))

    def uniform_verdicts(self, sources: Sequence[tuple[str, Endpoint]], dests: Sequence[tuple[str, Endpoint]],
                         services: Services, population: Population, groups: tuple[str, str],
                         exceptions: Iterable[tuple[str, str]] = ()) -> Uniform | None:
        """Per service, the verdict that every pair (a, b) of `sources` x `dests` at different sites gets from
        `verdicts`, but for a few named pairs (`Uniform.exceptions`, by (source site, destination site): the given
        `exceptions` and the pairs some rule names specifically), when the network provably gives all the others
        the same one; None when this cannot tell (then the caller judges the pairs one by one). Linear in the ends
        and the exceptions, not in the pairs. The sites of `sources` and of `dests` are each distinct (one segment
        of a VLAN per council), and `population` holds each side's addresses as `groups`.

        Why it is exact: `verdicts` decides each part of a walk from class keys (estate.reach.addresses.Classifier)
        and memoises by them. Each source's classifiers (its NSGs outbound, its route table) hold every destination
        of another site in one class, but for the few a set tells apart from the rest (`Population.named`, the
        smaller side of every set that splits them: a council's partners named by a rule); those pairs are
        exceptions, and one representative of the rest gives the source's outbound verdict and first route step for
        all the rest. The same for each destination's inbound NSGs and route table (the reply's first step) over the
        sources. The hub firewall decides a pair by the first rule holding both ends: a rule holding some but not
        all of the sources or of the destinations makes the pairs it holds exceptions; every other pair is held by
        the same rules (those holding every end of both sides), so one representative pair decides them all. What
        remains depends on one end alone (the walk on from the hub firewall, which reads the source's network only
        as "is it the firewall's network": every end is checked not to be), so the verdict of a pair that is no
        exception is T1(a) and FW and T2(b, SNAT), and "all hold" or "one fails for all" is read off per-end
        answers. Anything else (an address on the internet, a path leaving the plan, a platform subnet, a route
        around the firewall, two firewalls, a mixed class, more exceptions than a few per end) answers None.
        """
        n = len(services)
        ends = (*sources, *dests)
        if not sources or not dests or any(e.subnet is None or e.subnet.platform or is_global(e.address)
                                           for _, e in ends):
            return None
        fw_vnets = self.firewall_networks
        if any(e.subnet.vnet.key in fw_vnets for _, e in ends):  # type: ignore[union-attr]
            return None
        if len({s for s, _ in sources}) < len(sources) or len({s for s, _ in dests}) < len(dests):
            return None
        src_group, dst_group = groups
        limit = 8 * (len(sources) + len(dests)) + 64  # exceptions: a few per end, else not worth it
        site_s = {e.address: site for site, e in sources}
        site_d = {e.address: site for site, e in dests}
        at_site_s = {site: [e.address] for site, e in sources}
        at_site_d = {site: [e.address] for site, e in dests}
        if not (site_s.keys() <= set(population.members.get(src_group, ()))
                and site_d.keys() <= set(population.members.get(dst_group, ()))):
            return None  # the population does not hold every end
        named_pairs: set[tuple[str, str]] = set(exceptions)
        # the sources' side: outbound NSGs and the first route step, one representative destination of the rest each
        firewall: Firewall | None = None
        rows: dict[str, tuple[Endpoint, tuple[bool, ...] | None]] = {}  # None: its own route drops every packet
        for site, a in sources:
            assert a.subnet is not None
            own = at_site_d.get(site, [])
            named: set[int] = set()
            for c in (*(c.classes for c in self._checks(a, inbound=False)), self._route_table(a.subnet).classes):
                got = population.named(c, dst_group, own, limit)
                if got is None:
                    return None
                named |= got
            named_pairs.update((site, site_d[x]) for x in named if x in site_d)
            b0 = next((b for st, b in dests if st != site and b.address not in named), None)
            if b0 is None:
                continue  # every pair from it is an exception
            step = self._step(a.subnet, a.subnet.vnet.key, b0.address)
            if step.outside:
                return None
            if step.dropped:
                rows[site] = (a, None)
                continue
            if step.firewall is None or step.firewall.subnet is None or (
                    firewall is not None and step.firewall is not firewall):
                return None
            firewall = step.firewall
            rows[site] = (a, tuple(h[-1].allowed for h in self._nsg_hops(a, b0.address, services, inbound=False)))
        if not rows or len(named_pairs) > limit:
            return None
        if firewall is None:  # every source's own route drops what it sends to the rest
            return self._uniform((False,) * n, sources, dests, named_pairs)
        fw_subnet = firewall.subnet
        assert fw_subnet is not None
        home = ends[0][1].subnet.vnet.key  # type: ignore[union-attr]  # any network but the firewall's
        # T1: the source's outbound verdict, and the reply's way on from the firewall back to the source
        t1: dict[str, tuple[bool, ...]] = {}
        for site, (a, outs) in rows.items():
            if outs is None:
                t1[site] = (False,) * n
                continue
            back = self._walk(fw_subnet, home, a.address, firewall)
            reply = back.firewall is None and (back.outside or not back.dropped)
            t1[site] = tuple(o and reply for o in outs)
        # T2: the destination's inbound verdict (from a representative source of the rest, or from the firewall when
        # it SNATs) and the reply's first step; the walk on from the firewall must deliver into the destination's subnet
        t2: dict[str, tuple[tuple[bool, ...], tuple[bool, ...]]] = {}
        snat_address = firewall.address
        for site, b in dests:
            subnet = b.subnet
            assert subnet is not None
            own = at_site_s.get(site, [])
            named = set()
            for c in (*(c.classes for c in self._checks(b, inbound=True)), self._route_table(subnet).classes):
                got = population.named(c, src_group, own, limit)
                if got is None:
                    return None
                named |= got
            named_pairs.update((site_s[x], site) for x in named if x in site_s)
            if len(named_pairs) > limit:
                return None
            a0 = next((a for st, a in sources if st != site and a.address not in named), None)
            if a0 is None:
                continue
            after = self._walk(fw_subnet, home, b.address, firewall)
            if (after.firewall is not None or after.dropped or after.outside or after.internet
                    or after.vnet is not subnet.vnet or subnet.vnet.subnet_at(b.address) is not subnet):
                return None
            back = self._step(subnet, subnet.vnet.key, a0.address)
            if back.outside or not (back.dropped or back.firewall is firewall):
                return None
            if back.dropped:  # the reply is dropped: nothing gets through
                t2[site] = ((False,) * n, (False,) * n)
                continue
            ins = tuple(h[-1].allowed for h in self._nsg_hops(b, a0.address, services, inbound=True))
            snat = ins if snat_address is None else tuple(
                h[-1].allowed for h in self._nsg_hops(b, snat_address, services, inbound=True))
            t2[site] = (ins, snat)
        # the firewall: a rule holding some but not all ends of a side names the pairs it holds
        fwc = self._fw_check(firewall)
        size_s, size_d = population.size(src_group), population.size(dst_group)
        for r in fwc.rules:
            if r.kind == "application" and "*" not in r.fqdns:
                continue  # it names no address without a name (_FirewallCheck._one): it holds no pair
            every_s = r.sources.any or population.held(r.sources)[0].get(src_group, 0) == size_s
            if r.kind == "application":  # decided by the source and the name alone (_FirewallCheck._one)
                every_d = True
            else:
                every_d = r.destinations.any or population.held(r.destinations)[0].get(dst_group, 0) == size_d
            if every_s and every_d:
                continue  # it holds every pair
            held_s = [site_s[x] for x in population.holding(r.sources, src_group) if x in site_s]
            held_d = [site for site, _ in dests] if r.kind == "application" else [
                site_d[x] for x in population.holding(r.destinations, dst_group) if x in site_d]
            if not held_s or not held_d:
                continue  # it holds no pair
            if len(held_s) * len(held_d) > limit:
                return None
            named_pairs.update((x, y) for x in held_s for y in held_d if x != y)
            if len(named_pairs) > limit:
                return None
        # the pairs left: every source and destination with one, and one of them to ask the firewall about
        per_s: dict[str, int] = {}
        per_d: dict[str, int] = {}
        for x, y in named_pairs:
            if x != y and x in at_site_s and y in at_site_d:
                per_s[x] = per_s.get(x, 0) + 1
                per_d[y] = per_d.get(y, 0) + 1
        left_s = [site for site, _ in sources if len(dests) - (site in at_site_d) - per_s.get(site, 0) > 0]
        left_d = [site for site, _ in dests if len(sources) - (site in at_site_s) - per_d.get(site, 0) > 0]
        pair = next(((x, y) for x in left_s for y, _ in dests if x != y and (x, y) not in named_pairs), None)
        if pair is None:
            return None  # every pair is an exception
        if any(x not in t1 for x in left_s) or any(y not in t2 for y in left_d):  # pragma: no cover - by construction
            return None
        decided = fwc.decide(at_site_s[pair[0]][0], dict(dests)[pair[1]], services)
        verdict: list[bool] = []
        for p in range(n):
            hop, snats = decided[p]
            side = 1 if snats and snat_address is not None else 0
            ones = [t1[x][p] for x in left_s]
            twos = [t2[y][side][p] for y in left_d]
            if hop.allowed and all(ones) and all(twos):
                verdict.append(True)
            elif not hop.allowed or not any(ones) or not any(twos):
                verdict.append(False)
            else:
                return None  # some pairs allowed and some denied: not one verdict
        return self._uniform(tuple(verdict), sources, dests, named_pairs)

    @staticmethod
    def _uniform(verdicts: tuple[bool, ...], sources: Sequence[tuple[str, Endpoint]],
                 dests: Sequence[tuple[str, Endpoint]], named: set[tuple[str, str]]) -> Uniform:
        src, dst = {s for s, _ in sources}, {s for s, _ in dests}
        return Uniform(verdicts, frozenset((x, y) for x, y in named if x != y and x in src and y in dst))

    def route_classes(self, subnet: Subnet) -> Classifier:
        """The classes of destination addresses `subnet`'s effective routes tell apart."""
        return self._route_table(subnet).classes

    def first_step(self, subnet: Subnet, dst: int) -> Path:
        """The first part of a walk from `subnet` (a packet starting there): up to the firewall it is routed to."""
        return self._step(subnet, subnet.vnet.key, dst)

    def onward(self, fw: Firewall, dst: int) -> Path:
        """The rest of a walk routed to `fw`, from its subnet on, for a packet that started in a network holding no
        firewall (`_route` reads the packet's home only as "is it the network routed from", and from here on that is
        a firewall's): `_walk`'s joined path is outside exactly when this is, and dropped when this is."""
        assert fw.subnet is not None
        after = self._walk(fw.subnet, "", dst, fw)
        return after if after.firewall is None else Path(after.before, dropped=True)

    @property
    def firewall_networks(self) -> set[str]:
        return {fw.subnet.vnet.key for fw in self.model.firewalls if fw.subnet is not None}

    def _checks(self, at: Endpoint, *, inbound: bool) -> list[_NsgCheck]:
        """The NSG checks `_nsg_hops` applies at `at`, in its order."""
        subnet = at.subnet
        assert subnet is not None
        nsgs = [n for n in (subnet.nsg, at.nic.nsg if at.nic else None) if n is not None]
        if not inbound:
            nsgs.reverse()
        return [self._nsg_check(n, inbound, subnet, at.address) for n in nsgs]

    def _parts(self, src: Endpoint, dst: Endpoint, services: Services) -> tuple[
            list[tuple[Hop, ...]], Path, Sequence[tuple[Hop, bool] | None], list[tuple[Hop, ...]], tuple[Hop, ...]]:
        assert src.subnet is not None
        outs = self._nsg_hops(src, dst.address, services, inbound=False)
        path = self._walk(src.subnet, src.subnet.vnet.key, dst.address)
        none: list[tuple[Hop, bool] | None] = [None] * len(services)
        if path.outside or path.dropped:
            return outs, path, none, [()] * len(services), ()
        fws: Sequence[tuple[Hop, bool] | None] = (
            self._fw_check(path.firewall).decide(src.address, dst, services) if path.firewall else none)
        ends, reply = self._arrival(src, dst, path, services, fws)
        return outs, path, fws, ends, reply

    def _arrival(self, src: Endpoint, dst: Endpoint, path: Path, services: Services,
                 fws: Sequence[tuple[Hop, bool] | None]) -> tuple[list[tuple[Hop, ...]], tuple[Hop, ...]]:
        """The destination's verdict per service, and the reply's way back."""
        if path.internet:
            return [(Hop("edge", "internet", dst.fqdn or dst.fqdn_tag or show(dst.address), "delivered", True),)
                    ] * len(services), ()
        vnet = path.vnet
        assert vnet is not None
        subnet = vnet.subnet_at(dst.address) if dst.address != INTERNET else None
        if subnet is None:
            return [(Hop("edge", vnet.name, "(no subnet)", f"no subnet of {vnet.name} holds {show(dst.address)}",
                         False),)] * len(services), ()
        arrived = dst if dst.subnet is subnet else Endpoint(dst.label, dst.address, subnet,
                                                             self._nic_at.get(dst.address))
        fw = path.firewall
        snat = [bool(f and f[1]) and fw is not None and fw.address is not None for f in fws]
        if any(snat):  # the firewall's application rules SNAT: the destination sees the firewall's address
            ends = [self._nsg_hops(arrived, fw.address if snat[i] and fw and fw.address else src.address,
                                   (service,), inbound=True)[0] for i, service in enumerate(services)]
        else:
            ends = self._nsg_hops(arrived, src.address, services, inbound=True)
        if subnet.platform:
            ends = [(*hops, self._service(subnet, dst.address, src.address, services[i]))
                    if hops[-1].allowed else hops for i, hops in enumerate(ends)]
        return ends, self._reply(subnet, src, path)

    def _reply(self, subnet: Subnet, src: Endpoint, path: Path) -> tuple[Hop, ...]:
        """The reply's route back: it must come back at all, and through the same firewall (or none)."""
        back = self._walk(subnet, subnet.vnet.key, src.address)
        if back.outside or (back.vnet is None and not back.internet and not back.dropped):
            return ()
        if back.dropped:
            last = (back.before + back.after)[-1]
            return (Hop("return", last.where, last.rule, f"the reply is dropped: {last.detail}", False),)
        if (back.firewall is None) != (path.firewall is None):
            route = back.before[0] if back.before else None
            how = "through the firewall" if back.firewall else "around the firewall"
            return (Hop("return", route.where if route else subnet.name, route.rule if route else "(route)",
                        f"the reply goes {how}: a stateful firewall drops one-sided traffic (asymmetric routing)",
                        False),)
        return ()

    def _service(self, subnet: Subnet, addr: int, src: int, service: Service) -> Hop:
        protocol, port = service
        here = self.label_of.get(subnet.key, subnet.label)
        if subnet.name == FIREWALL_SUBNET:
            fw = self._firewall_at.get(addr)
            if fw and fw.policy and fw.policy.dns_proxy and port == DNS_PORT:
                return Hop("service", fw.name, "DNS proxy", "the firewall answers DNS on its private IP", True)
            return Hop("service", here, "Azure Firewall", "the firewall takes no connections of its own on this "
                       "port: it forwards traffic (and DNATs on its public IP)", False)
        if subnet.name == BASTION_SUBNET:
            if protocol == "tcp" and port in BASTION_DATA_PLANE and subnet.vnet.holds(src):
                return Hop("service", here, "Azure Bastion", "its instances' data plane", True)
            return Hop("service", here, "Azure Bastion", "Bastion takes no connections from the network on this port "
                       "(443 comes from the internet)", False)
        what = "the VPN gateway" if subnet.name == GATEWAY_SUBNET else "the platform service"
        return Hop("service", here, subnet.name, f"{what} takes no connections from the network", False)

    def _from_internet(self, dst: Endpoint, services: Services) -> tuple[Trace, ...]:
        """From the internet a packet reaches a host only through a public IP on it or a firewall DNAT rule."""
        if dst.subnet is None:
            hop = Hop("edge", "internet", "(outside)", "both ends are on the internet", False)
            return tuple(Trace((hop,), False) for _ in services)
        src = Endpoint("Internet", INTERNET)
        out: list[Trace] = []
        for service in services:
            entry = self._entry(dst, service)
            if not entry.allowed:
                out.append(Trace((entry,), False))
                continue
            hops = self._nsg_hops(dst, src.address, (service,), inbound=True)[0]
            out.append(_trace((entry,), hops))
        return tuple(out)

    def _entry(self, dst: Endpoint, service: Service) -> Hop:
        if dst.public:
            return Hop("edge", dst.label, "public IP", "the host has a public IP address", True)
        protocol, port = service
        for fw in self.model.firewalls:
            for r in fw.policy.rules if fw.policy else []:
                if r.kind == "dnat" and r.translated == dst.address and port in r.ports and (
                        {"any", protocol} & r.protocols):
                    return Hop("firewall", fw.policy.name if fw.policy else fw.name, r.label,
                               "DNAT rule: the firewall's public IP forwards here", True)
        return Hop("edge", dst.label, "(no public entry)", "no public IP on the host and no firewall DNAT rule to it",
                   False)

    # ------------------------------------------------------------------ the parts

    def _nsg_hops(self, at: Endpoint, other: int, services: Services, *, inbound: bool) -> list[tuple[Hop, ...]]:
        """Per service, the NSG hops at `at` (outbound: NIC then subnet; inbound: subnet then NIC), cut at a deny."""
        subnet = at.subnet
        assert subnet is not None
        checks = self._checks(at, inbound=inbound)
        if not checks:
            step = "nsg-in" if inbound else "nsg-out"
            why = "a platform subnet: Azure manages it" if subnet.platform else "nothing filters this subnet"
            return [(Hop(step, self.label_of.get(subnet.key, subnet.label), "(no NSG)", why, True),)] * len(services)
        key = (*(id(c) for c in checks), *(c.classes.key(other) for c in checks), services)
        hit = self._nsg_memo.get(key)
        if hit is not None:
            return hit
        decided = [c.decide(other, services) for c in checks]
        out: list[tuple[Hop, ...]] = []
        for i in range(len(services)):
            hops: list[Hop] = []
            for d in decided:
                hops.append(d[i])
                if not d[i].allowed:
                    break
            out.append(tuple(hops))
        self._nsg_memo[key] = out
        return out

    def _nsg_check(self, nsg: Nsg, inbound: bool, subnet: Subnet, own: int) -> _NsgCheck:
        key = (nsg.key, inbound, subnet.key, own)
        hit = self._nsg_checks.get(key)
        if hit is None:
            hit = self._nsg_checks[key] = _NsgCheck(nsg, inbound, self._vnet_tag(subnet), own)
        return hit

    def _vnet_tag(self, subnet: Subnet) -> AddressSet:
        """The `VirtualNetwork` service tag where this subnet's NSG is evaluated."""
        hit = self._vnet_tags.get(subnet.key)
        if hit is None:
            vnet = subnet.vnet
            spaces = list(vnet.prefixes)
            for peering in vnet.peerings.values():
                remote = self.model.vnets.get(peering.remote)
                if remote is not None and peering.allow_access:
                    spaces.extend(remote.prefixes)
            for r in subnet.route_table.routes if subnet.route_table else []:
                if r.next_hop in ("VirtualAppliance", "VirtualNetworkGateway"):
                    spaces.append((r.first, r.last))
            hit = self._vnet_tags[subnet.key] = AddressSet(tuple(dict.fromkeys(spaces)))
        return hit

    def _fw_check(self, fw: Firewall) -> _FirewallCheck:
        hit = self._fw_checks.get(fw.key)
        if hit is None:
            hit = self._fw_checks[fw.key] = _FirewallCheck(fw)
        return hit

    def _route_table(self, subnet: Subnet) -> _RouteTable:
        key = f"{subnet.vnet.key}#{subnet.route_table.key if subnet.route_table else ''}"
        hit = self._routes.get(key)
        if hit is None:
            vnet = subnet.vnet
            system = f"{vnet.name} (system routes)"
            routes = [Route("VnetLocal", lo, hi, _length(lo, hi), "VnetLocal", None, False, system)
                      for lo, hi in vnet.prefixes]
            for peering in vnet.peerings.values():
                remote = self.model.vnets.get(peering.remote)
                for lo, hi in remote.prefixes if remote else []:
                    routes.append(Route(f"peering {peering.name}", lo, hi, _length(lo, hi), "VNetPeering", None, False,
                                        system, remote=peering.remote))
            for prefix, hop in SYSTEM_ROUTES:
                parsed = parse_network(prefix)
                assert parsed is not None
                routes.append(Route("default", parsed[0], parsed[1], parsed[2], hop, None, False, system))
            routes.extend(subnet.route_table.routes if subnet.route_table else [])
            hit = self._routes[key] = _RouteTable(routes)
        return hit

    def _walk(self, subnet: Subnet, src_home: str, dst: int, via: Firewall | None = None) -> Path:
        """Routes from `subnet` towards `dst` for a packet that started in network `src_home`."""
        step = self._step(subnet, src_home, dst, via)
        fw = step.firewall
        if fw is None or fw.subnet is None or step.dropped:
            return step
        # the firewall's own routes take it on: decided per class of the firewall subnet's routes, not this one's
        after = self._walk(fw.subnet, src_home, dst, fw)
        joined = self._joined.get((id(step), id(after)))
        if joined is None:
            if after.firewall is not None:  # routed from one firewall to another: not modelled, dropped
                joined = Path(step.before, fw, after.before, dropped=True)
            else:
                joined = Path(step.before, fw, after.before, after.vnet, after.internet, after.dropped, after.outside)
            self._joined[(id(step), id(after))] = joined
        return joined

    def _step(self, subnet: Subnet, src_home: str, dst: int, via: Firewall | None = None) -> Path:
        """The first part of a walk: `subnet`'s own route to `dst`, decided once per class of its routes. `_route`
        reads the packet's home network only as "did it start in this subnet's network" (a peering's forwarded
        traffic), so that is all the key holds: the walk on from the hub firewall is shared by every council."""
        table = self._route_table(subnet)
        key = (subnet.key, src_home == subnet.vnet.key, table.classes.key(dst), is_global(dst), via.key if via else "")
        step = self._walks.get(key)
        if step is None:
            step = self._walks[key] = self._route(subnet, table.lookup(dst), src_home, dst, via)
        return step

    def _route(self, subnet: Subnet, route: Route, src_home: str, dst: int, via: Firewall | None) -> Path:
        ip = f" {show(route.next_hop_ip)}" if route.next_hop_ip is not None else ""
        said = f"{route.prefix} -> {route.next_hop}{ip}"
        vnet = subnet.vnet

        def stop(why: str) -> Path:
            return Path((Hop("route", route.table, route.name, f"{said}: {why}", False),), dropped=True)

        ok = Hop("route", route.table, route.name, said, True)
        if route.next_hop == "None":
            return stop("Azure drops it")
        if route.next_hop == "VnetLocal":
            return Path((ok,), vnet=vnet) if vnet.holds(dst) else stop(f"{show(dst)} is not in {vnet.name}")
        if route.next_hop == "VNetPeering":
            remote = self.model.vnets[route.remote]
            crossed = self._cross(vnet, remote, src_home != vnet.key)
            return Path((ok, crossed), vnet=remote if crossed.allowed else None, dropped=not crossed.allowed)
        if route.next_hop == "Internet":
            if not is_global(dst):
                return stop(f"{show(dst)} is a private address: not on the internet")
            if via is not None:
                if via.public:
                    return Path((Hop("route", route.table, route.name, f"{said}: out through the firewall's public IP "
                                     "(SNAT)", True),), internet=True)
                return stop("the firewall has no public IP")
            if subnet.platform or subnet.nat_gateway or subnet.default_outbound:
                return Path((ok,), internet=True)
            return stop(f"{subnet.name} is a private subnet (defaultOutboundAccess false, no NAT gateway): no way out")
        if route.next_hop == "VirtualAppliance":
            fw = self._firewall_at.get(route.next_hop_ip) if route.next_hop_ip is not None else None
            if fw is None or fw.subnet is None:
                if route.next_hop_ip is not None and not any(v.holds(route.next_hop_ip)
                                                             for v in self.model.vnets.values()):
                    return Path((ok,), outside=True)
                return stop("no appliance has that address")
            if via is fw:
                return stop("back to the firewall it came from: a loop")
            hops: list[Hop] = [ok]
            if fw.subnet.vnet is not vnet:
                crossed = self._cross(vnet, fw.subnet.vnet, src_home != vnet.key)
                hops.append(crossed)
                if not crossed.allowed:
                    return Path(tuple(hops), dropped=True)
            return Path(tuple(hops), fw)  # _walk goes on from the firewall
        return Path((Hop("route", route.table, route.name, f"{said}: through the gateway, to on-premises", True),),
                    outside=True)

    def _cross(self, here: VNet, there: VNet, forwarded: bool) -> Hop:
        out = here.peerings.get(there.key)
        back = there.peerings.get(here.key)
        if out is None:
            return Hop("peering", here.name, "(none)", f"{here.name} is not peered with {there.name}", False)
        if back is None:
            return Hop("peering", out.name, "not connected", f"{there.name} has no peering back to {here.name}",
                       False)
        if not out.allow_access:
            return Hop("peering", out.name, "allowVirtualNetworkAccess", f"false: {here.name} may not reach "
                       f"{there.name}", False)
        if forwarded and not back.allow_forwarded:
            return Hop("peering", back.name, "allowForwardedTraffic", f"false: {there.name} refuses traffic "
                       f"forwarded from {here.name}", False)
        return Hop("peering", out.name, "connected", f"{here.name} -> {there.name}"
                   f"{' (forwarded traffic accepted)' if forwarded else ''}", True)


def _length(first: int, last: int) -> int:
    return 33 - (last - first + 1).bit_length()


def _trace(*parts: tuple[Hop, ...]) -> Trace:
    """The hops in order up to (and with) the first that denies."""
    hops: list[Hop] = []
    for part in parts:
        for hop in part:
            hops.append(hop)
            if not hop.allowed:
                return Trace(tuple(hops), False)
    return Trace(tuple(hops), True)


__all__ = ["Endpoint", "Hop", "Network", "Path", "ReachError", "Service", "Services", "Trace", "Uniform"]

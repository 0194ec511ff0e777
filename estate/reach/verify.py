"""What must hold on every plan, checked by tracing packets through the planned network.

- segmentation (control 1.2): every flow the matrix allows is reachable end to end and every pair it does not list
  is denied: every ordered pair of segments (intra, hub, inter, hub-internal), every port the matrix names. The
  probes and their expected verdicts are the lab probe's own (estate.isolation: `matrix_ports`, `allowing_flow`,
  on its segments), so the cloud plane and the lab are judged against one table. A segment in which nothing
  can send (GatewaySubnet with no gateway planned: `Network.idle`) is no source: its probes are counted as not
  judged, with the reason (`Verification.idle`).
- egress (1.4): each egress purpose is reachable from its sources, and from no other segment; an unlisted name and
  a bare internet address are reachable only where a purpose allows any name. Platform subnets (firewall, Bastion,
  gateway) hold Azure's services, whose own traffic is Azure's: they are no egress source.
- administration (1.5): every Bastion host reaches every VM and scale set on its admin port (by its OS), and
  nothing reaches any of them from the internet (on the admin ports and every port of the matrix).
- hub_routing (1.3): every council segment reaches the other councils and the internet only through the hub
  firewall: no route delivers the packet without passing it (a packet dropped is no bypass).

Inter-council pairs are many (40 councils: 81,000 ordered pairs of segments, 890,000 probes; 400 councils: 8 million
pairs). They are all judged, none sampled, but in classes: the pairs from one VLAN of every council to another VLAN
of every other council are one class, and `Network.uniform_verdicts` proves in time linear in the councils that all
its pairs but a few exceptions get one verdict per port. The exceptions are the pairs some rule names specifically
(a council's NSG or route table telling some councils' segments of the class apart from the rest: its partners;
a hub firewall rule holding some councils' segments and not all) and the class's declared pairs (council.yml
`exchanges`: the matrix expects those allowed and the class's other pairs denied); they are O(councils) and are
traced one by one. So are the pairs within a council and those with the hub, and a class it cannot prove or whose
verdicts differ from the matrix's, which names the deciding rule of each failing pair. `verify(..., fast=False)`
traces every pair (the reference the tests hold the fast path to). Hub routing is counted the same way: one first
step per council subnet for all other councils.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from estate.ipam import HUB
from estate.isolation import Segment, allowing_flow, end_name, exchange_pairs, matrix_ports, scope_of, segments
from estate.loader import Estate
from estate.models import EgressPurpose
from estate.reach.addresses import INTERNET, Population, is_global, show
from estate.reach.model import fqdn_matches
from estate.reach.network import Endpoint, Hop, Network, Service, Services, Trace

CHECKS = ("segmentation", "egress", "administration", "hub_routing")
CONTROLS = {"segmentation": "network.segmentation", "egress": "network.egress",
            "administration": "network.administration", "hub_routing": "network.hub_routing"}
# A name no purpose lists, to see that nothing but an "any name" purpose reaches it. The .example top-level
# domain is reserved for examples (RFC 2606): it names no real endpoint.
UNLISTED_NAME = "unlisted-destination.example"
KEEP = 200  # failures kept per check and stack (all are counted)


@dataclass(frozen=True)
class Failure:
    check: str
    stack: str               # attributed to: the source's council (or the hub); a VM's stack for administration
    source: str
    destination: str
    service: Service
    expected: bool
    why: str                 # what allows it (a flow, a purpose, the admin port) or why it must be denied
    trace: Trace

    @property
    def message(self) -> str:
        protocol, port = self.service
        what = f" {protocol}/{port}" if port else ""
        hop = self.trace.deciding
        if self.check == "hub_routing":
            return (f"{self.source} -> {self.destination} bypasses the hub firewall: route {hop.rule} in {hop.where} "
                    f"({hop.detail})")
        want = f"should be allowed ({self.why})" if self.expected else f"should be denied ({self.why})"
        got = "reaches it" if self.trace.allowed else "is denied"
        return (f"{self.source} -> {self.destination}{what} {want} but {got}: deciding {hop.step} at "
                f"{hop.where}, {hop.rule} ({hop.detail})")


@dataclass
class Tally:
    allowed: int = 0        # probes that must be allowed (hub routing: paths that must pass the firewall)
    allowed_ok: int = 0
    denied: int = 0         # probes that must be denied
    denied_ok: int = 0
    outside: int = 0        # not judged: the packet leaves the planned stacks
    idle: int = 0           # not judged: nothing in the source segment can send (Network.idle)
    failed: int = 0

    def add(self, other: Tally) -> None:
        for name in ("allowed", "allowed_ok", "denied", "denied_ok", "outside", "idle", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Verification:
    tallies: dict[tuple[str, str], Tally] = field(default_factory=dict)   # (check, stack)
    failures: list[Failure] = field(default_factory=list)
    unplanned: list[str] = field(default_factory=list)                   # segments with no subnet in the plan
    idle: dict[str, str] = field(default_factory=dict)                   # source segments not judged, and why
    notes: list[str] = field(default_factory=list)

    def tally(self, check: str, stack: str) -> Tally:
        return self.tallies.setdefault((check, stack), Tally())

    def total(self, check: str) -> Tally:
        out = Tally()
        for (name, _), t in self.tallies.items():
            if name == check:
                out.add(t)
        return out

    def stacks(self, check: str) -> list[str]:
        return sorted({stack for name, stack in self.tallies if name == check})

    def failing(self, check: str, stack: str | None = None) -> list[Failure]:
        return [f for f in self.failures if f.check == check and (stack is None or f.stack == stack)]

    @property
    def ok(self) -> bool:
        return not any(t.failed for t in self.tallies.values())

    def _fail(self, failure: Failure) -> None:
        t = self.tally(failure.check, failure.stack)
        t.failed += 1
        if t.failed <= KEEP:
            self.failures.append(failure)

    def summary(self, limit: int = 20) -> str:
        lines = []
        for check in CHECKS:
            t = self.total(check)
            if check == "hub_routing":
                head = f"{t.allowed_ok}/{t.allowed} paths pass the hub firewall"
            else:
                head = (f"{t.allowed + t.denied} probes: allowed {t.allowed_ok}/{t.allowed} reach, denied "
                        f"{t.denied_ok}/{t.denied} denied")
            tail = f"; {t.outside} leave the planned stacks (not judged)" if t.outside else ""
            if t.idle:
                tail += f"; {t.idle} from segments where nothing can send (not judged)"
            lines.append(f"{check:<15} {head}{tail}: {'ok' if not t.failed else f'{t.failed} FAIL'}")
        if self.unplanned:
            lines.append(f"not judged: {len(self.unplanned)} segments have no subnet in the plan "
                         f"({', '.join(self.unplanned[:6])}{' ...' if len(self.unplanned) > 6 else ''})")
        lines.extend(f"not judged as a source: {label}: {why}" for label, why in sorted(self.idle.items()))
        lines.extend(f"note: {n}" for n in self.notes)
        for f in self.failures[:limit]:
            lines.append(f"FAIL {f.check}: {f.message}")
        if len(self.failures) > limit:
            lines.append(f"... and {sum(t.failed for t in self.tallies.values()) - limit} more failures")
        return "\n".join(lines)


def verify(network: Network, estate: Estate, checks: Iterable[str] = CHECKS, *, fast: bool = True) -> Verification:
    """Every plan-wide property of the module docstring, on the network planned for this estate. Without `fast`,
    every pair of the segmentation check is traced one by one (the reference the fast path is tested against)."""
    out = Verification()
    segments = _segments(network, estate, out)
    wanted = set(checks)
    if "segmentation" in wanted:
        _segmentation(network, estate, segments, out, fast)
    if "egress" in wanted:
        _egress(network, estate, segments, out)
    if "administration" in wanted:
        _administration(network, estate, out)
    if "hub_routing" in wanted:
        _hub_routing(network, segments, out, fast)
    return out


def _segments(network: Network, estate: Estate, out: Verification) -> list[tuple[Segment, Endpoint]]:
    found = []
    for seg in segments(estate):
        subnet = network.names.get(seg.label)
        if subnet is None:
            out.unplanned.append(seg.label)
        else:
            found.append((seg, network.segment(subnet)))
    return found


def _judge(out: Verification, check: str, stack: str, got: bool | None, want: bool) -> bool:
    """Count one probe; True when it failed (the caller records why)."""
    t = out.tally(check, stack)
    if got is None:
        t.outside += 1
        return False
    if want:
        t.allowed += 1
        t.allowed_ok += got
    else:
        t.denied += 1
        t.denied_ok += not got
    return got != want


_Ends = Sequence[tuple[Segment, Endpoint]]


@dataclass(frozen=True)
class _Proven:
    """A class of inter-council pairs `Network.uniform_verdicts` proved: its verdicts, and its exceptions (traced
    one by one) by source site."""

    verdicts: tuple[bool, ...]
    exceptions: dict[str, list[str]]    # source site -> destination sites


@dataclass
class _Layout:
    """The segments as the segmentation check walks them: by site, and the councils' by VLAN (the classes)."""

    segments: _Ends
    by_site: dict[str, list[tuple[Segment, Endpoint]]]
    hub: list[tuple[Segment, Endpoint]]
    vlans: dict[str, list[tuple[Segment, Endpoint]]]   # council segments of one VLAN name, every council
    at: dict[str, dict[str, tuple[Segment, Endpoint]]]  # VLAN name -> site -> its segment

    @classmethod
    def of(cls, segments: _Ends) -> _Layout:
        by_site: dict[str, list[tuple[Segment, Endpoint]]] = {}
        vlans: dict[str, list[tuple[Segment, Endpoint]]] = {}
        for s, e in segments:
            by_site.setdefault(s.site, []).append((s, e))
            if not s.is_hub:
                vlans.setdefault(s.name, []).append((s, e))
        at = {name: {s.site: (s, e) for s, e in ends} for name, ends in vlans.items()}
        return cls(segments, by_site, [x for x in segments if x[0].is_hub], vlans, at)

    def others(self, s: Segment, vlan: str) -> int:
        """How many segments of `vlan` are at another site than `s`."""
        return len(self.vlans[vlan]) - (s.site in self.at[vlan])

    def one_by_one(self, s: Segment, proven: Mapping[tuple[str, str], _Proven]
                   ) -> Iterable[tuple[Segment, Endpoint]]:
        """The destinations judged pair by pair from `s`: all of them for a hub segment; for a council's, its own
        site's and the hub's, the other councils' of every VLAN not proven as a class, and the exceptions of those
        proven."""
        if s.is_hub:
            yield from self.segments
            return
        yield from self.by_site[s.site]
        yield from self.hub
        for name, ends in self.vlans.items():
            got = proven.get((s.name, name))
            if got is None:
                yield from (x for x in ends if x[0].site != s.site)
            else:
                yield from (self.at[name][site] for site in got.exceptions.get(s.site, ()))


def _declared(estate: Estate) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """Per (source VLAN, destination VLAN) class, the pairs of councils (source, destination) an inter flow of that
    class joins (council.yml `exchanges`): the matrix expects them allowed and the class's other pairs denied."""
    exchanges = exchange_pairs(estate)
    out: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for f in estate.framework.network.flows:
        if f.scope == "inter":
            out.setdefault((f.source, f.destination), set()).update((a, b) for x, a, b in exchanges if x == f.id)
    return out


def _classes(network: Network, layout: _Layout, services: Services, idle: set[str],
             declared: Mapping[tuple[str, str], set[tuple[str, str]]]) -> dict[tuple[str, str], _Proven]:
    """Every (source VLAN, destination VLAN) class of inter-council pairs the network proves uniform but for a few
    exceptions (Network.uniform_verdicts: the pairs some rule names specifically, and the class's declared pairs),
    with its verdicts: each of its other pairs has them, so none of those is traced one by one."""
    population = Population({name: [e.address for _, e in ends] for name, ends in layout.vlans.items()})
    out = {}
    for src, ends in layout.vlans.items():
        sources = [(s.site, e) for s, e in ends if s.label not in idle]
        for dst, targets in layout.vlans.items():
            got = network.uniform_verdicts(sources, [(d.site, e) for d, e in targets], services, population,
                                           (src, dst), declared.get((src, dst), ()))
            if got is not None:
                by_source: dict[str, list[str]] = {}
                for a, b in sorted(got.exceptions):
                    by_source.setdefault(a, []).append(b)
                out[(src, dst)] = _Proven(got.verdicts, by_source)
    return out


def _segmentation(network: Network, estate: Estate, segments: Sequence[tuple[Segment, Endpoint]],
                  out: Verification, fast: bool = True) -> None:
    fw = estate.framework
    services: Services = tuple(matrix_ports(fw))
    exchanges = exchange_pairs(estate)
    inter = [f for f in fw.network.flows if f.scope == "inter"]
    expected: dict[tuple[bool, bool, bool, str, str, frozenset[str]],
                   tuple[tuple[str | None, ...], tuple[bool, ...], str]] = {}

    def expect(s: Segment, d: Segment) -> tuple[tuple[str | None, ...], tuple[bool, ...], str]:
        # allowing_flow reads the pair's scope (from the two ends' sites), the two ends' names and, between two
        # councils, which inter flows they agreed: one answer per such key
        agreed = frozenset(f.id for f in inter if (f.id, s.site, d.site) in exchanges) if s.site != d.site \
            else frozenset()
        key = (s.is_hub, d.is_hub, s.site == d.site, s.name, d.name, agreed)
        known = expected.get(key)
        if known is None:
            flows = tuple(allowing_flow(fw, s, d, p, n, exchanges) for p, n in services)
            known = expected[key] = (flows, tuple(f is not None for f in flows), scope_of(s, d))
        return known

    idle = {s.label: why for s, a in segments if a.subnet is not None and (why := network.idle(a.subnet))}
    layout = _Layout.of(segments)
    agreeing: dict[tuple[str, str], _Proven] = {}
    if fast:  # a class whose verdicts differ from the matrix's is traced pair by pair, to name the deciding rules
        for (src, dst), proven in _classes(network, layout, services, set(idle), _declared(estate)).items():
            # the class's pairs that are no exception are no declared pair of it: the matrix has one answer for them
            rest = next(((s, d) for s, _ in layout.vlans[src] if s.label not in idle for d, _ in layout.vlans[dst]
                         if d.site != s.site and d.site not in proven.exceptions.get(s.site, ())), None)
            if rest is not None and expect(*rest)[1] == proven.verdicts:
                agreeing[(src, dst)] = proven
    for s, a in segments:
        t = out.tally("segmentation", s.site)
        if s.label in idle:
            out.idle[s.label] = idle[s.label]
            t.idle += len(services) * (len(segments) - 1)
            continue
        if not s.is_hub:
            for (src, dst), proven in agreeing.items():
                if src == s.name:
                    same = proven.verdicts
                    pairs = layout.others(s, dst) - len(proven.exceptions.get(s.site, ()))
                    allowed = sum(same) * pairs
                    t.allowed += allowed
                    t.allowed_ok += allowed
                    t.denied += len(same) * pairs - allowed
                    t.denied_ok += len(same) * pairs - allowed
        for d, b in layout.one_by_one(s, agreeing):
            if s is d:
                continue
            flows, want, scope = expect(s, d)
            got = network.verdicts(a, b, services)
            if got == want:  # the common case, counted at once
                allowed = sum(want)
                t.allowed += allowed
                t.allowed_ok += allowed
                t.denied += len(want) - allowed
                t.denied_ok += len(want) - allowed
                continue
            for i, service in enumerate(services):
                flow = flows[i]
                if _judge(out, "segmentation", s.site, got[i], flow is not None):
                    trace = network.traces(a, b, (service,))[0]
                    out._fail(Failure("segmentation", s.site, a.label, b.label, service, flow is not None,
                                      f"{flow} allows it" if flow else f"no flow of scope {scope} lists it", trace))


def verdict_table(network: Network, estate: Estate, *, fast: bool = True
                  ) -> dict[tuple[str, str], tuple[bool | None, ...]]:
    """The segmentation check's verdicts on every ordered pair of segments (sources where nothing can send left
    out), per port of the matrix: with `fast`, the classes `Network.uniform_verdicts` proves are expanded to their
    pairs and the rest traced one by one; without, every pair is traced. The two must be equal (tests/test_reach)."""
    services: Services = tuple(matrix_ports(estate.framework))
    segments = _segments(network, estate, Verification())
    idle = {s.label for s, a in segments if a.subnet is not None and network.idle(a.subnet)}
    layout = _Layout.of(segments)
    proven = _classes(network, layout, services, idle, _declared(estate)) if fast else {}
    table: dict[tuple[str, str], tuple[bool | None, ...]] = {}
    for s, a in segments:
        if s.label in idle:
            continue
        if not s.is_hub:
            for (src, dst), got in proven.items():
                if src == s.name:
                    skip = set(got.exceptions.get(s.site, ()))
                    table.update({(a.label, b.label): got.verdicts for d, b in layout.vlans[dst]
                                  if d.site != s.site and d.site not in skip})
        for d, b in layout.one_by_one(s, proven):
            if s is not d:
                table[(a.label, b.label)] = network.verdicts(a, b, services)
    return table


def _covers(purpose: EgressPurpose, dst: Endpoint, service: Service) -> bool:
    protocol, port = service
    if purpose.application is not None:
        app = purpose.application
        if protocol != "tcp" or port not in {int(p) for p in app.ports}:
            return False
        if dst.fqdn:
            return any(fqdn_matches(f, dst.fqdn) for f in app.fqdns)
        if dst.fqdn_tag:
            return dst.fqdn_tag in app.fqdn_tags or "*" in app.fqdns
        return "*" in app.fqdns
    net = purpose.network
    assert net is not None
    ranges = [tuple(int(x) for x in (p.split("-") * 2)[:2]) for p in net.ports]
    if protocol != net.protocol or not any(lo <= port <= hi for lo, hi in ranges):
        return False
    return bool(dst.fqdn) and any(fqdn_matches(f, dst.fqdn or "") for f in net.fqdns)


def _egress(network: Network, estate: Estate, segments: Sequence[tuple[Segment, Endpoint]],
            out: Verification) -> None:
    purposes = estate.framework.network.egress.purposes
    destinations: dict[str, Endpoint] = {}
    services: set[Service] = set()
    for p in purposes:
        if p.application is not None:
            for pattern in p.application.fqdns:
                if pattern != "*":
                    name = f"any{pattern[1:]}" if pattern.startswith("*.") else pattern  # a name under a wildcard
                    destinations.setdefault(name, Endpoint(name, INTERNET, fqdn=name.lower()))
            for tag in p.application.fqdn_tags:
                destinations.setdefault(f"tag:{tag}", Endpoint(f"tag:{tag}", INTERNET, fqdn_tag=tag))
        else:
            assert p.network is not None
            for name in p.network.fqdns:
                destinations.setdefault(name, Endpoint(name, INTERNET, fqdn=name.lower()))
        for text in p.ports:
            low, _, high = text.partition("-")
            services.update({(p.protocol, int(low)), (p.protocol, int(high or low))})
    destinations[UNLISTED_NAME] = Endpoint(UNLISTED_NAME, INTERNET, fqdn=UNLISTED_NAME)
    destinations["Internet"] = Endpoint("Internet", INTERNET)
    ordered: Services = tuple(sorted(services))
    for s, a in segments:
        if a.subnet is None or a.subnet.platform:
            continue
        mine = [p for p in purposes if end_name(s) in p.sources]
        for dst in destinations.values():
            got = network.verdicts(a, dst, ordered)
            for i, service in enumerate(ordered):
                allowing = next((p.name for p in mine if _covers(p, dst, service)), None)
                if _judge(out, "egress", s.site, got[i], allowing is not None):
                    why = (f"egress purpose {allowing}" if allowing else
                           f"no egress purpose of {end_name(s)} names it")
                    out._fail(Failure("egress", s.site, a.label, dst.label, service, allowing is not None, why,
                                      network.traces(a, dst, (service,))[0]))


def _administration(network: Network, estate: Estate, out: Verification) -> None:
    admin = estate.framework.network.administration
    linux, windows = int(admin.linux_port), int(admin.windows_port)
    bastions = [(b, network.model.subnets.get(b.subnet_key)) for b in network.model.bastions]
    hub_planned = any(v.stack == HUB for v in network.model.vnets.values())
    if not bastions and hub_planned and network.model.machines:
        out.notes.append("no Bastion host in the plan: administrators reach no VM")
    internet = Endpoint("Internet", INTERNET)
    matrix: Services = tuple(sorted({s for s in matrix_ports(estate.framework) if s[0] == "tcp"} |
                                    {("tcp", linux), ("tcp", windows)}))
    for machine in network.model.machines:
        ports = {"linux": (linux,), "windows": (windows,)}.get(machine.os or "", (linux, windows))
        for dst in network.machine_endpoints(machine):
            for bastion, subnet in bastions:
                if subnet is None:
                    continue
                src = network.segment(subnet)
                services: Services = tuple(("tcp", p) for p in ports)
                got = network.verdicts(src, dst, services)
                for i, service in enumerate(services):
                    if _judge(out, "administration", machine.stack, got[i], True):
                        out._fail(Failure("administration", machine.stack, f"Bastion {bastion.name}", dst.label,
                                          service, True, f"the admin port of a {machine.os or 'VM'} host",
                                          network.traces(src, dst, (service,))[0]))
            if not bastions and hub_planned:
                t = out.tally("administration", machine.stack)
                t.allowed += 1
                t.failed += 1
                hop = Hop("edge", "the plan", "(no Bastion)", "no Bastion host is planned", False)
                if t.failed <= KEEP:
                    out.failures.append(Failure("administration", machine.stack, "Bastion", dst.label,
                                                ("tcp", ports[0]), True, "the admin port",
                                                Trace((hop,), False)))
            got = network.verdicts(internet, dst, matrix)
            for i, service in enumerate(matrix):
                if _judge(out, "administration", machine.stack, got[i], False):
                    out._fail(Failure("administration", machine.stack, "Internet", dst.label, service, False,
                                      "nothing reaches a VM from the internet",
                                      network.traces(internet, dst, (service,))[0]))


def _hub_routing(network: Network, segments: Sequence[tuple[Segment, Endpoint]], out: Verification,
                 fast: bool = True) -> None:
    spokes = [v for v in network.model.vnets.values() if v.stack != HUB and v.prefixes]
    targets = [(v, Endpoint(f"{v.name} ({show(v.prefixes[0][0] + 4)})", v.prefixes[0][0] + 4)) for v in spokes]
    population = Population({"spokes": [t.address for _, t in targets]})
    private = not any(is_global(t.address) for _, t in targets)
    onward: dict[str, int] = {}  # per firewall: the targets the walk on from it leaves the planned stacks for
    fw_vnets = network.firewall_networks
    internet = Endpoint("Internet", INTERNET)
    at_vnet: dict[str, list[Endpoint]] = {}  # the targets in each network (one each), not searched per segment
    for v, e in targets:
        at_vnet.setdefault(v.key, []).append(e)
    for s, a in segments:
        if s.is_hub or a.subnet is None or a.subnet.platform:
            continue
        t = out.tally("hub_routing", s.site)
        home = at_vnet.get(a.subnet.vnet.key, [])
        others = len(targets) - len(home)
        first = next((e for v, e in targets if v is not a.subnet.vnet), None)
        if fast and first is not None and private and a.subnet.vnet.key not in fw_vnets and not population.splits(
                network.route_classes(a.subnet), "spokes", [e.address for e in home]):
            # one first step for every other council's network (one class of this subnet's routes)
            step = network.first_step(a.subnet, first.address)
            fw = step.firewall
            if step.outside and fw is None:
                t.outside += others
                one_by_one = [internet]
            elif step.dropped or (fw is not None and fw.subnet is not None):
                left = 0
                if not step.dropped and fw is not None:
                    if fw.key not in onward:
                        onward[fw.key] = sum(network.onward(fw, e.address).outside for _, e in targets)
                    left = onward[fw.key] - sum(network.onward(fw, e.address).outside for e in home)
                t.outside += left
                t.allowed += others - left
                t.allowed_ok += others - left
                one_by_one = [internet]
            else:
                one_by_one = [*(e for v, e in targets if v is not a.subnet.vnet), internet]
        else:
            one_by_one = [*(e for v, e in targets if v is not a.subnet.vnet), internet]
        for dst in one_by_one:
            path = network.path(a, dst)
            if path.outside:
                t.outside += 1
                continue
            t.allowed += 1
            if path.firewall is not None or path.dropped:
                t.allowed_ok += 1
                continue
            hops = (*path.before, *path.after)
            route = next((h for h in hops if h.step == "route"), hops[0])
            bypass = Hop(route.step, route.where, route.rule, f"{route.detail}: delivered without passing the hub "
                         "firewall", False)
            out._fail(Failure("hub_routing", s.site, a.label, dst.label, ("any", 0), True,
                              "council traffic to other councils and the internet passes the hub firewall",
                              Trace((*hops, bypass), False)))

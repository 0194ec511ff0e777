"""The lab's layout, computed from framework.yaml, inventories/ and lab/lab.yml (pure: no side effects).

- One switch namespace per site (`se-switch.<site>`), holding one bridge per VLAN (`vlan<ID>`) or, for
  the hub, per segment (`seg<N>`). The kernel has no 802.1q links, so a VLAN is a bridge.
- One network namespace per host, named like its container (`se-<host>`): `eth0` on its VLAN's bridge
  with its IPAM address, `mgmt0` on the management bridge; the supernet is routed via the VLAN's
  gateway (the router), everything else (apt) via the controller on the management network.
- The hub's router: a leg on every segment of every site, holding the segment's gateway address.
- A probe namespace (`se-probe.<site>.<segment>`) on every segment with no host of its own, so that
  the isolation test has an endpoint on every segment a flow names.
- The management network: a bridge in the controller's namespace (`se-mgmt`), every host on an
  isolated port. A host's management address mirrors its estate address inside the supernet.
- The inter-council flows each pair of councils agreed to (`exchange_pairs`): read here from the councils'
  `exchanges` declarations, not from the loader's `Estate.exchanges`, so the isolation test stays a second
  opinion on the matrix the router enforces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from estate.lab import LAB_CONFIG_DIR, PREFIX, project_root

if TYPE_CHECKING:
    from estate.loader import Estate

CONFIG_FILE = "lab.yml"
VLAN_IF = "eth0"
MGMT_IF = "mgmt0"
ROUTER_ROLE = "router"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ManagementConfig(_Strict):
    network: str
    bridge: Annotated[str, Field(pattern=r"^se-[a-z0-9-]{1,12}$")]

    @field_validator("network")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            return str(IPv4Network(value, strict=True))
        except ValueError as exc:
            raise ValueError(f"not an IPv4 network in CIDR form: {exc}") from None


class ProbeConfig(_Strict):
    timeout: Annotated[float, Field(gt=0, le=30)]


class LabConfig(_Strict):
    management: ManagementConfig
    sysctl: dict[str, int] = {}
    probe: ProbeConfig

    @property
    def mgmt_network(self) -> IPv4Network:
        return IPv4Network(self.management.network)


def load_config(root: Path | None = None) -> LabConfig:
    from estate.loader import validate
    from estate.yamlsrc import load

    return validate(LabConfig, load(project_root(root) / LAB_CONFIG_DIR / CONFIG_FILE))


def short(text: str) -> str:
    """8 hex characters naming a link after what it joins (interface names are at most 15 bytes)."""
    return hashlib.sha1(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class LabSegment:
    site: str              # council key, or "shared" for the hub
    name: str              # VLAN or hub segment name
    vlan_id: int | None
    network: IPv4Network
    gateway: IPv4Address
    switch_ns: str
    bridge: str

    @property
    def label(self) -> str:
        return f"{self.site}/{self.name}"

    @property
    def is_hub(self) -> bool:
        from estate.ipam import HUB

        return self.site == HUB


@dataclass(frozen=True)
class LabHost:
    name: str
    site: str
    role: str
    segment: LabSegment
    address: IPv4Address
    mgmt_address: IPv4Address
    container: str
    netns: str
    port: str              # its VLAN leg's end on the bridge (in the switch namespace)
    mgmt_port: str         # its management leg's end on the management bridge (controller namespace)

    @property
    def interface(self) -> IPv4Interface:
        return IPv4Interface(f"{self.address}/{self.segment.network.prefixlen}")


@dataclass(frozen=True)
class RouterLeg:
    segment: LabSegment
    ifname: str            # in the router's namespace
    port: str              # on the segment's bridge
    addresses: tuple[IPv4Interface, ...]


@dataclass(frozen=True)
class ProbePoint:
    segment: LabSegment
    address: IPv4Address
    netns: str
    port: str

    @property
    def interface(self) -> IPv4Interface:
        return IPv4Interface(f"{self.address}/{self.segment.network.prefixlen}")


@dataclass(frozen=True)
class Endpoint:
    """Where the isolation test sends from and listens on, for one segment: a host or a probe namespace."""

    segment: LabSegment
    address: IPv4Address
    name: str              # host name, or the probe namespace
    container: str | None  # run inside this container (podman exec), else in `netns` (ip netns exec)
    netns: str


@dataclass(frozen=True)
class Topology:
    supernet: IPv4Network
    mgmt_network: IPv4Network
    mgmt_bridge: str
    controller: IPv4Interface
    blocks: tuple[tuple[str, IPv4Network], ...]   # (site, block) of the hub and every council
    segments: tuple[LabSegment, ...]
    hosts: tuple[LabHost, ...]            # every container, the router included
    router: LabHost
    legs: tuple[RouterLeg, ...]
    probes: tuple[ProbePoint, ...]
    sysctl: dict[str, int] = field(default_factory=dict)
    exchanges: frozenset[Exchange] = frozenset()  # exchange_pairs: the inter flows per pair of councils

    @property
    def switch_namespaces(self) -> list[str]:
        return list(dict.fromkeys(s.switch_ns for s in self.segments))

    def segment(self, site: str, name: str) -> LabSegment:
        for seg in self.segments:
            if seg.site == site and seg.name == name:
                return seg
        raise KeyError(f"{site}/{name}")

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def endpoints(self) -> list[Endpoint]:
        """One per segment, in segment order: its first host that is not the router, else its probe."""
        out: list[Endpoint] = []
        probes = {p.segment: p for p in self.probes}
        for seg in self.segments:
            host = next((h for h in self.hosts if h.segment == seg and h.role != ROUTER_ROLE), None)
            if host is not None:
                out.append(Endpoint(seg, host.address, host.name, host.container, host.netns))
            else:
                probe = probes[seg]
                out.append(Endpoint(seg, probe.address, probe.netns, None, probe.netns))
        return out


Exchange = tuple[str, str, str]  # (flow id, council, partner council)


def exchange_pairs(estate: Estate) -> frozenset[Exchange]:
    """(flow, a, b) for every inter flow two councils both declare with each other in council.yml `exchanges`,
    in both orders: the pairs an inter flow joins. The lab's own reading of the declarations."""
    said = {(x.flow, key, x.partner) for key, rec in estate.councils.items() for x in rec.council.exchanges}
    return frozenset((flow, a, b) for flow, a, b in said if a != b and (flow, b, a) in said)


def mirror(address: IPv4Address, supernet: IPv4Network, mgmt: IPv4Network) -> IPv4Address:
    """An estate address's twin on the management network: the same offset from the network's start."""
    return mgmt.network_address + (int(address) - int(supernet.network_address))


def lab_segments(estate: Estate) -> list[LabSegment]:
    """Every segment of the lab, hub first then the councils in order: a function of the address plan alone
    (the isolation matrix is built on these; the cloud plane's reachability check uses them too)."""
    from estate import ipam

    plan = estate.addresses
    segments: list[LabSegment] = []
    for site in [ipam.HUB, *sorted(plan.councils)]:
        switch = f"{PREFIX}switch.{site}"
        for i, sp_seg in enumerate(plan.site(site).segments):
            bridge = f"vlan{sp_seg.vlan_id}" if sp_seg.vlan_id is not None else f"seg{i}"
            segments.append(LabSegment(site, sp_seg.name, sp_seg.vlan_id, sp_seg.network, sp_seg.gateway, switch,
                                       bridge))
    return segments


def build(estate: Estate, config: LabConfig) -> Topology:
    """The lab's layout for this estate. Raises EstateError when the inventory cannot make a lab."""
    from estate import ipam
    from estate.lab.sh import lab_error
    from estate.loader import HOSTS_FILE, INVENTORIES, host_addresses

    plan = estate.addresses
    supernet = plan.supernet
    mgmt = config.mgmt_network
    if mgmt.prefixlen > supernet.prefixlen:
        raise lab_error(f"management.network {mgmt} is smaller than the supernet {supernet}: each host's "
                        f"management address mirrors its estate address, so it must be a /{supernet.prefixlen} "
                        "or larger", f"{LAB_CONFIG_DIR}/{CONFIG_FILE}")
    if mgmt.overlaps(supernet):
        raise lab_error(f"management.network {mgmt} overlaps the supernet {supernet}",
                        f"{LAB_CONFIG_DIR}/{CONFIG_FILE}")

    sites = [ipam.HUB, *sorted(plan.councils)]
    segments = lab_segments(estate)
    by_key = {(s.site, s.name): s for s in segments}

    hosts: list[LabHost] = []
    for site in sites:
        for name, role, ipam_seg, address in host_addresses(estate, site):
            lab_seg = by_key[(site, ipam_seg.name)]
            hosts.append(LabHost(
                name=name, site=site, role=role, segment=lab_seg, address=address,
                mgmt_address=mirror(address, supernet, mgmt), container=f"{PREFIX}{name}", netns=f"{PREFIX}{name}",
                port=f"h{short(name)}", mgmt_port=f"{PREFIX}m{short(name)}",
            ))
    routers = [h for h in hosts if h.site == ipam.HUB and h.role == ROUTER_ROLE]
    if len(routers) != 1:
        where = f"{INVENTORIES}/{ipam.HUB}/{HOSTS_FILE}"
        raise lab_error(f"the lab needs exactly one hub host with role {ROUTER_ROLE} (found {len(routers)})", where)
    router = routers[0]

    legs: list[RouterLeg] = []
    for seg in segments:
        addrs = [IPv4Interface(f"{seg.gateway}/{seg.network.prefixlen}")]
        if seg == router.segment:
            addrs.append(router.interface)
        tag = short(seg.label)
        legs.append(RouterLeg(seg, f"r{tag}", f"g{tag}", tuple(addrs)))

    probes: list[ProbePoint] = []
    for seg in segments:
        if any(h.segment == seg and h.role != ROUTER_ROLE for h in hosts):
            continue
        used = {h.address for h in hosts if h.segment == seg} | {seg.gateway}
        candidate = seg.network.broadcast_address - 1
        while candidate in used:
            candidate -= 1
        probes.append(ProbePoint(seg, candidate, f"{PREFIX}probe.{seg.site}.{seg.name}", f"p{short(seg.label)}"))

    controller = IPv4Interface(f"{mgmt.network_address + 1}/{mgmt.prefixlen}")
    return Topology(
        supernet=supernet, mgmt_network=mgmt, mgmt_bridge=config.management.bridge, controller=controller,
        blocks=tuple((site, plan.site(site).block) for site in sites),
        segments=tuple(segments), hosts=tuple(hosts), router=router, legs=tuple(legs), probes=tuple(probes),
        sysctl=dict(config.sysctl), exchanges=exchange_pairs(estate),
    )


Scope = Literal["intra", "hub", "inter", "hub-internal"]


def scope_of(src: LabSegment, dst: LabSegment) -> Scope:
    """The flow-matrix scope a pair of segments falls in."""
    if src.is_hub and dst.is_hub:
        return "hub-internal"
    if src.is_hub or dst.is_hub:
        return "hub"
    return "intra" if src.site == dst.site else "inter"

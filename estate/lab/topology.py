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
- The inter-council flows each pair of councils agreed to (estate.isolation's `exchange_pairs`): read from the
  councils' `exchanges` declarations, not from the loader's `Estate.exchanges`, so the isolation test stays a
  second opinion on the matrix the router enforces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from estate import ipam
from estate.isolation import Exchange, Segment, exchange_pairs, segments
from estate.lab import PREFIX
from estate.lab.sh import lab_error
from estate.loader import HOSTS_FILE, INVENTORIES, Estate, host_addresses, validate
from estate.podman import LAB_CONFIG_DIR, project_root
from estate.yamlsrc import load

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
    return validate(LabConfig, load(project_root(root) / LAB_CONFIG_DIR / CONFIG_FILE))


def short(text: str) -> str:
    """8 hex characters naming a link after what it joins (interface names are at most 15 bytes)."""
    return hashlib.sha1(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class LabSegment(Segment):
    """A segment (estate.isolation) as the lab builds it: a bridge in its site's switch namespace."""

    switch_ns: str
    bridge: str


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


def mirror(address: IPv4Address, supernet: IPv4Network, mgmt: IPv4Network) -> IPv4Address:
    """An estate address's twin on the management network: the same offset from the network's start."""
    return mgmt.network_address + (int(address) - int(supernet.network_address))


def lab_segments(estate: Estate) -> list[LabSegment]:
    """Every segment of the lab (estate.isolation's, in its order: hub first then the councils), each a bridge
    named after its VLAN (a hub segment after its place in the hub's list) in its site's switch namespace."""
    out: list[LabSegment] = []
    index: dict[str, int] = {}
    for seg in segments(estate):
        i = index[seg.site] = index.get(seg.site, -1) + 1
        bridge = f"vlan{seg.vlan_id}" if seg.vlan_id is not None else f"seg{i}"
        out.append(LabSegment(seg.site, seg.name, seg.vlan_id, seg.network, seg.gateway,
                              f"{PREFIX}switch.{seg.site}", bridge))
    return out


def build(estate: Estate, config: LabConfig) -> Topology:
    """The lab's layout for this estate. Raises EstateError when the inventory cannot make a lab."""
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
    lab_segs = lab_segments(estate)
    by_key = {(s.site, s.name): s for s in lab_segs}

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
    for seg in lab_segs:
        addrs = [IPv4Interface(f"{seg.gateway}/{seg.network.prefixlen}")]
        if seg == router.segment:
            addrs.append(router.interface)
        tag = short(seg.label)
        legs.append(RouterLeg(seg, f"r{tag}", f"g{tag}", tuple(addrs)))

    probes: list[ProbePoint] = []
    for seg in lab_segs:
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
        segments=tuple(lab_segs), hosts=tuple(hosts), router=router, legs=tuple(legs), probes=tuple(probes),
        sysctl=dict(config.sysctl), exchanges=exchange_pairs(estate),
    )


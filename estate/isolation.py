"""The isolation matrix's expectations: for every ordered pair of segments and every port the flow matrix names,
the flow that allows the pair, or none (denied).

Computed from framework.yaml's flow matrix, the address plan and the councils' `exchanges` declarations,
independently of the loader's expansion (`Estate.exchanges`) and of the nftables generator, on purpose: it is the
second opinion both planes are judged against. The lab's isolation test (estate.lab.probe) probes these pairs on
the running lab; the cloud plane's reachability check (estate.reach.verify) traces them through the planned
network. Both read it, so it lives here, below both.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Literal

from estate.ipam import HUB
from estate.loader import Estate
from estate.models import Framework

HUB_PREFIX = "hub/"

Scope = Literal["intra", "hub", "inter", "hub-internal"]
Exchange = tuple[str, str, str]  # (flow id, council, partner council)


@dataclass(frozen=True)
class Segment:
    site: str              # council key, or "shared" for the hub
    name: str              # VLAN or hub segment name
    vlan_id: int | None
    network: IPv4Network
    gateway: IPv4Address

    @property
    def label(self) -> str:
        return f"{self.site}/{self.name}"

    @property
    def is_hub(self) -> bool:
        return self.site == HUB


def segments(estate: Estate) -> list[Segment]:
    """Every segment, hub first then the councils in order: a function of the address plan alone."""
    plan = estate.addresses
    return [Segment(site, seg.name, seg.vlan_id, seg.network, seg.gateway)
            for site in [HUB, *sorted(plan.councils)] for seg in plan.site(site).segments]


def exchange_pairs(estate: Estate) -> frozenset[Exchange]:
    """(flow, a, b) for every inter flow two councils both declare with each other in council.yml `exchanges`,
    in both orders: the pairs an inter flow joins. This module's own reading of the declarations."""
    said = {(x.flow, key, x.partner) for key, rec in estate.councils.items() for x in rec.council.exchanges}
    return frozenset((flow, a, b) for flow, a, b in said if a != b and (flow, b, a) in said)


def scope_of(src: Segment, dst: Segment) -> Scope:
    """The flow-matrix scope a pair of segments falls in."""
    if src.is_hub and dst.is_hub:
        return "hub-internal"
    if src.is_hub or dst.is_hub:
        return "hub"
    return "intra" if src.site == dst.site else "inter"


def _port_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def matrix_ports(framework: Framework) -> list[tuple[str, int]]:
    """Every (protocol, port) the flow matrix names; a range by its first and last port."""
    found: set[tuple[str, int]] = set()
    for flow in framework.network.flows:
        for text in flow.ports:
            low, high = _port_range(text)
            found.update({(flow.protocol, low), (flow.protocol, high)})
    return sorted(found)


def end_name(seg: Segment) -> str:
    """A segment as the framework names a flow's or a purpose's end: a council VLAN, or hub/<segment>."""
    return HUB_PREFIX + seg.name if seg.is_hub else seg.name


def allowing_flow(framework: Framework, src: Segment, dst: Segment, protocol: str, port: int,
                  exchanges: frozenset[Exchange]) -> str | None:
    """The id of the flow that lets `src` reach `dst` on protocol/port, or None (the matrix denies it). An inter
    flow allows it only when `exchanges` (exchange_pairs) holds it for the two councils."""
    scope = scope_of(src, dst)
    for flow in framework.network.flows:
        if flow.protocol != protocol or flow.scope != scope:
            continue
        if scope == "inter" and (flow.id, src.site, dst.site) not in exchanges:
            continue
        if not any(low <= port <= high for low, high in map(_port_range, flow.ports)):
            continue
        if flow.source == end_name(src) and flow.destination == end_name(dst):
            return flow.id
    return None

"""Judging a firewall or NSG rule against the framework's flow matrix.

An address (CIDR, address or service tag) maps to the segments of the address plan it covers:
a council VLAN or a hub segment, named (site, segment). A rule that allows traffic from A to B on
some ports is within the matrix when every pair of segments it opens, on every port, is a flow of
the matrix (same-segment traffic never crosses a router and is not judged). Addresses outside the
supernet are outside the estate: the matrix does not speak of them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from estate.ipam import HUB, AddressPlan
from estate.models import Flow

# Addresses that mean "anything": Azure service tags and wildcards.
ANYWHERE = frozenset({"*", "any", "0.0.0.0/0", "internet", "virtualnetwork"})


@dataclass(frozen=True)
class Endpoint:
    site: str  # council key or "shared"
    segment: str  # VLAN name or hub segment name


class Anywhere(Exception):
    """The address covers the whole estate (a wildcard or service tag)."""


def endpoints(plan: AddressPlan, address: str) -> list[Endpoint]:
    """The segments an address covers; [] when it lies outside the supernet; raises Anywhere for
    a wildcard, and ValueError for something that is no address."""
    text = address.strip()
    if text.lower() in ANYWHERE:
        raise Anywhere(address)
    net = ipaddress.IPv4Network(text, strict=False)
    if not net.overlaps(plan.supernet):
        return []
    out: list[Endpoint] = []
    for site in plan.sites_overlapping(net):
        for seg in site.segments:
            if net.overlaps(seg.network):
                out.append(Endpoint(site.key, seg.name))
    return out


def port_ranges(spec: Iterable[str]) -> list[tuple[int, int]]:
    """'443', '5060-5061', '*' -> ranges (a wildcard is 1-65535)."""
    out = []
    for item in spec:
        text = str(item).strip()
        if text in ("*", "any", "Any", ""):
            out.append((1, 65535))
        elif "-" in text:
            low, high = text.split("-", 1)
            out.append((int(low), int(high)))
        else:
            out.append((int(float(text)), int(float(text))))
    return out


def _covered(wanted: tuple[int, int], allowed: Sequence[tuple[int, int]]) -> bool:
    low, high = wanted
    # walk the allowed ranges in order, extending coverage from `low`
    for a_low, a_high in sorted(allowed):
        if a_low <= low <= a_high:
            low = a_high + 1
            if low > high:
                return True
    return low > high


def _ends_match(flow_end: str, end: Endpoint) -> bool:
    if flow_end.startswith("hub/"):
        return end.site == HUB and end.segment == flow_end[4:]
    return end.site != HUB and end.segment == flow_end


def _scope_matches(flow: Flow, src: Endpoint, dst: Endpoint) -> bool:
    if flow.scope == "intra":
        return src.site == dst.site and src.site != HUB
    if flow.scope == "inter":
        return src.site != dst.site and HUB not in (src.site, dst.site)
    return (src.site == HUB) != (dst.site == HUB)


def allowed_by_matrix(flows: Sequence[Flow], src: Endpoint, dst: Endpoint, protocol: str,
                      ports: tuple[int, int]) -> Flow | None:
    """The flow of the matrix that allows this traffic, if any."""
    for flow in flows:
        if flow.protocol != protocol.lower():
            continue
        if not (_ends_match(flow.source, src) and _ends_match(flow.destination, dst)):
            continue
        if not _scope_matches(flow, src, dst):
            continue
        if _covered(ports, port_ranges(flow.ports)):
            return flow
    return None


def protocols(spec: Iterable[str]) -> list[str]:
    """Wire protocols ('Tcp', 'TCP', 'Any', '*', 'Icmp') -> 'tcp' / 'udp' / 'any' / others lowercase."""
    out = []
    for item in spec:
        text = str(item).strip().lower()
        out.append("any" if text in ("*", "any") else text)
    return out


def judge_allow(plan: AddressPlan, flows: Sequence[Flow], sources: Sequence[str], destinations: Sequence[str],
                protos: Sequence[str], ports: Sequence[str]) -> list[str]:
    """Why an allow rule goes beyond the matrix: one line per reason; [] when it stays within it."""
    problems: list[str] = []
    try:
        srcs = [e for a in sources for e in endpoints(plan, a)]
        dsts = [e for a in destinations for e in endpoints(plan, a)]
    except Anywhere as exc:
        return [f"{exc.args[0]!r} opens the whole estate"]
    except ValueError as exc:
        return [f"cannot read an address: {exc}"]
    pairs = [(src, dst) for src in srcs for dst in dsts if src != dst]
    if not pairs:
        return []  # one end lies outside the estate, or the traffic stays within one segment
    wanted_protocols = protocols(protos)
    if "any" in wanted_protocols:
        return ["protocol 'any' is wider than any flow of the matrix"]
    try:
        wanted_ports = port_ranges(ports)
    except ValueError as exc:
        return [f"cannot read a port: {exc}"]
    for src, dst in pairs:
        for proto in wanted_protocols:
            for rng in wanted_ports:
                if allowed_by_matrix(flows, src, dst, proto, rng) is None:
                    shown = str(rng[0]) if rng[0] == rng[1] else f"{rng[0]}-{rng[1]}"
                    problems.append(f"{src.site}/{src.segment} -> {dst.site}/{dst.segment} "
                                    f"{proto}/{shown} is not a flow of the matrix")
    return problems

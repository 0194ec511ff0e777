"""Judging a firewall or NSG rule against the framework's flow matrix.

An address (CIDR, address or service tag) maps to the segments of the address plan it covers:
a council VLAN or a hub segment, named (site, segment). A rule that allows traffic from A to B on
some ports is within the matrix when every pair of segments it opens, on every port, is a path of
the matrix (`Estate.resolved`, estate.resolved) on that protocol and port (same-segment traffic never crosses a
router and is not judged); an `inter` flow has paths only between two councils that both declare it (council.yml
`exchanges`). Addresses outside the supernet are outside the estate: the matrix does not speak of them.

Traffic that leaves the estate is judged against framework.yaml `network.egress` instead
(`judge_egress`): every source segment, destination (the NSG `Internet` tag, an FQDN, an FQDN tag, a
service tag) and protocol/port a rule allows must be offered by one egress purpose whose sources name
that segment.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from estate.ipam import HUB, AddressPlan
from estate.models import EgressPurpose, Flow
from estate.resolved import Resolved
from estate.yamlsrc import shorten

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
    key = "endpoints:" + text
    known = plan.memo.get(key)
    if isinstance(known, tuple):
        return list(known)
    net = ipaddress.IPv4Network(text, strict=False)
    out: list[Endpoint] = []
    if net.overlaps(plan.supernet):
        for site in plan.sites_overlapping(net):
            for seg in site.segments:
                if net.overlaps(seg.network):
                    out.append(Endpoint(site.key, seg.name))
    plan.memo[key] = tuple(out)
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
            value = float(text)  # a port given as 443.0 reads as 443; "inf" and "nan" are no port (ValueError)
            if not math.isfinite(value):
                raise ValueError(f"{shorten(text)} is not a port")
            out.append((int(value), int(value)))
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


def port_covered(wanted: tuple[int, int], allowed: Sequence[tuple[int, int]]) -> bool:
    """Whether the allowed port ranges, together, cover the wanted range."""
    return _covered(wanted, allowed)


def _ends_match(flow_end: str, end: Endpoint) -> bool:
    if flow_end.startswith("hub/"):
        return end.site == HUB and end.segment == flow_end[4:]
    return end.site != HUB and end.segment == flow_end


def allowed_by_matrix(matrix: Resolved, src: Endpoint, dst: Endpoint, protocol: str,
                      ports: tuple[int, int]) -> Flow | None:
    """The flow of the matrix that allows this traffic, if any: the first, in the matrix's order, with a path from
    `src` to `dst` (`Estate.resolved`: an inter flow has paths only between two councils that declare it with each
    other) on this protocol whose ports cover these."""
    for path in matrix.into(dst.site, dst.segment):
        flow = path.flow
        if (path.source.site, path.source.segment) != (src.site, src.segment) or flow.protocol != protocol.lower():
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


def judge_allow(plan: AddressPlan, matrix: Resolved, sources: Sequence[str], destinations: Sequence[str],
                protos: Sequence[str], ports: Sequence[str]) -> list[str]:
    """Why an allow rule goes beyond the matrix: one line per reason; [] when it stays within it. `matrix`: the
    paths of the flow matrix (`Estate.resolved`)."""
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
                if allowed_by_matrix(matrix, src, dst, proto, rng) is None:
                    shown = str(rng[0]) if rng[0] == rng[1] else f"{rng[0]}-{rng[1]}"
                    problems.append(f"{src.site}/{src.segment} -> {dst.site}/{dst.segment} "
                                    f"{proto}/{shown} is not a flow of the matrix")
    return problems


# What an egress rule allows traffic to: ("internet", "Internet") for the NSG service tag (NSGs cannot name
# FQDNs), ("fqdn", name), ("fqdn_tag", tag) (application rules), ("service_tag", tag) (network rules).
Destination = tuple[str, str]
# How: ("tcp" | "udp", ports) for NSG and network rules; ("http" | "https", (port, port)) for application rules.
Service = tuple[str, tuple[int, int]]


def fqdn_covers(pattern: str, name: str) -> bool:
    """Whether an FQDN pattern of a purpose (exact, `*.domain`, or `*`) covers a rule's FQDN (which may be a
    pattern itself: `*` is covered only by `*`, `*.a.b` by `*`, `*.a.b` or `*.b`)."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return name != "*" and name.endswith(pattern[1:])
    return pattern == name


def _offers(purpose: EgressPurpose, dest: Destination, service: Service) -> bool:
    kind, value = dest
    proto, rng = service
    app, net = purpose.application, purpose.network
    if app is not None:
        if kind == "internet":  # an NSG's view: TCP on the purpose's ports
            ok_dest, ok_proto = True, proto == "tcp"
        else:
            ok_dest = ((kind == "fqdn" and any(fqdn_covers(f, value) for f in app.fqdns))
                       or (kind == "fqdn_tag" and value.lower() in {t.lower() for t in app.fqdn_tags}))
            ok_proto = proto in {p.split(":")[0].lower() for p in app.protocols}
        ports = [r for p in app.protocols if p.split(":")[0].lower() == proto or kind == "internet"
                 for r in port_ranges([p.split(":")[1]])]
    elif net is not None:
        ok_dest = (kind == "internet"
                   or (kind == "fqdn" and any(fqdn_covers(f, value) for f in net.fqdns))
                   or (kind == "service_tag" and value.lower() in {t.lower() for t in net.service_tags}))
        ok_proto = proto == net.protocol
        ports = port_ranges(net.ports)
    else:
        return False
    return ok_dest and ok_proto and _covered(rng, ports)


def egress_purpose(purposes: Sequence[EgressPurpose], src: Endpoint, dest: Destination,
                   service: Service) -> EgressPurpose | None:
    """The egress purpose that lets `src` reach `dest` with `service`, if any."""
    for purpose in purposes:
        if any(_ends_match(end, src) for end in purpose.sources) and _offers(purpose, dest, service):
            return purpose
    return None


def judge_egress(plan: AddressPlan, purposes: Sequence[EgressPurpose], sources: Sequence[str],
                 destinations: Sequence[Destination], services: Sequence[Service]) -> list[str]:
    """Why an allow rule to the internet goes beyond the egress purposes: one line per reason; [] when every
    source segment, destination and service it allows is one purpose's."""
    srcs: list[Endpoint] = []
    for address in sources:
        try:
            found = endpoints(plan, address)
        except Anywhere:
            return [f"source {address!r} is wider than the sources of any egress purpose"]
        except ValueError as exc:
            return [f"cannot read an address: {exc}"]
        if not found:
            return [f"source {address!r} is no segment of the estate: no egress purpose names it"]
        srcs += found
    problems: list[str] = []
    for src in dict.fromkeys(srcs):
        for dest in destinations:
            for proto, rng in services:
                if proto == "any":
                    return ["protocol 'any' is wider than any egress purpose"]
                if egress_purpose(purposes, src, dest, (proto, rng)) is None:
                    shown = str(rng[0]) if rng[0] == rng[1] else f"{rng[0]}-{rng[1]}"
                    problems.append(f"{src.site}/{src.segment} -> {dest[1]} {proto}/{shown} is no egress purpose")
    return problems


def purpose_prefixes(plan: AddressPlan, purpose: EgressPurpose) -> list[tuple[str, ipaddress.IPv4Network]]:
    """(label, prefix) of every source of a purpose: hub/<segment> in the hub, a VLAN in every council."""
    out: list[tuple[str, ipaddress.IPv4Network]] = []
    for end in purpose.sources:
        if end.startswith("hub/"):
            out.append((f"{HUB}/{end[4:]}", plan.hub.segment(end[4:]).network))
        else:
            out += [(f"{key}/{end}", site.segment(end).network) for key, site in sorted(plan.councils.items())]
    return out


def purpose_destinations(purpose: EgressPurpose) -> list[Destination]:
    if purpose.application is not None:
        return ([("fqdn", f) for f in purpose.application.fqdns]
                + [("fqdn_tag", t) for t in purpose.application.fqdn_tags])
    if purpose.network is not None:
        return ([("fqdn", f) for f in purpose.network.fqdns]
                + [("service_tag", t) for t in purpose.network.service_tags])
    return []


def purpose_services(purpose: EgressPurpose) -> list[Service]:
    if purpose.application is not None:
        return [(kind.lower(), (int(port), int(port))) for kind, port in
                (p.split(":") for p in purpose.application.protocols)]
    if purpose.network is not None:
        return [(purpose.network.protocol, rng) for rng in port_ranges(purpose.network.ports)]
    return []

"""IP address management: council blocks from the supernet, VLAN subnets inside each block.

Deterministic by construction: a block is the lowest free aligned block of the supernet; a block is
carved largest subnet first (catalogue order breaks ties), so every subnet is aligned and the same
catalogue always gives the same plan.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network

HUB = "shared"


class IpamError(ValueError):
    """An address plan that cannot be made; the message says why."""


class SupernetExhausted(IpamError):
    pass


@dataclass(frozen=True)
class Segment:
    """One routed segment: a council VLAN (vlan_id set) or a hub segment (vlan_id None)."""

    name: str
    network: IPv4Network
    vlan_id: int | None
    purpose: str
    azure_name: str

    @property
    def gateway(self) -> IPv4Address:
        """The router's address on the segment: the first host."""
        return self.network.network_address + 1

    def host(self, index: int) -> IPv4Address:
        if not 2 <= index < self.network.num_addresses - 1:
            raise IpamError(f"host index {index} is outside {self.network}")
        return self.network.network_address + index


@dataclass(frozen=True)
class SitePlan:
    """The addresses of one site: a council, or the hub (key 'shared')."""

    key: str
    block: IPv4Network
    segments: tuple[Segment, ...]

    def segment(self, name: str) -> Segment:
        for seg in self.segments:
            if seg.name == name:
                return seg
        raise KeyError(f"{self.key} has no segment {name!r}")


@dataclass(frozen=True)
class AddressPlan:
    supernet: IPv4Network
    hub: SitePlan
    councils: dict[str, SitePlan]

    def site(self, key: str) -> SitePlan:
        return self.hub if key == HUB else self.councils[key]

    @cached_property
    def _blocks(self) -> dict[int, dict[IPv4Network, tuple[int, SitePlan]]]:
        """Blocks by prefix length -> block -> (position, site): the hub first, then the councils."""
        index: dict[int, dict[IPv4Network, tuple[int, SitePlan]]] = {}
        for position, site in enumerate((self.hub, *self.councils.values())):
            index.setdefault(site.block.prefixlen, {})[site.block] = (position, site)
        return index

    @cached_property
    def memo(self) -> dict[str, object]:
        """Answers derived from the plan by code that judges addresses (each key starts with its own name), kept as
        long as the plan: a prefix named in hundreds of NSG rules is resolved once."""
        return {}

    def sites_overlapping(self, net: IPv4Network) -> list[SitePlan]:
        """The sites whose block overlaps `net`, hub first and then the councils in order. A network inside
        one block is a lookup; only a network wider than a block is compared with every block."""
        found: list[tuple[int, SitePlan]] = []
        for prefix, blocks in self._blocks.items():
            if net.prefixlen >= prefix:
                hit = blocks.get(net.supernet(new_prefix=prefix))
                if hit is not None:
                    found.append(hit)
            else:
                found.extend(hit for block, hit in blocks.items() if block.subnet_of(net))
        return [site for _, site in sorted(found, key=lambda hit: hit[0])]


def carve(block: IPv4Network, wanted: Sequence[tuple[str, int]]) -> dict[str, IPv4Network]:
    """Subnets of the given prefix lengths inside `block`, largest first, aligned, no gaps."""
    order = sorted(range(len(wanted)), key=lambda i: (wanted[i][1], i))
    cursor = int(block.network_address)
    end = int(block.broadcast_address) + 1
    out: dict[str, IPv4Network] = {}
    for i in order:
        name, prefix = wanted[i]
        if prefix < block.prefixlen:
            raise IpamError(f"{name} /{prefix} is larger than the block {block}")
        size = 1 << (32 - prefix)
        if cursor + size > end:
            raise IpamError(f"the segments do not fit in {block}: no room for {name} /{prefix}")
        out[name] = IPv4Network((cursor, prefix))
        cursor += size
    return {name: out[name] for name, _ in wanted}


def next_free_block(supernet: IPv4Network, prefix: int, taken: Iterable[IPv4Network]) -> IPv4Network:
    """The lowest block of length `prefix` in the supernet that overlaps nothing taken."""
    used = sorted(taken, key=lambda n: (int(n.network_address), n.prefixlen))
    size = 1 << (32 - prefix)
    candidate = int(supernet.network_address)
    end = int(supernet.broadcast_address) + 1
    for net in used:
        start, stop = int(net.network_address), int(net.broadcast_address) + 1
        if stop <= candidate:
            continue
        if start >= candidate + size:
            break
        # overlap: jump past `net`, to the next aligned start
        candidate = ((max(stop, candidate) + size - 1) // size) * size
    if candidate + size > end:
        raise SupernetExhausted(f"supernet {supernet} is exhausted: no free /{prefix} block left")
    return IPv4Network((candidate, prefix))


def check_block(supernet: IPv4Network, prefix: int, block: IPv4Network) -> None:
    if not block.subnet_of(supernet):
        raise IpamError(f"{block} lies outside the supernet {supernet}")
    if block.prefixlen != prefix:
        raise IpamError(f"{block} is a /{block.prefixlen}; council blocks are /{prefix}")


def site_plan(key: str, block: IPv4Network, items: Sequence[tuple[str, int, int | None, str, str]]) -> SitePlan:
    """items: (name, prefix, vlan_id, purpose, azure_name)."""
    nets = carve(block, [(name, prefix) for name, prefix, *_ in items])
    return SitePlan(
        key=key,
        block=block,
        segments=tuple(
            Segment(name=name, network=nets[name], vlan_id=vid, purpose=purpose, azure_name=azure)
            for name, _, vid, purpose, azure in items
        ),
    )


def overlaps(blocks: dict[str, IPv4Network]) -> list[tuple[str, str]]:
    """Pairs of keys whose blocks overlap (sorted sweep, O(n log n))."""
    items = sorted(blocks.items(), key=lambda kv: (int(kv[1].network_address), -int(kv[1].broadcast_address)))
    found: list[tuple[str, str]] = []
    reach_key: str | None = None
    reach = -1
    for key, net in items:
        if int(net.network_address) <= reach and reach_key is not None:
            found.append((reach_key, key))
        if int(net.broadcast_address) > reach:
            reach, reach_key = int(net.broadcast_address), key
    return found


def parse_network(text: str) -> IPv4Network:
    return ipaddress.IPv4Network(text, strict=True)

"""Addresses as the verifier compares them: IPv4 addresses as integers, prefixes as closed intervals, sets of
prefixes and Azure service tags, and a classifier that splits the address space into pieces no rule tells apart.

An address is an int. `INTERNET` (-1) stands for an unnamed address on the internet (an FQDN's address, or "the
internet" as a probe's end): a set holds it only if it holds every internet address (`*`, `Internet`, 0.0.0.0/0).
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

INTERNET = -1
ALL = (0, (1 << 32) - 1)  # 0.0.0.0/0 as an interval
ANY = "*"
# Azure's service tags the verifier resolves (learn.microsoft.com/azure/virtual-network/service-tags-overview).
TAG_INTERNET = "internet"
TAG_VNET = "virtualnetwork"
TAG_LOAD_BALANCER = "azureloadbalancer"

Interval = tuple[int, int]


@lru_cache(maxsize=65536)
def is_global(addr: int) -> bool:
    """An address on the public internet (not private, shared, reserved or documentation space)."""
    return addr == INTERNET or ipaddress.IPv4Address(addr).is_global


@lru_cache(maxsize=65536)
def parse_network(text: str) -> tuple[int, int, int] | None:
    """'10.1.0.0/16' or '10.1.2.3' -> (first, last, prefix length); None if it is no IPv4 prefix."""
    try:
        net = ipaddress.IPv4Network(text.strip(), strict=False)
    except ValueError:
        return None
    return int(net.network_address), int(net.broadcast_address), net.prefixlen


def parse_address(text: str) -> int | None:
    try:
        return int(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        return None


def show(addr: int) -> str:
    return "the internet" if addr == INTERNET else str(ipaddress.IPv4Address(addr))


def show_interval(first: int, last: int) -> str:
    size = last - first + 1
    length = 32 - (size.bit_length() - 1)
    return f"{ipaddress.IPv4Address(first)}/{length}"


@dataclass(frozen=True)
class AddressSet:
    """Prefixes plus the flags of the service tags in a rule's address field."""

    intervals: tuple[Interval, ...] = ()
    any: bool = False        # `*`
    internet: bool = False   # the Internet tag: every public address
    tags: frozenset[str] = field(default_factory=frozenset)  # other service tags: opaque (only the same tag matches)

    def contains(self, addr: int) -> bool:
        if self.any:
            return True
        if addr == INTERNET:
            return self.internet or ALL in self.intervals
        if self.internet and is_global(addr):
            return True
        if len(self.intervals) <= 8:
            return any(lo <= addr <= hi for lo, hi in self.intervals)
        return holds(self.spans, addr)  # a rule naming every council's segment: a search, not a scan

    @cached_property
    def spans(self) -> tuple[Interval, ...]:
        """The intervals sorted and merged."""
        return merged(self.intervals)

    def union(self, other: AddressSet) -> AddressSet:
        return AddressSet(tuple(dict.fromkeys((*self.intervals, *other.intervals))), self.any or other.any,
                          self.internet or other.internet, self.tags | other.tags)


EMPTY = AddressSet()
EVERYTHING = AddressSet(any=True)


def address_set(texts: Iterable[str], vnet: AddressSet | None = None) -> AddressSet:
    """A rule's address field (prefixes, `*`, service tags) as a set; `VirtualNetwork` is `vnet` (the tag's meaning
    depends on where the rule is evaluated). A tag the verifier does not resolve matches only itself."""
    out = EMPTY
    intervals: list[Interval] = []
    tags: set[str] = set()
    for raw in texts:
        text = str(raw).strip()
        low = text.lower()
        if low in (ANY, "any"):
            out = out.union(EVERYTHING)
            continue
        if low == TAG_INTERNET:
            out = out.union(AddressSet(internet=True))
            continue
        if low == TAG_VNET:
            out = out.union(vnet or EMPTY)
            continue
        parsed = parse_network(text)
        if parsed is not None:
            intervals.append((parsed[0], parsed[1]))
        elif text:
            tags.add(low)
    return out.union(AddressSet(tuple(intervals), tags=frozenset(tags)))


class Classifier:
    """Splits the address space into classes no given set tells apart: two addresses with the same key are held by
    exactly the same sets, so anything decided from those sets is decided once per key (Batfish's equivalence
    classes of packets, on one dimension). Pieces with the same membership share a key (the servers segments of
    forty councils named by one rule are one class)."""

    def __init__(self, sets: Sequence[AddressSet]) -> None:
        self.sets = tuple(sets)
        events: dict[int, list[tuple[int, int]]] = {}
        for i, s in enumerate(sets):
            for lo, hi in s.intervals:
                events.setdefault(lo, []).append((i, 1))
                events.setdefault(hi + 1, []).append((i, -1))
        self.bounds = sorted(events)
        # one sweep over the bounds: piece k + 1 starts at bounds[k]; its members are the sets open there
        active: dict[int, int] = {}
        ids: dict[tuple[int, ...], int] = {(): 0}
        self.piece_class = [0]
        for b in self.bounds:
            for i, delta in events[b]:
                active[i] = active.get(i, 0) + delta
                if not active[i]:
                    del active[i]
            self.piece_class.append(ids.setdefault(tuple(sorted(active)), len(ids)))
        self.by_global = any(s.internet for s in sets)

    def key(self, addr: int) -> int:
        if addr == INTERNET:
            return -1
        k = self.piece_class[bisect_right(self.bounds, addr)] * 2
        if self.by_global and is_global(addr):
            k += 1
        return k


def merged(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Intervals sorted and merged where they overlap or touch."""
    out: list[list[int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def holds(intervals: tuple[Interval, ...], addr: int) -> bool:
    """Whether merged (sorted, disjoint) intervals hold an address."""
    i = bisect_right(intervals, (addr, ALL[1] + 1)) - 1
    return i >= 0 and intervals[i][0] <= addr <= intervals[i][1]


class Population:
    """Addresses in named groups (the segments of one VLAN in every council), and how many of each group a set's
    intervals hold: counted once per set, then read per group at no cost (network.Network.uniform_verdicts); and
    which of a group's addresses a set tells apart from the rest (`named`), listed only when they are few."""

    SMALL = 16  # an interval holding at most this many addresses is counted address by address

    def __init__(self, groups: Mapping[str, Sequence[int]]) -> None:
        items = sorted((addr, g) for g, addrs in groups.items() for addr in addrs)
        self.addrs = [a for a, _ in items]
        self.group_at = [g for _, g in items]
        self.prefix: dict[str, list[int]] = {}
        for g in groups:
            acc, n = [0], 0
            for h in self.group_at:
                n += h == g
                acc.append(n)
            self.prefix[g] = acc
        self.members: dict[str, list[int]] = {g: sorted(addrs) for g, addrs in groups.items()}
        self._memo: dict[int, tuple[AddressSet, dict[str, int], tuple[Interval, ...]]] = {}

    def held(self, s: AddressSet) -> tuple[dict[str, int], tuple[Interval, ...]]:
        """Per group, how many of its addresses the set's intervals hold; and those intervals merged."""
        hit = self._memo.get(id(s))
        if hit is None or hit[0] is not s:
            spans = merged(s.intervals)
            counts: dict[str, int] = {}
            for lo, hi in spans:
                i, j = bisect_left(self.addrs, lo), bisect_right(self.addrs, hi)
                if j - i <= self.SMALL:
                    for k in range(i, j):
                        counts[self.group_at[k]] = counts.get(self.group_at[k], 0) + 1
                else:
                    for g, pre in self.prefix.items():
                        if pre[j] - pre[i]:
                            counts[g] = counts.get(g, 0) + pre[j] - pre[i]
            hit = self._memo[id(s)] = (s, counts, spans)
        return hit[1], hit[2]

    def size(self, group: str) -> int:
        return len(self.members[group])

    def holding(self, s: AddressSet, group: str) -> list[int]:
        """The addresses of `group` the set holds (a private address: by its intervals, or `*`)."""
        if s.any:
            return list(self.members[group])
        counts, spans = self.held(s)
        if not counts.get(group):
            return []
        addrs = self.members[group]
        out: list[int] = []
        for lo, hi in spans:
            out.extend(addrs[bisect_left(addrs, lo):bisect_right(addrs, hi)])
        return out

    def named(self, classifier: Classifier, group: str, own: Sequence[int], limit: int) -> set[int] | None:
        """The addresses of `group` outside `own` that the classifier tells apart from the rest: for every set that
        holds some of them and not all, the fewer side (the held ones, or the ones it leaves out). The others are
        on the larger side of every set, so one classifier key holds them all. None when more than `limit`."""
        size = self.size(group) - len(own)
        mine = set(own)
        out: set[int] = set()
        for s in classifier.sets:
            counts, spans = self.held(s)
            n = counts.get(group, 0)
            if not n:
                continue
            n -= sum(holds(spans, a) for a in own)
            if not 0 < n < size:
                continue
            held = {a for a in self.holding(s, group) if a not in mine}
            if 2 * n <= size:
                out |= held
            elif size - n > limit:
                return None
            else:
                out.update(a for a in self.members[group] if a not in held and a not in mine)
            if len(out) > limit:
                return None
        return out

    def splits(self, classifier: Classifier, group: str, own: Sequence[int]) -> bool:
        """Whether the classifier tells apart two addresses of `group` outside `own` (the members at the other
        end's site): some set holds some of them and not all. Classifier keys read intervals only (and whether an
        address is global, which the caller keeps constant)."""
        size = self.prefix[group][-1] - len(own)
        for s in classifier.sets:
            counts, spans = self.held(s)
            n = counts.get(group, 0)
            if n and 0 < n - sum(holds(spans, a) for a in own) < size:
                return True
        return False


@dataclass(frozen=True)
class Ports:
    """A rule's destination ports: None is any port."""

    ranges: tuple[Interval, ...] | None

    def __contains__(self, port: int) -> bool:
        return self.ranges is None or any(lo <= port <= hi for lo, hi in self.ranges)


ANY_PORT = Ports(None)


def ports(texts: Iterable[object]) -> Ports:
    ranges: list[Interval] = []
    for raw in texts:
        text = str(raw).strip()
        if text in (ANY, "", "0-65535", "1-65535"):
            return Ports(None)
        if text.endswith(".0"):  # wire format: numbers as floats
            text = text[:-2]
        low, _, high = text.partition("-")
        try:
            ranges.append((int(low), int(high or low)))
        except ValueError:
            continue
    return Ports(tuple(ranges))

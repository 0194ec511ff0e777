"""The flow matrix compiled once: every path a flow opens, from one concrete network to another.

framework.yaml writes a flow between ends (`mgmt` -> `servers`, `hub/identity` -> `users`) with a scope; which
networks those ends are depends on the councils and on which councils agreed an inter flow with each other
(`Estate.exchanges`). `resolve()` expands that once, and the NSGs (stacks/flows.py), the router's nftables
(estate/nftables.py), the host firewalls (estate/configure.py) and the compliance rules read the paths from here.
The lab probe (estate/lab/probe.py) keeps its own expansion on purpose: it is the independent check of this one.

Expansion, per scope (councils in sorted order):
- `intra`: each council's source VLAN to the same council's destination VLAN;
- `inter`: each council's source VLAN to the destination VLAN of each partner it agreed the flow with;
- `hub`: a hub segment to every council's VLAN, or every council's VLAN to a hub segment;
- `hub-internal`: one hub segment to another.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Protocol

from estate.ipam import HUB, AddressPlan
from estate.models import Flow

HUB_PREFIX = "hub/"


class Partners(Protocol):
    def partners(self, flow: str, council: str) -> list[str]: ...


@dataclass(frozen=True)
class End:
    """One end of a path: a site (a council key, or "shared" for the hub), a segment of it, and its network."""

    site: str
    segment: str
    network: IPv4Network


@dataclass(frozen=True)
class Path:
    flow: Flow
    source: End
    destination: End


@dataclass(frozen=True)
class Resolved:
    """Every path of the flow matrix, in the matrix's order (then source council, then destination council)."""

    paths: tuple[Path, ...]
    _into: dict[tuple[str, str], list[Path]] = field(default_factory=dict, init=False, compare=False, repr=False)
    _out: dict[tuple[str, str], list[Path]] = field(default_factory=dict, init=False, compare=False, repr=False)
    _flow: dict[str, list[Path]] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for p in self.paths:
            self._into.setdefault((p.destination.site, p.destination.segment), []).append(p)
            self._out.setdefault((p.source.site, p.source.segment), []).append(p)
            self._flow.setdefault(p.flow.id, []).append(p)

    def of_flow(self, flow_id: str) -> list[Path]:
        return list(self._flow.get(flow_id, ()))

    def into(self, site: str, segment: str) -> list[Path]:
        """The paths that end at a segment of a site, in the matrix's order."""
        return list(self._into.get((site, segment), ()))

    def out_of(self, site: str, segment: str) -> list[Path]:
        """The paths that start at a segment of a site, in the matrix's order."""
        return list(self._out.get((site, segment), ()))


def _end(plan: AddressPlan, site: str, name: str) -> End:
    segment = name.removeprefix(HUB_PREFIX)
    where = HUB if name.startswith(HUB_PREFIX) else site
    return End(where, segment, plan.site(where).segment(segment).network)


def expand(flow: Flow, plan: AddressPlan, exchanges: Partners) -> list[Path]:
    """The paths one flow opens."""
    councils: Sequence[str] = sorted(plan.councils)
    if flow.scope == "hub-internal":
        return [Path(flow, _end(plan, HUB, flow.source), _end(plan, HUB, flow.destination))]
    if flow.scope == "inter":
        return [Path(flow, _end(plan, c, flow.source), _end(plan, p, flow.destination))
                for c in councils for p in exchanges.partners(flow.id, c) if p in plan.councils]
    # intra, and hub (one end a hub segment: _end puts it on the hub whichever council is named)
    return [Path(flow, _end(plan, c, flow.source), _end(plan, c, flow.destination)) for c in councils]


def resolve(flows: Iterable[Flow], plan: AddressPlan, exchanges: Partners) -> Resolved:
    return Resolved(tuple(p for flow in flows for p in expand(flow, plan, exchanges)))


def networks(paths: Iterable[Path], end: str) -> tuple[str, ...]:
    """The networks of one end (`source` or `destination`) of some paths, in order, each once."""
    return tuple(dict.fromkeys(str(getattr(p, end).network) for p in paths))


def by_flow(paths: Iterable[Path]) -> Mapping[str, list[Path]]:
    """Paths grouped by flow id, in the order the flows first appear."""
    out: dict[str, list[Path]] = {}
    for p in paths:
        out.setdefault(p.flow.id, []).append(p)
    return out

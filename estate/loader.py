"""Loading framework.yaml and inventories/ into validated models, errors with file and line.

`load_estate(root)` is the one entry point: it parses every file, validates each against its
model, then checks what spans files (address blocks, hosts, exemption references).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from estate import ipam
from estate.errors import EstateError, Problem, format_path
from estate.models import COUNCIL_KEY_RULE, Council, Departure, FieldError, Framework, Hosts, is_council_key
from estate.resolved import Resolved, resolve
from estate.yamlsrc import (
    LIMIT_COUNCIL,
    LIMIT_FRAMEWORK,
    LIMIT_HOSTS,
    LIMIT_YAML,
    Loc,
    Sourced,
    display,
    load,
    shorten,
    stat_regular,
)

M = TypeVar("M", bound=BaseModel)

FRAMEWORK_FILE = "framework.yaml"
INVENTORIES = "inventories"
COUNCIL_FILE = "council.yml"
HOSTS_FILE = "hosts.yml"
DEPARTED = "departed"  # departed/<folder>/: a council that left, as `estate offboard` moved it (DEPARTURE_FILE)
DEPARTURE_FILE = "departure.yml"

def _message(err: dict[str, object]) -> str:
    msg = str(err.get("msg", "invalid"))
    if err.get("type") == "extra_forbidden":
        return "unknown field"
    if err.get("type") in ("model_type", "dict_type"):
        return f"expected a mapping of fields, got {type(err.get('input')).__name__}"
    return msg.removeprefix("Value error, ")


def _field_names(model: type[BaseModel]) -> set[str]:
    return {name for key, info in model.model_fields.items() for name in (key, info.alias) if name}


def _root_problem(model: type[BaseModel], src: Sourced) -> Problem | None:
    """One line for a document that is not this kind of file at all: a top-level mapping holding none of the
    model's fields (`1: 2`, another file's content) would otherwise be one line per missing field."""
    data = src.data
    if not isinstance(data, dict) or not data or not model.model_fields:
        return None
    if any(isinstance(key, str) and key in _field_names(model) for key in data):
        return None
    for key in data:
        if not isinstance(key, str):
            return _key_problem(src, (key,), key)
    required = [name for name, info in model.model_fields.items() if info.is_required()]
    expected = ", ".join(required[:6]) + (", ..." if len(required) > 6 else "")
    keys = f"{len(data)} key" + ("" if len(data) == 1 else "s")
    return Problem(src.file, src.line(()), "", f"no field of this file at the top level ({keys}, none a field "
                                               f"name): expected {expected or 'its fields'}")


def _key_problem(src: Sourced, loc: Loc, key: object) -> Problem:
    return Problem(src.file, src.line(loc), format_path(loc), f"the key {shorten(key)} is not text: a field name is")


def validate(model: type[M], src: Sourced) -> M:
    """`src` as a `model`, or its problems: one line per problem, but one line in all when the document is not this
    kind of file (see `_root_problem`) or a mapping key is not text (the first such key: the rest of that mapping's
    problems would only be its missing fields again)."""
    root = _root_problem(model, src)
    if root is not None:
        raise EstateError([root])
    try:
        return model.model_validate(src.data)
    except ValidationError as exc:
        problems = []
        keys = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, FieldError):
                loc = (*loc, *cause.loc)
            if err.get("type") == "invalid_key":
                keys.append(_key_problem(src, loc, err.get("input")))
            problems.append(Problem(src.file, src.line(loc), format_path(loc), _message(dict(err))))
        raise EstateError(sorted(keys)[:1] or problems) from None


def find_root(start: Path | None = None) -> Path:
    """The repo root: $ESTATE_ROOT, else the nearest folder upward holding framework.yaml.

    The nearest framework.yaml found is the one meant: if it is not a regular file (a folder, a FIFO, a device,
    a link to nothing, a loop of links) that is one line naming it, never a search on past it (nor a wait on a
    FIFO: it is only stat'ed here)."""
    env = os.environ.get("ESTATE_ROOT")
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / FRAMEWORK_FILE
        if os.path.lexists(candidate):
            stat_regular(candidate)
            return folder
    raise EstateError.one(display(here), 0, "", f"no {FRAMEWORK_FILE} here or above (set ESTATE_ROOT)")


@dataclass
class CouncilRecord:
    key: str
    council: Council
    source: Sourced
    hosts: Hosts | None = None
    hosts_source: Sourced | None = None

    @property
    def folder(self) -> Path:
        return Path(self.source.file).parent


@dataclass(frozen=True)
class DepartureRecord:
    """A departed council (departed/<folder>/departure.yml): its block is reserved up to and including `leaves`."""

    departure: Departure
    source: Sourced

    @property
    def folder(self) -> Path:
        return Path(self.source.file).parent

    def in_force(self, today: dt.date) -> bool:
        return today <= self.departure.leaves


@dataclass
class Estate:
    root: Path
    framework: Framework
    framework_source: Sourced
    councils: dict[str, CouncilRecord] = field(default_factory=dict)
    hub_hosts: Hosts | None = None
    hub_hosts_source: Sourced | None = None
    departures: list[DepartureRecord] = field(default_factory=list)  # departed/*/, by folder name

    def reservations(self, today: dt.date) -> list[DepartureRecord]:
        """The departed councils whose blocks are still reserved on `today`."""
        return [d for d in self.departures if d.in_force(today)]

    def council(self, key: str) -> CouncilRecord:
        if key not in self.councils:
            known = ", ".join(sorted(self.councils)) or "none"
            raise EstateError.one(display(self.root / INVENTORIES), 0, "council",
                                  f"unknown council {key!r} (known: {known})")
        return self.councils[key]

    @cached_property
    def addresses(self) -> ipam.AddressPlan:
        return address_plan(self.framework, {k: ipam.parse_network(r.council.block)
                                             for k, r in self.councils.items()})

    @cached_property
    def resolved(self) -> Resolved:
        """The flow matrix compiled once: every path from one network to another (estate.resolved)."""
        return resolve(self.framework.network.flows, self.addresses, self.exchanges)

    @cached_property
    def exchanges(self) -> Exchanges:
        """The inter-council flows open per pair of councils: those both councils' inventories declare."""
        return Exchanges.of({key: [(x.flow, x.partner) for x in rec.council.exchanges]
                             for key, rec in self.councils.items()})


@dataclass(frozen=True)
class Exchanges:
    """Which pairs of councils an `inter` flow joins: a pair is open only when both councils declare the flow with
    each other (council.yml `exchanges`), and then in both directions (each council's source VLAN to the other's
    destination VLAN). No pair is open by default: the matrix never means "every council to every other"."""

    pairs: frozenset[tuple[str, str, str]]  # (flow id, council, partner), both orders of every open pair
    _index: dict[tuple[str, str], list[str]] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for flow, a, b in sorted(self.pairs):
            self._index.setdefault((flow, a), []).append(b)

    @classmethod
    def of(cls, declared: dict[str, list[tuple[str, str]]]) -> Exchanges:
        said = {(flow, key, partner) for key, items in declared.items() for flow, partner in items}
        return cls(frozenset(p for p in said if p[1] != p[2] and (p[0], p[2], p[1]) in said))

    def open(self, flow: str, a: str, b: str) -> bool:
        """Whether `flow` joins councils a and b (either way round)."""
        return (flow, a, b) in self.pairs

    def partners(self, flow: str, council: str) -> list[str]:
        """The councils `flow` joins `council` with, sorted."""
        return list(self._index.get((flow, council), ()))


def address_plan(framework: Framework, blocks: dict[str, IPv4Network]) -> ipam.AddressPlan:
    net = framework.network
    hub = ipam.site_plan(
        ipam.HUB, ipam.parse_network(net.hub.block),
        [(s.name, s.prefix, None, s.purpose, s.azure_name) for s in net.hub.segments],
    )
    vlans = [(v.name, v.prefix, v.id, v.purpose, f"snet-{v.name}") for v in net.vlans]
    councils = {key: ipam.site_plan(key, block, vlans) for key, block in sorted(blocks.items())}
    return ipam.AddressPlan(ipam.parse_network(net.supernet), hub, councils)


def load_framework(path: Path) -> tuple[Framework, Sourced]:
    src = load(path, LIMIT_FRAMEWORK)
    framework = validate(Framework, src)
    net = framework.network
    supernet = ipam.parse_network(net.supernet)
    try:
        ipam.carve(ipam.parse_network(net.hub.block), [(s.name, s.prefix) for s in net.hub.segments])
    except ipam.IpamError as exc:
        raise src.error(("network", "hub", "segments"), str(exc)) from None
    try:
        ipam.carve(IPv4Network((0, net.council_prefix)), [(v.name, v.prefix) for v in net.vlans])
    except ipam.IpamError as exc:
        raise src.error(("network", "vlans"), f"the VLAN catalogue does not fit a council block: {exc}") from None
    if ipam.parse_network(net.hub.block).prefixlen < supernet.prefixlen:
        raise src.error(("network", "hub", "block"), "the hub block is larger than the supernet")
    return framework, src


def _load_council(folder: Path) -> CouncilRecord:
    src = load(folder / COUNCIL_FILE, LIMIT_COUNCIL)
    record = CouncilRecord(folder.name, validate(Council, src), src)
    hosts_path = folder / HOSTS_FILE
    if os.path.lexists(hosts_path):  # a link to nothing is reported by load, not skipped
        record.hosts_source = load(hosts_path, LIMIT_HOSTS)
        record.hosts = validate(Hosts, record.hosts_source)
    return record


def inventory_folders(root: Path) -> list[Path]:
    """The folders under inventories/ (the hub's `shared` and one per council), each named by a valid key.

    Refused, one line each: no inventories/ (or a link to nothing, or a file): a check that judged no council
    would pass; an entry whose name is not a council key (a space, `$`, a capital, a leading dot: such a folder
    would become a stack, a VLAN interface and an RT queue name); a link to nothing; a link to a folder another
    entry already is (a council twice under two keys). Files beside the folders (the inventory plugin's
    estate.yml) are not councils and are left alone."""
    inv = root / INVENTORIES
    shown = display(inv)
    if not inv.is_dir():
        what = ("a link to nothing" if inv.is_symlink() and not inv.exists()
                else "not a folder" if os.path.lexists(inv) else "missing")
        raise EstateError.one(shown, 0, "", f"the councils' folder is {what}: there is nothing to judge "
                                            f"(it holds one folder per council and `{ipam.HUB}` for the hub)")
    problems: list[Problem] = []
    folders: list[Path] = []
    real: dict[Path, Path] = {}
    for entry in sorted(inv.iterdir()):
        name = display(entry)
        if entry.is_symlink() and not entry.exists():
            problems.append(Problem(name, 0, "", "a link to nothing (or a loop of links)"))
            continue
        if not entry.is_dir():
            continue
        if not is_council_key(entry.name):
            problems.append(Problem(name, 0, "", f"{entry.name!r} is not a council key ({COUNCIL_KEY_RULE}): "
                                                 "rename the folder or move it out of inventories/"))
            continue
        target = entry.resolve()
        if target in real:
            first = real[target]
            link, other = (entry, first) if entry.is_symlink() or not first.is_symlink() else (first, entry)
            problems.append(Problem(display(link), 0, "", f"a link to {display(other)}: "
                                                          "one council's folder under two keys"))
            continue
        real[target] = entry
        folders.append(entry)
    if problems:
        raise EstateError(problems)
    return folders


def load_estate(root: Path | None = None) -> Estate:
    root = find_root() if root is None else root.resolve()
    framework, fsrc = load_framework(root / FRAMEWORK_FILE)
    estate = Estate(root, framework, fsrc)
    problems: list[Problem] = []
    for folder in inventory_folders(root):
        if folder.name == ipam.HUB:
            hub_hosts = folder / HOSTS_FILE
            if os.path.lexists(hub_hosts):
                estate.hub_hosts_source = load(hub_hosts, LIMIT_HOSTS)
                estate.hub_hosts = validate(Hosts, estate.hub_hosts_source)
            continue
        if not os.path.lexists(folder / COUNCIL_FILE):
            problems.append(Problem(display(folder), 0, "", f"no {COUNCIL_FILE} in this council folder"))
            continue
        try:
            estate.councils[folder.name] = _load_council(folder)
        except EstateError as exc:
            problems.extend(exc.problems)
    if problems:
        raise EstateError(problems)
    estate.departures = load_departures(root)
    check_estate(estate)
    return estate


def load_departures(root: Path) -> list[DepartureRecord]:
    """departed/*/departure.yml: the councils `estate offboard` moved out of inventories/ (none: no departed/)."""
    folder = root / DEPARTED
    if not folder.is_dir():
        return []
    out: list[DepartureRecord] = []
    problems: list[Problem] = []
    for entry in sorted(folder.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        try:
            src = load(entry / DEPARTURE_FILE, LIMIT_YAML)
            out.append(DepartureRecord(validate(Departure, src), src))
        except EstateError as exc:
            problems.extend(exc.problems)
    if problems:
        raise EstateError(problems)
    return out


def check_reservations(estate: Estate, today: dt.date) -> None:
    """No council holds a block a departed council still reserves on `today` (its own key excepted: a council
    that is leaving holds its block until its departure's files are in place), and no two reservations in force
    overlap."""
    problems: list[Problem] = []
    held = estate.reservations(today)
    for key, rec in estate.councils.items():
        block = ipam.parse_network(rec.council.block)
        for d in held:
            reserved = ipam.parse_network(d.departure.block)
            if d.departure.council != key and block.overlaps(reserved):
                problems.append(Problem(rec.source.file, rec.source.line(("block",)), "block",
                                        f"{block} overlaps {reserved}, reserved for {d.departure.council} until "
                                        f"{d.departure.leaves} ({d.source.file})"))
                break
    for i, a in enumerate(held):
        for b in held[i + 1:]:
            if ipam.parse_network(a.departure.block).overlaps(ipam.parse_network(b.departure.block)):
                problems.append(Problem(b.source.file, b.source.line(("block",)), "block",
                                        f"{b.departure.block} overlaps {a.departure.block}, also reserved until "
                                        f"{a.departure.leaves} ({a.source.file})"))
    if problems:
        raise EstateError(problems)


def check_estate(estate: Estate, today: dt.date | None = None) -> None:
    """What spans files: blocks (and the blocks departed councils still reserve on `today`, default the real
    date), hosts and exemptions' contracts."""
    problems: list[Problem] = []
    fw = estate.framework
    supernet = ipam.parse_network(fw.network.supernet)
    blocks: dict[str, IPv4Network] = {ipam.HUB: ipam.parse_network(fw.network.hub.block)}
    for key, rec in estate.councils.items():
        block = ipam.parse_network(rec.council.block)
        try:
            ipam.check_block(supernet, fw.network.council_prefix, block)
        except ipam.IpamError as exc:
            problems.append(Problem(rec.source.file, rec.source.line(("block",)), "block", str(exc)))
        blocks[key] = block
    for a, b in ipam.overlaps(blocks):
        for key, other in ((b, a), (a, b)):
            if key != ipam.HUB:
                src = estate.councils[key].source
                what = "the hub block" if other == ipam.HUB else f"{other}'s block"
                problems.append(Problem(src.file, src.line(("block",)), "block",
                                        f"{blocks[key]} overlaps {what} {blocks[other]}"))
                break
    codes: dict[str, str] = {}
    for key, rec in estate.councils.items():
        code = rec.council.code
        if code in codes:
            problems.append(Problem(rec.source.file, rec.source.line(("code",)), "code",
                                    f"code {code} is already {codes[code]}'s"))
        codes.setdefault(code, key)
        contracts: set[str] = set()
        for i, contract in enumerate(rec.council.contracts):
            if contract.id in contracts:
                problems.append(Problem(rec.source.file, rec.source.line(("contracts", i, "id")),
                                        f"contracts[{i}].id", f"duplicate contract id {contract.id}"))
            contracts.add(contract.id)
        # an exemption's rule id is checked by the compliance engine (estate.compliance.engine.check_exemptions),
        # which knows the rules: the loader sits below it
        for i, ex in enumerate(rec.council.exemptions):
            if ex.contract not in contracts:
                problems.append(Problem(rec.source.file, rec.source.line(("exemptions", i, "contract")),
                                        f"exemptions[{i}].contract", f"unknown contract {ex.contract!r}"))
    if problems:
        raise EstateError(problems)
    check_reservations(estate, today or dt.date.today())
    _check_exchanges(estate)
    _check_hosts(estate)


def _check_exchanges(estate: Estate) -> None:
    """Each council's `exchanges`: an inter flow of the matrix, with another known council that declares the same
    flow back (mutual consent), each (flow, partner) once. Checked once every council's own file and block are
    sound, so a broken partner file is reported as itself, not as a missing declaration."""
    problems: list[Problem] = []
    flows = {f.id: f for f in estate.framework.network.flows}
    declared = {key: {(x.flow, x.partner) for x in rec.council.exchanges} for key, rec in estate.councils.items()}
    for key, rec in estate.councils.items():
        seen: set[tuple[str, str]] = set()
        for i, x in enumerate(rec.council.exchanges):
            part, message = "with", ""
            flow = flows.get(x.flow)
            if flow is None:
                part, message = "flow", f"unknown flow {x.flow!r}"
            elif flow.scope != "inter":
                part, message = "flow", (f"{x.flow} has scope {flow.scope!r}: only an 'inter' flow is agreed per pair "
                                         f"of councils")
            elif x.partner == key:
                message = "a council does not exchange with itself: name another council"
            elif x.partner not in estate.councils:
                known = ", ".join(sorted(k for k in estate.councils if k != key)) or "none"
                message = f"unknown council {x.partner!r} (known: {known})"
            elif (x.flow, x.partner) in seen:
                message = f"{x.flow} with {x.partner} is already declared"
            elif (x.flow, key) not in declared[x.partner]:
                message = (f"{x.partner} does not declare {x.flow} with {key}: an inter-council flow opens only when "
                           f"both councils declare it")
            seen.add((x.flow, x.partner))
            if message:
                problems.append(Problem(rec.source.file, rec.source.line(("exchanges", i, part)),
                                        f"exchanges[{i}].{part}", message))
    if problems:
        raise EstateError(problems)


def _hosts_files(estate: Estate) -> list[tuple[ipam.SitePlan, Hosts, Sourced]]:
    """Every site that has a hosts.yml (the hub first), with its address plan and the file's source."""
    sites: list[tuple[str, Hosts | None, Sourced | None]] = [(ipam.HUB, estate.hub_hosts, estate.hub_hosts_source)]
    sites += [(k, r.hosts, r.hosts_source) for k, r in estate.councils.items()]
    return [(estate.addresses.site(key), hosts, src) for key, hosts, src in sites
            if hosts is not None and src is not None]


def _named_segment(problems: list[Problem], names: dict[str, str], site: ipam.SitePlan, src: Sourced,
                   where: tuple[str, int], name: str, vlan: str) -> ipam.Segment | None:
    """The checks a lab host and a real host share: its name used once across every hosts.yml (`names`: name ->
    file, updated), its VLAN one of its site's segments (the segment, else None and a problem)."""
    field = f"{where[0]}[{where[1]}]"
    if name in names:
        problems.append(Problem(src.file, src.line((*where, "name")), f"{field}.name",
                                f"host name {name!r} is already used in {names[name]}"))
    names.setdefault(name, src.file)
    try:
        return site.segment(vlan)
    except KeyError:
        known = ", ".join(s.name for s in site.segments)
        problems.append(Problem(src.file, src.line((*where, "vlan")), f"{field}.vlan",
                                f"unknown segment {vlan!r} (known: {known})"))
        return None


def _check_hosts(estate: Estate) -> None:
    problems: list[Problem] = []
    names: dict[str, str] = {}
    for site, hosts, src in _hosts_files(estate):
        used: dict[tuple[str, int], str] = {}
        indices = _address_indices(hosts)
        for i, host in enumerate(hosts.hosts):
            where = ("hosts", i)
            seg = _named_segment(problems, names, site, src, where, host.name, host.vlan)
            if seg is None:
                continue
            index = indices[i]
            try:
                seg.host(index)
            except ipam.IpamError as exc:
                problems.append(Problem(src.file, src.line((*where, "address_index")),
                                        f"hosts[{i}].address_index", str(exc)))
                continue
            if (host.vlan, index) in used:
                problems.append(Problem(src.file, src.line((*where, "address_index")),
                                        f"hosts[{i}].address_index",
                                        f"address {seg.host(index)} is already {used[(host.vlan, index)]}'s"))
            used[(host.vlan, index)] = host.name
    if problems:
        raise EstateError(problems)
    _check_production(estate, names)


def _check_production(estate: Estate, lab_names: dict[str, str]) -> None:
    """A council's real hosts (hosts.yml `production:`): each name used once across every hosts.yml (lab hosts
    too: the inventory plugin yields both), its VLAN one of its site's segments, its address a host address of
    that VLAN's subnet and no other real host's."""
    problems: list[Problem] = []
    names = dict(lab_names)
    addresses: dict[str, str] = {}
    for site, hosts, src in _hosts_files(estate):
        for i, host in enumerate(hosts.production):
            where = ("production", i)
            seg = _named_segment(problems, names, site, src, where, host.name, host.vlan)
            if seg is None or host.address is None:
                continue
            address = IPv4Address(host.address)
            if address not in seg.network or address in (seg.network.network_address, seg.network.broadcast_address):
                problems.append(Problem(src.file, src.line((*where, "address")), f"production[{i}].address",
                                        f"{address} is not a host address of VLAN {host.vlan} ({seg.network})"))
            elif host.address in addresses:
                problems.append(Problem(src.file, src.line((*where, "address")), f"production[{i}].address",
                                        f"address {address} is already {addresses[host.address]}'s"))
            addresses.setdefault(host.address, host.name)
    if problems:
        raise EstateError(problems)


def host_addresses(estate: Estate, key: str) -> list[tuple[str, str, ipam.Segment, IPv4Address]]:
    """(host name, role, segment, address) for the hosts of one site, in file order."""
    hosts = estate.hub_hosts if key == ipam.HUB else estate.council(key).hosts
    if hosts is None:
        return []
    site = estate.addresses.site(key)
    out: list[tuple[str, str, ipam.Segment, IPv4Address]] = []
    for host, index in zip(hosts.hosts, _address_indices(hosts), strict=True):
        seg = site.segment(host.vlan)
        out.append((host.name, host.role, seg, seg.host(index)))
    return out


FIRST_HOST_INDEX = 10


def _address_indices(hosts: Hosts) -> list[int]:
    """Each host's index in its segment: its address_index, else the next from 10 in file order."""
    counters: dict[str, int] = {}
    out = []
    for host in hosts.hosts:
        if host.address_index is not None:
            out.append(host.address_index)
            continue
        n = counters.get(host.vlan, 0)
        counters[host.vlan] = n + 1
        out.append(FIRST_HOST_INDEX + n)
    return out

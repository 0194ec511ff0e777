"""A council leaving the estate: `estate offboard COUNCIL --on DATE`.

First the separation plan, built offline: what the council takes with it (its address block, its inventory and
stack config, its spoke's planned resources, its helpdesk queue's tickets, its logs for the framework's retention),
what the hub stops doing for it (the hub's planned resources that disappear or change when the estate is planned
without it, diffed by URN and property), the shared services it must replace area by area, and the money (each
remaining council's share of the shared service before and after, and the roadmap's savings before and after).

Then the tree, all or nothing like `estate onboard`: the council's inventory folder and its `Pulumi.<key>.yaml`
move to `departed/<key>/` beside `departure.yml` (the date; its block stays reserved up to and including it, see
estate.loader.check_reservations and estate.onboard.allocate_block) and the separation plan as JSON and markdown.

Refusals are one line, exit 2, before anything is written: an unknown council, the hub, a date before today, a
council another council's inventory still names (an `exchanges` entry), or one the hub's committed stack config
still lists as a spoke.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import ssl
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from estate import ipam, stackfile
from estate.compliance import evaluate
from estate.compliance.findings import Report
from estate.errors import EstateError, Problem
from estate.lab.lab import plan as lab_plan
from estate.loader import DEPARTED, DEPARTURE_FILE, INVENTORIES, CouncilRecord, Estate, host_addresses, load_estate
from estate.models import COUNCIL_KEY_RULE, is_council_key
from estate.onboard import estate_lock, fsync_dir, stack_config_path
from estate.plan import HUB, PlannedResource, plan
from estate.roadmap import build as build_roadmap
from estate.roadmap import is_legacy
from estate.yamlsrc import display

WHO = "estate offboard"
INVENTORY_DIR = "inventory"  # departed/<folder>/inventory/: the council's inventories/<key>/ as it was
PLAN_JSON = "separation-plan.json"
PLAN_MD = "separation-plan.md"
TICKETS_JSON = "tickets.json"
STAGING = ".estate-offboard"  # `.estate-offboard.<random>.tmp` in the repo root while the departure is staged
UNFINISHED = ".offboard-unfinished"  # in departed/<folder>/ until the inventory folder has moved in

# What the hub does for a council, by the type of its planned resource (azure-native type tokens).
HUB_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("peering", ("azure-native:network:VirtualNetworkPeering",)),
    ("firewall", ("azure-native:network:FirewallPolicyRuleCollectionGroup", "azure-native:network:FirewallPolicy",
                  "azure-native:network:AzureFirewall")),
    ("nsg", ("azure-native:network:NetworkSecurityGroup", "azure-native:network:SecurityRule")),
    ("dns", ("azure-native:privatedns:VirtualNetworkLink", "azure-native:privatedns:PrivateZone",
             "azure-native:privatedns:PrivateRecordSet")),
    ("routes", ("azure-native:network:RouteTable", "azure-native:network:Route")),
)


def hub_kind(resource: PlannedResource) -> str:
    """Which of the hub's services a resource is part of: peering, firewall, nsg, dns, routes, helpdesk, other."""
    for kind, types in HUB_KINDS:
        if resource.type in types:
            return kind
    if "helpdesk" in resource.name or ":dbforpostgresql:" in resource.type:
        return "helpdesk"
    return "other"


# --------------------------------------------------------------------------- the plan's parts


@dataclass(frozen=True)
class HubPiece:
    """A hub resource that disappears (removed) or changes (its properties that differ) without the council."""

    kind: str
    type: str
    name: str
    urn: str
    change: str  # removed | changed | added
    properties: tuple[str, ...] = ()  # changed: each differing property path and what happens to it

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "type": self.type, "name": self.name, "urn": self.urn, "change": self.change,
                "properties": list(self.properties)}


@dataclass(frozen=True)
class Tickets:
    queue: str
    endpoint: str
    exported: list[dict[str, Any]] | None  # None: not reachable
    reason: str = ""

    @property
    def line(self) -> str:
        if self.exported is None:
            return f"to export: queue {self.queue} (helpdesk not reachable: {self.endpoint}{self.reason})"
        return f"exported: {len(self.exported)} tickets of queue {self.queue} from {self.endpoint}"

    def to_dict(self) -> dict[str, Any]:
        return {"queue": self.queue, "endpoint": self.endpoint, "reachable": self.exported is not None,
                "count": None if self.exported is None else len(self.exported), "summary": self.line}


@dataclass(frozen=True)
class AreaToReplace:
    area: str
    depends_on: tuple[str, ...]
    shared_contracts: tuple[str, ...]  # its contracts with the shared service in the area: they end on the day
    own_contracts: tuple[str, ...]  # its own (legacy) contracts in the area still running on the day
    annual_share: float  # what it paid for the shared service in the area (a first budget for the replacement)

    @property
    def needs_contract(self) -> bool:
        return not self.own_contracts

    def to_dict(self) -> dict[str, Any]:
        need = (f"a contract for {self.area} from the day it leaves" if self.needs_contract
                else f"covered by its own {', '.join(self.own_contracts)}")
        return {"area": self.area, "depends_on": list(self.depends_on),
                "shared_contracts_ending": list(self.shared_contracts), "own_contracts": list(self.own_contracts),
                "annual_share_paid": _money(self.annual_share), "needs_contract": self.needs_contract,
                "contract_needed": need}


@dataclass(frozen=True)
class Money:
    costs: dict[str, float]  # area -> the shared service's annual cost
    before: dict[str, dict[str, float]]  # council -> area -> share (every council, the leaver included)
    after: dict[str, dict[str, float]]  # council -> area -> share (the councils that remain)
    savings_before: dict[str, float]  # remaining council -> the roadmap's annual saving today
    savings_after: dict[str, float]  # remaining council -> the roadmap's annual saving without the leaver

    def total(self, shares: Mapping[str, Mapping[str, float]], area: str) -> float:
        return sum(s.get(area, 0.0) for s in shares.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "shared_service_annual_cost": {a: _money(c) for a, c in self.costs.items()},
            "shares": {key: {"before": {a: _money(v) for a, v in self.before[key].items()},
                             "after": ({a: _money(v) for a, v in self.after[key].items()}
                                       if key in self.after else None)}
                       for key in self.before},
            "totals": {a: {"before": _money(self.total(self.before, a)), "after": _money(self.total(self.after, a))}
                       for a in self.costs},
            "roadmap_savings": {k: {"before": _money(v), "after": _money(self.savings_after[k])}
                                for k, v in self.savings_before.items()},
        }


def _money(value: float) -> float:
    return round(value + 0.0, 2)


@dataclass
class SeparationPlan:
    council: str
    name: str
    code: str
    block: str
    on: dt.date
    decided: dt.date
    framework_version: str
    files: list[str]  # what moves to departed/<folder>/ (relative to the repo root)
    destination: str  # departed/<folder>
    spoke: list[dict[str, str]]  # its spoke's planned cloud resources: type, name
    tickets: Tickets
    logs: dict[str, Any]
    hub: list[HubPiece]
    replace: list[AreaToReplace]
    money: Money
    lab: str
    plan_seconds: float
    report: Report | None = field(default=None, repr=False, compare=False)  # the remaining councils' findings

    def to_dict(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for piece in self.hub:
            kinds[piece.kind] = kinds.get(piece.kind, 0) + 1
        return {
            "council": self.council, "name": self.name, "code": self.code, "leaves": self.on.isoformat(),
            "decided": self.decided.isoformat(), "framework_version": self.framework_version,
            "takes": {
                "block": self.block, "reserved_until": self.on.isoformat(),
                "files": self.files, "destination": self.destination,
                "spoke_resources": self.spoke, "tickets": self.tickets.to_dict(), "logs": self.logs,
            },
            "hub_stops": {"by_kind": dict(sorted(kinds.items())), "resources": [p.to_dict() for p in self.hub],
                          "helpdesk_queue": self.queue_note},
            "replace": [a.to_dict() for a in self.replace],
            "money": self.money.to_dict(),
            "lab": self.lab,
            "plan_seconds": round(self.plan_seconds, 2),
        }

    @property
    def queue_note(self) -> str:
        """What the helpdesk role does with its queue once it is gone from the inventories (roles/helpdesk)."""
        return (f"queue {self.tickets.queue}: the next `estate configure` renames it "
                f"{self.tickets.queue}-departed-<YYYYMMDD> and disables it and its agents (roles/helpdesk/README.md)")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


# --------------------------------------------------------------------------- refusals


def refuse(estate: Estate, key: str, on: dt.date, today: dt.date) -> CouncilRecord:
    """The council, or one line (exit 2) saying why it cannot leave."""
    if key == ipam.HUB:
        raise EstateError.one(WHO, 0, "NAME", f"{key!r} is the hub: the hub does not leave")
    if not is_council_key(key):
        raise EstateError.one(WHO, 0, "NAME", f"{key!r} is not a council key ({COUNCIL_KEY_RULE})")
    if key not in estate.councils:
        known = ", ".join(sorted(estate.councils)) or "none"
        raise EstateError.one(WHO, 0, "NAME", f"unknown council {key!r} (known: {known})")
    if on < today:
        raise EstateError.one(WHO, 0, "--on", f"{on} is before today ({today})")
    for other, rec in estate.councils.items():
        for i, x in enumerate(rec.council.exchanges):
            if other != key and x.partner == key:
                raise EstateError.one(rec.source.file, rec.source.line(("exchanges", i, "with")),
                                      f"exchanges[{i}].with", f"{other} still exchanges {x.flow} with {key}: both "
                                                              "councils remove the exchange before it can leave")
    hub_file = stackfile.path(estate.root, HUB)
    hub = stackfile.load(hub_file, HUB, councils=estate.councils)
    spokes = hub.values.get(stackfile.full_key(stackfile.CFG_SPOKES))
    if spokes and key in json.loads(spokes):
        raise EstateError.one(stackfile.shown(hub_file), 0, stackfile.full_key(stackfile.CFG_SPOKES),
                              f"the hub still lists {key} as a spoke: remove it and deploy the hub first")
    destination(estate.root, key, on)  # refuses when both names are taken
    inventory = estate.root / INVENTORIES / key
    if inventory.is_symlink():
        raise EstateError.one(display(inventory), 0, "", "a link: move the folder it points to by hand")
    return estate.councils[key]


def destination(root: Path, key: str, on: dt.date) -> Path:
    """departed/<key>/, or departed/<key>-<YYYYMMDD>/ when the key left once before."""
    for name in (key, f"{key}-{on:%Y%m%d}"):
        folder = root / DEPARTED / name
        if not os.path.lexists(folder):
            return folder
    raise EstateError.one(display(root / DEPARTED / key), 0, "",
                          f"already exists, and so does {key}-{on:%Y%m%d}: not overwritten")


# --------------------------------------------------------------------------- the plan


def without(estate: Estate, key: str) -> Estate:
    """The estate as it is once `key` has left (its own model: the resolved flows and addresses rebuilt)."""
    return Estate(estate.root, estate.framework, estate.framework_source,
                  councils={k: r for k, r in estate.councils.items() if k != key},
                  hub_hosts=estate.hub_hosts, hub_hosts_source=estate.hub_hosts_source,
                  departures=estate.departures)


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    """A list of mappings each with a unique `name`, by name (NSG rules, rule collections, their rules)."""
    if not items or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        return None
    names = [i["name"] for i in items]
    return dict(zip(names, items, strict=True)) if len(set(names)) == len(names) else None


def diff(old: Any, new: Any, path: str = "") -> list[str]:
    """What differs from `old` to `new`, one `path: removed|added|changed` per place (lists of named mappings are
    compared by name, other lists as values)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            sub = f"{path}.{k}" if path else str(k)
            if k not in new:
                out.append(f"{sub}: removed")
            elif k not in old:
                out.append(f"{sub}: added")
            else:
                out += diff(old[k], new[k], sub)
        return out
    if isinstance(old, list) and isinstance(new, list):
        a, b = _keyed(old), _keyed(new)
        if a is not None and (b is not None or not new):
            return diff(a, b or {}, path)
        if old == new:
            return []
        gone = [v for v in old if v not in new]
        came = [v for v in new if v not in old]
        if all(isinstance(v, str | int | float) for v in [*gone, *came]):
            return ([f"{path}: removed {', '.join(map(str, gone))}"] if gone else []) + \
                   ([f"{path}: added {', '.join(map(str, came))}"] if came else [])
        return [f"{path}: changed"]
    return [] if old == new else [f"{path}: changed"]


def hub_diff(before: Sequence[PlannedResource], after: Sequence[PlannedResource]) -> list[HubPiece]:
    old = {r.urn: r for r in before if r.custom}
    new = {r.urn: r for r in after if r.custom}
    out: list[HubPiece] = []
    for urn, r in old.items():
        if urn not in new:
            out.append(HubPiece(hub_kind(r), r.type, r.name, urn, "removed"))
        elif r.inputs != new[urn].inputs:
            out.append(HubPiece(hub_kind(r), r.type, r.name, urn, "changed", tuple(diff(r.inputs, new[urn].inputs))))
    for urn, r in new.items():
        if urn not in old:
            out.append(HubPiece(hub_kind(r), r.type, r.name, urn, "added"))
    order = {k: i for i, (k, _) in enumerate(HUB_KINDS)}
    return sorted(out, key=lambda p: (order.get(p.kind, len(order)), p.type, p.name))


def shares(estate: Estate) -> dict[str, dict[str, float]]:
    """Each council's annual share of the shared service per area: the area's cost x its staff / all staff."""
    costs = {str(a): float(c) for a, c in estate.framework.migration.shared_service_annual_cost.items()}
    total = sum(r.council.users.staff for r in estate.councils.values())
    return {k: {a: c * r.council.users.staff / total for a, c in costs.items()} for k, r in estate.councils.items()}


def areas_to_replace(estate: Estate, key: str, on: dt.date) -> list[AreaToReplace]:
    migration = estate.framework.migration
    council = estate.council(key).council
    own_share = shares(estate)[key]
    out = []
    for area in migration.areas:
        name = str(area.area)
        mine = [c for c in council.contracts if c.area == name]
        out.append(AreaToReplace(
            area=name, depends_on=tuple(str(d) for d in area.depends_on),
            shared_contracts=tuple(c.id for c in mine if not is_legacy(c, migration.shared_service_supplier)),
            own_contracts=tuple(c.id for c in mine if is_legacy(c, migration.shared_service_supplier) and c.end > on),
            annual_share=own_share.get(name, 0.0)))
    return out


def logs_kept(estate: Estate, key: str, on: dt.date, spoke: Sequence[PlannedResource],
              hub: Sequence[PlannedResource]) -> dict[str, Any]:
    """Where its logs are and how long they are kept: its lab hosts' logs on the log collector, its spoke's
    diagnostic settings in the hub's Log Analytics workspace, for security.logging.retention_days."""
    days = estate.framework.security.logging.retention_days
    collectors = [name for name, role, _, _ in host_addresses(estate, HUB) if role == "log_collector"]
    hosts = [name for name, _, _, _ in host_addresses(estate, key)]
    workspaces = [r.name for r in [*spoke, *hub] if r.type == "azure-native:operationalinsights:Workspace"]
    settings = sum(1 for r in spoke if r.type == "azure-native:monitor:DiagnosticSetting")
    until = on + dt.timedelta(days=days)
    return {"retention_days": days, "kept_until": until.isoformat(), "collectors": collectors, "hosts": hosts,
            "workspaces": workspaces, "diagnostic_settings": settings,
            "summary": (f"logs of its {len(hosts)} hosts on {', '.join(collectors) or 'the log collector'} and of "
                        f"its {settings} diagnostic settings in {', '.join(workspaces) or 'no workspace'}: kept "
                        f"{days} days (security.logging.retention_days), until {until}, then handed over")}


def lab_note(root: Path, key: str, hosts: Sequence[str]) -> str:
    """What the lab does with the departed council's hosts (the lab is never needed to offboard)."""
    state = root / ".state" / "lab" / "state.json"
    names = ", ".join(hosts) or "none"
    if not state.is_file():
        return f"the lab is down: its next `estate lab up` has no host of {key} ({names})"
    return (f"the lab is up: its hosts of {key} ({names}) keep running until the next `estate lab up`, which "
            "removes what the inventories no longer hold; `estate lab down` removes everything")


def helpdesk_tickets(estate: Estate, key: str) -> Tickets:
    """The council's queue's tickets through RT 5's REST 2 API when the lab is up with its helpdesk and the REST
    user's password is in .state/configure/secrets.json (Basic auth in a header: nothing secret on a command line
    or in a log). REST 2 (core in RT 5): GET /REST/2.0/tickets?query=<TicketSQL>&fields=...&page=N&per_page=N
    answers {total, count, page, pages, per_page, items} (metacpan.org/pod/RT::Extension::REST2, "Tutorial" and
    "Pagination"; Basic auth is one of its "Authentication Methods")."""
    queue = key
    helpdesks = [(name, address) for name, role, _, address in host_addresses(estate, HUB) if role == "helpdesk"]
    web_path = _web_path(estate.root)
    if not helpdesks:
        return Tickets(queue, "no helpdesk host in inventories/shared/hosts.yml", None)
    name, planned = helpdesks[0]
    endpoint = f"https://{planned}{web_path}/REST/2.0"
    secrets = estate.root / ".state" / "configure" / "secrets.json"
    state = estate.root / ".state" / "lab" / "state.json"
    if not state.is_file():
        return Tickets(queue, endpoint, None, "; the lab is down")
    try:
        password = json.loads(secrets.read_text(encoding="utf-8")).get("helpdesk_rest_password")
    except (OSError, ValueError):
        password = None
    if not isinstance(password, str) or not password:
        return Tickets(queue, endpoint, None, f"; no REST password in {display(secrets)}")
    address = _mgmt_address(estate.root, name) or str(planned)
    endpoint = f"https://{address}{web_path}/REST/2.0"
    try:
        return Tickets(queue, endpoint, _export(endpoint, _rest_user(estate.root), password, queue))
    except (OSError, ValueError) as exc:
        return Tickets(queue, endpoint, None, f"; {getattr(exc, 'reason', None) or exc}")


def _defaults(root: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load((root / "roles" / "helpdesk" / "defaults" / "main.yml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _web_path(root: Path) -> str:
    return str(_defaults(root).get("helpdesk_web_path") or "/rt")


def _rest_user(root: Path) -> str:
    return str(_defaults(root).get("helpdesk_rest_user") or "estate-automation")


def _mgmt_address(root: Path, host: str) -> str | None:
    """The helpdesk's management address in the lab (what this machine reaches), from the lab's topology."""
    try:
        _, topo = lab_plan(root)
    except (EstateError, OSError):
        return None
    return next((str(h.mgmt_address) for h in topo.hosts if h.name == host), None)


def _export(endpoint: str, user: str, password: str, queue: str) -> list[dict[str, Any]]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the lab helpdesk's self-signed certificate
    out: list[dict[str, Any]] = []
    page, pages = 1, 1
    while page <= pages:
        query = urllib.parse.urlencode({"query": f"Queue = '{queue}'", "page": page, "per_page": 100,
                                        "fields": "Subject,Status,Priority,Created,Resolved,Requestor"})
        request = urllib.request.Request(f"{endpoint}/tickets?{query}",
                                         headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, context=context, timeout=30) as reply:
            data = json.loads(reply.read())
        out += [dict(item) for item in data.get("items", [])]
        pages = int(data.get("pages") or 1)
        page += 1
    return out


def build(estate: Estate, key: str, on: dt.date, today: dt.date, *,
          tickets: Callable[[Estate, str], Tickets] = helpdesk_tickets) -> SeparationPlan:
    """The separation plan (refusals first); nothing is written."""
    record = refuse(estate, key, on, today)
    rest = without(estate, key)
    started = time.perf_counter()
    full = plan(estate, [HUB, key], workers=1)
    bare = plan(rest, [HUB], workers=1)
    seconds = time.perf_counter() - started
    spoke = full.for_stack(key)
    remaining = list(rest.councils)
    report = evaluate(estate, councils=remaining, today=today) if remaining else None
    before = build_roadmap(estate, today=today, councils=remaining, report=report) if report else None
    after = build_roadmap(rest, today=today, councils=remaining, report=report) if report else None
    money = Money(
        costs={str(a): float(c) for a, c in estate.framework.migration.shared_service_annual_cost.items()},
        before=shares(estate), after=shares(rest) if remaining else {},
        savings_before={k: c.saving for k, c in before.councils.items()} if before else {},
        savings_after={k: c.saving for k, c in after.councils.items()} if after else {})
    folder = destination(estate.root, key, on)
    moved = [estate.root / INVENTORIES / key, stack_config_path(estate.root, key)]
    files = [str(p.relative_to(estate.root)) for p in moved if os.path.lexists(p)]
    hosts = [name for name, _, _, _ in host_addresses(estate, key)]
    return SeparationPlan(
        council=key, name=record.council.name, code=record.council.code, block=record.council.block, on=on,
        decided=today, framework_version=estate.framework.version, files=files,
        destination=str(folder.relative_to(estate.root)),
        spoke=[{"type": r.type, "name": r.name} for r in spoke if r.custom],
        tickets=tickets(estate, key), logs=logs_kept(estate, key, on, spoke, full.for_stack(HUB)),
        hub=hub_diff(full.for_stack(HUB), bare.for_stack(HUB)), replace=areas_to_replace(estate, key, on),
        money=money, lab=lab_note(estate.root, key, hosts), plan_seconds=seconds, report=report)


# --------------------------------------------------------------------------- markdown (the table and the file)


def render_markdown(p: SeparationPlan) -> str:
    d = p.to_dict()
    lines = [f"# Separation plan: {p.name} ({p.council}) leaves on {p.on}", "",
             f"Decided {p.decided} on framework {p.framework_version}; planned offline in {p.plan_seconds:.1f} s.",
             "", "## What it takes", "",
             f"- address block {p.block}, reserved for it until {p.on} (no other council gets it before then)",
             f"- its files: {', '.join(p.files)} -> {p.destination}/",
             f"- its spoke: {len(p.spoke)} Azure resources ({_types(p.spoke)})",
             f"- helpdesk: {p.tickets.line}",
             f"- {p.logs['summary']}", f"- lab: {p.lab}", "",
             "## What the hub stops doing for it", ""]
    lines += [f"- helpdesk: {p.queue_note}", ""]
    if not p.hub:
        lines.append("Nothing in the hub's plan changes without it.")
    else:
        lines += ["| kind | change | type | name | properties |", "| --- | --- | --- | --- | --- |"]
        for h in p.hub:
            props = "; ".join(h.properties[:6]) + (f"; ... {len(h.properties) - 6} more" if len(h.properties) > 6
                                                    else "")
            lines.append(f"| {h.kind} | {h.change} | {h.type.split(':', 1)[1]} | {h.name} | {props} |")
    lines += ["", "## Shared services it must replace", "",
              "| area | depends on | shared contracts ending | contract it will need | share paid / year |",
              "| --- | --- | --- | --- | ---: |"]
    for a in d["replace"]:
        lines.append(f"| {a['area']} | {', '.join(a['depends_on']) or '-'} | "
                     f"{', '.join(a['shared_contracts_ending']) or '-'} | {a['contract_needed']} | "
                     f"{a['annual_share_paid']:,.2f} |")
    money = d["money"]
    areas = list(money["shared_service_annual_cost"])
    lines += ["", "## The money", "", "Each council's annual share of the shared service, before -> after:", "",
              "| council | " + " | ".join(areas) + " |", "| --- | " + " | ".join("---:" for _ in areas) + " |"]
    for key, s in money["shares"].items():
        after = s["after"]
        cells = [f"{s['before'][a]:,.2f} -> {after[a]:,.2f}" if after else f"{s['before'][a]:,.2f} -> leaves"
                 for a in areas]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    totals = money["totals"]
    lines.append("| total | " + " | ".join(f"{totals[a]['before']:,.2f} -> {totals[a]['after']:,.2f}"
                                          for a in areas) + " |")
    if money["roadmap_savings"]:
        lines += ["", "Roadmap savings per year (estate roadmap), before -> after:", ""]
        lines += [f"- {k}: {v['before']:,.2f} -> {v['after']:,.2f}" for k, v in money["roadmap_savings"].items()]
    return "\n".join(lines) + "\n"


def _types(resources: Sequence[Mapping[str, str]]) -> str:
    count: dict[str, int] = {}
    for r in resources:
        t = r["type"].rsplit(":", 1)[-1]
        count[t] = count.get(t, 0) + 1
    return ", ".join(f"{n} {t}" for t, n in sorted(count.items()))


def departure_text(p: SeparationPlan) -> str:
    head = (f"# {p.name} leaves the estate on the day `leaves` says (`estate offboard`, {p.decided}).\n"
            "# Its block stays reserved up to and including that day; the separation plan is beside this file.\n")
    data = {"council": p.council, "name": p.name, "code": p.code, "block": p.block, "leaves": p.on,
            "decided": p.decided}
    return head + yaml.safe_dump(data, sort_keys=False)


# --------------------------------------------------------------------------- the tree, all or nothing


@dataclass(frozen=True)
class Offboarded:
    plan: SeparationPlan
    folder: Path
    moved: tuple[tuple[Path, Path], ...]  # (from, to)


def move_all_or_nothing(root: Path, folder: Path, files: Sequence[tuple[str, str]], moves: Sequence[tuple[Path, str]],
                        check: Callable[[], None] | None = None) -> list[tuple[Path, Path]]:
    """Make `folder` (departed/<x>/) with the new `files` (name, text), then move each (path, name) of `moves` into
    it, in order, all or nothing; then `check()`.

    The new files are written and fsynced in a staging folder in `root`, which is renamed to `folder` in one step
    with a marker (UNFINISHED); then each move is one rename (the stack config first, the inventory folder last:
    the council is in inventories/ until that rename and gone after it); then the marker goes. Any failure, Ctrl-C,
    SIGTERM or SIGHUP moves everything back and removes `folder` (an OSError becomes one line `PATH: cannot write:
    <reason>`). A SIGKILL leaves a tree that loads (a council keeps its own reservation; a council without its
    stack file has no values); the next `estate offboard` finishes or undoes it (`finish_unfinished`)."""
    staging: Path | None = None
    done: list[tuple[Path, Path]] = []
    made_parent = made = False
    current = folder
    try:
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING}.", suffix=".tmp", dir=root))
        staged = staging / folder.name
        staged.mkdir()
        marker = "estate offboard stopped here; the next offboard finishes or undoes it\n"
        for name, text in [*files, (UNFINISHED, marker)]:
            current = folder / name
            with open(staged / name, "x", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        fsync_dir(staged)
        current = folder
        if not folder.parent.exists():
            folder.parent.mkdir()
            made_parent = True
        if os.path.lexists(folder):
            raise EstateError.one(display(folder), 0, "", "already exists; not overwritten")
        os.rename(staged, folder)
        made = True
        fsync_dir(folder.parent)
        for source, name in moves:
            current = source
            target = folder / name
            if os.path.lexists(target):
                raise EstateError.one(display(target), 0, "", "already exists; not overwritten")
            os.rename(source, target)
            done.append((source, target))
            fsync_dir(source.parent)
        current = folder
        fsync_dir(folder)
        os.unlink(folder / UNFINISHED)
        fsync_dir(folder)
        shutil.rmtree(staging)
        staging = None
        if check is not None:
            check()
    except BaseException as exc:
        for source, target in reversed(done):
            with suppress(OSError):
                os.rename(target, source)
        if made:
            shutil.rmtree(folder, ignore_errors=True)
        if made_parent:
            with suppress(OSError):
                folder.parent.rmdir()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise EstateError.one(display(current), 0, "", f"cannot write: {exc.strerror or exc}") from None
        raise
    return done


def finish_unfinished(root: Path) -> None:
    """Under `estate_lock`: undo an offboard a SIGKILL stopped before its inventory folder moved (the stack config
    goes back), finish one stopped after it (the marker goes), and remove its staging folders."""
    for stale in root.glob(f"{STAGING}.*.tmp"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
    departed = root / DEPARTED
    if not departed.is_dir():
        return
    for folder in departed.iterdir():
        marker = folder / UNFINISHED
        if not marker.is_file():
            continue
        if (folder / INVENTORY_DIR).is_dir():
            marker.unlink()
            continue
        for stack in folder.glob("Pulumi.*.yaml"):
            if not os.path.lexists(root / stack.name):
                os.rename(stack, root / stack.name)
        shutil.rmtree(folder)
    with suppress(OSError):
        departed.rmdir()  # only when empty: the undone departure was its only one


def offboard(root: Path, key: str, on: dt.date, today: dt.date | None = None, *, dry_run: bool = False,
             tickets: Callable[[Estate, str], Tickets] = helpdesk_tickets) -> Offboarded:
    """Plan the council's departure and, unless `dry_run`, move its files to departed/, all or nothing."""
    day = today or dt.date.today()
    with estate_lock(root):
        if not dry_run:
            finish_unfinished(root)
        estate = load_estate(root)
        sep = build(estate, key, on, day, tickets=tickets)
        folder = estate.root / sep.destination
        if dry_run:
            return Offboarded(sep, folder, ())
        files = [(DEPARTURE_FILE, departure_text(sep)), (PLAN_JSON, sep.to_json()), (PLAN_MD, render_markdown(sep))]
        if sep.tickets.exported is not None:
            files.append((TICKETS_JSON, json.dumps(sep.tickets.exported, indent=2) + "\n"))
        moves: list[tuple[Path, str]] = []
        stack = stack_config_path(estate.root, key)
        if os.path.lexists(stack):
            moves.append((stack, stack.name))
        moves.append((estate.root / INVENTORIES / key, INVENTORY_DIR))

        def reload() -> None:
            """The estate as written must load, exactly as `estate validate` loads it, without the council."""
            after = load_estate(root)
            if key in after.councils or not any(d.folder.name == folder.name for d in after.departures):
                raise EstateError([Problem(display(folder), 0, "", "the departure did not take")])
            stackfile.validate_all(after.root, after.councils)

        done = move_all_or_nothing(estate.root, folder, files, moves, check=reload)
    return Offboarded(sep, folder, tuple(done))

"""The inventory the Ansible plugin yields (the shared_estate.estate collection, `inventories/estate.yml`).

One place turns framework.yaml and inventories/ into Ansible's view of the estate, for `estate configure`,
`ansible-playbook -i inventories/estate.yml`, ansible-navigator and AWX alike:

- hosts from two sources: the lab (`lab`: what `estate lab up` wrote, .state/lab/inventory.yml, with its
  connection vars) and production (`production`: each hosts.yml's `production:` list, a council's real hosts);
- groups: `council_<key>` (`-` as `_`) or `hub` for the site, one per role, `vlan_<name>` per VLAN or hub
  segment (`-` as `_`: a group name is a Python identifier, Ansible warns on anything else);
- variables: the `estate_*` values the roles read (configure.playbook_vars: the framework's controls, the
  address plan, the flow matrix per segment, the log senders, the router's ruleset file) on `all`, each host's
  own (its council, VLAN, address, its council's services host ...) and the control toggles a council's active
  exemptions turn off (configure.exempt_controls) on the hosts they cover.

The helpdesk's passwords are never values here: `estate_helpdesk_*` are lazy lookups of the 0600 secrets file
under .state/configure/ (`TEMPLATE_VARS`), so `ansible-inventory --list` shows the lookup, not the password;
the play resolves them on the controller when the helpdesk role reads them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from estate.configure import (
    SECRET_VARS,
    council_group,
    exempt_controls,
    prepare,
    role_controls,
    state_dir,
    toggle_vars,
)
from estate.errors import EstateError
from estate.inventory import LAB_INVENTORY, inventory_hosts, load_inventory
from estate.ipam import HUB
from estate.loader import Estate, find_root, load_estate
from estate.models import Hosts, ProductionHost
from estate.yamlsrc import display, load

PLUGIN = "shared_estate.estate.estate"
ESTATE_INVENTORY = Path("inventories") / "estate.yml"  # the plugin's config in the repository
CONFIG_NAMES = ("estate.yml", "estate.yaml")  # the plugin's verify_file accepts only these names
SOURCES = ("lab", "production")
ROLES = ("thin_client", "app_server", "dc_services", "router", "helpdesk", "log_collector")
SECRETS_VAR = "estate_secrets_file"
SECRETS_FILE = "secrets.json"  # under .state/configure/, written by configure.prepare (mode 0600)
# Variables on `all` whose strings are Jinja templates (lazy lookups of the secrets file): the plugin marks only
# these as trusted for templating (ansible-core 2.19 templates no inventory string it was not told to trust;
# https://docs.ansible.com/ansible/latest/porting_guides/porting_guide_core_2.19.html "Inventory plugins").
TEMPLATE_VARS = SECRET_VARS


def vlan_group(name: str) -> str:
    """A VLAN's (or hub segment's) group: `vlan_<name>` with `-` as `_` (a slug has no `_`, so no two collide)."""
    return "vlan_" + name.replace("-", "_")


@dataclass
class Inventory:
    """Ansible's view: `all`'s vars, each host's own vars, and each group's hosts (every group a child of all)."""

    vars: dict[str, Any] = field(default_factory=dict)
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, hostvars: Mapping[str, Any], groups: Iterable[str]) -> None:
        self.hosts[name] = dict(hostvars)
        for group in groups:
            members = self.groups.setdefault(group, [])
            if name not in members:
                members.append(name)

    def groups_of(self, name: str) -> set[str]:
        return {"all", *(g for g, members in self.groups.items() if name in members)}

    def host_vars(self, name: str) -> dict[str, Any]:
        """What a host sees: `all`'s vars under its own (no group but `all` carries vars here)."""
        return {**self.vars, **self.hosts[name]}


# --------------------------------------------------------------------------- the config file


@dataclass(frozen=True)
class Config:
    """inventories/estate.yml: which sources, where the lab's inventory is, and (tests) the day exemptions are
    judged on. The root is the nearest folder above the file holding framework.yaml: never the working directory,
    which AWX sets elsewhere when it syncs a project source (ansible/awx#9789)."""

    path: Path
    root: Path
    sources: tuple[str, ...] = SOURCES
    lab_inventory: Path | None = None
    today: dt.date | None = None


def read_config(path: Path) -> Config:
    """The plugin's config file, checked: one line with file, line and field on a bad key or value, exit 2."""
    src = load(path)
    data = src.data
    if not isinstance(data, dict):
        raise src.error((), "the inventory plugin's config is a mapping (plugin:, sources:, ...)")
    unknown = sorted(set(data) - {"plugin", "sources", "lab_inventory", "today"})
    if unknown:
        raise src.error((unknown[0],), "unknown key (known: plugin, sources, lab_inventory, today)")
    if data.get("plugin") not in (PLUGIN, "estate"):
        raise src.error(("plugin",), f"this config is not the estate plugin's (plugin: {PLUGIN})")
    root = find_root(path.resolve().parent)
    sources = data.get("sources", list(SOURCES))
    if not isinstance(sources, list) or not sources or any(s not in SOURCES for s in sources):
        raise src.error(("sources",), f"a non-empty list of {', '.join(SOURCES)}")
    lab = data.get("lab_inventory")
    if lab is not None and not isinstance(lab, str):
        raise src.error(("lab_inventory",), "a path (relative to the repo root)")
    today = data.get("today")
    if isinstance(today, str):
        try:
            today = dt.date.fromisoformat(today)
        except ValueError:
            raise src.error(("today",), "a date (YYYY-MM-DD)") from None
    if today is not None and not isinstance(today, dt.date):
        raise src.error(("today",), "a date (YYYY-MM-DD)")
    return Config(path, root, tuple(dict.fromkeys(sources)), root / lab if lab else None, today)


def hosts_of(estate: Estate, inventory: Path) -> list[str]:
    """The host names of a plugin config (inventories/estate.yml) or of a lab inventory, sorted."""
    if inventory.name in CONFIG_NAMES:
        config = read_config(inventory)
        return sorted(build(estate, sources=config.sources, lab_inventory=config.lab_inventory).hosts)
    return sorted(inventory_hosts(load_inventory(inventory)))


def from_config(path: Path) -> Inventory:
    """What the plugin yields for this config file (its one call into the library)."""
    config = read_config(path)
    estate = load_estate(config.root)
    return build(estate, sources=config.sources, lab_inventory=config.lab_inventory, today=config.today)


# --------------------------------------------------------------------------- the inventory


def _leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, str(key)))
    elif isinstance(node, str):
        yield path, node


def lookup_template(path: Iterable[str]) -> str:
    """A lazy lookup of one value of the secrets file (`estate_secrets_file`), resolved on the controller."""
    keys = "".join(f"[{k!r}]" for k in path)
    return f"{{{{ (lookup('ansible.builtin.file', {SECRETS_VAR}) | from_json){keys} }}}}"


def secret_templates(values: Mapping[str, Any], secrets_json: str) -> dict[str, Any]:
    """The secret vars (configure.SECRET_VARS) with every password in them replaced by a lazy lookup of its place
    in the secrets file: the same structure the play got, never a password in the inventory."""
    where = {value: path for path, value in _leaves(json.loads(secrets_json))}

    def swap(node: Any) -> Any:
        if isinstance(node, str) and node in where:
            return lookup_template(where[node])
        if isinstance(node, list):
            return [swap(v) for v in node]
        if isinstance(node, dict):
            return {k: swap(v) for k, v in node.items()}
        return node

    return {key: swap(value) for key, value in values.items() if key in SECRET_VARS}


def global_vars(estate: Estate) -> dict[str, Any]:
    """`all`'s estate_* vars: configure.playbook_vars with the secrets as lookups. Writes the router's ruleset
    and the secrets file (a password only for what lacks one) under .state/configure/, both only when changed."""
    state = state_dir(estate.root)
    values = prepare(estate, state)
    secrets_file = state / SECRETS_FILE
    public = {k: v for k, v in values.items() if k not in SECRET_VARS}
    return {**public, SECRETS_VAR: str(secrets_file),
            **secret_templates(values, secrets_file.read_text(encoding="utf-8"))}


def _lab(inv: Inventory, path: Path) -> None:
    """The lab's hosts as `estate lab up` wrote them: their vars as they are, their groups plus their VLAN's."""
    if not path.exists():
        return  # the lab is down: it has no hosts
    data = load_inventory(path)
    inv.vars.update(data["all"].get("vars") or {})
    for name, host in inventory_hosts(data).items():
        hostvars = host["vars"]
        for key in (data["all"].get("vars") or {}):
            hostvars.pop(key, None)  # `all`'s, not the host's
        groups = sorted(host["groups"] - {"all"})
        if hostvars.get("estate_vlan"):
            groups.append(vlan_group(str(hostvars["estate_vlan"])))
        inv.add(name, hostvars, groups)


def production_vars(estate: Estate, site: str, host: ProductionHost, hosts: list[ProductionHost]) -> dict[str, Any]:
    """A real host's vars: how to reach it (ansible_*) and what the roles read of it (estate_*, as the lab's)."""
    seg = estate.addresses.site(site).segment(host.vlan)

    def first(role: str, where: str) -> str | None:
        pool = hosts if where == site else list(_production(estate).get(where, []))
        found = next((h for h in pool if h.role == role), None)
        return (found.address or found.dns_name) if found else None

    conn = host.connection
    out: dict[str, Any] = {"ansible_host": host.dns_name or host.address}
    for key, value in (("ansible_user", conn.user), ("ansible_port", conn.port),
                       ("ansible_become_method", conn.become_method),
                       ("ansible_python_interpreter", conn.python_interpreter)):
        if value is not None:
            out[key] = value
    out["ansible_become"] = conn.become
    out.update({
        "estate_council": site,
        "estate_role": host.role,
        "estate_vlan": host.vlan,
        "estate_vlan_id": seg.vlan_id,
        "estate_network": str(seg.network),
        "estate_address": host.address or host.dns_name,
        "estate_gateway": str(seg.gateway),
        "estate_prefixlen": seg.network.prefixlen,
        "estate_services_address": first("dc_services", site),
        "estate_log_collector": first("log_collector", HUB),
        "estate_helpdesk_address": first("helpdesk", HUB),
        "estate_production": True,
    })
    return out


def _production(estate: Estate) -> dict[str, list[ProductionHost]]:
    files: list[tuple[str, Hosts | None]] = [(HUB, estate.hub_hosts)]
    files += [(key, rec.hosts) for key, rec in sorted(estate.councils.items())]
    return {site: list(hosts.production) for site, hosts in files if hosts is not None and hosts.production}


def build(estate: Estate, *, sources: Iterable[str] = SOURCES, lab_inventory: Path | None = None,
          today: dt.date | None = None) -> Inventory:
    """The inventory of these sources: hosts, groups, `all`'s estate_* vars and the exemptions' toggles."""
    sources = tuple(sources)
    inv = Inventory()
    for group in ("hub", *(council_group(k) for k in sorted(estate.councils)), *ROLES):
        inv.groups.setdefault(group, [])
    if "lab" in sources:
        _lab(inv, lab_inventory or estate.root / LAB_INVENTORY)
    if "production" in sources:
        for site, hosts in _production(estate).items():
            for host in hosts:
                if host.name in inv.hosts:
                    raise EstateError.one(display(lab_inventory or estate.root / LAB_INVENTORY), 0, "",
                                          f"host {host.name!r} is both a lab host and a production host of {site}")
                inv.add(host.name, production_vars(estate, site, host, hosts),
                        [council_group(site), host.role, vlan_group(host.vlan)])
    inv.vars.update(global_vars(estate))
    enforced = role_controls(estate.root)
    members = {name: {"vars": inv.host_vars(name), "groups": inv.groups_of(name)} for name in inv.hosts}
    for name, toggles in toggle_vars(exempt_controls(estate, members, today or dt.date.today(), enforced)).items():
        inv.hosts[name].update(toggles)
    return inv

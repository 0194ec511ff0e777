"""`estate configure`: run playbooks/site.yml over the estate's hosts through ansible-runner.

Everything the roles need comes from framework.yaml and inventories/ (never from the roles): this
module turns them into the playbook's extra vars (`playbook_vars`), renders the router's flow-matrix
ruleset with the generator the lab uses (`estate.nftables.render_router_ruleset`), keeps the helpdesk's
secrets in a private file under .state/, and runs the play, streaming ansible-runner's events into a
`Tally` (and whatever display the caller attaches) that ends with ok/changed/failed/unreachable per host.

Fast settings by default (Mitogen's free strategy, which keeps one Python interpreter per host and
sends each module once instead of unpacking and compiling it for every task; SSH pipelining and
persistent connections, forks, a JSON fact cache); `fast=False` runs with Ansible's own defaults so
that bench/ can compare the two.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from estate.atomic import write_atomic, write_if_changed
from estate.controls.base import control_at, registry
from estate.controls.spec import tag, toggle
from estate.errors import EstateError
from estate.inventory import load_inventory
from estate.ipam import HUB
from estate.loader import Estate, host_addresses
from estate.models import Flow
from estate.nftables import render_router_ruleset

PLAYBOOK_DIR = "playbooks"
PLAYBOOK = "site.yml"
ROLES_DIR = "roles"
BASELINE_ROLE = "baseline"  # every host runs it (playbooks/site.yml); another role runs on the hosts of its group
STATE_SUBDIR = "configure"

# The project's settings: what makes a run fast. `--ansible-defaults` leaves all of them out.
def fast_settings(state: Path, forks: int) -> dict[str, str]:
    import ansible_mitogen

    return {
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_FORKS": str(forks),
        # A task costs ~0.3 CPU-s of module start-up per host without Mitogen: on two cores that, not the
        # work, was most of an idempotent run (234 s -> 72 s for the lab's 12 hosts).
        "ANSIBLE_STRATEGY_PLUGINS": str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"),
        "ANSIBLE_STRATEGY": "mitogen_free",
        "ANSIBLE_GATHERING": "smart",
        "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "7200",
        "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=600s -o PreferredAuthentications=publickey",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(state / "cp"),
        "ANSIBLE_INTERPRETER_PYTHON": "/usr/bin/python3",
        # Facts only as ansible_facts[...] (the roles use nothing else): otherwise every task's variables are
        # built with a cleaned copy of the host's facts as top-level ansible_* names, a fifth of the
        # controller's time per task.
        "ANSIBLE_INJECT_FACT_VARS": "False",
        # Settings Ansible reads from a config file only (no environment variable).
        "ANSIBLE_CONFIG": str(write_fast_config(state)),
    }


# The free strategy's main loop peeks at every host's next task, then sleeps this long and looks again.
# Ansible's default (1 ms) made that loop take most of a core while hosts ran long tasks: 160 of the
# 650 CPU-seconds of a converge from bare hosts, on a machine with two cores. A host whose task ends
# waits at most this long for its next one.
INTERNAL_POLL_INTERVAL = 0.05


def write_fast_config(state: Path) -> Path:
    """The project's ansible.cfg (under .state/): what cannot be set through the environment."""
    path = state / "ansible.cfg"
    write_if_changed(path, f"[defaults]\ninternal_poll_interval = {INTERNAL_POLL_INTERVAL}\n")
    return path


# The estate's inventory plugin (estate.ansible_inventory behind it) and its collection in the repository; the
# same settings as the root's ansible.cfg, which Ansible does not read here (ansible-runner runs in playbooks/).
COLLECTIONS_DIR = "collections"
INVENTORY_PLUGIN = "shared_estate.estate.estate"
PLUGIN_CONFIG = "estate.yml"  # the plugin accepts a config file only by this name (or estate.yaml)


def collections_paths(root: Path) -> list[str]:
    """Where the inventory plugin's collection is: the estate's root, and the checkout this library runs from (a
    copy of framework.yaml and inventories/ elsewhere has none of its own)."""
    here = Path(__file__).resolve().parent.parent / COLLECTIONS_DIR
    return list(dict.fromkeys(str(p) for p in (root / COLLECTIONS_DIR, here) if p.is_dir()))


def common_settings(root: Path) -> dict[str, str]:
    """Settings both modes need: ansible-playbook beside this Python, where the roles and the inventory plugin
    are, no colour."""
    import sys

    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")])
    return {
        "PATH": path,
        "ANSIBLE_ROLES_PATH": str(root / ROLES_DIR),
        "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(collections_paths(root)),
        "ANSIBLE_INVENTORY_ENABLED": f"{INVENTORY_PLUGIN},ansible.builtin.yaml",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_FORCE_COLOR": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
    }


# --------------------------------------------------------------------------- variables


def _port_key(port: str) -> tuple[int, int]:
    low, _, high = port.partition("-")
    return int(low), int(high or low)


def merge_ports(ports: Iterable[str]) -> list[str]:
    """Ports and ranges ("5060-5061") merged into sorted, non-overlapping entries (nft rejects overlaps)."""
    spans = sorted(_port_key(p) for p in ports)
    merged: list[list[int]] = []
    for low, high in spans:
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in merged]


def inbound_ports(estate: Estate) -> dict[str, dict[str, dict[str, list[str]]]]:
    """What the flow matrix lets reach each segment: {site: {segment: {"tcp": [...], "udp": [...]}}}.

    A host's firewall opens these to any source (its role's services: a flow into its segment exists
    because a service there is used). The administration paths are not here (`is_admin_flow`):
    `admin_inbound` opens their ports only from the administration sources. Scope intra flows end at a
    council VLAN; inter flows at the VLAN of each council that agreed the flow with another
    (`Estate.exchanges`); hub flows end at a hub segment or at the VLAN of every council; hub-internal
    flows end at a hub segment. A council VLAN's ports are those of the paths into it (`Estate.resolved`); a
    hub segment's those of every flow naming it as its destination, whether or not a council is there yet."""
    plan = estate.addresses
    out: dict[str, dict[str, dict[str, list[str]]]] = {}
    for site in (HUB, *plan.councils):
        out[site] = {seg.name: {"tcp": [], "udp": []} for seg in plan.site(site).segments}
    for path in estate.resolved.paths:
        flow, end = path.flow, path.destination
        if end.site != HUB and not is_admin_flow(estate, flow):
            out[end.site][end.segment][flow.protocol].extend(flow.ports)
    for flow in estate.framework.network.flows:  # a hub segment: every flow naming it, with or without a council
        if flow.destination_is_hub and not is_admin_flow(estate, flow):
            out[HUB][flow.destination.removeprefix("hub/")][flow.protocol].extend(flow.ports)
    for segments in out.values():
        for ports in segments.values():
            for proto in ("tcp", "udp"):
                ports[proto] = merge_ports(ports[proto])
    return out


def is_admin_flow(estate: Estate, flow: Flow) -> bool:
    """An administration path: an `administration` flow, or any flow on the administration ports (22, 3389)."""
    admin = estate.framework.network.administration
    return flow.kind == "administration" or (flow.protocol == "tcp" and bool(
        {admin.linux_port, admin.windows_port} & set(flow.ports)))


def admin_inbound(estate: Estate) -> dict[str, dict[str, dict[str, list[str]]]]:
    """Who may administer each segment's hosts: {site: {segment: {"ports": [tcp...], "sources": [cidr...]}}}.

    Ports: framework.yaml `network.administration.linux_port` everywhere, plus the ports of every
    administration path (`is_admin_flow`) ending there. Sources: the networks of `network.administration.
    sources` (a `hub/<segment>` is that hub segment; a VLAN name is the host's own council's VLAN), plus
    the source of each administration path into the segment (FL-07: the council's own management VLAN
    to its servers; the paths of `Estate.resolved`); into a hub segment, of every administration flow naming
    it, with or without a council, whose source is a hub segment (a council VLAN is no source on a hub host,
    as in `network.administration.sources`). A host's firewall opens these ports only from these sources,
    and only on the interface they are routed through (roles/baseline host-firewall.nft.j2): never from a
    guest, voice or printer leg, nor from another council."""
    plan = estate.addresses
    admin = estate.framework.network.administration
    hub = {seg.name: str(seg.network) for seg in plan.hub.segments}

    def networks(end: str, site: str) -> list[str]:
        if end.startswith("hub/"):
            return [hub[end.removeprefix("hub/")]]
        return [str(seg.network) for other in ([] if site == HUB else [site]) for seg in plan.site(other).segments
                if seg.name == end]

    out: dict[str, dict[str, dict[str, list[str]]]] = {}
    for site in (HUB, *plan.councils):
        base = [n for source in admin.sources for n in networks(source, site)]
        out[site] = {seg.name: {"ports": [admin.linux_port], "sources": list(base)} for seg in plan.site(site).segments}
    for path in estate.resolved.paths:
        flow, end = path.flow, path.destination
        if end.site != HUB and is_admin_flow(estate, flow):
            entry = out[end.site][end.segment]
            entry["ports"].extend(p for p in flow.ports if flow.protocol == "tcp")
            entry["sources"].append(str(path.source.network))
    # a hub segment: every administration flow naming it, with or without a council; its sources only a hub
    # segment (a council VLAN's is no source on a hub host: the host's own council has none there)
    for flow in estate.framework.network.flows:
        if flow.destination_is_hub and is_admin_flow(estate, flow):
            entry = out[HUB][flow.destination.removeprefix("hub/")]
            entry["ports"].extend(p for p in flow.ports if flow.protocol == "tcp")
            entry["sources"].extend(networks(flow.source, HUB))
    return {site: {seg: {"ports": merge_ports(e["ports"]), "sources": list(dict.fromkeys(e["sources"]))}
                   for seg, e in segs.items()} for site, segs in out.items()}


def _pool(network: IPv4Network) -> tuple[str, str]:
    """The DHCP pool of a subnet: its upper half (static hosts take low addresses), less the broadcast."""
    size = network.num_addresses
    start = network.network_address + size // 2
    end = network.broadcast_address - 1
    return str(start), str(end)


def site_vars(estate: Estate) -> dict[str, Any]:
    """Per site (council key, or "shared" for the hub): name, block, VLAN subnets with DHCP pools, hosts."""
    plan = estate.addresses
    out: dict[str, Any] = {}
    for site in (HUB, *plan.councils):
        sp = plan.site(site)
        name = "Shared Estate hub" if site == HUB else estate.council(site).council.name
        vlans = []
        for seg in sp.segments:
            start, end = _pool(seg.network)
            vlans.append({"name": seg.name, "vlan_id": seg.vlan_id if seg.vlan_id is not None else 0,
                          "subnet": str(seg.network), "gateway": str(seg.gateway),
                          "pool_start": start, "pool_end": end})
        hosts = [{"name": n, "role": r, "vlan": s.name, "address": str(a)}
                 for n, r, s, a in host_addresses(estate, site)]
        records = [{"name": h["name"], "address": h["address"]} for h in hosts]
        out[site] = {"name": name, "block": str(sp.block), "vlans": vlans, "hosts": hosts, "records": records}
    return out


def log_senders(estate: Estate) -> list[dict[str, str]]:
    """Every host by the address its logs come from: [{address, council, host}], for the log collector, which
    files a message by its sender's address and never by the HOSTNAME the message claims. A host sends from
    its IPAM address; the router from the leg it sends on, so each segment's gateway address is the router's
    too (its legs hold every segment's gateway: inventories/shared/hosts.yml)."""
    plan = estate.addresses
    out: dict[str, dict[str, str]] = {}
    for site in (HUB, *plan.councils):
        for name, role, _, address in host_addresses(estate, site):
            out[str(address)] = {"address": str(address), "council": site, "host": name}
            if site == HUB and role == "router":
                for other in (HUB, *plan.councils):
                    for seg in plan.site(other).segments:
                        out.setdefault(str(seg.gateway), {"address": str(seg.gateway), "council": site, "host": name})
    return sorted(out.values(), key=lambda s: tuple(int(p) for p in s["address"].split(".")))


@dataclass(frozen=True)
class Secrets:
    """The helpdesk's passwords, made once and kept in .state/configure/secrets.json (mode 0600), and the REST
    automation user's auth token (32 hex digits: RT::AuthToken's form; the helpdesk role creates the token with
    them, and `estate tickets sync` reads them from here)."""

    helpdesk_root_password: str
    helpdesk_rest_password: str
    agents: dict[str, str]  # council key -> its agent's password
    helpdesk_api_token: str = ""

    def to_json(self) -> str:
        return json.dumps({"helpdesk_root_password": self.helpdesk_root_password,
                           "helpdesk_rest_password": self.helpdesk_rest_password,
                           "helpdesk_api_token": self.helpdesk_api_token,
                           "agents": self.agents}, indent=2, sort_keys=True) + "\n"


def _token() -> str:
    return secrets.token_urlsafe(18)


def load_secrets(path: Path, councils: Iterable[str]) -> Secrets:
    """Read the secrets file, adding any password that is missing (a new council's agent); written atomically."""
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EstateError.one(path, 0, "", f"corrupt secrets file ({exc}): remove it to make new secrets") from None
        if not isinstance(data, dict) or not isinstance(data.get("agents", {}), dict):
            raise EstateError.one(path, 0, "", "corrupt secrets file: remove it to make new secrets")
    agents = {str(k): str(v) for k, v in data.get("agents", {}).items()}
    wanted = Secrets(
        helpdesk_root_password=str(data.get("helpdesk_root_password") or _token()),
        helpdesk_rest_password=str(data.get("helpdesk_rest_password") or _token()),
        agents={key: agents.get(key) or _token() for key in sorted(councils)},
        helpdesk_api_token=str(data.get("helpdesk_api_token") or secrets.token_hex(16)),
    )
    text = wanted.to_json()
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text, mode=0o600)
    return wanted


def agent_name(council: str) -> str:
    """The login of a council's helpdesk agent account (one per council; it sees only its queue)."""
    return f"{council}-agent"


def playbook_vars(estate: Estate, secrets_: Secrets, ruleset_file: Path) -> dict[str, Any]:
    """The extra vars of playbooks/site.yml: the framework's controls, the address plan and the secrets.

    playbooks/group_vars maps them onto each role's variables (and the inventory's per-host facts)."""
    fw = estate.framework
    spec = {
        "security": fw.security.model_dump(mode="json"),
        "desktop": {k: getattr(fw.desktop, k).model_dump(mode="json")
                    for k in ("screen_lock", "usb_storage", "updates", "rdp_client", "local_admin")},
        "helpdesk": {"platform": fw.helpdesk.platform.model_dump(mode="json"),
                     "queues": fw.helpdesk.queues.model_dump(mode="json"),
                     "sla": fw.helpdesk.sla.model_dump(mode="json"),
                     "categories": list(fw.helpdesk.categories),
                     "tickets": fw.helpdesk.tickets.model_dump(mode="json")},
        "data_centre": {"log_analytics": fw.data_centre.log_analytics.model_dump(mode="json")},
    }
    councils = [{"key": key, "name": rec.council.name,
                 "agents": [{"name": agent_name(key), "password": secrets_.agents[key],
                             "real_name": f"{rec.council.name} service desk"}]}
                for key, rec in sorted(estate.councils.items())]
    return {
        "estate_framework_version": fw.version,
        "estate_spec": spec,
        "estate_sites": site_vars(estate),
        "estate_inbound": inbound_ports(estate),
        "estate_admin_inbound": admin_inbound(estate),
        "estate_log_senders": log_senders(estate),
        "estate_helpdesk_councils": councils,
        "estate_helpdesk_root_password": secrets_.helpdesk_root_password,
        "estate_helpdesk_rest_password": secrets_.helpdesk_rest_password,
        "estate_helpdesk_api_token": secrets_.helpdesk_api_token,
        # where the helpdesk role leaves rt-api.json and rt-ca.pem for `estate tickets sync` (beside the secrets)
        "estate_helpdesk_controller_dir": str(ruleset_file.parent),
        "estate_router_ruleset_file": str(ruleset_file),
    }


# --------------------------------------------------------------------------- inventory


def council_group(key: str) -> str:
    return "hub" if key == HUB else "council_" + key.replace("-", "_")


# --------------------------------------------------------------------------- controls: tags, toggles, exemptions


def _task_tags(node: Any) -> Iterator[str]:
    """Every tag of a tasks file's tasks, blocks and imports (a tag is a string or a list of them)."""
    if isinstance(node, list):
        for item in node:
            yield from _task_tags(item)
    elif isinstance(node, dict):
        tags = node.get("tags", [])
        yield from ([tags] if isinstance(tags, str) else [str(t) for t in tags or []])
        for key in ("block", "rescue", "always"):
            yield from _task_tags(node.get(key))


def role_controls(root: Path) -> dict[str, set[str]]:
    """The controls the roles enforce: {control id: {role, ...}}, from the `control_<id>` tags of
    roles/<role>/tasks/*.yml."""
    import yaml

    prefix = tag("")
    out: dict[str, set[str]] = {}
    for path in sorted((root / ROLES_DIR).glob("*/tasks/*.yml")):
        role = path.parent.parent.name
        for name in _task_tags(yaml.safe_load(path.read_text(encoding="utf-8"))):
            if name.startswith(prefix):
                out.setdefault(name.removeprefix(prefix), set()).add(role)
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class ExemptControl:
    """A control a council's active exemption turns off on some of its hosts (its toggle false there)."""

    council: str
    control: str  # the framework control's id (5.7)
    rule: str
    contract: str
    expires: dt.date
    hosts: tuple[str, ...]

    def describe(self) -> str:
        return (f"{self.control} on {self.council} ({self.rule}, until {self.expires}, contract {self.contract}): "
                + ", ".join(self.hosts))


def exempt_controls(estate: Estate, hosts: Mapping[str, Mapping[str, Any]], today: dt.date,
                    enforced: Mapping[str, set[str]]) -> list[ExemptControl]:
    """The controls each council's active exemptions turn off, and on which of its hosts.

    An exemption names a rule; its control is the rule's framework control. It is active until the day it
    expires (as in the compliance engine: exempt while today < expires). It covers the council's hosts in
    `hosts` (an inventory's, by the council's group) whose name matches its scope ("*": all of them; else a
    host name or glob; an asset or resource name matches no host) and run a role that enforces the control
    (`enforced`, by `role_controls`: the baseline runs everywhere, another role where the host is in its group).
    A control no role enforces on those hosts is not listed: nothing there would be turned off."""
    rules = registry()
    out: list[ExemptControl] = []
    for key, record in sorted(estate.councils.items()):
        group = council_group(key)
        members = sorted(name for name, h in hosts.items() if group in h["groups"])
        for ex in record.council.exemptions:
            cls = rules.get(ex.rule)
            if cls is None or not today < ex.expires:
                continue
            control = control_at(estate.framework, cls.control).id
            roles = enforced.get(control, set())
            covered = tuple(name for name in members if fnmatchcase(name, ex.scope)
                            and ({BASELINE_ROLE} | set(hosts[name]["groups"])) & roles)
            if covered:
                out.append(ExemptControl(key, control, ex.rule, ex.contract, ex.expires, covered))
    return out


def toggle_vars(exempt: Iterable[ExemptControl]) -> dict[str, dict[str, bool]]:
    """Host vars that turn the exempt controls off: {host: {estate_control_2_5: False, ...}}."""
    out: dict[str, dict[str, bool]] = {}
    for item in exempt:
        for host in item.hosts:
            out.setdefault(host, {})[toggle(item.control)] = False
    return {host: dict(sorted(v.items())) for host, v in sorted(out.items())}


def control_ids(estate: Estate, ids: Iterable[str], enforced: Mapping[str, set[str]], option: str) -> list[str]:
    """`--control`/`--skip-control` ids checked: each a framework control some role enforces, else one line, exit 2."""
    known = {control.id for _, control in estate.framework.controls()}
    out: list[str] = []
    for ident in ids:
        if ident not in known:
            raise EstateError.one(option, 0, "", f"no control {ident!r} in framework.yaml (ids such as "
                                  f"{', '.join(sorted(enforced)[:3])})")
        if ident not in enforced:
            raise EstateError.one(option, 0, "", f"control {ident} is enforced by no role (roles enforce: "
                                  f"{', '.join(enforced)})")
        if ident not in out:
            out.append(ident)
    return out


# --------------------------------------------------------------------------- events


@dataclass
class HostTally:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    task: str = ""
    changes: list[str] = field(default_factory=list)  # tasks that changed (in check mode: the drift)
    errors: list[str] = field(default_factory=list)


@dataclass
class Tally:
    """Per-host counts, built from ansible-runner's event stream; the final stats event settles them."""

    hosts: dict[str, HostTally] = field(default_factory=dict)
    final: bool = False

    def host(self, name: str) -> HostTally:
        return self.hosts.setdefault(name, HostTally())

    def feed(self, event: Mapping[str, Any]) -> tuple[str, str] | None:
        """Take one event; returns (host, what happened) for a display, or None."""
        kind = str(event.get("event", ""))
        data = event.get("event_data") or {}
        name = str(data.get("host") or "")
        task = str(data.get("task") or "")
        if kind == "playbook_on_stats":
            self._stats(data)
            return None
        if not name:
            return None
        tally = self.host(name)
        raw = data.get("res")
        res: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
        if kind == "runner_on_start":
            tally.task = task
            return name, f"running: {task}"
        if kind == "runner_on_ok":
            if res.get("changed"):
                tally.changes.append(task)
                return name, f"changed: {task}"
            return name, f"ok: {task}"
        if kind == "runner_on_failed" and not data.get("ignore_errors"):
            tally.errors.append(f"{task}: {_message(res)}")
            return name, f"FAILED: {task}: {_message(res)}"
        if kind == "runner_on_unreachable":
            tally.errors.append(f"{task}: unreachable: {_message(res)}")
            return name, f"UNREACHABLE: {_message(res)}"
        return None

    def _stats(self, data: Mapping[str, Any]) -> None:
        for key, attr in (("ok", "ok"), ("changed", "changed"), ("failures", "failed"), ("dark", "unreachable"),
                          ("skipped", "skipped")):
            for host, count in (data.get(key) or {}).items():
                setattr(self.host(str(host)), attr, int(count))
        self.final = True

    @property
    def totals(self) -> HostTally:
        out = HostTally()
        for t in self.hosts.values():
            out.ok += t.ok
            out.changed += t.changed
            out.failed += t.failed
            out.unreachable += t.unreachable
            out.skipped += t.skipped
        return out


def _message(res: Mapping[str, Any]) -> str:
    msg = res.get("msg") or res.get("stderr") or res.get("reason") or ""
    text = " ".join(str(msg).split())
    return text[:300] if text else "(no message)"


# --------------------------------------------------------------------------- the run


@dataclass
class Result:
    tally: Tally
    status: str  # ansible-runner's: successful | failed | timeout | canceled
    rc: int
    seconds: float
    check: bool
    artifacts: Path
    exempt: list[ExemptControl] = field(default_factory=list)  # controls turned off on some hosts (exemptions)

    @property
    def exit_code(self) -> int:
        """0: every host converged (in check mode: and none drifted); 1 otherwise."""
        t = self.tally.totals
        if t.failed or t.unreachable or self.rc != 0 or not self.tally.final:
            return 1
        return 1 if self.check and t.changed else 0


def state_dir(root: Path) -> Path:
    path = root / ".state" / STATE_SUBDIR
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def fact_cache(root: Path) -> Path:
    """Where the project's settings keep the facts Ansible gathered (`gathering = smart` reuses them)."""
    return root / ".state" / STATE_SUBDIR / "facts"


def forget_facts(root: Path) -> None:
    """Drop every cached fact: the hosts are new machines (the lab made them again), whatever their names."""
    shutil.rmtree(fact_cache(root), ignore_errors=True)


# The extra vars that hold a password: run() passes them in a file of their own, removed after the run.
SECRET_VARS = frozenset({"estate_helpdesk_councils", "estate_helpdesk_root_password", "estate_helpdesk_rest_password",
                         "estate_helpdesk_api_token"})


def write_secret_vars(state: Path, values: Mapping[str, Any]) -> Path:
    """A new 0600 file under .state/configure/ holding `values` as JSON (an Ansible vars file), for one run."""
    fd, name = tempfile.mkstemp(prefix=".secret-vars.", suffix=".json", dir=state)  # mkstemp: 0600, O_EXCL
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(dict(values), fh)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def prepare(estate: Estate, state: Path) -> dict[str, Any]:
    """Write the router's ruleset and the secrets under .state/configure/; return the play's estate_* vars (the
    inventory plugin gives them on `all`, the secrets as lookups: estate.ansible_inventory.global_vars)."""
    ruleset = state / "router.nft"
    write_if_changed(ruleset, render_router_ruleset(estate))
    secrets_ = load_secrets(state / "secrets.json", estate.councils)
    return playbook_vars(estate, secrets_, ruleset)


def plugin_config(estate: Estate, inventory: Path, state: Path, today: dt.date | None) -> Path:
    """The inventory plugin's config this run uses (.state/configure/estate.yml): a copy of `inventory` when it is
    one (inventories/estate.yml: its sources), else `inventory` as the lab's generated inventory (its hosts
    alone, as before the plugin), with the day the exemptions are judged on."""
    import yaml

    data = yaml.safe_load(inventory.read_text(encoding="utf-8")) if inventory.exists() else None
    if isinstance(data, dict) and "plugin" in data:
        doc = {"plugin": INVENTORY_PLUGIN, "sources": data.get("sources", ["lab", "production"])}
        if data.get("lab_inventory"):
            doc["lab_inventory"] = str(estate.root / str(data["lab_inventory"]))
    else:
        load_inventory(inventory)  # missing or malformed: one line, exit 2
        doc = {"plugin": INVENTORY_PLUGIN, "sources": ["lab"], "lab_inventory": str(inventory.resolve())}
    if today is not None:
        doc["today"] = today.isoformat()
    path = state / PLUGIN_CONFIG
    write_if_changed(path, "# Written by `estate configure`: the inventory plugin's config for this run.\n"
                     + yaml.safe_dump(doc, sort_keys=False))
    return path


def plugin_hosts(config: Path, env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The hosts the inventory plugin yields for `config`, as Ansible sees them (`ansible-inventory --list`, the
    same plugin the play then reads): {host: {"vars": {...}, "groups": {...}}}."""
    import subprocess

    argv = [str(Path(env["PATH"].split(os.pathsep)[0]) / "ansible-inventory"), "-i", str(config), "--list"]
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env}, timeout=600, check=False)
    if done.returncode != 0:
        # the plugin's AnsibleParserError: Ansible prints it after "<<< caused by >>>" (one line per problem)
        lines = done.stderr.splitlines()
        cause = lines[lines.index("<<< caused by >>>") + 2] if "<<< caused by >>>" in lines[:-2] else \
            (lines or ["(no message)"])[-1]
        raise EstateError.one(config, 0, "", f"ansible-inventory failed (exit {done.returncode}): {cause}")
    # a string not to be templated is {"__ansible_unsafe": "..."} in the listing (ansible-core's legacy inventory
    # JSON, ansible/_internal/_json/_profiles/_legacy.py): every string but the secrets' lookups
    data = json.loads(done.stdout, object_hook=lambda d: d["__ansible_unsafe"] if set(d) == {"__ansible_unsafe"} else d)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    out: dict[str, dict[str, Any]] = {name: {"vars": dict(v), "groups": {"all"}} for name, v in hostvars.items()}

    def walk(group: str, lineage: tuple[str, ...]) -> None:
        body = data.get(group) or {}
        for name in body.get("hosts", []):
            out.setdefault(name, {"vars": {}, "groups": {"all"}})["groups"].update((*lineage, group))
        for child in body.get("children", []):
            if child not in lineage:
                walk(child, (*lineage, group))

    walk("all", ())
    return out


def run(estate: Estate, *, inventory: Path, council: str | None = None, check: bool = False, fast: bool = True,
        forks: int | None = None, on_event: Callable[[Mapping[str, Any]], None] | None = None,
        timeout: int | None = None, host: str | None = None, overrides: Mapping[str, Any] | None = None,
        controls: Iterable[str] = (), skip_controls: Iterable[str] = (), today: dt.date | None = None) -> Result:
    """Run playbooks/site.yml over the inventory's hosts (one council's, with `council`; one host, with `host`)
    and tally the events. The play reads the estate's inventory plugin (shared_estate.estate.estate): `inventory`
    is its config (inventories/estate.yml) or the lab's generated inventory, whose hosts it then yields; the
    estate_* vars and the exemptions' toggles come from the plugin, as for `ansible-playbook -i
    inventories/estate.yml playbooks/site.yml`. `overrides` replaces vars for this run as extra vars (the lab
    tests: a council taken out of the helpdesk's input, a small log cap). `controls`: run only these controls'
    tasks (tags control_<id>, and the tasks every control needs, tagged always); `skip_controls`: all but these.
    Each council's active exemptions (as of `today`) turn their controls' toggles off on the hosts they cover."""
    import ansible_runner

    root = estate.root
    if council is not None and council != HUB:
        estate.council(council)  # an unknown key: one line, before anything runs
    state = state_dir(root)
    # a source that fails to parse fails the run, as the repo's ansible.cfg has it (else Ansible warns and goes on
    # with no host)
    env = {**common_settings(root), "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True"}
    config = plugin_config(estate, inventory, state, today)
    hosts = plugin_hosts(config, env)
    limit = None
    if council is not None:
        limit = council_group(council)
        if not any(limit in h["groups"] for h in hosts.values()):
            raise EstateError.one(inventory, 0, "", f"no host of council {council!r} in this inventory")
    if host is not None:
        if host not in hosts:
            raise EstateError.one(inventory, 0, "", f"no host {host!r} in this inventory")
        limit = host
    if not hosts:
        raise EstateError.one(inventory, 0, "", "the inventory has no hosts (start the lab with `estate lab up`, "
                              "or list a council's real hosts under production: in its hosts.yml)")
    enforced = role_controls(root)
    only = control_ids(estate, controls, enforced, "--control")
    skip = control_ids(estate, skip_controls, enforced, "--skip-control")
    exempt = exempt_controls(estate, hosts, today or dt.date.today(), enforced)
    if council is not None:
        exempt = [e for e in exempt if e.council == council]
    if host is not None:
        exempt = [ExemptControl(e.council, e.control, e.rule, e.contract, e.expires, (host,))
                  for e in exempt if host in e.hosts]
    extravars = dict(overrides or {})  # the estate_* vars are the plugin's; only a run's overrides outrank them
    (state / "cp").mkdir(exist_ok=True, mode=0o700)
    kwargs: dict[str, Any] = {}
    if fast:
        env.update(fast_settings(state, forks or max(10, len(hosts))))
        kwargs["fact_cache"] = str(fact_cache(root))  # absolute: outlives each run's artifacts
        kwargs["fact_cache_type"] = "jsonfile"
    else:
        kwargs["fact_cache_type"] = "memory"  # Ansible's default; ansible-runner sets nothing for it
        if forks:
            env["ANSIBLE_FORKS"] = str(forks)
    tally = Tally()

    def handler(event: Mapping[str, Any]) -> bool:
        tally.feed(event)
        if on_event is not None:
            on_event(event)
        return False  # nothing kept on disk per event: the tally is the record

    private = state / "runner"
    private.mkdir(exist_ok=True, mode=0o700)
    # ansible-runner keeps each run's inputs in env/ and reads back whatever a call leaves out: a
    # stale env/cmdline of an earlier `--check` would turn every later run into a dry run.
    shutil.rmtree(private / "env", ignore_errors=True)
    # The secrets are lookups in the plugin's inventory; a secret override (a lab test's) never goes through
    # ansible-runner's extravars: it writes those to env/extravars and leaves them there (a second copy of a
    # password beside secrets.json). They travel in a file of their own
    # (0600, `-e @file`, of which artifacts/<run>/command keeps only the path), removed when the run ends.
    public = {k: v for k, v in extravars.items() if k not in SECRET_VARS}
    secret_file = write_secret_vars(state, {k: v for k, v in extravars.items() if k in SECRET_VARS})
    cmdline = f"-e {shlex.quote('@' + str(secret_file))}" + (" --check --diff" if check else "")
    started = time.monotonic()
    try:
        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(root / PLAYBOOK_DIR),
            playbook=PLAYBOOK,
            inventory=[str(config)],
            extravars=public,
            tags=",".join(tag(c) for c in only) or None,
            skip_tags=",".join(tag(c) for c in skip) or None,
            envvars=env,
            limit=limit,
            cmdline=cmdline,
            quiet=True,
            event_handler=handler,
            rotate_artifacts=3,
            timeout=timeout,
            **kwargs,
        )
    finally:
        secret_file.unlink(missing_ok=True)
        shutil.rmtree(private / "env", ignore_errors=True)
    seconds = time.monotonic() - started
    return Result(tally, str(runner.status), int(runner.rc if runner.rc is not None else 1), seconds, check,
                  Path(runner.config.artifact_dir), exempt)

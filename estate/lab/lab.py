"""`estate lab up | status | down`: make, show and remove the lab (see estate.lab.topology for its shape).

`up` is idempotent and resumable: each step looks at what exists and makes only what is missing,
and every object is written to the state file before it is made. `down` removes exactly the
recorded objects, then puts back the kernel settings `up` changed.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

import yaml

from estate.atomic import write_atomic
from estate.configure import forget_facts
from estate.lab import lab_dir
from estate.lab import net as n
from estate.lab.image import ensure_image
from estate.lab.inventory import render_inventory
from estate.lab.progress import Progress
from estate.lab.sh import CommandFailed, lab_error, require, run
from estate.lab.state import LabState, locked
from estate.lab.topology import (
    CONFIG_FILE,
    MGMT_IF,
    VLAN_IF,
    LabHost,
    Topology,
    build,
    load_config,
)
from estate.loader import Estate, load_estate
from estate.nftables import render_router_ruleset
from estate.podman import podman_env, project_root

ROOT_TABLE = "se-lab"
ROUTER_TABLE = "inet estate_flows"
FORWARD_SYSCTL = "net.ipv4.ip_forward"
READY_SECONDS = 90.0
# every host may run its own firewall (nft) and ping; the router also sets its sysctls
HOST_CAPS = "NET_ADMIN,NET_RAW"


@dataclass(frozen=True)
class Paths:
    root: Path
    lab: Path

    @property
    def state(self) -> Path:
        return self.lab / "state.json"

    @property
    def lock(self) -> Path:
        return self.lab / "lock"

    @property
    def ssh(self) -> Path:
        return self.lab / "ssh"

    @property
    def key(self) -> Path:
        return self.ssh / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh / "known_hosts"

    @property
    def inventory(self) -> Path:
        return self.lab / "inventory.yml"

    @property
    def router_rules(self) -> Path:
        return self.lab / "router.nft"

    @property
    def apt_cache(self) -> Path:
        return self.lab.parent / "apt-cache"


def paths(root: Path | None = None) -> Paths:
    base = project_root(root)
    return Paths(base, lab_dir(base))


def plan(root: Path | None = None) -> tuple[Estate, Topology]:
    base = project_root(root)
    estate = load_estate(base)
    return estate, build(estate, load_config(base))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


# --------------------------------------------------------------------------- podman


class Podman:
    def __init__(self, root: Path) -> None:
        self.env = podman_env(root)

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        return run(["podman", *args], env=self.env, check=check, timeout=timeout).stdout

    def states(self) -> dict[str, str]:
        """name -> state ("running", "exited", "created", ...) of every container in the project's storage."""
        out = self("ps", "-a", "--format", "json", check=False).strip()
        found: dict[str, str] = {}
        for entry in json.loads(out) if out else []:
            for name in entry.get("Names") or []:
                found[name] = str(entry.get("State", "")).lower()
        return found


# --------------------------------------------------------------------------- checks


def check_clashes(topo: Topology, state: LabState, podman: Podman) -> None:
    """Names and addresses this lab would take that something else already holds: one line, exit 2."""
    where = f"lab/{CONFIG_FILE}"
    namespaces = n.netns_names()
    wanted_ns = [*topo.switch_namespaces, *(h.netns for h in topo.hosts), *(p.netns for p in topo.probes)]
    for name in wanted_ns:
        if name in namespaces and not state.has("netns", name):
            raise lab_error(f"name clash: network namespace {name} exists and this lab did not make it "
                            "(another checkout's lab? run `estate lab down` there)")
    root_links = n.link_names(None)
    for name in [topo.mgmt_bridge, *(h.mgmt_port for h in topo.hosts)]:
        if name in root_links and not state.has("link", name):
            raise lab_error(f"name clash: network interface {name} exists and this lab did not make it")
    containers = podman.states()
    for host in topo.hosts:
        if host.container in containers and not state.has("container", host.container):
            raise lab_error(f"name clash: container {host.container} exists and this lab did not make it")
    if f"ip {ROOT_TABLE}" in n.nft_tables(None) and not state.has("nft", f"ip {ROOT_TABLE}"):
        raise lab_error(f"name clash: nft table ip {ROOT_TABLE} exists and this lab did not make it")
    ours = {topo.mgmt_bridge, *(h.mgmt_port for h in topo.hosts)}
    checks = [(topo.mgmt_network, f"{where} management.network")]
    checks += [(block, f"{site}'s address block") for site, block in topo.blocks]
    for net, what in checks:
        for route, dev in n.routes(None):
            if dev not in ours and route.overlaps(net) and route.prefixlen > 0:
                raise lab_error(f"address clash: {what} {net} overlaps the route to {route} on {dev}")
        for addr, dev in n.all_addresses(None):
            if dev not in ours and addr.ip in net:
                raise lab_error(f"address clash: {what} {net} holds {addr.ip}, already on {dev}")


# --------------------------------------------------------------------------- up


def up(root: Path | None = None, *, progress: bool = True) -> Topology:
    require("podman", "ip", "bridge", "nft", "ssh", "ssh-keygen")
    p = paths(root)
    estate, topo = plan(p.root)
    with locked(p.lock):
        state = LabState.load(p.state)
        podman = Podman(p.root)
        check_clashes(topo, state, podman)
        image = ensure_image(p.root, progress=progress)
        _ssh_key(p)
        with Progress(progress) as bars:
            with bars.step("controller") as step:
                step.note("sysctl, management bridge, NAT")
                _sysctls(topo, state)
                _management(topo, state)
            with bars.step("switches", len(topo.segments)) as step:
                for ns in topo.switch_namespaces:
                    state.record("netns", ns)
                    n.netns_add(ns)
                    for seg in (s for s in topo.segments if s.switch_ns == ns):
                        n.bridge(ns, seg.bridge)
                        step.advance()
            _prune(topo, state, podman)
            with bars.step("host networks", len(topo.hosts)) as step:
                for host in topo.hosts:
                    step.note(host.name)
                    _host_network(topo, host, state, podman, image)
                    step.advance()
            with bars.step("host containers", len(topo.hosts)) as step:
                existing = podman.states()
                for host in topo.hosts:
                    state.record("container", host.container)
                if any(host.container not in existing for host in topo.hosts):
                    forget_facts(p.root)  # what Ansible cached about the machines these names had is stale

                def start(host: LabHost) -> None:
                    _host_container(topo, host, podman, image, p, existing.get(host.container))

                with ThreadPoolExecutor(max_workers=4) as pool:
                    for _ in pool.map(start, topo.hosts):
                        step.advance()
            with bars.step("router", len(topo.legs)) as step:
                _router(estate, topo, state, p, step)
            with bars.step("probe namespaces", len(topo.probes)) as step:
                for probe in topo.probes:
                    _probe_ns(topo, probe.netns, probe.port, probe.interface, probe.segment.switch_ns,
                              probe.segment.bridge, str(probe.segment.gateway), state)
                    step.advance()
            with bars.step("ssh ready", len(topo.hosts)) as step:
                _ready(topo, podman, p, step)
        _write_inventory(estate, topo, p)
        state.data["topology"] = {"hosts": [h.name for h in topo.hosts], "image": image}
        state.save()
    return topo


def _ssh_key(p: Paths) -> None:
    p.ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not p.key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "estate-lab", "-f", str(p.key)])


def _sysctls(topo: Topology, state: LabState) -> None:
    wanted: dict[str, int] = {**topo.sysctl, FORWARD_SYSCTL: 1}
    for key, value in wanted.items():
        current = n.sysctl_read(key)
        if int(current) >= value:
            continue
        if not state.has("sysctl", key):
            state.record("sysctl", key, {"was": current, "set": str(value)})
        n.sysctl_write(key, value)


def root_ruleset(topo: Topology) -> str:
    """The controller's own table: hosts reach out (NAT) but not each other, the estate or the controller."""
    mgmt, br = topo.mgmt_network, topo.mgmt_bridge
    return "\n".join([
        f"table ip {ROOT_TABLE}",
        f"delete table ip {ROOT_TABLE}",
        f"table ip {ROOT_TABLE} {{",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy accept;",
        f'\t\tiifname "{br}" ct state established,related accept',
        f'\t\tiifname "{br}" counter drop comment "lab hosts open no connection to the controller"',
        "\t}",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        f'\t\tiifname "{br}" oifname "{br}" counter drop comment "hosts do not meet over management"',
        f'\t\tiifname "{br}" ip daddr {topo.supernet} counter drop comment "the estate only through its router"',
        f'\t\toifname "{br}" ct state established,related accept',
        f'\t\toifname "{br}" counter drop comment "nothing from outside into the management network"',
        "\t}",
        "\tchain postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        f'\t\tip saddr {mgmt} oifname != "{br}" masquerade',
        "\t}",
        "}",
        "",
    ])


def _management(topo: Topology, state: LabState) -> None:
    state.record("link", topo.mgmt_bridge)
    n.bridge(None, topo.mgmt_bridge)
    n.ensure_addresses(None, topo.mgmt_bridge, [topo.controller])
    script = root_ruleset(topo)
    name = f"ip {ROOT_TABLE}"
    state.record("nft", name)
    if state.loaded(name) != _digest(script) or name not in n.nft_tables(None):
        n.nft_load(None, script)
        state.set_loaded(name, _digest(script))


def _host_spec(host: LabHost, image: str, topo: Topology) -> str:
    return json.dumps({"segment": host.segment.label, "bridge": host.segment.bridge, "address": str(host.interface),
                       "mgmt": str(host.mgmt_address), "controller": str(topo.controller), "role": host.role,
                       "image": image, "supernet": str(topo.supernet)}, sort_keys=True)


def _remove_host(name: str, netns: str, mgmt_port: str | None, state: LabState, podman: Podman) -> None:
    if state.has("container", name):
        podman("rm", "-f", "-t", "0", name, check=False)
        state.forget("container", name)
    if state.has("netns", netns):
        n.netns_del(netns)
        state.forget("netns", netns)
    if mgmt_port and state.has("link", mgmt_port):
        n.ip(None, "link", "del", mgmt_port, check=False)
        state.forget("link", mgmt_port)
    state.set_spec(name, None)


def _wire(ns: str, port: str, peer_ns: str, peer: str) -> None:
    """A veth between a switch namespace (port) and a host or probe namespace (peer), made only if missing."""
    has_port = n.link_exists(ns, port)
    has_peer = n.link_exists(peer_ns, peer)
    if has_port and has_peer:
        return
    if has_port:
        n.ip(ns, "link", "del", port)
    if has_peer:
        n.ip(peer_ns, "link", "del", peer)
    n.veth(ns, port, peer_ns, peer)


def _host_network(topo: Topology, host: LabHost, state: LabState, podman: Podman, image: str) -> None:
    """The host's namespace: its VLAN leg (not the router's: see _router), its management leg, routes."""
    spec = _host_spec(host, image, topo)
    if state.spec(host.container) not in (None, spec):
        _remove_host(host.container, host.netns, host.mgmt_port, state, podman)
    state.set_spec(host.container, spec)
    state.record("netns", host.netns)
    n.netns_add(host.netns)
    if host is not topo.router:
        seg = host.segment
        _wire(seg.switch_ns, host.port, host.netns, VLAN_IF)
        n.attach(seg.switch_ns, host.port, seg.bridge)
        n.ensure_addresses(host.netns, VLAN_IF, [host.interface])
    state.record("link", host.mgmt_port)
    if not (n.link_exists(None, host.mgmt_port) and n.link_exists(host.netns, MGMT_IF)):
        if n.link_exists(None, host.mgmt_port):
            n.ip(None, "link", "del", host.mgmt_port)
        if n.link_exists(host.netns, MGMT_IF):
            n.ip(host.netns, "link", "del", MGMT_IF)
        n.veth(None, host.mgmt_port, host.netns, MGMT_IF)
    n.attach(None, host.mgmt_port, topo.mgmt_bridge, isolated=True)
    n.ensure_addresses(host.netns, MGMT_IF, [IPv4Interface(f"{host.mgmt_address}/{topo.mgmt_network.prefixlen}")])
    if host is not topo.router:
        n.ensure_route(host.netns, str(topo.supernet), str(host.segment.gateway), VLAN_IF)
    n.ensure_route(host.netns, "default", str(topo.controller.ip), MGMT_IF)


def _host_container(topo: Topology, host: LabHost, podman: Podman, image: str, p: Paths, current: str | None) -> None:
    """The host's container (recorded by the caller), created in its namespace and started if it is not running."""
    if current is None:
        cache = p.apt_cache / host.name
        cache.mkdir(parents=True, exist_ok=True)
        argv = ["create", "--name", host.container, "--hostname", host.name,
                "--network", f"ns:/run/netns/{host.netns}", "--cap-add", HOST_CAPS,
                "--label", f"se.lab={p.root}", "--label", f"se.host={host.name}", "--label", f"se.role={host.role}",
                "--volume", f"{cache}:/var/cache/apt/archives:rw"]
        if host is topo.router:
            argv += ["--security-opt", "unmask=/proc/*"]
        try:
            podman(*argv, image)
        except CommandFailed:
            # an interrupted `podman create` can leave the name held by storage alone: clear it, once
            podman("rm", "-f", "-t", "0", host.container, check=False)
            podman("rm", "--storage", host.container, check=False)
            podman(*argv, image)
    if current != "running":
        podman("cp", str(p.key.with_suffix(".pub")), f"{host.container}:/root/.ssh/authorized_keys")
        podman("start", host.container)


def _router(estate: Estate, topo: Topology, state: LabState, p: Paths, step: Any) -> None:
    router = topo.router
    wanted = {leg.ifname for leg in topo.legs}
    for link in n.link_names(router.netns):
        if link.startswith("r") and link not in wanted:
            n.ip(router.netns, "link", "del", link)
    for leg in topo.legs:
        seg = leg.segment
        _wire(seg.switch_ns, leg.port, router.netns, leg.ifname)
        n.attach(seg.switch_ns, leg.port, seg.bridge)
        n.ensure_addresses(router.netns, leg.ifname, leg.addresses)
        step.advance()
    n.ns_sysctl(router.netns, FORWARD_SYSCTL, 1)
    script = render_router_ruleset(estate)
    _write(p.router_rules, script)
    key = f"router {ROUTER_TABLE}"
    if state.loaded(key) != _digest(script) or ROUTER_TABLE not in n.nft_tables(router.netns):
        try:
            n.nft_load(router.netns, script)
        except CommandFailed as exc:
            raise lab_error(f"the router's ruleset does not load: {exc.last_line}", str(p.router_rules)) from None
        state.set_loaded(key, _digest(script))


def _probe_ns(topo: Topology, netns: str, port: str, iface: IPv4Interface, switch_ns: str, bridge: str, gateway: str,
              state: LabState) -> None:
    spec = json.dumps({"address": str(iface), "bridge": f"{switch_ns}/{bridge}"}, sort_keys=True)
    if state.spec(netns) not in (None, spec) and state.has("netns", netns):
        n.netns_del(netns)
        state.forget("netns", netns)
    state.set_spec(netns, spec)
    state.record("netns", netns)
    n.netns_add(netns)
    _wire(switch_ns, port, netns, VLAN_IF)
    n.attach(switch_ns, port, bridge)
    n.ensure_addresses(netns, VLAN_IF, [iface])
    n.ensure_route(netns, str(topo.supernet), gateway, VLAN_IF)


def _prune(topo: Topology, state: LabState, podman: Podman) -> None:
    """Remove what an earlier `up` made and this topology no longer has (a host taken out of hosts.yml)."""
    containers = {h.container for h in topo.hosts}
    namespaces = {*topo.switch_namespaces, *(h.netns for h in topo.hosts), *(p.netns for p in topo.probes)}
    links = {topo.mgmt_bridge, *(h.mgmt_port for h in topo.hosts)}
    for name in state.names("container"):
        if name not in containers:
            podman("rm", "-f", "-t", "0", name, check=False)
            state.forget("container", name)
            state.set_spec(name, None)
    for name in state.names("netns"):
        if name not in namespaces:
            n.netns_del(name)
            state.forget("netns", name)
            state.set_spec(name, None)
    for name in state.names("link"):
        if name not in links:
            n.ip(None, "link", "del", name, check=False)
            state.forget("link", name)


def _port_open(address: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def _ssh_argv(p: Paths, known_hosts: Path | None = None) -> list[str]:
    return ["ssh", "-i", str(p.key), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "-o", f"UserKnownHostsFile={known_hosts or p.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "LogLevel=ERROR"]


def _ready(topo: Topology, podman: Podman, p: Paths, step: Any) -> None:
    """Wait for every host's sshd, take its host key from inside (podman exec), then log in once."""

    def one(host: LabHost) -> tuple[LabHost, str]:
        deadline = time.monotonic() + READY_SECONDS
        key = ""
        while time.monotonic() < deadline:
            if _port_open(str(host.mgmt_address), 22):
                key = podman("exec", host.container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub", check=False).strip()
                if key:
                    break
            time.sleep(0.3)
        if not key:
            raise lab_error(f"host {host.name}: sshd did not come up on {host.mgmt_address} within "
                            f"{READY_SECONDS:.0f} s (podman logs {host.container})")
        return host, " ".join(key.split()[:2])

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys: list[tuple[LabHost, str]] = []
        for item in pool.map(one, topo.hosts):
            keys.append(item)
            step.advance()
    _write(p.known_hosts, "".join(f"{h.mgmt_address} {key}\n" for h, key in keys))

    def login(host: LabHost) -> None:
        result = run([*_ssh_argv(p), f"root@{host.mgmt_address}", "true"], check=False, timeout=30)
        if result.returncode != 0:
            detail = (result.stderr.strip().splitlines() or ["?"])[-1]
            raise lab_error(f"host {host.name}: ssh root@{host.mgmt_address} failed: {detail}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(login, topo.hosts))


def _write_inventory(estate: Estate, topo: Topology, p: Paths) -> None:
    doc = render_inventory(topo, key_file=p.key, known_hosts=p.known_hosts,
                           framework_version=estate.framework.version)
    header = "# The Ansible inventory of the running lab, written by `estate lab up`. Do not edit.\n"
    _write(p.inventory, header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))


# --------------------------------------------------------------------------- down


def down(root: Path | None = None, *, progress: bool = True) -> int:
    """Remove everything the lab recorded. Returns how many objects were removed."""
    p = paths(root)
    with locked(p.lock):
        state = LabState.load(p.state)
        if state.is_empty:
            state.remove_file()
            return 0
        total = sum(len(state.names(k)) for k in ("container", "netns", "link", "nft", "sysctl"))
        with Progress(progress) as bars, bars.step("down", total) as step:
            containers = state.names("container")
            if containers:
                require("podman")
                podman = Podman(p.root)
                existing = podman.states()
                present = [c for c in containers if c in existing]
                if present:
                    podman("rm", "-f", "-t", "0", *present, timeout=300)
                for name in containers:
                    if name not in existing:  # left by storage alone after an interrupted create
                        podman("rm", "--storage", name, check=False)
                for name in containers:
                    state.forget("container", name)
                    step.advance()
            for name in state.names("netns"):
                n.netns_del(name)
                state.forget("netns", name)
                step.advance()
            root_links = n.link_names(None)
            for name in state.names("link"):
                if name in root_links:
                    n.ip(None, "link", "del", name, check=False)
                state.forget("link", name)
                step.advance()
            tables = n.nft_tables(None)
            for name in state.names("nft"):
                if name in tables:
                    run(["nft", "delete", "table", *name.split()], check=False)
                state.forget("nft", name)
                step.advance()
            others_route = bool(n.bridges(None) - {name for name in n.link_names(None) if name.startswith("se-")})
            for key in state.names("sysctl"):
                record = state.get("sysctl", key)
                # forwarding stays on while another bridge (a Podman network, say) may rely on it
                keep = key == FORWARD_SYSCTL and others_route
                if isinstance(record, dict) and n.sysctl_read(key) == str(record.get("set")) and not keep:
                    n.sysctl_write(key, str(record.get("was")))
                state.forget("sysctl", key)
                step.advance()
        state.remove_file()
        for path in (p.inventory, p.known_hosts, p.router_rules):
            path.unlink(missing_ok=True)
        return total


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class HostStatus:
    host: LabHost
    container: str      # running, exited, ... or "missing"
    ssh: bool


def status(root: Path | None = None) -> tuple[Topology, list[HostStatus], bool]:
    """The planned topology, each host's state, and whether the lab is up (anything recorded)."""
    p = paths(root)
    _, topo = plan(p.root)
    state = LabState.load(p.state)
    if state.is_empty:
        return topo, [HostStatus(h, "down", False) for h in topo.hosts], False
    states = Podman(p.root).states() if state.names("container") else {}

    def one(host: LabHost) -> HostStatus:
        running = states.get(host.container, "missing")
        return HostStatus(host, running, running == "running" and _port_open(str(host.mgmt_address), 22))

    with ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(one, topo.hosts))
    return topo, rows, True

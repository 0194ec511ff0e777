"""Gathering live host facts (estate.controls.facts.HostFacts) from the estate's hosts, in parallel.

One shell script runs on each host through testinfra (its `podman://` backend for lab containers on
this machine, `ssh://` otherwise) and prints one section per fact source; `parse()` turns the sections
into HostFacts. Parsing is pure, so it is tested on recorded output; gathering is tested on the lab.
A host that does not answer is reported `reachable=False` (every host rule then fails for it).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from estate.controls.facts import HOST_ROLES, HostFacts
from estate.controls.spec import Probe, ProbeParams, probes
from estate.inventory import inventory_hosts, load_inventory
from estate.podman import podman_env

# Packages that are RDP clients, the framework's approved one first (see `rdp_candidates`).
RDP_CLIENTS = ("freerdp2-x11", "freerdp3-x11", "freerdp2-wayland", "remmina", "rdesktop")
KIOSK_USER = "kiosk"
KIOSK_SESSION = "/etc/estate/kiosk-session"
MARK = "### estate-section "

# Runs as root on the host (POSIX sh): one section per probe command, each after its marker line. The commands
# come from the probes the controls declare (estate.controls.spec.Probe); `script()` puts them together.
HEAD = r"""
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
s() { printf '\n### estate-section %s\n' "$1"; }
"""


@dataclass(frozen=True)
class Target:
    """One host to gather from: its inventory name, council and role, and the testinfra host spec."""

    host: str
    council: str
    role: str
    spec: str  # "podman://CONTAINER" or "ssh://USER@ADDRESS"
    ssh_key: str | None = None
    ssh_args: str | None = None


def params(rdp_packages: Iterable[str] = RDP_CLIENTS, kiosk: str = KIOSK_USER) -> ProbeParams:
    return ProbeParams(rdp_packages=tuple(rdp_packages), kiosk_user=kiosk, kiosk_session=KIOSK_SESSION)


class _Quoted:
    """ProbeParams as a probe's command sees them: every value shell-quoted (a tuple as quoted words)."""

    def __init__(self, p: ProbeParams) -> None:
        self._p = p

    def __getattr__(self, name: str) -> str:
        value = getattr(self._p, name)
        if isinstance(value, tuple):
            return " ".join(shlex.quote(str(v)) for v in value)
        return shlex.quote(str(value))


def all_probes() -> list[Probe]:
    """The probes of every control, then the gatherer's own."""
    return [*probes(), *CORE_PROBES]


def script(rdp_packages: Iterable[str] = RDP_CLIENTS, kiosk: str = KIOSK_USER) -> str:
    """The gathering script: every probe's commands, each section once."""
    quoted = _Quoted(params(rdp_packages, kiosk))
    seen: dict[str, str] = {}
    for probe in all_probes():
        for section, command in probe.commands.items():
            text = command.format(p=quoted)
            if seen.setdefault(section, text) != text:
                raise TypeError(f"probe section {section!r} is declared twice with different commands")
    body = "".join(f"s {name}; {command}\n" for name, command in seen.items())
    return HEAD + body + "s end\n"


def rdp_candidates(approved: str) -> list[str]:
    return [approved, *(p for p in RDP_CLIENTS if p != approved)]


# --------------------------------------------------------------------------- parsing (pure)


def sections(output: str) -> dict[str, str]:
    """The script's output split at its markers: {section name: text}."""
    out: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in output.splitlines():
        if line.startswith(MARK):
            if name is not None:
                out[name] = "\n".join(lines).strip("\n")
            name, lines = line[len(MARK):].strip(), []
        elif name is not None:
            lines.append(line)
    if name is not None:
        out[name] = "\n".join(lines).strip("\n")
    return out


def parse_listening_tcp(text: str) -> list[int]:
    ports: set[int] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            port = fields[3].rsplit(":", 1)[-1]
            if port.isdigit():
                ports.add(int(port))
    return sorted(ports)


def parse_services(text: str) -> list[str]:
    return sorted({line.split()[0].removesuffix(".service") for line in text.splitlines() if line.strip()})


def parse(target: Target, output: str, rdp: Iterable[str] = RDP_CLIENTS) -> HostFacts:
    """HostFacts from the script's output on one host: each probe that runs on the host's role parses its
    sections into its fields."""
    sec = sections(output)
    if "end" not in sec:
        return HostFacts(host=target.host, council=target.council, role=target.role, reachable=False)
    p = params(rdp)
    fields: dict[str, Any] = {}
    for probe in all_probes():
        if probe.roles is not None and target.role not in probe.roles:
            continue
        got = probe.parse({name: sec.get(name, "") for name in probe.commands}, p)
        fields.update({k: v for k, v in got.items() if k in probe.fields})
    return HostFacts(host=target.host, council=target.council, role=target.role, reachable=True, **fields)


# The gatherer's own probes: facts that no one control owns.
CORE_PROBES: tuple[Probe, ...] = (
    Probe(fields=("container",), commands={"virt": "systemd-detect-virt --container 2>/dev/null"},
          parse=lambda s, p: {"container": s["virt"].strip() not in ("", "none")}),
    Probe(fields=("listening_tcp",), commands={"listen": "ss -Hltn 2>/dev/null"},
          parse=lambda s, p: {"listening_tcp": parse_listening_tcp(s["listen"])}),
    Probe(fields=("services_active",),
          commands={"services": "systemctl list-units --type=service --state=active --no-legend --plain 2>/dev/null"},
          parse=lambda s, p: {"services_active": parse_services(s["services"])}),
)



# --------------------------------------------------------------------------- targets


def targets_from_inventory(inventory: Mapping[str, Any], backend: str = "auto",
                           containers: Iterable[str] = ()) -> list[Target]:
    """One target per inventory host. backend: "podman" (the host's estate_container), "ssh"
    (ansible_host, ansible_user, its key), or "auto" (podman for containers running on this machine)."""
    running = set(containers)
    out: list[Target] = []
    for name, entry in sorted(inventory_hosts(inventory).items()):
        hv = entry["vars"]
        role = str(hv.get("estate_role") or next((g for g in HOST_ROLES if g in entry["groups"]), ""))
        council = str(hv.get("estate_council") or "")
        container = hv.get("estate_container")
        use_podman = backend == "podman" or (backend == "auto" and container and container in running)
        if use_podman and container:
            out.append(Target(name, council, role, f"podman://{container}"))
        else:
            user = hv.get("ansible_user", "root")
            address = hv.get("ansible_host", name)
            out.append(Target(name, council, role, f"ssh://{user}@{address}",
                              ssh_key=hv.get("ansible_ssh_private_key_file"),
                              ssh_args=hv.get("ansible_ssh_common_args")))
    return out


# --------------------------------------------------------------------------- gathering


def run_script(target: Target, text: str, timeout: float) -> str:
    """Run the script on one host through testinfra; its stdout ("" when the host does not answer)."""
    import testinfra

    kwargs: dict[str, Any] = {}
    if target.spec.startswith("ssh://"):
        extra = "-o BatchMode=yes -o ConnectTimeout=5"
        if target.ssh_args:
            extra += " " + target.ssh_args
        kwargs = {"ssh_identity_file": target.ssh_key, "ssh_extra_args": extra, "timeout": int(timeout)}
    host = testinfra.get_host(target.spec, **kwargs)
    result = host.run("timeout %s sh -c %s", str(int(timeout)), text)  # testinfra quotes the arguments
    return str(result.stdout) if result.rc == 0 else ""


def gather(targets: Iterable[Target], *, approved_rdp: str | None = None, workers: int = 16, timeout: float = 60,
           runner: Callable[[Target, str, float], str] | None = None) -> list[HostFacts]:
    """Facts of every target, gathered in parallel, in the targets' order."""
    items = list(targets)
    candidates = rdp_candidates(approved_rdp) if approved_rdp else list(RDP_CLIENTS)
    text = script(candidates)
    call = runner or run_script

    def one(target: Target) -> HostFacts:
        try:
            output = call(target, text, timeout)
        except Exception:  # a host that cannot be reached or exec'd into is unreachable, not a crash
            output = ""
        return parse(target, output, candidates)

    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        return list(pool.map(one, items))


def running_containers(env: Mapping[str, str]) -> set[str]:
    """Names of the containers podman runs on this machine (with the project's podman environment)."""
    import subprocess

    try:
        proc = subprocess.run(["podman", "ps", "--format", "{{.Names}}"], env=dict(env), capture_output=True,
                              text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(proc.stdout.split()) if proc.returncode == 0 else set()


def gather_inventory(estate_root: Path, inventory: Path, *, backend: str = "auto",
                     councils: Iterable[str] | None = None, approved_rdp: str | None = None) -> list[HostFacts]:
    """Facts of the inventory's hosts (optionally only some councils'), podman backend for local containers."""
    import os

    data = load_inventory(inventory)
    containers: set[str] = set()
    if backend in ("auto", "podman"):
        env = podman_env(estate_root)
        # testinfra's podman backend runs `podman exec` with this process's environment
        for key in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"):
            os.environ[key] = env[key]
        containers = running_containers(env)
    targets = targets_from_inventory(data, backend, containers)
    if councils is not None:
        wanted = set(councils)
        targets = [t for t in targets if t.council in wanted]
    return gather(targets, approved_rdp=approved_rdp)

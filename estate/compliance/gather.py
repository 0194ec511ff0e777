"""Gathering live host facts (estate.controls.facts.HostFacts) from the estate's hosts, in parallel.

One shell script runs on each host through testinfra (its `podman://` backend for lab containers on
this machine, `ssh://` otherwise) and prints one section per fact source; `parse()` turns the sections
into HostFacts. Parsing is pure, so it is tested on recorded output; gathering is tested on the lab.
A host that does not answer is reported `reachable=False` (every host rule then fails for it).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from estate.controls.facts import HOST_ROLES, HostFacts
from estate.controls.spec import Probe, ProbeParams, probes

# Packages that are RDP clients, the framework's approved one first (see `rdp_candidates`).
RDP_CLIENTS = ("freerdp2-x11", "freerdp3-x11", "freerdp2-wayland", "remmina", "rdesktop")
KIOSK_USER = "kiosk"
KIOSK_SESSION = "/etc/estate/kiosk-session"
NO_LOGIN_SHELLS = {"/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false", "/bin/sync", ""}
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
    """The probes of every control, then the ones not yet in a control's home, then the gatherer's own."""
    return [*probes(), *UNMOVED_PROBES, *CORE_PROBES]


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


def _kv(text: str, sep: str = "=") -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if sep in line:
            key, _, value = line.partition(sep)
            out[key.strip()] = value.strip().strip('"')
    return out


def parse_nft_input_policy(text: str) -> str | None:
    """The effective default of the input hook: "drop" if any base chain on it drops, else "accept"; None
    when no chain filters input (no host firewall). Every base chain on a hook sees the packet, so one
    dropping chain is enough to deny by default."""
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        return None
    policies = []
    for item in data.get("nftables", []) if isinstance(data, dict) else []:
        chain = item.get("chain") if isinstance(item, dict) else None
        if isinstance(chain, dict) and chain.get("hook") == "input" and chain.get("family") in ("inet", "ip"):
            policies.append(str(chain.get("policy", "accept")))
    if not policies:
        return None
    return "drop" if "drop" in policies else policies[0]


def parse_listening_tcp(text: str) -> list[int]:
    ports: set[int] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            port = fields[3].rsplit(":", 1)[-1]
            if port.isdigit():
                ports.add(int(port))
    return sorted(ports)


def parse_passwd(text: str) -> tuple[list[str], list[str]]:
    accounts: list[str] = []
    login: list[str] = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 7:
            continue
        accounts.append(parts[0])
        if parts[6].strip() not in NO_LOGIN_SHELLS:
            login.append(parts[0])
    return accounts, login


def _pam_uses(stack: str, module: str) -> bool:
    return any(module in line.split("#", 1)[0] for line in stack.splitlines())


def parse_faillock(conf: str, common_auth: str) -> int | None:
    """deny= of faillock.conf, when pam_faillock is in the authentication stack (else None: nothing locks).
    pam_faillock's own default is 3."""
    if not _pam_uses(common_auth, "pam_faillock.so"):
        return None
    value = _kv(conf).get("deny")
    return int(value) if value and value.isdigit() else 3


def parse_pass_min_len(conf: str, common_password: str) -> int | None:
    """minlen of pwquality.conf, when pam_pwquality checks passwords (else None). Its default is 8."""
    if not _pam_uses(common_password, "pam_pwquality.so"):
        return None
    value = _kv(conf).get("minlen")
    return int(value) if value and value.isdigit() else 8


def parse_unattended(status: str, periodic: str, timer: str) -> bool:
    installed = "install ok installed" in status
    values = dict(re.findall(r'^(APT::Periodic::\S+) "([^"]*)";', periodic, re.M))
    enabled = values.get("APT::Periodic::Unattended-Upgrade", "0") not in ("0", "")
    return installed and enabled and timer.strip() == "enabled"


_OMFWD = re.compile(r'type\s*=\s*"omfwd"', re.I)


def parse_log_forward(conf: str, active: str) -> str | None:
    """host:port of the first forwarding action (RainerScript omfwd or legacy @@host:port) of a running rsyslog."""
    if active.strip() != "active":
        return None
    text = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    for match in re.finditer(r"action\s*\((.*?)\)", text, re.S):
        body = match.group(1)
        if _OMFWD.search(body):
            target = re.search(r'target\s*=\s*"([^"]+)"', body)
            port = re.search(r'port\s*=\s*"(\d+)"', body)
            if target:
                return f"{target.group(1)}:{port.group(1) if port else '514'}"
    legacy = re.search(r"^\S+\s+@{1,2}(?:\([^)]*\))?([\w.\-]+)(?::(\d+))?", text, re.M)
    if legacy:
        return f"{legacy.group(1)}:{legacy.group(2) or '514'}"
    return None


def parse_chrony_sources(text: str) -> list[str]:
    """Servers chronyd has as sources (`chronyc -n -c sources`: mode,state,address,...; mode ^ is a server)."""
    out: list[str] = []
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0] == "^" and fields[2] not in out:
            out.append(fields[2])
    return out


def parse_ntp_servers(active: str, sources: str, conf: str) -> list[str]:
    """The servers a running chronyd uses: its live sources, and the `server`/`pool` lines of its
    configuration (a name that does not resolve yet is configured but not yet a source). [] when
    chronyd is not running."""
    if active.strip() != "active":
        return []
    out = parse_chrony_sources(sources)
    for line in conf.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] in ("server", "pool", "peer") and words[1] not in out:
            out.append(words[1])
    return out


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

# Probes that have not moved into their control's home yet (issue 14 moves them with their controls).
UNMOVED_PROBES: tuple[Probe, ...] = (
    Probe(fields=("nft_input_policy",), commands={"nft": "nft -j list chains 2>/dev/null"},
          parse=lambda s, p: {"nft_input_policy": parse_nft_input_policy(s["nft"])}),
    Probe(fields=("accounts", "login_accounts"), commands={"passwd": "cat /etc/passwd 2>/dev/null"},
          parse=lambda s, p: dict(zip(("accounts", "login_accounts"), parse_passwd(s["passwd"]), strict=True))),
    Probe(fields=("faillock_deny",),
          commands={"faillock": "cat /etc/security/faillock.conf 2>/dev/null",
                    "common-auth": "cat /etc/pam.d/common-auth 2>/dev/null"},
          parse=lambda s, p: {"faillock_deny": parse_faillock(s["faillock"], s["common-auth"])}),
    Probe(fields=("pass_min_len",),
          commands={"pwquality": "cat /etc/security/pwquality.conf /etc/security/pwquality.conf.d/*.conf 2>/dev/null",
                    "common-password": "cat /etc/pam.d/common-password 2>/dev/null"},
          parse=lambda s, p: {"pass_min_len": parse_pass_min_len(s["pwquality"], s["common-password"])}),
    Probe(fields=("unattended_upgrades",),
          commands={"uu-status": "dpkg-query -W -f='${{Status}}\\n' unattended-upgrades 2>/dev/null",
                    "uu-periodic": "apt-config dump 2>/dev/null | grep -E "
                                   "'^APT::Periodic::(Unattended-Upgrade|Update-Package-Lists) '",
                    "uu-timer": "systemctl is-enabled apt-daily-upgrade.timer 2>/dev/null"},
          parse=lambda s, p: {"unattended_upgrades": parse_unattended(s["uu-status"], s["uu-periodic"],
                                                                      s["uu-timer"])}),
    Probe(fields=("auditd_active",), commands={"auditd": "systemctl is-active auditd 2>/dev/null"},
          parse=lambda s, p: {"auditd_active": s["auditd"].strip() == "active"}),
    Probe(fields=("log_forward",),
          commands={"rsyslog-active": "systemctl is-active rsyslog 2>/dev/null",
                    "rsyslog": "cat /etc/rsyslog.conf /etc/rsyslog.d/*.conf 2>/dev/null"},
          parse=lambda s, p: {"log_forward": parse_log_forward(s["rsyslog"], s["rsyslog-active"])}),
    Probe(fields=("ntp_servers",),
          commands={"chrony-active": "systemctl is-active chrony 2>/dev/null",
                    "chrony": "chronyc -n -c sources 2>/dev/null",
                    "chrony-conf": "cat /etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf "
                                   "/etc/chrony/sources.d/*.sources 2>/dev/null"},
          parse=lambda s, p: {"ntp_servers": parse_ntp_servers(s["chrony-active"], s["chrony"], s["chrony-conf"])}),
)


# --------------------------------------------------------------------------- targets


def targets_from_inventory(inventory: Mapping[str, Any], backend: str = "auto",
                           containers: Iterable[str] = ()) -> list[Target]:
    """One target per inventory host. backend: "podman" (the host's estate_container), "ssh"
    (ansible_host, ansible_user, its key), or "auto" (podman for containers running on this machine)."""
    from estate.configure import inventory_hosts

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

    from estate.configure import load_inventory

    data = load_inventory(inventory)
    containers: set[str] = set()
    if backend in ("auto", "podman"):
        from estate.lab import podman_env

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

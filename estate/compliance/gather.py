"""Gathering live host facts (estate.compliance.facts.HostFacts) from the estate's hosts, in parallel.

One shell script runs on each host through testinfra (its `podman://` backend for lab containers on
this machine, `ssh://` otherwise) and prints one section per fact source; `parse()` turns the sections
into HostFacts. Parsing is pure, so it is tested on recorded output; gathering is tested on the lab.
A host that does not answer is reported `reachable=False` (every host rule then fails for it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from estate.compliance.facts import HOST_ROLES, HostFacts

# Packages that are RDP clients, the framework's approved one first (see `rdp_candidates`).
RDP_CLIENTS = ("freerdp2-x11", "freerdp3-x11", "freerdp2-wayland", "remmina", "rdesktop")
KIOSK_USER = "kiosk"
KIOSK_SESSION = "/etc/estate/kiosk-session"
NO_LOGIN_SHELLS = {"/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false", "/bin/sync", ""}
MARK = "### estate-section "

# Runs as root on the host (POSIX sh); each section's output follows its marker line.
SCRIPT = r"""
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
s() { printf '\n### estate-section %s\n' "$1"; }
s os-release; cat /etc/os-release 2>/dev/null
s sshd; sshd -T 2>/dev/null
s nft; nft -j list chains 2>/dev/null
s listen; ss -Hltn 2>/dev/null
s passwd; cat /etc/passwd 2>/dev/null
s faillock; cat /etc/security/faillock.conf 2>/dev/null
s common-auth; cat /etc/pam.d/common-auth 2>/dev/null
s pwquality; cat /etc/security/pwquality.conf /etc/security/pwquality.conf.d/*.conf 2>/dev/null
s common-password; cat /etc/pam.d/common-password 2>/dev/null
s uu-status; dpkg-query -W -f='${Status}\n' unattended-upgrades 2>/dev/null
s uu-periodic; apt-config dump 2>/dev/null | grep -E '^APT::Periodic::(Unattended-Upgrade|Update-Package-Lists) '
s uu-timer; systemctl is-enabled apt-daily-upgrade.timer 2>/dev/null
s auditd; systemctl is-active auditd 2>/dev/null
s rsyslog-active; systemctl is-active rsyslog 2>/dev/null
s rsyslog; cat /etc/rsyslog.conf /etc/rsyslog.d/*.conf 2>/dev/null
s chrony-active; systemctl is-active chrony 2>/dev/null
s chrony; chronyc -n -c sources 2>/dev/null
s chrony-conf; cat /etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf /etc/chrony/sources.d/*.sources 2>/dev/null
s virt; systemd-detect-virt --container 2>/dev/null
s services; systemctl list-units --type=service --state=active --no-legend --plain 2>/dev/null
s kiosk-session; cat __KIOSK_SESSION__ 2>/dev/null
s modprobe; cat /etc/modprobe.d/*.conf /lib/modprobe.d/*.conf 2>/dev/null
s rdp; dpkg-query -W -f='${Package} ${Status}\n' __RDP__ 2>/dev/null
s kiosk-user; getent passwd __KIOSK__
s kiosk-sudo; sudo -n -l -U __KIOSK__ 2>&1
s kiosk-groups; id -nG __KIOSK__ 2>/dev/null
s end
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


def script(rdp_packages: Iterable[str] = RDP_CLIENTS, kiosk: str = KIOSK_USER) -> str:
    return (SCRIPT.replace("__KIOSK_SESSION__", KIOSK_SESSION).replace("__RDP__", " ".join(rdp_packages))
            .replace("__KIOSK__", kiosk))


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


def parse_os(text: str) -> tuple[str, str]:
    kv = _kv(text)
    return kv.get("ID", ""), kv.get("VERSION_ID", "")


def parse_sshd(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key and key.lower() not in out:
            out[key.lower()] = value.strip()
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


def parse_screen_lock(session: str) -> int | None:
    """Minutes before the kiosk session's screen saver (and so its locker, xss-lock) starts: `xset s SECONDS`."""
    match = re.search(r"^\s*xset\s+s\s+(\d+)\b", session, re.M)
    if not match or int(match.group(1)) == 0:
        return None
    return math.ceil(int(match.group(1)) / 60)


def parse_usb_blocked(modprobe: str) -> bool:
    active = [line.split("#", 1)[0].strip() for line in modprobe.splitlines()]
    return any(re.fullmatch(r"install\s+usb[-_]storage\s+/bin/(true|false)", line) for line in active)


def parse_rdp(text: str, candidates: Iterable[str]) -> str | None:
    installed = {line.split()[0] for line in text.splitlines() if "install ok installed" in line}
    return next((p for p in candidates if p in installed), None)


def parse_kiosk_sudo(user: str, sudo: str, groups: str) -> bool | None:
    """Can the kiosk user sudo? None when there is no kiosk user."""
    if not user.strip():
        return None
    if set(groups.split()) & {"sudo", "admin", "wheel"}:
        return True
    if "is not allowed to run sudo" in sudo:
        return False
    if "may run the following" in sudo:
        return True
    # No sudo at all on the host: the kiosk cannot use it.
    return False if ("command not found" in sudo or "not found" in sudo or not sudo.strip()) else None


def parse(target: Target, output: str, rdp: Iterable[str] = RDP_CLIENTS) -> HostFacts:
    """HostFacts from the script's output on one host."""
    sec = sections(output)
    if "end" not in sec:
        return HostFacts(host=target.host, council=target.council, role=target.role, reachable=False)
    os_id, os_version = parse_os(sec.get("os-release", ""))
    accounts, login = parse_passwd(sec.get("passwd", ""))
    thin = target.role == "thin_client"
    return HostFacts(
        host=target.host,
        council=target.council,
        role=target.role,
        reachable=True,
        os=os_id,
        os_version=os_version,
        sshd=parse_sshd(sec.get("sshd", "")),
        nft_input_policy=parse_nft_input_policy(sec.get("nft", "")),
        listening_tcp=parse_listening_tcp(sec.get("listen", "")),
        accounts=accounts,
        login_accounts=login,
        faillock_deny=parse_faillock(sec.get("faillock", ""), sec.get("common-auth", "")),
        pass_min_len=parse_pass_min_len(sec.get("pwquality", ""), sec.get("common-password", "")),
        unattended_upgrades=parse_unattended(sec.get("uu-status", ""), sec.get("uu-periodic", ""),
                                             sec.get("uu-timer", "")),
        auditd_active=sec.get("auditd", "").strip() == "active",
        container=sec.get("virt", "").strip() not in ("", "none"),
        log_forward=parse_log_forward(sec.get("rsyslog", ""), sec.get("rsyslog-active", "")),
        ntp_servers=parse_ntp_servers(sec.get("chrony-active", ""), sec.get("chrony", ""), sec.get("chrony-conf", "")),
        services_active=parse_services(sec.get("services", "")),
        screen_lock_minutes=parse_screen_lock(sec.get("kiosk-session", "")) if thin else None,
        usb_storage_blocked=parse_usb_blocked(sec.get("modprobe", "")) if thin else None,
        rdp_client=parse_rdp(sec.get("rdp", ""), rdp) if thin else None,
        kiosk_sudo=parse_kiosk_sudo(sec.get("kiosk-user", ""), sec.get("kiosk-sudo", ""),
                                    sec.get("kiosk-groups", "")) if thin else None,
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

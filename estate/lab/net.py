"""Namespaces, links, addresses and routes, through `ip` (iproute2). Every call is idempotent."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

from estate.lab.sh import CommandFailed, run


def ip(ns: str | None, *args: str, check: bool = True) -> str:
    argv = ["ip", *(["-n", ns] if ns else []), *args]
    return run(argv, check=check, timeout=60).stdout


def netns_exec(ns: str, argv: Sequence[str], *, check: bool = True, input: str | None = None) -> str:
    return run(["ip", "netns", "exec", ns, *argv], check=check, input=input, timeout=60).stdout


def netns_names() -> set[str]:
    out = run(["ip", "-j", "netns", "list"], check=False).stdout.strip()
    names = {entry["name"] for entry in json.loads(out)} if out else set()
    # a name whose mount is gone (after a reboot) still has its file: `ip netns add` would fail on it
    folder = Path("/run/netns")
    if folder.is_dir():
        names |= {p.name for p in folder.iterdir()}
    return names


def netns_add(name: str) -> None:
    if name in netns_names() and run(["ip", "-n", name, "link", "show", "lo"], check=False).returncode != 0:
        Path("/run/netns", name).unlink(missing_ok=True)  # a name left without its namespace (a reboot)
    if name not in netns_names():
        run(["ip", "netns", "add", name])
    ip(name, "link", "set", "lo", "up")


def netns_del(name: str) -> None:
    if name in netns_names():
        run(["ip", "netns", "del", name], check=False)
        Path("/run/netns", name).unlink(missing_ok=True)


def link_names(ns: str | None) -> set[str]:
    out = ip(ns, "-j", "link", "show", check=False).strip()
    return {entry["ifname"] for entry in json.loads(out)} if out else set()


def bridges(ns: str | None) -> set[str]:
    out = ip(ns, "-j", "link", "show", "type", "bridge", check=False).strip()
    return {entry["ifname"] for entry in json.loads(out)} if out else set()


def link_exists(ns: str | None, name: str) -> bool:
    return name in link_names(ns)


def veth(ns_a: str | None, name_a: str, ns_b: str, name_b: str) -> None:
    """A veth pair with one end in each namespace (made there directly: nothing passes through the root)."""
    ip(ns_a, "link", "add", name_a, "type", "veth", "peer", "name", name_b, "netns", ns_b)


def bridge(ns: str | None, name: str) -> None:
    if not link_exists(ns, name):
        ip(ns, "link", "add", name, "type", "bridge")
    ip(ns, "link", "set", name, "up")


def attach(ns: str | None, port: str, bridge_name: str, *, isolated: bool = False) -> None:
    ip(ns, "link", "set", port, "master", bridge_name, "up")
    if isolated:
        run(["bridge", *(["-n", ns] if ns else []), "link", "set", "dev", port, "isolated", "on"])


def addresses(ns: str | None, dev: str) -> set[IPv4Interface]:
    out = ip(ns, "-j", "-4", "addr", "show", "dev", dev, check=False).strip()
    found: set[IPv4Interface] = set()
    for entry in json.loads(out) if out else []:
        for info in entry.get("addr_info", []):
            if info.get("family") == "inet":
                found.add(IPv4Interface(f"{info['local']}/{info['prefixlen']}"))
    return found


def ensure_addresses(ns: str | None, dev: str, wanted: Iterable[IPv4Interface]) -> bool:
    """Exactly these IPv4 addresses on dev, and dev up. True when something changed."""
    want = set(wanted)
    have = addresses(ns, dev)
    for extra in sorted(have - want):
        ip(ns, "addr", "del", str(extra), "dev", dev)
    for missing in sorted(want - have):
        ip(ns, "addr", "add", str(missing), "dev", dev)
    ip(ns, "link", "set", dev, "up")
    return have != want


def ensure_route(ns: str | None, dest: str, via: str, dev: str) -> None:
    ip(ns, "route", "replace", dest, "via", via, "dev", dev)


def routes(ns: str | None) -> list[tuple[IPv4Network, str]]:
    """(destination, device) of the IPv4 routes of the main table."""
    out = ip(ns, "-j", "-4", "route", "show", check=False).strip()
    found: list[tuple[IPv4Network, str]] = []
    for entry in json.loads(out) if out else []:
        dst = entry.get("dst", "")
        if dst == "default":
            continue
        try:
            found.append((IPv4Network(dst, strict=False), str(entry.get("dev", ""))))
        except ValueError:
            continue
    return found


def all_addresses(ns: str | None) -> list[tuple[IPv4Interface, str]]:
    out = ip(ns, "-j", "-4", "addr", "show", check=False).strip()
    found: list[tuple[IPv4Interface, str]] = []
    for entry in json.loads(out) if out else []:
        for info in entry.get("addr_info", []):
            if info.get("family") == "inet":
                found.append((IPv4Interface(f"{info['local']}/{info['prefixlen']}"), entry["ifname"]))
    return found


def sysctl_read(key: str) -> str:
    return Path("/proc/sys", *key.split(".")).read_text(encoding="utf-8").strip()


def sysctl_write(key: str, value: str | int) -> None:
    Path("/proc/sys", *key.split(".")).write_text(f"{value}\n", encoding="utf-8")


def ns_sysctl(ns: str, key: str, value: str | int) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    current = netns_exec(ns, ["cat", path], check=False).strip()
    if current != str(value):
        netns_exec(ns, ["sh", "-c", f"echo {value} > {path}"])


def nft_tables(ns: str | None) -> set[str]:
    """'family name' of every nft table in the namespace (the root when ns is None)."""
    argv = ["nft", "list", "tables"]
    out = (netns_exec(ns, argv, check=False) if ns else run(argv, check=False).stdout)
    return {line.removeprefix("table ").strip() for line in out.splitlines() if line.startswith("table ")}


def nft_load(ns: str | None, script: str) -> None:
    try:
        if ns:
            netns_exec(ns, ["nft", "-f", "-"], input=script)
        else:
            run(["nft", "-f", "-"], input=script)
    except CommandFailed as exc:
        raise CommandFailed(["nft", "-f", "-"], exc.code, exc.stderr) from None

"""The lab, for real: up (interrupted, then resumed), status, a second up that changes nothing, the
inventory Ansible uses, the isolation matrix at 100 %, management that does not bypass the router,
a clash with another checkout's lab, and down restoring the machine as it was.

The lab comes up once for the module; the last test takes it down and compares the machine with the
snapshot taken before up. Tests run in file order (`make labtests` passes -p no:randomly).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from estate.lab.lab import paths, plan
from estate.lab.probe import _agent_argv, render, run_matrix
from estate.lab.topology import Endpoint, Topology, load_config
from estate.podman import podman_env

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parent.parent
ESTATE = str(Path(sys.executable).parent / "estate")


def machine() -> dict[str, list[str]]:
    """What the acceptance test compares: ip netns, ip link, podman ps -a, nft list tables (and the sysctls)."""
    env = podman_env(REPO)

    def out(*argv: str) -> list[str]:
        return subprocess.run(argv, capture_output=True, text=True, check=True, env=env).stdout.splitlines()

    return {
        "ip netns": sorted(line.split()[0] for line in out("ip", "netns") if line.strip()),
        "ip link": sorted(line.split()[0] for line in out("ip", "-br", "link")),
        "podman ps -a": sorted(out("podman", "ps", "-a", "--format", "{{.Names}} {{.Image}}")),
        "nft list tables": sorted(out("nft", "list", "tables")),
        "sysctl": out("sysctl", "-n", "fs.inotify.max_user_instances"),
    }


def lab_objects() -> dict[str, str]:
    """Everything the lab made, in enough detail that any change shows."""
    _, topo = plan(REPO)
    env = podman_env(REPO)

    def out(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=False, env=env).stdout

    found: dict[str, str] = {}
    namespaces = [*topo.switch_namespaces, *(h.netns for h in topo.hosts), *(p.netns for p in topo.probes)]
    for ns in namespaces:
        found[ns] = out("ip", "-n", ns, "-d", "-br", "link") + out("ip", "-n", ns, "-br", "addr") + \
            out("ip", "-n", ns, "route") + out("ip", "netns", "exec", ns, "nft", "-s", "list", "ruleset")
    found["root"] = "\n".join(line for line in out("ip", "-br", "addr").splitlines() if "se-" in line) + \
        out("nft", "-s", "list", "table", "ip", "se-lab")
    listed = json.loads(out("podman", "ps", "-a", "--format", "json") or "[]")
    found["containers"] = "\n".join(sorted(
        f"{c['Id']} {c['Names']} {c['State']} {c['StartedAt']} {c['Image']}" for c in listed
        if any(name.startswith("se-") for name in c["Names"])))
    found["state"] = paths(REPO).state.read_text()
    return found


def cached_facts() -> Path:
    """A file in the project's fact cache, as if Ansible had gathered a host's facts earlier."""
    from estate.configure import fact_cache

    cached = fact_cache(REPO) / "hosts-gathered-earlier"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text("{}")
    return cached


def estate_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ESTATE, *args], capture_output=True, text=True, check=False, timeout=timeout,
                          cwd=REPO, env={**os.environ, "ESTATE_ROOT": str(REPO), "COLUMNS": "200"})


@pytest.fixture(scope="module")
def baseline() -> dict[str, list[str]]:
    """The machine before up. A lab left up (by `make demo`) is taken down first; the tests leave it down."""
    if paths(REPO).state.exists():
        done = estate_cli("lab", "down", "-q")
        assert done.returncode == 0, done.stderr
    return machine()


@pytest.fixture(scope="module")
def lab(baseline: dict[str, list[str]]) -> Iterator[Topology]:
    """Up, killed with SIGKILL while it starts the containers, then up again: the second run finishes the job."""
    state = paths(REPO).state
    proc = subprocess.Popen([ESTATE, "lab", "up", "-q"], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "ESTATE_ROOT": str(REPO)})
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads(state.read_text())["objects"]["container"]:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    assert killed, f"`estate lab up` finished (exit {proc.returncode}) before it could be interrupted: {err.strip()}"
    done = estate_cli("lab", "up", "-q")
    assert done.returncode == 0, done.stderr
    _, topo = plan(REPO)
    yield topo
    estate_cli("lab", "down", "-q")  # a no-op when the last test already took it down


def test_up_after_an_interruption_brings_every_host_up(lab: Topology) -> None:
    done = estate_cli("lab", "status")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"lab: up, {len(lab.hosts)} hosts answering ssh" in done.stdout
    for host in lab.hosts:
        assert host.name in done.stdout and str(host.address) in done.stdout and str(host.mgmt_address) in done.stdout


def test_a_second_up_changes_nothing(lab: Topology) -> None:
    cached = cached_facts()
    before = lab_objects()
    done = estate_cli("lab", "up", "-q")
    assert done.returncode == 0, done.stderr
    assert cached.exists()  # the same machines: what Ansible cached about them still holds
    after = lab_objects()
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] == before[key], key


def test_the_router_runs_the_generated_ruleset(lab: Topology) -> None:
    from estate.loader import load_estate
    from estate.nftables import render_router_ruleset

    assert paths(REPO).router_rules.read_text() == render_router_ruleset(load_estate(REPO))
    listed = subprocess.run(["ip", "netns", "exec", lab.router.netns, "nft", "-j", "list", "table", "inet",
                             "estate_flows"], capture_output=True, text=True, check=True).stdout
    comments = [item["rule"].get("comment", "") for item in json.loads(listed)["nftables"] if "rule" in item]
    assert sum(1 for c in comments if c.startswith("FL-")) == render_router_ruleset(load_estate(REPO)).count(
        'accept comment "FL-')
    purposes = load_estate(REPO).framework.network.egress.purposes
    assert sorted(c for c in comments if c.startswith("egress ")) == sorted(f"egress {p.name}" for p in purposes)
    forward = subprocess.run(["ip", "netns", "exec", lab.router.netns, "cat", "/proc/sys/net/ipv4/ip_forward"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert forward == "1"


def test_ansible_reaches_every_host_through_the_inventory(lab: Topology) -> None:
    inventory = paths(REPO).inventory
    doc = yaml.safe_load(inventory.read_text())
    assert {"hub", "council_newham", "thin_client", "router"} <= set(doc["all"]["children"])
    ansible = str(Path(sys.executable).parent / "ansible")
    done = subprocess.run([ansible, "all", "-i", str(inventory), "-m", "ansible.builtin.ping", "-o", "-f", "12"],
                          capture_output=True, text=True, check=False, timeout=300,
                          env={**os.environ, "ANSIBLE_PIPELINING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(lab.hosts)


def test_the_isolation_matrix_holds_at_100_percent(lab: Topology, capsys: pytest.CaptureFixture[str]) -> None:
    from estate.loader import load_estate

    result = run_matrix(load_estate(REPO).framework, lab, podman_env(REPO), timeout=load_config(REPO).probe.timeout)
    with capsys.disabled():
        print("\n" + render(result, lab))
    # 11 ports: 22, 443, 445, 514, 631, 3389 (RDP from Bastion, an administration flow), 9100; 53, 123, 5060, 5061
    assert len(result.outcomes) == len(lab.segments) * (len(lab.segments) - 1) * 11
    assert not result.failures
    assert result.deny_counter >= result.denied
    assert result.ok


def probe(endpoint: Endpoint, targets: list[str], timeout: float = 1.5) -> dict[str, str]:
    done = subprocess.run(_agent_argv(endpoint, True, ["probe", str(timeout), *targets]), capture_output=True,
                          text=True, check=True, env=podman_env(REPO), timeout=60)
    results: dict[str, str] = json.loads(done.stdout)["results"]
    return results


def test_management_does_not_let_hosts_bypass_the_router(lab: Topology) -> None:
    tc, app = lab.host("hav-tc01"), lab.host("nwm-app01")
    src = Endpoint(tc.segment, tc.address, tc.name, tc.container, tc.netns)
    # the controller reaches the other host's sshd over management ...
    with socket.create_connection((str(app.mgmt_address), 22), timeout=2):
        pass
    # ... a host does not: isolated bridge ports
    direct = probe(src, [f"tcp/{app.mgmt_address}/22"])
    assert direct[f"tcp/{app.mgmt_address}/22"] not in ("open", "refused")
    # a host that routes another council's server via the controller is dropped there
    subprocess.run(["ip", "-n", tc.netns, "route", "add", f"{app.address}/32", "via", str(lab.controller.ip),
                    "dev", "mgmt0"], check=True)
    try:
        rerouted = probe(src, [f"tcp/{app.address}/22"])
    finally:
        subprocess.run(["ip", "-n", tc.netns, "route", "del", f"{app.address}/32"], check=True)
    assert rerouted[f"tcp/{app.address}/22"] == "dropped"
    # and a host opens no connection to the controller itself
    with socket.socket() as listener:
        listener.bind((str(lab.controller.ip), 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        to_controller = probe(src, [f"tcp/{lab.controller.ip}/{port}"])
    assert to_controller[f"tcp/{lab.controller.ip}/{port}"] == "dropped"


def test_hosts_reach_the_debian_mirror_through_nat(lab: Topology) -> None:
    code = ("import urllib.request as u; r = u.urlopen(u.Request("
            "'http://deb.debian.org/debian/dists/bookworm/InRelease', method='HEAD'), timeout=20); print(r.status)")
    done = subprocess.run(["podman", "exec", lab.host("wf-svc01").container, "python3", "-c", code],
                          capture_output=True, text=True, check=False, env=podman_env(REPO), timeout=60)
    assert done.stdout.strip() == "200", done.stderr


def test_another_checkouts_lab_is_a_name_clash(lab: Topology, tmp_path: Path) -> None:
    for name in ("framework.yaml", "inventories", "lab"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name)
        else:
            shutil.copy(src, tmp_path / name)
    done = subprocess.run([ESTATE, "lab", "up", "-q"], capture_output=True, text=True, check=False, cwd=tmp_path,
                          env={**os.environ, "ESTATE_ROOT": str(tmp_path)}, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: name clash: network namespace se-")
    state = tmp_path / ".state" / "lab" / "state.json"
    assert not state.exists() or json.loads(state.read_text())["objects"]["container"] == {}


def test_an_inventory_change_remakes_only_the_hosts_it_touches(lab: Topology, tmp_path: Path) -> None:
    """The same lab (.state is shared) seen through a copy of the repo whose inventory differs."""
    for name in ("framework.yaml", "inventories", "lab"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name)
        else:
            shutil.copy(src, tmp_path / name)
    (tmp_path / ".state").symlink_to(REPO / ".state")
    inv = tmp_path / "inventories"
    with (inv / "havering" / "hosts.yml").open("a") as handle:
        handle.write("  - {name: hav-app02, role: app_server, vlan: servers}\n")
    newham = inv / "newham" / "hosts.yml"
    newham.write_text(newham.read_text().replace("{name: nwm-tc01, role: thin_client, vlan: desktops}",
                                                 "{name: nwm-tc01, role: thin_client, vlan: guest}"))
    wf = inv / "waltham-forest" / "hosts.yml"
    wf.write_text("".join(line for line in wf.read_text().splitlines(keepends=True) if "wf-svc01" not in line))

    def ids() -> dict[str, str]:
        listed = json.loads(subprocess.run(["podman", "ps", "--format", "json"], capture_output=True, text=True,
                                           check=True, env=podman_env(REPO)).stdout or "[]")
        return {name: c["Id"] for c in listed for name in c["Names"] if name.startswith("se-")}

    cached = cached_facts()
    before = ids()
    done = subprocess.run([ESTATE, "lab", "up", "-q"], capture_output=True, text=True, check=False, cwd=tmp_path,
                          env={**os.environ, "ESTATE_ROOT": str(tmp_path)}, timeout=600)
    assert done.returncode == 0, done.stderr
    assert not cached.exists()  # new machines (hav-app02, nwm-tc01 moved): Ansible's facts gathered again
    changed = ids()
    assert set(changed) == set(before) - {"se-wf-svc01"} | {"se-hav-app02"}
    assert changed["se-nwm-tc01"] != before["se-nwm-tc01"]
    assert {k: v for k, v in changed.items() if k not in ("se-nwm-tc01", "se-hav-app02")} == \
        {k: v for k, v in before.items() if k not in ("se-nwm-tc01", "se-wf-svc01")}
    guest = subprocess.run(["ip", "-n", "se-nwm-tc01", "-4", "-br", "addr", "show", "eth0"], capture_output=True,
                           text=True, check=True).stdout
    from estate.loader import host_addresses, load_estate

    moved = {name: (seg.name, address) for name, _, seg, address in host_addresses(load_estate(tmp_path), "newham")}
    assert moved["nwm-tc01"][0] == "guest" and f" {moved['nwm-tc01'][1]}/" in guest
    assert "se-probe.newham.desktops" in subprocess.run(["ip", "netns"], capture_output=True, text=True,
                                                         check=True).stdout
    # and back: the repo's inventory again
    done = estate_cli("lab", "up", "-q")
    assert done.returncode == 0, done.stderr
    assert set(ids()) == set(before)
    assert estate_cli("lab", "status").returncode == 0


def test_down_leaves_the_machine_as_it_was(lab: Topology, baseline: dict[str, list[str]]) -> None:
    done = estate_cli("lab", "down", "-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("lab down: removed ")
    assert machine() == baseline
    assert not paths(REPO).state.exists()
    again = estate_cli("lab", "down", "-q")
    assert again.returncode == 0 and again.stdout.strip() == "lab down: nothing to remove"

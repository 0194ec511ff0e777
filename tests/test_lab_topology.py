"""The lab's plan, without making anything: topology, probe matrix, inventory, clash checks, state, faults."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from estate import cli
from estate.errors import EstateError
from estate.isolation import allowing_flow, exchange_pairs, matrix_ports
from estate.lab import lab as lab_mod
from estate.lab import net
from estate.lab.inventory import render_inventory
from estate.lab.probe import Outcome, Run, build_matrix, render
from estate.lab.state import LabState
from estate.lab.topology import Topology, build, load_config, mirror
from estate.loader import Estate, host_addresses, load_estate

REPO = Path(__file__).resolve().parent.parent
cli._register_extensions()
runner = CliRunner()


@pytest.fixture(scope="module")
def topo() -> Topology:
    return build(load_estate(REPO), load_config(REPO))


@pytest.fixture
def copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("framework.yaml", "inventories", "lab"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name)
        else:
            shutil.copy(src, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ESTATE_ROOT", raising=False)
    return tmp_path


# --------------------------------------------------------------------------- topology


def test_every_inventory_host_is_a_container_with_its_ipam_address(estate: Estate, topo: Topology) -> None:
    expected = {}
    for site in ["shared", *estate.councils]:
        for name, role, seg, address in host_addresses(estate, site):
            expected[name] = (site, role, seg.name, address)
    assert {h.name: (h.site, h.role, h.segment.name, h.address) for h in topo.hosts} == expected
    assert all(h.container == h.netns == f"se-{h.name}" for h in topo.hosts)


def test_one_bridge_per_vlan_per_council_and_per_hub_segment(estate: Estate, topo: Topology) -> None:
    vlans = estate.framework.network.vlans
    hub = estate.framework.network.hub.segments
    assert len(topo.segments) == len(hub) + len(vlans) * len(estate.councils)
    for key in estate.councils:
        bridges = {s.bridge for s in topo.segments if s.site == key}
        assert bridges == {f"vlan{v.id}" for v in vlans}
        assert {s.switch_ns for s in topo.segments if s.site == key} == {f"se-switch.{key}"}


def test_the_router_holds_every_gateway(topo: Topology) -> None:
    assert topo.router.role == "router" and topo.router.site == "shared"
    legs = {leg.segment: leg for leg in topo.legs}
    assert set(legs) == set(topo.segments)
    for seg, leg in legs.items():
        assert IPv4Interface(f"{seg.gateway}/{seg.network.prefixlen}") in leg.addresses
    assert topo.router.interface in legs[topo.router.segment].addresses


def test_every_segment_has_one_endpoint_and_probes_fill_the_hostless_ones(topo: Topology) -> None:
    endpoints = topo.endpoints()
    assert [e.segment for e in endpoints] == list(topo.segments)
    hosted = {h.segment for h in topo.hosts if h.role != "router"}
    assert {p.segment for p in topo.probes} == set(topo.segments) - hosted
    for probe in topo.probes:
        assert probe.address in probe.segment.network
        assert probe.address not in (probe.segment.gateway, probe.segment.network.broadcast_address)
        assert all(h.address != probe.address for h in topo.hosts)


def test_names_fit_the_kernel_and_do_not_collide(topo: Topology) -> None:
    links = [h.port for h in topo.hosts] + [leg.port for leg in topo.legs] + [p.port for p in topo.probes]
    root_links = [topo.mgmt_bridge, *(h.mgmt_port for h in topo.hosts)]
    assert all(len(name) <= 15 for name in links + root_links + [leg.ifname for leg in topo.legs])
    assert len(set(links)) == len(links) and len(set(root_links)) == len(root_links)
    assert all(name.startswith("se-") for name in root_links)
    namespaces = topo.switch_namespaces + [h.netns for h in topo.hosts] + [p.netns for p in topo.probes]
    assert len(set(namespaces)) == len(namespaces) and all(n.startswith("se-") for n in namespaces)


def test_management_addresses_mirror_the_estate_addresses(topo: Topology) -> None:
    mgmt = {h.mgmt_address for h in topo.hosts}
    assert len(mgmt) == len(topo.hosts) and topo.controller.ip not in mgmt
    assert all(a in topo.mgmt_network for a in mgmt)
    assert mirror(IPv4Address("10.64.41.10"), IPv4Network("10.64.0.0/11"),
                  IPv4Network("100.64.0.0/10")) == IPv4Address("100.64.41.10")


def test_a_hub_without_a_router_is_one_clear_line(copy: Path) -> None:
    hosts = copy / "inventories" / "shared" / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("role: router", "role: helpdesk"))
    with pytest.raises(EstateError) as info:
        build(load_estate(copy), load_config(copy))
    assert str(info.value) == ("inventories/shared/hosts.yml: the lab needs exactly one hub host with role router "
                               "(found 0)")


def test_a_management_network_smaller_than_the_supernet_is_refused(copy: Path) -> None:
    conf = copy / "lab" / "lab.yml"
    conf.write_text(conf.read_text().replace("network: 100.64.0.0/10", "network: 100.64.0.0/16"))
    with pytest.raises(EstateError, match="smaller than the supernet"):
        build(load_estate(copy), load_config(copy))


def test_a_typo_in_lab_yml_names_file_and_line(copy: Path) -> None:
    conf = copy / "lab" / "lab.yml"
    conf.write_text(conf.read_text().replace("  timeout: 1.5", "  timout: 1.5"))
    with pytest.raises(EstateError) as info:
        load_config(copy)
    problems = {p.field: p for p in info.value.problems}
    assert problems["probe.timout"].message == "unknown field"
    assert problems["probe.timout"].file.endswith("lab/lab.yml") and problems["probe.timout"].line > 1


# --------------------------------------------------------------------------- probe matrix


def test_the_matrix_covers_every_pair_of_segments_and_every_port(estate: Estate, topo: Topology) -> None:
    probes = build_matrix(estate.framework, topo)
    ports = matrix_ports(estate.framework)
    assert ("udp", 5060) in ports and ("udp", 5061) in ports  # a range by both ends
    n = len(topo.segments)
    assert len(probes) == n * (n - 1) * len(ports)
    assert {p.scope for p in probes} == {"intra", "hub", "inter", "hub-internal"}
    assert {p.flow for p in probes if p.flow} == {f.id for f in estate.framework.network.flows}


def test_the_probe_covers_the_administration_paths(estate: Estate, topo: Topology) -> None:
    """The admin ports (3389 as well as 22) are probed, from an endpoint on the hub's Bastion segment."""
    admin = estate.framework.network.administration
    ports = matrix_ports(estate.framework)
    assert ("tcp", int(admin.windows_port)) in ports and ("tcp", int(admin.linux_port)) in ports
    ends = {ep.segment.label for ep in topo.endpoints()}
    assert {f"shared/{s.removeprefix('hub/')}" for s in admin.sources} <= ends
    probes = build_matrix(estate.framework, topo)
    kinds = {f.id: f.kind for f in estate.framework.network.flows}
    allowed_admin = {p.flow for p in probes if p.flow and kinds[p.flow] == "administration"}
    assert allowed_admin == {f.id for f in estate.framework.network.flows if f.kind == "administration"}


@pytest.mark.parametrize(("src", "dst", "proto", "port", "flow"), [
    ("havering/desktops", "havering/servers", "tcp", 443, "FL-01"),
    ("havering/desktops", "havering/servers", "tcp", 22, None),
    ("newham/desktops", "havering/servers", "tcp", 443, None),
    ("newham/servers", "havering/servers", "tcp", 443, "FL-14"),
    ("newham/servers", "havering/servers", "tcp", 445, None),
    ("havering/servers", "newham/servers", "tcp", 443, "FL-14"),  # an agreed pair: both ways
    ("waltham-forest/servers", "havering/servers", "tcp", 443, None),  # waltham-forest agreed no inter flow
    ("newham/servers", "waltham-forest/servers", "tcp", 443, None),
    ("havering/voice", "havering/servers", "udp", 5061, "FL-06"),
    ("havering/voice", "havering/servers", "tcp", 5060, None),
    ("shared/management", "waltham-forest/servers", "tcp", 22, "FL-12"),
    ("waltham-forest/servers", "shared/management", "tcp", 22, None),
    ("newham/desktops", "shared/shared-services", "tcp", 443, "FL-09"),
    ("newham/guest", "shared/shared-services", "tcp", 443, None),
    ("shared/management", "shared/shared-services", "tcp", 22, "FL-21"),  # hub-internal administration
    ("shared/shared-services", "shared/management", "tcp", 22, None),
    ("shared/bastion", "shared/shared-services", "tcp", 22, "FL-20"),
    ("shared/bastion", "havering/desktops", "tcp", 3389, "FL-19"),
    ("shared/bastion", "havering/desktops", "tcp", 22, None),
    ("shared/bastion", "newham/servers", "tcp", 22, "FL-16"),
    ("shared/bastion", "newham/servers", "tcp", 3389, None),
    ("havering/desktops", "shared/bastion", "tcp", 3389, None),
    ("shared/management", "havering/management", "tcp", 22, "FL-15"),
])
def test_allowed_and_denied_pairs(estate: Estate, topo: Topology, src: str, dst: str, proto: str, port: int,
                                  flow: str | None) -> None:
    a, b = (topo.segment(*s.split("/")) for s in (src, dst))
    assert allowing_flow(estate.framework, a, b, proto, port, topo.exchanges) == flow


def test_the_report_prints_the_matrix_and_names_each_failure(estate: Estate, topo: Topology) -> None:
    probes = build_matrix(estate.framework, topo)
    wrong = next(p for p in probes if p.flow == "FL-14")
    outcomes = [Outcome(p, ("open" if p.expected else "dropped") if p is not wrong else "dropped") for p in probes]
    denied = sum(1 for p in probes if not p.expected)
    result = Run(outcomes, 1.0, denied, {})
    text = render(result, topo)
    assert f"= {len(probes)} probes" in text
    assert f"{len(probes) - 1}/{len(probes)} probes as the flow matrix says" in text
    assert f"FAIL {wrong.src.segment.label}" in text and "allowed by FL-14, got dropped" in text
    assert not result.ok
    grid = [row for row in text.splitlines() if re.match(r"^ *\d+ [a-z-]+/", row)]
    assert len(grid) == len(topo.segments)
    assert sum(row.count("  X") for row in grid) == 1
    good = Run([Outcome(p, "open" if p.expected else "dropped") for p in probes], 1.0, denied, {})
    assert good.ok and "(100.0 %)" in render(good, topo)
    # drops that did not happen at the router are not good enough
    assert not Run(good.outcomes, 1.0, denied - 1, {}).ok


# --------------------------------------------------------------------------- inventory


def test_the_inventory_has_groups_per_council_and_role_and_the_facts_roles_need(topo: Topology,
                                                                                tmp_path: Path) -> None:
    doc = render_inventory(topo, key_file=tmp_path / "k", known_hosts=tmp_path / "kh", framework_version="x")
    groups = doc["all"]["children"]
    assert {"hub", "council_havering", "council_newham", "council_waltham_forest", "thin_client", "app_server",
            "dc_services", "router", "helpdesk", "log_collector"} <= set(groups)
    assert set(groups["council_newham"]["hosts"]) == {"nwm-tc01", "nwm-app01", "nwm-svc01"}
    assert set(groups["router"]["hosts"]) == {"hub-rtr01"}
    tc = groups["council_newham"]["hosts"]["nwm-tc01"]
    svc = topo.host("nwm-svc01")
    assert tc["ansible_host"] == str(topo.host("nwm-tc01").mgmt_address)
    assert tc["ansible_user"] == "root" and tc["ansible_ssh_private_key_file"] == str(tmp_path / "k")
    assert tc["estate_council"] == "newham" and tc["estate_vlan"] == "desktops"
    assert tc["estate_gateway"] == str(topo.host("nwm-tc01").segment.gateway) and tc["estate_prefixlen"] == 22
    assert tc["estate_services_address"] == str(svc.address)
    assert tc["estate_log_collector"] == str(topo.host("hub-log01").address)
    assert tc["estate_helpdesk_address"] == str(topo.host("hub-hd01").address)
    legs = groups["hub"]["hosts"]["hub-rtr01"]["estate_router_legs"]
    assert len(legs) == len(topo.segments)
    yaml.safe_load(yaml.safe_dump(doc))  # plain data


# --------------------------------------------------------------------------- clashes, state, faults


class FakePodman:
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def states(self) -> dict[str, str]:
        return self.names


def _quiet_machine(monkeypatch: pytest.MonkeyPatch, *, netns: set[str] | None = None, links: set[str] | None = None,
                   routes: list[tuple[IPv4Network, str]] | None = None,
                   addrs: list[tuple[IPv4Interface, str]] | None = None) -> None:
    monkeypatch.setattr(net, "netns_names", lambda: netns or set())
    monkeypatch.setattr(net, "link_names", lambda ns: links or set())
    monkeypatch.setattr(net, "routes", lambda ns: routes or [])
    monkeypatch.setattr(net, "all_addresses", lambda ns: addrs or [])
    monkeypatch.setattr(net, "nft_tables", lambda ns: set())


def test_no_clash_on_a_quiet_machine(topo: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _quiet_machine(monkeypatch,
                   routes=[(IPv4Network("192.0.2.0/24"), "eth0"), (IPv4Network("10.88.0.0/16"), "podman0")])
    lab_mod.check_clashes(topo, LabState.load(tmp_path / "s.json"), FakePodman({}))  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "message"), [
    ("netns", "name clash: network namespace se-switch.newham exists and this lab did not make it"),
    ("link", "name clash: network interface se-mgmt exists and this lab did not make it"),
    ("container", "name clash: container se-nwm-app01 exists and this lab did not make it"),
    ("route", "address clash: newham's address block 10.64.32.0/20 overlaps the route to 10.64.40.0/24 on eth1"),
    ("address", "address clash: lab/lab.yml management.network 100.64.0.0/10 holds 100.64.9.9, already on eth2"),
])
def test_a_clash_is_one_line(topo: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str,
                             message: str) -> None:
    _quiet_machine(monkeypatch, netns={"se-switch.newham"} if kind == "netns" else None,
                   links={"se-mgmt"} if kind == "link" else None,
                   routes=[(IPv4Network("10.64.40.0/24"), "eth1")] if kind == "route" else None,
                   addrs=[(IPv4Interface("100.64.9.9/24"), "eth2")] if kind == "address" else None)
    podman = FakePodman({"se-nwm-app01": "running"} if kind == "container" else {})
    state = LabState.load(tmp_path / "s.json")
    with pytest.raises(EstateError) as info:
        lab_mod.check_clashes(topo, state, podman)  # type: ignore[arg-type]
    assert str(info.value).startswith(f"lab: {message}") and "\n" not in str(info.value)
    if kind in ("netns", "link", "container"):  # what this lab recorded is its own: no clash
        name = {"netns": "se-switch.newham", "link": "se-mgmt", "container": "se-nwm-app01"}[kind]
        state.record(kind, name)
        lab_mod.check_clashes(topo, state, podman)  # type: ignore[arg-type]


def test_state_records_before_making_and_survives_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = LabState.load(path)
    assert state.is_empty
    state.record("netns", "se-x")
    state.record("sysctl", "fs.inotify.max_user_instances", {"was": "128", "set": "8192"})
    again = LabState.load(path)
    assert again.names("netns") == ["se-x"] and not again.is_empty
    again.forget("netns", "se-x")
    again.forget("sysctl", "fs.inotify.max_user_instances")
    assert LabState.load(path).is_empty


def test_a_corrupt_state_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(EstateError) as info:
        LabState.load(path)
    assert str(info.value).startswith(f"{path}: cannot read the lab's state")
    path.write_text(json.dumps({"version": 99}))
    with pytest.raises(EstateError, match="not a lab state file"):
        LabState.load(path)


def test_the_controller_ruleset_is_valid_nftables(topo: Topology, tmp_path: Path) -> None:
    path = tmp_path / "root.nft"
    path.write_text(lab_mod.root_ruleset(topo))
    check = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


def test_status_of_a_lab_that_is_not_up(copy: Path) -> None:
    result = runner.invoke(cli.app, ["lab", "status"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "lab: down" in result.stdout and "nwm-app01" in result.stdout


def test_up_without_podman_is_one_line_and_exit_2(copy: Path, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    estate = shutil.which("estate") or str(REPO / ".venv" / "bin" / "estate")
    done = subprocess.run([estate, "lab", "up"], capture_output=True, text=True, check=False, cwd=copy,
                          env={**os.environ, "PATH": str(empty), "ESTATE_ROOT": str(copy)})
    assert done.returncode == 2
    assert done.stderr.strip() == "podman: podman is not installed (apt-get install podman, or `make apt`)"
    assert not (copy / ".state" / "lab" / "state.json").exists()


def test_a_tool_failing_under_the_lab_is_one_line_and_exit_2(copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from estate.lab.sh import CommandFailed

    def broken(*args: object, **kwargs: object) -> None:
        raise CommandFailed(["ip", "-n", "se-x", "link", "add"], 2, "Error\nRTNETLINK answers: File exists\n")

    monkeypatch.setattr(lab_mod, "up", broken)
    result = runner.invoke(cli.app, ["lab", "up", "-q"])
    assert result.exit_code == 2
    assert result.output.strip() == "lab: ip -n se-x link failed: RTNETLINK answers: File exists"


def test_the_lab_reads_the_exchanges_itself(estate: Estate, topo: Topology) -> None:
    """The isolation test's inter pairs come from the councils' declarations, read by the topology (not the loader's
    Estate.exchanges): exactly Havering and Newham for FL-14, both ways; every other inter pair is probed as denied."""
    assert topo.exchanges == exchange_pairs(estate) == {("FL-14", "havering", "newham"),
                                                        ("FL-14", "newham", "havering")}
    probes = build_matrix(estate.framework, topo)
    inter_allowed = {(p.src.segment.label, p.dst.segment.label) for p in probes if p.scope == "inter" and p.flow}
    assert inter_allowed == {("havering/servers", "newham/servers"), ("newham/servers", "havering/servers")}
    assert [p for p in probes if p.scope == "inter" and not p.flow and "waltham-forest" in p.src.segment.label]

"""estate configure without hosts: the variables it derives, the secrets, the event tally, the runner call,
and bad input."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from estate import configure
from estate.cli import _register_extensions, app
from estate.errors import EstateError
from estate.loader import Estate, load_estate

_register_extensions()


# --------------------------------------------------------------------------- ports


@pytest.mark.parametrize(("ports", "merged"), [
    (["443", "22", "443"], ["22", "443"]),
    (["5060-5061", "5061", "5062"], ["5060-5062"]),
    (["53", "123", "100-130"], ["53", "100-130"]),
    ([], []),
])
def test_merge_ports(ports: list[str], merged: list[str]) -> None:
    assert configure.merge_ports(ports) == merged


def test_inbound_ports_follow_the_flow_matrix(estate: Estate) -> None:
    inbound = configure.inbound_ports(estate)
    admin_in = configure.admin_inbound(estate)
    assert set(inbound) == set(admin_in) == {"shared", *estate.councils}
    for flow in estate.framework.network.flows:
        if flow.destination.startswith("hub/"):
            sites, seg = ["shared"], flow.destination.removeprefix("hub/")
        else:
            sites = [c for c in estate.councils if flow.scope != "inter" or estate.exchanges.partners(flow.id, c)]
            seg = flow.destination
        for site in sites:
            admin_path = configure.is_admin_flow(estate, flow)
            opened = admin_in[site][seg]["ports"] if admin_path else inbound[site][seg][flow.protocol]
            for port in flow.ports:
                low, _, high = port.partition("-")
                assert any(_covers(o, int(low), int(high or low)) for o in opened), (site, seg, flow.id)
    admin = estate.framework.network.administration
    # the administration ports are never open to any source: only from the administration paths
    for site, segments in inbound.items():
        for seg, ports in segments.items():
            assert admin.linux_port not in ports["tcp"] and admin.windows_port not in ports["tcp"], (site, seg)
            assert admin_in[site][seg]["ports"][0] == admin.linux_port
    # RDP from Bastion into the desktops; SSH into the hub's services
    for site in estate.councils:
        assert admin.windows_port in admin_in[site]["desktops"]["ports"]
        assert admin.windows_port not in admin_in[site]["servers"]["ports"]
    assert admin_in["shared"]["shared-services"]["ports"] == [admin.linux_port]


def test_administration_sources_are_the_hub_paths_and_the_councils_own_management(estate: Estate) -> None:
    admin_in = configure.admin_inbound(estate)
    plan = estate.addresses
    hub = {f"hub/{seg.name}": str(seg.network) for seg in plan.hub.segments}
    admin_sources = [hub[s] for s in estate.framework.network.administration.sources]
    for site in estate.councils:
        vlans = {seg.name: str(seg.network) for seg in plan.site(site).segments}
        for seg, entry in admin_in[site].items():
            assert entry["sources"][:len(admin_sources)] == admin_sources
            # FL-07/FL-08: the council's own management VLAN reaches its servers and services over SSH
            extra = [vlans["management"]] if seg in ("servers", "shared-services") else []
            assert entry["sources"][len(admin_sources):] == extra, (site, seg)
        assert vlans["guest"] not in {s for e in admin_in[site].values() for s in e["sources"]}


def _covers(entry: str, low: int, high: int) -> bool:
    a, _, b = entry.partition("-")
    return int(a) <= low and high <= int(b or a)


def test_site_vars_give_each_vlan_a_pool_inside_its_subnet(estate: Estate) -> None:
    sites = configure.site_vars(estate)
    for key in estate.councils:
        plan = estate.addresses.site(key)
        assert [v["name"] for v in sites[key]["vlans"]] == [s.name for s in plan.segments]
        for vlan in sites[key]["vlans"]:
            net = IPv4Network(vlan["subnet"])
            start, end = IPv4Address(vlan["pool_start"]), IPv4Address(vlan["pool_end"])
            assert net.network_address < IPv4Address(vlan["gateway"]) < start <= end < net.broadcast_address
        hosts = sites[key]["hosts"]
        for host in hosts:
            seg = next(v for v in sites[key]["vlans"] if v["name"] == host["vlan"])
            assert IPv4Address(host["address"]) < IPv4Address(seg["pool_start"])  # static hosts outside the pool
        assert sites[key]["records"] == [{"name": h["name"], "address": h["address"]} for h in hosts]
        assert sites[key]["name"] == estate.council(key).council.name


def test_playbook_vars_carry_the_framework(estate: Estate, tmp_path: Path) -> None:
    secrets = configure.load_secrets(tmp_path / "s.json", estate.councils)
    extra = configure.playbook_vars(estate, secrets, tmp_path / "router.nft")
    fw = estate.framework
    assert extra["estate_framework_version"] == fw.version
    assert extra["estate_spec"]["security"]["ssh"]["max_auth_tries"] == fw.security.ssh.max_auth_tries
    assert extra["estate_spec"]["desktop"]["screen_lock"]["minutes"] == fw.desktop.screen_lock.minutes
    assert extra["estate_spec"]["helpdesk"]["categories"] == fw.helpdesk.categories
    councils = extra["estate_helpdesk_councils"]
    assert [c["key"] for c in councils] == sorted(estate.councils)
    assert all(c["agents"][0]["password"] == secrets.agents[c["key"]] for c in councils)
    json.dumps(extra)  # plain data: it travels as ansible-runner's extravars


# --------------------------------------------------------------------------- secrets


def test_secrets_are_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "state" / "secrets.json"
    first = configure.load_secrets(path, ["a", "b"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len({first.helpdesk_root_password, first.helpdesk_rest_password, *first.agents.values()}) == 4
    assert all(len(p) >= 12 for p in (first.helpdesk_root_password, *first.agents.values()))
    again = configure.load_secrets(path, ["a", "b", "c"])
    assert again.helpdesk_root_password == first.helpdesk_root_password
    assert again.agents["a"] == first.agents["a"] and "c" in again.agents


def test_corrupt_secrets_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(EstateError) as err:
        configure.load_secrets(path, ["a"])
    assert len(err.value.problems) == 1 and "corrupt secrets file" in str(err.value)


def test_prepare_writes_the_lab_generators_ruleset(estate: Estate, tmp_path: Path) -> None:
    from estate.nftables import render_router_ruleset

    extra = configure.prepare(estate, tmp_path)
    ruleset = Path(extra["estate_router_ruleset_file"])
    assert ruleset.read_text(encoding="utf-8") == render_router_ruleset(estate)


# --------------------------------------------------------------------------- events


def _event(kind: str, host: str = "", task: str = "t", **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": {"host": host, "task": task, **data}}


def test_tally_counts_changes_failures_and_unreachable() -> None:
    tally = configure.Tally()
    stream = [
        _event("runner_on_start", "a", "install"),
        _event("runner_on_ok", "a", "install", res={"changed": True}),
        _event("runner_on_ok", "a", "ssh", res={"changed": False}),
        _event("runner_on_failed", "b", "kea", res={"msg": "Unable to start kea"}),
        _event("runner_on_failed", "b", "optional", ignore_errors=True, res={"msg": "ignored"}),
        _event("runner_on_unreachable", "c", "gather", res={"msg": "ssh: connect refused"}),
        {"event": "playbook_on_stats", "event_data": {"ok": {"a": 2, "b": 1}, "changed": {"a": 1},
                                                      "failures": {"b": 1}, "dark": {"c": 1}, "skipped": {}}},
    ]
    shown = [tally.feed(e) for e in stream]
    assert shown[1] == ("a", "changed: install") and shown[3] == ("b", "FAILED: kea: Unable to start kea")
    assert tally.final
    assert (tally.hosts["a"].ok, tally.hosts["a"].changed) == (2, 1)
    assert tally.hosts["a"].changes == ["install"]
    assert tally.hosts["b"].failed == 1 and tally.hosts["b"].errors == ["kea: Unable to start kea"]
    assert tally.hosts["c"].unreachable == 1 and "connect refused" in tally.hosts["c"].errors[0]
    assert (tally.totals.ok, tally.totals.changed, tally.totals.failed, tally.totals.unreachable) == (3, 1, 1, 1)


@pytest.mark.parametrize(("check", "changed", "failed", "final", "code"), [
    (False, 5, 0, True, 0),
    (False, 0, 1, True, 1),
    (True, 0, 0, True, 0),
    (True, 2, 0, True, 1),  # drift
    (False, 0, 0, False, 1),  # no stats: the run did not finish
])
def test_exit_code(check: bool, changed: int, failed: int, final: bool, code: int) -> None:
    tally = configure.Tally(final=final)
    tally.hosts["h"] = configure.HostTally(ok=10, changed=changed, failed=failed)
    assert configure.Result(tally, "successful", 0, 1.0, check, Path(".")).exit_code == code


# --------------------------------------------------------------------------- the runner call


def _inventory(tmp_path: Path) -> Path:
    doc = {"all": {"vars": {"estate_lab": True}, "children": {
        "council_havering": {"hosts": {"hav-tc01": {"ansible_host": "192.0.2.10", "estate_council": "havering"}}},
        "hub": {"hosts": {"hub-log01": {"ansible_host": "192.0.2.11", "estate_council": "shared"}}},
        "thin_client": {"hosts": {"hav-tc01": {}}},
        "log_collector": {"hosts": {"hub-log01": {}}}}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


class FakeRunner:
    def __init__(self) -> None:
        self.kwargs: dict[str, Any] = {}

    def __call__(self, **kwargs: Any) -> Any:
        self.kwargs = kwargs
        stats = {"ok": {"hav-tc01": 1}, "changed": {"hav-tc01": 1}}
        for event in ({"event": "runner_on_ok", "event_data": {"host": "hav-tc01", "task": "x",
                                                                "res": {"changed": True}}},
                      {"event": "playbook_on_stats", "event_data": stats}):
            kwargs["event_handler"](event)

        class Done:
            status, rc = "successful", 0

            class config:
                artifact_dir = str(Path(kwargs["private_data_dir"]) / "artifacts" / "x")

        return Done()


@pytest.fixture
def copy_estate(repo_copy: Path) -> Estate:
    return load_estate(repo_copy)


def test_run_fast_settings_and_council_limit(copy_estate: Estate, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import ansible_runner

    fake = FakeRunner()
    monkeypatch.setattr(ansible_runner, "run", fake)
    result = configure.run(copy_estate, inventory=_inventory(tmp_path), council="havering", check=True)
    kw = fake.kwargs
    assert kw["limit"] == "council_havering" and kw["cmdline"].endswith(" --check --diff")
    assert kw["playbook"] == "site.yml" and Path(kw["project_dir"]) == copy_estate.root / "playbooks"
    env = kw["envvars"]
    assert env["ANSIBLE_PIPELINING"] == "True" and env["ANSIBLE_STRATEGY"] == "mitogen_free"
    assert (Path(env["ANSIBLE_STRATEGY_PLUGINS"]) / "mitogen_free.py").is_file()
    assert env["ANSIBLE_ROLES_PATH"] == str(copy_estate.root / "roles")
    assert kw["fact_cache_type"] == "jsonfile" and Path(kw["fact_cache"]).is_absolute()
    # one inventory: the estate's plugin over this lab inventory, found in the repository's collection
    assert kw["inventory"] == [str(copy_estate.root / ".state" / "configure" / configure.PLUGIN_CONFIG)]
    assert kw["extravars"] == {}  # the estate_* vars are the plugin's (tests/test_inventory_plugin.py)
    assert env["ANSIBLE_INVENTORY_ENABLED"].startswith(configure.INVENTORY_PLUGIN + ",")
    assert any((Path(p) / "ansible_collections" / "shared_estate" / "estate" / "plugins" / "inventory" /
                "estate.py").is_file() for p in env["ANSIBLE_COLLECTIONS_PATH"].split(os.pathsep))
    # ansible-config shows the settings took effect, those Ansible reads from a file only among them
    shown = subprocess.run([str(Path(sys.executable).parent / "ansible-config"), "dump", "--only-changed"],
                           env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
    assert f"DEFAULT_INTERNAL_POLL_INTERVAL({env['ANSIBLE_CONFIG']}) = {configure.INTERNAL_POLL_INTERVAL}" in shown
    assert "INJECT_FACTS_AS_VARS(env: ANSIBLE_INJECT_FACT_VARS) = False" in shown
    assert result.exit_code == 1  # check mode, and a task changed: drift
    assert result.tally.hosts["hav-tc01"].changes == ["x"]


def test_run_with_ansible_defaults_leaves_the_settings_out(copy_estate: Estate, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import ansible_runner

    fake = FakeRunner()
    monkeypatch.setattr(ansible_runner, "run", fake)
    result = configure.run(copy_estate, inventory=_inventory(tmp_path), fast=False)
    env = fake.kwargs["envvars"]
    for key in configure.fast_settings(tmp_path, 10):
        assert key not in env
    assert fake.kwargs["fact_cache_type"] == "memory" and fake.kwargs["limit"] is None
    assert result.exit_code == 0


def test_a_check_run_does_not_leave_later_runs_in_check_mode(copy_estate: Estate, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """ansible-runner writes each call's inputs under env/ and reads back what a later call leaves out."""
    import ansible_runner
    from ansible_runner.interface import init_runner

    commands: list[list[str]] = []

    def prepare_only(**kwargs: Any) -> Any:
        runner = init_runner(**kwargs)  # ansible-runner's own artifacts and command line, without running it
        commands.append(list(runner.config.command))
        return FakeRunner()(**kwargs)

    monkeypatch.setattr(ansible_runner, "run", prepare_only)
    inventory = _inventory(tmp_path)
    configure.run(copy_estate, inventory=inventory, check=True)
    configure.run(copy_estate, inventory=inventory)
    assert "--check" in commands[0]
    assert "--check" not in commands[1] and "--diff" not in commands[1]


def test_no_password_is_left_under_the_state_folder_after_a_run(copy_estate: Estate, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The play reads the passwords through the inventory plugin's lookups of secrets.json; a secret override
    (a lab test's) never goes through ansible-runner's extravars, which it writes to env/extravars and keeps: it
    travels in a 0600 file of its own that the play reads (`-e @file`) and that is gone, with env/, at the end."""
    import ansible_runner
    from ansible_runner.interface import init_runner

    seen: dict[str, Any] = {}

    def prepare_only(**kwargs: Any) -> Any:
        runner = init_runner(**kwargs)  # ansible-runner's own env/ and artifacts, as a real run writes them
        command = list(runner.config.command)
        vars_file = Path(next(a for a in command if ".secret-vars." in a).removeprefix("@"))
        seen["mode"] = stat.S_IMODE(vars_file.stat().st_mode)
        seen["vars"] = json.loads(vars_file.read_text(encoding="utf-8"))
        seen["file"] = vars_file
        seen["command"] = command
        return FakeRunner()(**kwargs)

    monkeypatch.setattr(ansible_runner, "run", prepare_only)
    override = [{"key": "havering", "name": "H",
                 "agents": [{"name": "a", "password": "override-pw", "real_name": "r"}]}]
    configure.run(copy_estate, inventory=_inventory(tmp_path), check=True,
                  overrides={"estate_helpdesk_councils": override, "estate_log_cap": 5})
    state = copy_estate.root / ".state" / "configure"
    stored = json.loads((state / "secrets.json").read_text(encoding="utf-8"))
    passwords = [stored["helpdesk_root_password"], stored["helpdesk_rest_password"], *stored["agents"].values()]
    # the secret override reached the play from a private file; the other override as an extra var
    assert seen["mode"] == 0o600 and seen["vars"] == {"estate_helpdesk_councils": override}
    assert not any(p in " ".join(seen["command"]) for p in [*passwords, "override-pw"])
    # and nothing but secrets.json holds a password once the run is over (the plugin's config, the ruleset ...)
    assert not seen["file"].exists()
    holders = [str(f.relative_to(state)) for f in state.rglob("*") if f.is_file()
               and any(p.encode() in f.read_bytes() for p in [*passwords, "override-pw"])]
    assert holders == ["secrets.json"]


def test_the_secret_vars_file_is_removed_when_the_run_fails(copy_estate: Estate, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import ansible_runner

    def interrupted(**kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(ansible_runner, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        configure.run(copy_estate, inventory=_inventory(tmp_path))
    state = copy_estate.root / ".state" / "configure"
    assert not list(state.glob(".secret-vars.*")) and not (state / "runner" / "env").exists()


# --------------------------------------------------------------------------- bad input


def test_missing_inventory_is_one_line(repo_copy: Path) -> None:
    result = CliRunner().invoke(app, ["configure", "--inventory", "nowhere/inventory.yml"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == ["nowhere/inventory.yml: no inventory here "
                     "(start the lab with `estate lab up`, or pass --inventory)"]


def test_unknown_council_is_one_line(repo_copy: Path, tmp_path: Path) -> None:
    inv = _inventory(tmp_path)
    result = CliRunner().invoke(app, ["configure", "--inventory", str(inv), "--council", "atlantis"])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "unknown council 'atlantis'" in result.output


def test_council_without_hosts_is_one_line(repo_copy: Path, tmp_path: Path) -> None:
    inv = _inventory(tmp_path)
    result = CliRunner().invoke(app, ["configure", "--inventory", str(inv), "--council", "newham"])
    assert result.exit_code == 2 and "no host of council 'newham'" in result.output


def test_malformed_inventory_names_file_and_line(repo_copy: Path) -> None:
    bad = repo_copy / "inv.yml"
    bad.write_text("all:\n  hosts: [\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["configure", "--inventory", str(bad)])
    assert result.exit_code == 2
    assert result.output.startswith("inv.yml:") and "YAML syntax" in result.output

"""The Ansible roles, without hosts: layout, task names, argument specs against the values that
`estate configure` derives from framework.yaml and inventories/, and ansible-lint's production profile."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from estate.configure import common_settings, is_admin_flow, load_secrets, playbook_vars
from estate.inventory import inventory_hosts
from estate.loader import Estate

REPO = Path(__file__).resolve().parent.parent
ROLES = ("baseline", "thin_client", "dc_services", "log_collector", "router", "helpdesk")
# Which section of framework.yaml each task-name domain enforces.
DOMAINS = {"Security": "security", "Desktop": "desktop", "Helpdesk": "helpdesk", "Datacentre": "data_centre",
           "Network": "network"}
TASK_NAME = re.compile(r"^(?P<domain>[A-Z][a-z]+) \| (?P<id>\d+\.\d+|FL-\d+|IPAM) \| \S.*$")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _tasks(node: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in node or []:
        if isinstance(item, dict):
            out.append(item)
            for key in ("block", "rescue", "always"):
                out.extend(_tasks(item.get(key)))
    return out


@pytest.mark.parametrize("role", ROLES)
def test_role_layout(role: str) -> None:
    base = REPO / "roles" / role
    for part in ("defaults/main.yml", "tasks/main.yml", "handlers/main.yml", "meta/main.yml",
                 "meta/argument_specs.yml", "README.md", "molecule/default/molecule.yml",
                 "molecule/default/converge.yml", "molecule/default/tests/test_default.py"):
        assert (base / part).is_file(), f"{role}: no {part}"
    assert any((base / "templates").iterdir()), f"{role}: no templates"
    scenario = _yaml(base / "molecule/default/molecule.yml")
    platform = scenario["platforms"][0]
    assert platform["name"].startswith("molecule-")
    assert platform["pre_build_image"] is True and platform["command"] == "/sbin/init"
    assert platform["systemd"] == "always"
    assert scenario["verifier"]["name"] == "testinfra"
    assert scenario["scenario"]["test_sequence"][:5] == ["destroy", "create", "prepare", "converge", "idempotence"]


def test_task_names_carry_the_control_they_enforce(estate: Estate) -> None:
    fw = estate.framework
    controls = {c.id: path.split(".")[0] for path, c in fw.controls()}
    flows = {f.id for f in fw.network.flows}
    checked = 0
    for path in sorted((REPO / "roles").glob("*/tasks/*.yml")):
        for task in _tasks(_yaml(path)):
            name = task.get("name", "")
            match = TASK_NAME.match(name)
            assert match, f"{path.relative_to(REPO)}: task name {name!r} is not '<Domain> | <control id> | <what>'"
            domain, ident = match["domain"], match["id"]
            assert domain in DOMAINS, f"{path}: unknown domain {domain!r}"
            if ident in controls:
                assert controls[ident] == DOMAINS[domain], f"{name!r}: control {ident} is in {controls[ident]}"
            else:
                assert ident in flows or ident == "IPAM", f"{name!r}: {ident} is no control or flow of framework.yaml"
                assert domain == "Network"
            checked += 1
    assert checked > 80


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_agree(role: str) -> None:
    base = REPO / "roles" / role
    defaults = _yaml(base / "defaults/main.yml") or {}
    options = _yaml(base / "meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(options), f"{role}: defaults and argument_specs list different variables"
    for name, spec in options.items():
        # a control's toggle has one name in every role that enforces it (tests/test_control_toggles.py)
        assert name.startswith((role + "_", "estate_control_")), name
        assert spec.get("description"), f"{role}: {name} has no description"
        if "default" in spec:
            assert spec["default"] == defaults[name], f"{role}: {name} default differs from defaults/main.yml"
        readme = (base / "README.md").read_text(encoding="utf-8")
        assert f"`{name}`" in readme, f"{role}: README does not describe {name}"


def test_handlers_are_unique_and_notified_within_their_role() -> None:
    """Handlers of all roles share one namespace in a play: a name used by two roles would run the other
    role's handler (skipped when that role does not apply to the host)."""
    owner: dict[str, str] = {}
    for role in ROLES:
        for handler in _tasks(_yaml(REPO / "roles" / role / "handlers" / "main.yml")):
            for name in {handler["name"], handler.get("listen", handler["name"])}:
                assert owner.setdefault(name, role) == role, f"handler {name!r} is in {owner[name]} and {role}"
    for role in ROLES:
        for path in (REPO / "roles" / role / "tasks").glob("*.yml"):
            for task in _tasks(_yaml(path)):
                notify = task.get("notify", [])
                for name in [notify] if isinstance(notify, str) else notify:
                    assert owner.get(name) == role, f"{path.relative_to(REPO)}: notifies {name!r} of {owner.get(name)}"


def test_no_council_data_in_roles(estate: Estate) -> None:
    """Roles hold no council name, key, address block or VLAN id: those come from the inventory."""
    needles = {rec.council.name for rec in estate.councils.values()} | set(estate.councils)
    needles |= {rec.council.block for rec in estate.councils.values()} | {estate.framework.network.hub.block}
    needles |= {str(seg.network) for site in estate.addresses.councils.values() for seg in site.segments}
    for path in (REPO / "roles").rglob("*"):
        if path.is_file() and "molecule" not in path.parts:
            text = path.read_text(encoding="utf-8")
            for needle in needles:
                assert needle not in text, f"{path.relative_to(REPO)} names {needle!r}"


# --------------------------------------------------------------------------- the values the roles get


def _lab_inventory(estate: Estate, tmp: Path) -> Path:
    """The inventory `estate lab up` would write for the example estate (pure: no lab needed)."""
    from estate.lab.inventory import render_inventory
    from estate.lab.topology import build, load_config

    topo = build(estate, load_config(estate.root))
    doc = render_inventory(topo, key_file=tmp / "key", known_hosts=tmp / "known_hosts",
                           framework_version=estate.framework.version)
    for group in doc["all"]["children"].values():
        for hv in (group.get("hosts") or {}).values():
            if hv:
                hv["ansible_connection"] = "local"
                hv["ansible_python_interpreter"] = sys.executable
    path = tmp / "inventory.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


VALIDATE = """
- name: Validate the role variables of every host against the roles' argument specs
  hosts: all
  gather_facts: false
  tasks:
    - name: Validate each role's variables
      ansible.builtin.validate_argument_spec:
        argument_spec: "{{ (lookup('ansible.builtin.file', roles_dir ~ '/' ~ item ~ '/meta/argument_specs.yml')
                           | from_yaml)['argument_specs']['main']['options'] }}"
      loop: "{{ ['baseline'] + (group_names | intersect(all_roles)) }}"
    - name: Record the values the roles get
      ansible.builtin.copy:
        content: "{{ dict(watched | zip(watched | map('extract', vars))) | to_json }}"
        dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
        mode: "0600"
      vars:
        watched: "{{ vars.keys() | select('match', '^(' ~ all_roles | join('|') ~ ')_') | list }}"
      delegate_to: localhost
"""


@pytest.fixture(scope="module")
def role_values(estate: Estate, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every lab host's role variables, as playbooks/group_vars renders them from `estate configure`'s extra
    vars; validate_argument_spec fails the play if any role's argument spec rejects them."""
    import ansible_runner

    tmp = tmp_path_factory.mktemp("roles")
    project = tmp / "project"
    shutil.copytree(REPO / "playbooks", project)
    (project / "validate.yml").write_text(VALIDATE, encoding="utf-8")
    out = tmp / "out"
    out.mkdir()
    (tmp / "runner").mkdir()
    secrets = load_secrets(tmp / "secrets.json", estate.councils)
    extravars = playbook_vars(estate, secrets, tmp / "router.nft")
    extravars.update({"roles_dir": str(REPO / "roles"), "all_roles": list(ROLES), "out_dir": str(out)})
    env = common_settings(REPO)
    result = ansible_runner.run(private_data_dir=str(tmp / "runner"), project_dir=str(project),
                                playbook="validate.yml", inventory=str(_lab_inventory(estate, tmp)),
                                extravars=extravars, envvars=env, quiet=True)
    failures = [e["event_data"].get("res", {}).get("msg", "") for e in result.events
                if e.get("event") == "runner_on_failed"]
    assert result.rc == 0, f"argument specs rejected the values: {failures[:3]}"
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in out.glob("*.json")}


def test_every_host_gets_valid_values(estate: Estate, role_values: dict[str, dict[str, Any]]) -> None:
    from estate.loader import host_addresses

    hosts = {name for key in ("shared", *estate.councils) for name, *_ in host_addresses(estate, key)}
    assert set(role_values) == hosts


def test_baseline_values_come_from_the_framework(estate: Estate, role_values: dict[str, dict[str, Any]]) -> None:
    sec = estate.framework.security
    for host, values in role_values.items():
        assert values["baseline_ssh_max_auth_tries"] == sec.ssh.max_auth_tries, host
        assert values["baseline_lockout_attempts"] == sec.lockout.max_attempts
        assert values["baseline_password_min_length"] == sec.passwords.min_length
        assert values["baseline_forbidden_accounts"] == sec.default_accounts.forbidden
        assert values["baseline_firewall_policy"] == sec.host_firewall.default_policy
        assert values["baseline_log_forward_port"] == sec.logging.forward_port
        assert "22" in values["baseline_firewall_admin_tcp_ports"] and "22" not in values["baseline_firewall_tcp_ports"]


def test_time_and_logs_point_at_the_right_hosts(estate: Estate, role_values: dict[str, dict[str, Any]]) -> None:
    from estate.loader import host_addresses

    hub = {name: (role, str(addr)) for name, role, _, addr in host_addresses(estate, "shared")}
    collector = next(addr for role, addr in hub.values() if role == "log_collector")
    for key in estate.councils:
        hosts = host_addresses(estate, key)
        services = next(str(addr) for _, role, _, addr in hosts if role == "dc_services")
        for name, role, _, _ in hosts:
            values = role_values[name]
            assert values["baseline_log_collector"] == collector
            if role == "dc_services":
                assert services not in values["baseline_ntp_servers"]  # it serves time, from upstream
                assert values["dc_services_address"] == services
            else:
                assert values["baseline_ntp_servers"] == [services]
    for name in hub:
        assert role_values[name]["baseline_ntp_servers"], f"{name} keeps time from no server"


def test_firewall_opens_what_the_flow_matrix_lets_in(estate: Estate, role_values: dict[str, dict[str, Any]]) -> None:
    from estate.loader import host_addresses

    for key in estate.councils:
        for name, role, seg, _ in host_addresses(estate, key):
            tcp = role_values[name]["baseline_firewall_tcp_ports"]
            udp = role_values[name]["baseline_firewall_udp_ports"]
            admin_ports = role_values[name]["baseline_firewall_admin_tcp_ports"]
            for flow in estate.framework.network.flows:
                if flow.destination == seg.name and (flow.scope != "inter" or estate.exchanges.partners(flow.id, key)):
                    opened = admin_ports if is_admin_flow(estate, flow) else tcp if flow.protocol == "tcp" else udp
                    for port in flow.ports:
                        assert port in opened, f"{name}: {flow.id} {flow.protocol}/{port} is not open"
            if role == "thin_client":  # SSH for the controller, RDP for Bastion (the administration flow): nothing else
                admin = estate.framework.network.administration
                assert admin_ports == [admin.linux_port, admin.windows_port] and tcp == [] and udp == []
            if role == "dc_services":
                assert "67" in udp and "53" in tcp
    for name, role, _, _ in host_addresses(estate, "shared"):
        assert role_values[name].get("baseline_firewall_filter_forward", True) is (role != "router")


def test_administration_ports_open_only_from_the_administration_sources(
        estate: Estate, role_values: dict[str, dict[str, Any]]) -> None:
    """SSH (and RDP) never open to any source: only from the hub's Bastion and management segments, the host's
    own council's management VLAN where the flow matrix gives it a path, and the controller running the play;
    never from a guest, voice or printer network, nor another council's networks (issue 17, item 4)."""
    from estate.loader import host_addresses

    admin = estate.framework.network.administration
    plan = estate.addresses
    hub_sources = {str(seg.network) for seg in plan.hub.segments if f"hub/{seg.name}" in admin.sources}
    assert hub_sources
    for site in ("shared", *estate.councils):
        own_management = {str(seg.network) for seg in plan.site(site).segments if seg.name == "management"}
        for name, _, _, _ in host_addresses(estate, site):
            values = role_values[name]
            assert admin.linux_port not in values["baseline_firewall_tcp_ports"], name
            assert admin.windows_port not in values["baseline_firewall_tcp_ports"], name
            assert admin.linux_port in values["baseline_firewall_admin_tcp_ports"], name
            sources = set(values["baseline_firewall_admin_sources"])
            estate_sources = {s for s in sources if "/" in s}
            assert hub_sources <= estate_sources <= hub_sources | own_management, (name, sources)
            assert len(sources - estate_sources) == 1  # the controller (the lab's, on its out-of-band network)


def test_role_values_from_the_spec(estate: Estate, role_values: dict[str, dict[str, Any]]) -> None:
    from estate.loader import host_addresses

    fw = estate.framework
    for key in estate.councils:
        hosts = host_addresses(estate, key)
        app = next(str(addr) for _, role, _, addr in hosts if role == "app_server")
        for name, role, _, _ in hosts:
            values = role_values[name]
            if role == "thin_client":
                assert values["thin_client_screen_lock_minutes"] == fw.desktop.screen_lock.minutes
                assert values["thin_client_rdp_package"] == fw.desktop.rdp_client.package
                assert values["thin_client_broker"] == app
            if role == "dc_services":
                vlans = {v["name"]: v for v in values["dc_services_vlans"]}
                assert sorted(v["vlan_id"] for v in vlans.values()) == sorted(v.id for v in fw.network.vlans)
                for seg in estate.addresses.site(key).segments:
                    assert vlans[seg.name]["subnet"] == str(seg.network)
                    assert vlans[seg.name]["gateway"] == str(seg.gateway)
                assert {r["name"] for r in values["dc_services_records"]} == {h[0] for h in hosts}
    hub = {role: name for name, role, _, _ in host_addresses(estate, "shared")}
    helpdesk = role_values[hub["helpdesk"]]
    assert [c["key"] for c in helpdesk["helpdesk_councils"]] == sorted(estate.councils)
    assert helpdesk["helpdesk_sla"] == [p.model_dump() for p in fw.helpdesk.sla.priorities]
    assert helpdesk["helpdesk_categories"] == fw.helpdesk.categories
    collector = role_values[hub["log_collector"]]
    assert collector["log_collector_retention_days"] == max(fw.security.logging.retention_days,
                                                            fw.data_centre.log_analytics.retention_days)
    assert collector["log_collector_port"] == fw.security.logging.forward_port


def test_inventory_hosts_merge_group_vars(tmp_path: Path, estate: Estate) -> None:
    inv = yaml.safe_load(_lab_inventory(estate, tmp_path).read_text(encoding="utf-8"))
    hosts = inventory_hosts(inv)
    first = next(iter(estate.councils))
    some = next(h for h in hosts.values() if h["vars"].get("estate_council") == first)
    assert some["vars"]["estate_framework_version"] == estate.framework.version  # from all.vars
    assert "all" in some["groups"] and some["vars"]["estate_role"] in some["groups"]


def test_ansible_lint_production_profile() -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}", NO_COLOR="1")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-lint"), "--nocolor", "-f", "pep8",
                           "--profile", "production", "roles", "playbooks"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


RENDER = """
- name: Render one role template with a host's role values
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Render
      ansible.builtin.template:
        src: "{{ template_src }}"
        dest: "{{ template_dest }}"
        mode: "0600"
"""


def _render(role: str, template: str, values: dict[str, Any], tmp: Path) -> str:
    """A role's template rendered by Ansible with the values one host gets."""
    import ansible_runner

    (tmp / "project").mkdir()
    (tmp / "runner").mkdir()
    (tmp / "project" / "render.yml").write_text(RENDER, encoding="utf-8")
    out = tmp / "out.txt"
    defaults = _yaml(REPO / "roles" / role / "defaults" / "main.yml") or {}
    extravars = {**defaults, **values, "template_src": str(REPO / "roles" / role / "templates" / template),
                 "template_dest": str(out)}
    result = ansible_runner.run(private_data_dir=str(tmp / "runner"), project_dir=str(tmp / "project"),
                                playbook="render.yml", extravars=extravars, envvars=common_settings(REPO),
                                quiet=True)
    assert result.rc == 0, [e["event_data"].get("res", {}).get("msg") for e in result.events
                            if e.get("event") == "runner_on_failed"]
    return out.read_text(encoding="utf-8")


def test_log_collector_knows_every_host_by_its_address(estate: Estate, role_values: dict[str, dict[str, Any]]) -> None:
    from estate.loader import host_addresses

    collector = next(v for v in role_values.values() if "log_collector_senders" in v)
    senders = {s["address"]: (s["council"], s["host"]) for s in collector["log_collector_senders"]}
    assert len(senders) == len(collector["log_collector_senders"])
    for site in ("shared", *estate.councils):
        for name, _, _, address in host_addresses(estate, site):
            assert senders[str(address)] == (site, name)
    router = next(n for n, r, _, _ in host_addresses(estate, "shared") if r == "router")
    for site in ("shared", *estate.councils):
        for seg in estate.addresses.site(site).segments:  # the router sends from the leg it sends on
            assert senders[str(seg.gateway)] == ("shared", router)


def test_log_collector_files_by_sender_address_never_by_claimed_hostname(
        role_values: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """Issue 17, item 4: today's receiver files under %HOSTNAME%, which any sender sets to another council's host."""
    collector = {**(_yaml(REPO / "roles/log_collector/defaults/main.yml") or {}),
                 **next(v for v in role_values.values() if "log_collector_senders" in v)}
    conf = _render("log_collector", "rsyslog-receiver.conf.j2", collector, tmp_path)
    directory = collector["log_collector_directory"]
    actions = re.findall(
        r'if \$fromhost-ip == (\[[^]]*\]) then \{\s*action\(type="omfile" file="([^"]+)"(.*?)\)\s*stop', conf, re.S)
    filed = {address: file for addresses, file, _ in actions for address in json.loads(addresses)}
    assert set(filed) == {s["address"] for s in collector["log_collector_senders"]}
    assert len({file for _, file, _ in actions}) == len(actions)  # one action per file
    for sender in collector["log_collector_senders"]:
        assert filed[sender["address"]] == f"{directory}/{sender['council']}/{sender['host']}.log"
    for _, file, rest in actions:
        assert f'rotation.sizeLimit="{collector["log_collector_sender_cap_mb"]}m"' in rest
        assert f'rotation.sizeLimitCommand="/usr/local/sbin/estate-log-cap {file}"' in rest
    assert "dynaFile" not in conf and "%HOSTNAME" not in conf.split("template(", 1)[0]
    # what no sender matches goes to the one quarantine file, capped too; the input is rate-limited
    tail = conf.rsplit("stop\n    }", 1)[1]
    assert f'file="{directory}/{collector["log_collector_quarantine"]}.log"' in tail and "rotation.sizeLimit" in tail
    assert re.search(r'input\(type="imtcp".*RateLimit\.Interval="\d+" RateLimit\.Burst="\d+"', conf, re.S)

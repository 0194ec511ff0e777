"""The Ansible inventory plugin (shared_estate.estate.estate, issue 16 item 1): the hosts, groups and vars it yields,
through the library (estate.ansible_inventory) and through the venv's `ansible-inventory`, against the vars
`estate configure` passed before it (a recorded golden file); production hosts; one-line errors; no password in
the inventory."""

from __future__ import annotations

import datetime as dt
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

from estate.ansible_inventory import SECRETS_VAR, build, read_config, vlan_group
from estate.inventory import LAB_INVENTORY
from estate.lab.inventory import render_inventory
from estate.lab.topology import build as build_topology
from estate.lab.topology import load_config
from estate.loader import load_estate

REPO = Path(__file__).resolve().parent.parent
GOLDEN = json.loads((REPO / "tests" / "data" / "inventory_plugin_golden.json").read_text(encoding="utf-8"))
TODAY = dt.date.fromisoformat(GOLDEN["today"])
BIN = Path(sys.executable).parent
LOOKUP = re.compile(r"^\{\{ \(lookup\('ansible\.builtin\.file', " + SECRETS_VAR
                    + r"\) \| from_json\)((?:\['[^']+'\])+) \}\}$")


def normalised(node: Any, root: Path) -> Any:
    """Vars as the golden file holds them: a secret's lookup as <secret:its place>, the root as <root>; a string
    `ansible-inventory` marks as not to be templated ({"__ansible_unsafe": ...}, every string but the lookups) as
    the string."""
    if isinstance(node, dict) and set(node) == {"__ansible_unsafe"}:
        node = node["__ansible_unsafe"]
    if isinstance(node, str):
        found = LOOKUP.match(node)
        if found:
            return "<secret:" + ".".join(re.findall(r"\['([^']+)'\]", found.group(1))) + ">"
        return node.replace(str(root), "<root>")
    if isinstance(node, list):
        return [normalised(v, root) for v in node]
    if isinstance(node, dict):
        return {k: normalised(v, root) for k, v in node.items()}
    return node


def before(host: str) -> dict[str, Any]:
    """What configure passed this lab host before the plugin: its extra vars over its inventory vars."""
    return {**GOLDEN["hosts"][host], **GOLDEN["extra_vars"]}


REGENERATE = ("the plugin's vars differ from the golden file; if configure.playbook_vars or the lab inventory "
              "changed on purpose, rewrite it: .venv/bin/python -m tests.test_inventory_plugin")


@pytest.fixture
def tree(repo_copy: Path) -> Path:
    """A repo copy with the roles, the collection, ansible.cfg and a lab inventory as `estate lab up` writes it
    (the key paths as the golden file has them), the plugin's config judging exemptions on the golden's day."""
    (repo_copy / "roles").symlink_to(REPO / "roles")
    (repo_copy / "collections").symlink_to(REPO / "collections")
    shutil.copy(REPO / "ansible.cfg", repo_copy / "ansible.cfg")
    estate = load_estate(repo_copy)
    topo = build_topology(estate, load_config(REPO))
    doc = render_inventory(topo, key_file=Path("/LAB/ssh/id_ed25519"), known_hosts=Path("/LAB/ssh/known_hosts"),
                           framework_version=estate.framework.version)
    lab = repo_copy / LAB_INVENTORY
    lab.parent.mkdir(parents=True)
    lab.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    config = repo_copy / "inventories" / "estate.yml"
    config.write_text(config.read_text(encoding="utf-8") + f"today: {TODAY.isoformat()}\n", encoding="utf-8")
    return repo_copy


def ansible(tool: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / tool), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "ANSIBLE_NOCOLOR": "1", **(env or {})}, check=False)


def listed(tree: Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = ansible("ansible-inventory", "-i", str(tree / "inventories" / "estate.yml"), "--list", cwd=cwd or tree,
                   env=env)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def plain(node: Any) -> Any:
    return normalised(node, Path("/nowhere"))


def members(data: dict[str, Any], group: str) -> set[str]:
    return set((data.get(group) or {}).get("hosts", []))


def add_production(tree: Path, council: str, text: str) -> Path:
    path = tree / "inventories" / council / "hosts.yml"
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the vars: the same as before


def test_the_library_yields_each_lab_host_the_vars_configure_passed_before(tree: Path) -> None:
    inv = build(load_estate(tree), sources=["lab"], today=TODAY)
    assert sorted(inv.hosts) == sorted(GOLDEN["hosts"])
    for host in inv.hosts:
        got = normalised(inv.host_vars(host), tree)
        assert got.pop(SECRETS_VAR) == "<root>/.state/configure/secrets.json"
        assert got == before(host), f"{host}: {REGENERATE}"


def test_ansible_inventory_lists_the_groups_and_the_vars_configure_passed_before(tree: Path) -> None:
    data = listed(tree)
    hostvars = data["_meta"]["hostvars"]
    assert sorted(hostvars) == sorted(GOLDEN["hosts"])
    for host, got in hostvars.items():
        got = normalised(got, tree)
        got.pop(SECRETS_VAR)
        assert got == before(host), f"{host}: {REGENERATE}"
    # the groups: site, role and VLAN, as Ansible names them
    assert members(data, "council_havering") == {"hav-tc01", "hav-app01", "hav-svc01"}
    assert members(data, "council_waltham_forest") == {"wf-tc01", "wf-app01", "wf-svc01"}
    assert members(data, "hub") == {"hub-rtr01", "hub-hd01", "hub-log01"}
    assert members(data, "thin_client") == {"hav-tc01", "nwm-tc01", "wf-tc01"}
    assert members(data, "router") == {"hub-rtr01"}
    assert members(data, "vlan_shared_services") == {"hav-svc01", "nwm-svc01", "wf-svc01", "hub-hd01", "hub-log01"}
    assert members(data, "vlan_desktops") == {"hav-tc01", "nwm-tc01", "wf-tc01"}
    assert vlan_group("shared-services") == "vlan_shared_services"
    # the exemption's toggle, on the one host it covers
    assert hostvars["hav-tc01"]["estate_control_2_5"] is False
    assert not any("estate_control_2_5" in v for h, v in hostvars.items() if h != "hav-tc01")


def test_no_password_is_in_the_inventory_and_the_lookups_resolve_in_a_play(tree: Path) -> None:
    done = ansible("ansible-inventory", "-i", "inventories/estate.yml", "--list", cwd=tree)
    stored = json.loads((tree / ".state" / "configure" / "secrets.json").read_text(encoding="utf-8"))
    passwords = [stored["helpdesk_root_password"], stored["helpdesk_rest_password"], *stored["agents"].values()]
    assert done.returncode == 0 and not any(p in done.stdout for p in passwords)
    # a play reads the real values: the lookup is trusted for templating (ansible-core 2.19), nothing else is
    msg = ("{{ estate_helpdesk_root_password }}|{{ estate_helpdesk_councils | map(attribute='agents') | flatten "
           "| map(attribute='password') | join(',') }}")
    shown = ansible("ansible", "-i", "inventories/estate.yml", "hub-hd01", "-m", "ansible.builtin.debug",
                    "-a", f"msg={msg}", cwd=tree)
    assert shown.returncode == 0, shown.stderr
    expected = stored["helpdesk_root_password"] + "|" + ",".join(stored["agents"][k] for k in sorted(stored["agents"]))
    assert f'"msg": "{expected}"' in shown.stdout


def test_the_root_is_found_from_the_config_file_not_the_working_directory(tree: Path, tmp_path_factory:
                                                                          pytest.TempPathFactory) -> None:
    """AWX runs a project's inventory source with another working directory (ansible/awx#9789)."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    data = listed(tree, cwd=elsewhere, env={"ANSIBLE_CONFIG": str(tree / "ansible.cfg")})
    assert sorted(data["_meta"]["hostvars"]) == sorted(GOLDEN["hosts"])
    assert read_config(tree / "inventories" / "estate.yml").root == tree


# --------------------------------------------------------------------------- production hosts


PRODUCTION = """production:
  - name: hav-prod-tc01
    role: thin_client
    vlan: desktops
    dns_name: tc01.havering.example.org
    connection: {user: ansible, port: 2222, become_method: sudo}
  - name: hav-prod-svc01
    role: dc_services
    vlan: shared-services
    address: 10.64.26.140
"""


def test_a_production_host_is_in_its_council_role_and_vlan_groups(tree: Path) -> None:
    add_production(tree, "havering", PRODUCTION)
    data = listed(tree)
    for group in ("council_havering", "thin_client", "vlan_desktops"):
        assert "hav-prod-tc01" in members(data, group), group
    for group in ("council_havering", "dc_services", "vlan_shared_services"):
        assert "hav-prod-svc01" in members(data, group), group
    tc = plain(data["_meta"]["hostvars"]["hav-prod-tc01"])
    assert (tc["ansible_host"], tc["ansible_user"], tc["ansible_port"], tc["ansible_become"],
            tc["ansible_become_method"]) == ("tc01.havering.example.org", "ansible", 2222, True, "sudo")
    assert (tc["estate_council"], tc["estate_vlan"], tc["estate_vlan_id"], tc["estate_production"]) == \
        ("havering", "desktops", 30, True)
    # its council's services host is the production one, as a lab host's is the lab's
    assert tc["estate_services_address"] == "10.64.26.140"
    # the lab is still there beside them
    assert "hav-tc01" in members(data, "council_havering")
    # production only: the lab's hosts are left out
    only = tree / "inventories" / "production-estate.yml"
    only.write_text("plugin: shared_estate.estate.estate\nsources: [production]\n", encoding="utf-8")
    done = ansible("ansible-inventory", "-i", str(only), "--list", cwd=tree)
    assert sorted(json.loads(done.stdout)["_meta"]["hostvars"]) == ["hav-prod-svc01", "hav-prod-tc01"]


@pytest.mark.parametrize(("entry", "field", "message"), [
    ("  - {name: hav-prod-x, role: thin_client, vlan: nope, address: 10.64.16.50}\n", "production[0].vlan",
     "unknown segment 'nope'"),
    ("  - {name: hav-prod-x, role: thin_client, vlan: desktops, address: 10.0.0.5}\n", "production[0].address",
     "10.0.0.5 is not a host address of VLAN desktops"),
    ("  - {name: hav-prod-x, role: thin_client, vlan: desktops, adress: 10.64.16.50}\n", "production[0].adress",
     ""),
    ("  - {name: hav-tc01, role: thin_client, vlan: desktops, address: 10.64.16.50}\n", "production[0].name",
     "'hav-tc01' is already used"),
])
def test_a_malformed_production_entry_is_one_line_with_file_line_and_field(tree: Path, entry: str, field: str,
                                                                            message: str) -> None:
    add_production(tree, "havering", "production:\n" + entry)
    validate = subprocess.run([str(BIN / "estate"), "validate"], cwd=tree, capture_output=True, text=True,
                              timeout=300, check=False)
    assert validate.returncode == 2
    line = validate.stderr.strip()
    assert "\n" not in line and line.startswith(f"inventories/havering/hosts.yml:7: {field}: ") and message in line
    # ansible-inventory fails (its exit code for a source that does not parse, unparsed_is_failed: 1) with that line
    done = ansible("ansible-inventory", "-i", "inventories/estate.yml", "--graph", cwd=tree)
    assert done.returncode == 1
    assert line in done.stderr.splitlines()


# --------------------------------------------------------------------------- cloud VMs: azure_rm, keyed on the tags


AZURE_RM = REPO / "docs" / "inventory" / "estate.azure_rm.yml"
VM_TYPES = ("azure-native:compute:VirtualMachine", "azure-native:compute:VirtualMachineScaleSet")


def test_the_azure_rm_composition_keys_on_tags_the_plan_carries_on_every_vm(estate: Any) -> None:
    """docs/inventory/estate.azure_rm.yml groups the VMs by their `council` and `service` tags: every VM and scale
    set the offline plan holds carries both, and its expressions (Jinja, as azure_rm's constructed options
    evaluate them) put each in the estate plugin's site group and a service group."""
    import jinja2

    from estate.configure import council_group
    from estate.ipam import HUB
    from estate.plan import plan

    config = yaml.safe_load(AZURE_RM.read_text(encoding="utf-8"))
    assert config["plugin"] == "azure.azcollection.azure_rm" and AZURE_RM.name.endswith("azure_rm.yml")
    expressions = [*config["include_host_filters"], *(k["key"] for k in config["keyed_groups"]),
                   *config["hostvar_expressions"].values()]
    assert set(re.findall(r"tags\.([a-z_]+)", " ".join(expressions))) == {"council", "service"}
    assert f"tags.council == '{HUB}'" in config["keyed_groups"][0]["key"]
    env = jinja2.Environment(autoescape=False)  # nothing here is HTML: an expression's value

    def value(expression: str, tags: dict[str, str]) -> Any:
        return env.compile_expression(expression)(tags=tags)

    vms = [r for r in plan(estate).resources if r.type in VM_TYPES]
    assert {r.stack for r in vms} == {HUB, *estate.councils}
    assert {r.type for r in vms} == set(VM_TYPES)
    services = set()
    for vm in vms:
        tags = vm.inputs["tags"]
        assert tags["council"] == vm.stack, vm.name
        assert value(config["include_host_filters"][0], tags) is True
        groups = [(k.get("prefix") + k.get("separator", "_") if k.get("prefix") else "") + value(k["key"], tags)
                  for k in config["keyed_groups"]]
        assert groups == [council_group(vm.stack), "service_" + tags["service"].replace("-", "_")], vm.name
        assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", g) for g in groups)  # valid Ansible group names
        services.add(tags["service"])
    assert value(config["include_host_filters"][0], {"council": "x"}) is False  # an untagged VM is not the estate's
    assert services >= {"datacentre", "desktop", "helpdesk"}


# --------------------------------------------------------------------------- the golden file


def golden(root: Path, repo: Path = REPO) -> dict[str, Any]:
    """The vars as `estate configure` passed them before the plugin: configure.prepare's values as extra vars (over
    everything), the lab inventory's host vars, the exemptions' toggles as host vars of an inventory of their own;
    for the example councils (a copy at `root`), the lab's key paths as /LAB/..., the root as <root>, each password
    as <secret:its place in secrets.json>."""
    from estate.configure import exempt_controls, prepare, role_controls, state_dir, toggle_vars
    from estate.inventory import inventory_hosts

    estate = load_estate(root)
    lab = render_inventory(build_topology(estate, load_config(repo)), key_file=Path("/LAB/ssh/id_ed25519"),
                           known_hosts=Path("/LAB/ssh/known_hosts"), framework_version=estate.framework.version)
    hosts = inventory_hosts(lab)
    state = state_dir(root)
    extra = prepare(estate, state)
    toggles = toggle_vars(exempt_controls(estate, hosts, TODAY, role_controls(repo)))
    stored = json.loads((state / "secrets.json").read_text(encoding="utf-8"))
    where = {v: f"<secret:{k}>" for k, v in stored.items() if isinstance(v, str)}
    where.update({v: f"<secret:agents.{k}>" for k, v in stored["agents"].items()})

    def mask(node: Any) -> Any:
        if isinstance(node, str):
            return where.get(node, node.replace(str(root), "<root>"))
        if isinstance(node, list):
            return [mask(v) for v in node]
        if isinstance(node, dict):
            return {k: mask(v) for k, v in node.items()}
        return node

    return {"_about": GOLDEN["_about"], "today": TODAY.isoformat(), "extra_vars": mask(extra),
            "hosts": {name: mask({**h["vars"], **toggles.get(name, {})}) for name, h in sorted(hosts.items())}}


if __name__ == "__main__":  # rewrite the golden file (a change to configure's vars or the lab's inventory)
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder)
        shutil.copy(REPO / "framework.yaml", copy / "framework.yaml")
        shutil.copytree(REPO / "inventories", copy / "inventories")
        path = REPO / "tests" / "data" / "inventory_plugin_golden.json"
        path.write_text(json.dumps(golden(copy), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path}")

"""`estate plan` and estate.plan: deterministic output, workers, the default (alias-keeping) mocks, a synthetic
consortium of 40 councils, spec changes flowing through with no code change, and config errors up front."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from estate.cli import _register_extensions, app
from estate.errors import EstateError, Problem
from estate.loader import load_estate
from estate.plan import Plan, plan, render_tree, stack_config
from estate.synthetic import synthetic_estate
from tests.stacks_support import REPO, only, prefixes, repo_estate, repo_plan

_register_extensions()
runner = CliRunner()


def test_two_runs_give_byte_identical_json_whatever_the_workers() -> None:
    first = repo_plan().to_json()  # in this process, one worker
    assert plan(repo_estate(), workers=2).to_json() == first  # two forked workers


def test_json_lists_every_resource_with_type_urn_parent_and_inputs() -> None:
    doc = json.loads(repo_plan().to_json())
    assert doc["count"] == len(doc["resources"]) == len(repo_plan().resources)
    assert [s["stack"] for s in doc["stacks"]] == ["shared", "havering", "newham", "waltham-forest"]
    urns = [r["urn"] for r in doc["resources"]]
    assert len(urns) == len(set(urns)), "no two resources share a URN"
    seen: set[str] = set()
    for r in doc["resources"]:
        assert set(r) == {"urn", "type", "name", "stack", "parent", "inputs"}
        assert r["urn"].startswith(f"urn:pulumi:{r['stack']}::shared-estate::")
        assert r["urn"].endswith(f"::{r['name']}")
        if r["type"] == "pulumi:pulumi:Stack":
            assert r["parent"] is None
        else:
            assert r["parent"] in seen, "parents come before their children"
        seen.add(r["urn"])
    nsg = next(r for r in doc["resources"] if r["type"] == "azure-native:network:NetworkSecurityGroup")
    assert isinstance(nsg["inputs"]["securityRules"][0]["priority"], float), "wire format: numbers are floats"
    assert "networkSecurityGroupName" in nsg["inputs"], "wire format: camelCase keys"


def test_secrets_are_redacted_and_nothing_depends_on_the_clock() -> None:
    vmss = repo_plan().of_type("azure-native:compute:VirtualMachineScaleSet")[0]
    profile = vmss.inputs["virtualMachineProfile"]
    assert profile["osProfile"]["adminPassword"] == "[secret]"
    assert profile["extensionProfile"]["extensions"][1]["protectedSettings"] == "[secret]"
    pool = repo_plan().of_type("azure-native:desktopvirtualization:HostPool")[0]
    year, month = repo_estate().framework.version.split(".")
    assert pool.inputs["registrationInfo"]["expirationTime"] == f"{year}-{month}-28T00:00:00Z"


def test_a_council_alone_is_planned_against_the_hub_outputs() -> None:
    alone = plan(repo_estate(), ["newham"], workers=1)
    assert alone.stacks == ("newham",)
    assert {r.stack for r in alone.resources} == {"newham"}
    whole = {r.urn: r for r in repo_plan().for_stack("newham")}
    assert {r.urn: r for r in alone.resources} == whole


def test_default_mocks_plan_the_same_resources_as_the_fast_mode() -> None:
    """Pulumi's default mock behaviour (aliases, source positions, a thread per RPC, MockMonitor's own
    serialisation) against the fast mode: the hub and a council that reads the hub's outputs."""
    fast = [r for r in repo_plan().resources if r.stack in ("shared", "newham")]
    slow = plan(repo_estate(), ["shared", "newham"], fast=False, workers=1)
    assert slow.resources == fast


def test_the_fast_mode_makes_its_rpcs_on_the_planning_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import estate.plan as planning

    threads: dict[bool, set[int]] = {True: set(), False: set()}
    mode = [True]
    original = planning.mock_id

    def recording(token: str, logical: str, inputs: dict[str, Any]) -> str:
        threads[mode[0]].add(threading.get_ident())  # the mock monitor runs this inside RegisterResource
        return original(token, logical, inputs)

    monkeypatch.setattr(planning, "mock_id", recording)
    plan(repo_estate(), ["shared"], workers=1)
    mode[0] = False
    plan(repo_estate(), ["shared"], fast=False, workers=1)
    assert threads[True] == {threading.get_ident()}
    assert threads[False] and threading.get_ident() not in threads[False]


def _failing(*councils: str) -> Any:
    from stacks.program import read_config, run

    def program(estate: Any, stack: str) -> dict[str, Any]:
        if stack in councils:
            raise EstateError([Problem(f"inventories/{stack}/council.yml", 3, "name", f"{stack} broke")])
        return run(estate, stack, read_config(stack))

    return program


def test_an_error_in_a_forked_worker_reaches_the_caller_in_share_order() -> None:
    # three councils over two forked workers: the first plans [havering, waltham-forest], the second [newham]
    with pytest.raises(EstateError) as caught:
        plan(repo_estate(), program=_failing("newham"), workers=2)
    assert [p.message for p in caught.value.problems] == ["newham broke"]
    with pytest.raises(EstateError) as caught:
        plan(repo_estate(), program=_failing("newham", "waltham-forest"), workers=2)
    assert [p.message for p in caught.value.problems] == ["waltham-forest broke"]  # the first share's
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # every worker was reaped


def test_a_plan_hands_the_garbage_collector_back_as_it_found_it() -> None:
    import gc

    threshold = gc.get_threshold()
    for workers in (1, 2):
        plan(repo_estate(), workers=workers)
        assert gc.get_threshold() == threshold
        assert gc.get_freeze_count() == 0  # nothing the plan set aside stays out of the collector's reach
        assert gc.isenabled()


def test_the_tree_shows_types_names_key_properties_and_counts() -> None:
    text = render_tree(repo_plan())
    assert text.startswith("shared (hub): ")
    assert "azure-native:network:Subnet  snet-newham-desktops  subnet=snet-desktops prefix=10.64.32.0/22" in text
    assert "azure-native:compute:VirtualMachineScaleSet  vmss-newham-avd  size=Standard_D4s_v5 hosts=195" in text
    assert f"{len(repo_plan().resources)} resources in 4 stacks" in text


def test_cli_plan_all_json_lists_the_hub_and_three_councils(tmp_path: Path) -> None:
    """The acceptance command, end to end in its own process."""
    out = tmp_path / "plan.json"
    done = subprocess.run([sys.executable, "-m", "estate.cli", "plan", "--all", "--json", "-o", str(out)],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "ESTATE_ROOT": str(REPO)})
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert {r["stack"] for r in doc["resources"]} == {"shared", "havering", "newham", "waltham-forest"}
    assert out.read_text() == repo_plan().to_json()


def test_cli_plan_one_council_as_text() -> None:
    result = runner.invoke(app, ["plan", "--council", "havering", "--root", str(REPO), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("havering: ")
    assert "vnet-havering" in result.stdout and "vnet-newham" not in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--council", "nope"], "unknown council 'nope'"),
    (["--council", "newham", "--all"], "give --council or --all, not both"),
])
def test_cli_plan_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["plan", *args, "--root", str(REPO)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_synthetic_consortium_of_40_councils_plans(tmp_path: Path) -> None:
    estate = synthetic_estate(40, REPO / "framework.yaml", tmp_path / "repo")
    result = plan(estate)
    assert len(result.stacks) == 41
    assert set(result.counts()) == {"shared", *estate.councils}
    urns = [r.urn for r in result.resources]
    assert len(urns) == len(set(urns))
    for key in estate.councils:
        assert len(result.of_type("azure-native:network:Subnet", key)) == len(estate.framework.network.vlans)
        assert len(result.of_type("azure-native:network:VirtualNetworkPeering", key)) == 1  # its own side
    assert len(result.of_type("azure-native:network:VirtualNetworkPeering", "shared")) == 40  # the hub's sides
    inter = only(result.of_type("azure-native:network:FirewallPolicyRuleCollectionGroup"), "afwp-shared-flow-matrix")
    rules = inter.inputs["ruleCollections"][0]["rules"]
    # one FL-14 rule per council, to the neighbours it agreed FL-14 with (estate.synthetic): linear in the councils
    assert len(rules) == 40 and all(len(r["sourceAddresses"]) == 1 for r in rules)
    assert sorted(len(r["destinationAddresses"]) for r in rules) == [1, 1] + [2] * 38


def _edit_framework(root: Path, edit: Any) -> None:
    path = root / "framework.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_changing_a_vlan_changes_subnets_and_nsg_rules_with_no_code_change(repo_copy: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        net = data["network"]
        next(v for v in net["vlans"] if v["name"] == "printers")["prefix"] = 26
        net["vlans"].append({"id": 80, "name": "cctv", "prefix": 26, "purpose": "CCTV cameras"})
        net["flows"].append({"id": "FL-99", "description": "cameras stream to the recorder", "scope": "intra",
                             "source": "cctv", "destination": "servers", "protocol": "tcp", "ports": ["554"]})

    _edit_framework(repo_copy, edit)
    estate = load_estate(repo_copy)
    after = plan(estate, ["newham"], workers=1)
    site = estate.addresses.site("newham")
    subnets = {r.inputs["subnetName"]: r.inputs["addressPrefix"]
               for r in after.of_type("azure-native:network:Subnet")}
    assert subnets == {s.azure_name: str(s.network) for s in site.segments}
    assert subnets["snet-printers"].endswith("/26") and "snet-cctv" in subnets
    before = {r.inputs["subnetName"]: r.inputs["addressPrefix"]
              for r in repo_plan().of_type("azure-native:network:Subnet", "newham")}
    assert before["snet-printers"].endswith("/25") and "snet-cctv" not in before
    cctv = str(site.segment("cctv").network)
    servers = str(site.segment("servers").network)
    rules = {r.name: {x["name"]: x for x in r.inputs["securityRules"]}
             for r in after.of_type("azure-native:network:NetworkSecurityGroup")}
    out, into = rules["nsg-newham-cctv"]["FL-99-out"], rules["nsg-newham-servers"]["FL-99-in"]
    assert (prefixes(out, "source"), prefixes(out, "destination")) == (frozenset({cctv}), frozenset({servers}))
    assert (prefixes(into, "source"), prefixes(into, "destination")) == (frozenset({cctv}), frozenset({servers}))
    assert into["destinationPortRanges"] == ["554"] and into["protocol"] == "Tcp"


def test_bad_stack_config_fails_before_any_resource(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi

    (repo_copy / "Pulumi.newham.yaml").write_text("config:\n  azure-native:location: westeurope\n")
    estate = load_estate(repo_copy)
    declared: list[tuple[str, str]] = []
    original = pulumi.Resource.__init__

    def counting(self: pulumi.Resource, t: str, name: str, *args: Any, **kwargs: Any) -> None:
        declared.append((pulumi.get_stack(), t))
        original(self, t, name, *args, **kwargs)

    monkeypatch.setattr(pulumi.Resource, "__init__", counting)
    with pytest.raises(EstateError) as caught:
        plan(estate, ["newham"], workers=1)
    [problem] = caught.value.problems
    assert problem.file == "Pulumi.newham.yaml" and problem.field == "azure-native:location"
    assert "'westeurope' is not an approved region" in problem.message
    assert stack_config(estate, "newham")["azure-native:location"] == "westeurope"
    assert ("shared", "azure-native:network:VirtualNetwork") in declared  # the hub ran
    assert [t for stack, t in declared if stack == "newham"] == ["pulumi:pulumi:Stack"]


def test_every_config_problem_is_listed_at_once() -> None:
    from stacks.props import StackConfig, build

    estate = repo_estate()
    with pytest.raises(EstateError) as caught:
        build(estate, "newham", StackConfig(stack="newham", location=None, admin_group="not-a-guid",
                                            hub_stack="shared", registration_expiry="tomorrow"))
    fields = {p.field for p in caught.value.problems}
    assert fields == {"azure-native:location", "shared-estate:adminGroupObjectId",
                      "shared-estate:desktopUsersGroupObjectId", "shared-estate:avdServicePrincipalObjectId",
                      "shared-estate:sshPublicKey", "shared-estate:registrationTokenExpiry",
                      "shared-estate:hubStack"}
    assert all(p.file == "Pulumi.newham.yaml" for p in caught.value.problems)


def test_a_spec_the_stacks_cannot_build_names_its_line(repo_copy: Path) -> None:
    from stacks.props import StackConfig, build

    def edit(data: dict[str, Any]) -> None:
        for segment in data["network"]["hub"]["segments"]:
            segment.pop("sku", None)

    _edit_framework(repo_copy, edit)
    estate = load_estate(repo_copy)
    config = StackConfig(stack="shared", location="uksouth", admin_group=stack_config(estate, "shared")[
        "shared-estate:adminGroupObjectId"], admin_group_name="ops", ssh_public_key="ssh-ed25519 AAAA x")
    with pytest.raises(EstateError) as caught:
        build(estate, "shared", config)
    lines = [str(p) for p in caught.value.problems]
    assert len(lines) == 2
    assert all(line.startswith("framework.yaml:") and ".sku: the Azure" in line for line in lines), lines


def test_plan_result_helpers() -> None:
    result: Plan = repo_plan()
    assert sum(result.counts().values()) == len(result.resources)
    assert all(r.stack == "newham" for r in result.for_stack("newham"))


@pytest.mark.parametrize(("stack", "file", "old", "new", "message"), [
    ("newham", "inventories/newham/hosts.yml", "{name: nwm-app01, role: app_server, vlan: servers}",
     "{name: nwm-app01, role: app_server, vlan: servers, address_index: 3}", "one of the addresses Azure keeps"),
    ("shared", "inventories/shared/hosts.yml", "{name: hub-hd01, role: helpdesk, vlan: shared-services}",
     "{name: hub-hd01, role: log_collector, vlan: shared-services}", "no host with role helpdesk"),
])
def test_hosts_the_stacks_cannot_place_are_named(repo_copy: Path, stack: str, file: str, old: str, new: str,
                                                 message: str) -> None:
    from stacks.props import StackConfig, build

    path = repo_copy / file
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    estate = load_estate(repo_copy)
    values = stack_config(estate, stack)
    config = StackConfig(stack=stack, location="uksouth", admin_group=values["shared-estate:adminGroupObjectId"],
                         admin_group_name=values.get("shared-estate:adminGroupName"),
                         desktop_users_group=values.get("shared-estate:desktopUsersGroupObjectId"),
                         avd_service_principal=values.get("shared-estate:avdServicePrincipalObjectId"),
                         ssh_public_key="ssh-ed25519 AAAA x",
                         hub_stack="organization/shared-estate/shared",
                         registration_expiry=values.get("shared-estate:registrationTokenExpiry"))
    with pytest.raises(EstateError) as caught:
        build(estate, stack, config)
    [problem] = caught.value.problems
    assert problem.file == file and message in problem.message

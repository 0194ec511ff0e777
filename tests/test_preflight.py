"""estate preflight: providers and features, vCPUs per quota family against `az vm list-usage`, the deploying
identity's rights per stack and scope, globally unique names; the command's exit codes."""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from estate.cli import _register_extensions, app
from estate.errors import EstateError
from estate.plan import HUB, NAMESPACES
from estate.preflight import (
    SUBSCRIPTION_SCOPE,
    Preflight,
    catalogue,
    check_quota,
    preflight,
    read_usage,
)
from tests.stacks_support import REPO, repo_estate, repo_plan

DATA = REPO / "tests" / "data" / "preflight"
OK = DATA / "usage-uksouth.json"
DEFAULT_QUOTA = DATA / "usage-uksouth-default-quota.json"
VM = "azure-native:compute:VirtualMachine"
VMSS = "azure-native:compute:VirtualMachineScaleSet"
DIAG = "azure-native:monitor:DiagnosticSetting"
runner = CliRunner()
_register_extensions()


@lru_cache(maxsize=1)
def result() -> Preflight:
    return preflight(repo_plan())


def _councils() -> list[str]:
    return sorted(repo_estate().councils)


# --------------------------------------------------------------------------- vCPUs


def test_session_hosts_need_the_scale_sets_capacity_times_the_sizes_vcpus() -> None:
    plan, cat = repo_plan(), catalogue()
    hosts = {i.stack: i for i in result().vcpu_items if i.kind == "scale set"}
    assert sorted(hosts) == _councils()
    for r in plan.resources:
        if r.type == VMSS:
            sku = r.inputs["sku"]
            assert hosts[r.stack].vcpus == int(sku["capacity"]) * cat.sizes[sku["name"]].vcpus
    # the example councils' session hosts alone: 480, 780 and 552 DSv5 vCPUs
    assert {k: (v.vcpus, v.family) for k, v in hosts.items()} == {
        "havering": (480, "standardDSv5Family"), "newham": (780, "standardDSv5Family"),
        "waltham-forest": (552, "standardDSv5Family")}


def test_needs_per_family_and_region_are_the_sums_of_every_machine() -> None:
    res = result()
    items = res.vcpu_items
    vms = [r for r in repo_plan().resources if r.type == VM]
    assert len([i for i in items if i.kind == "vm"]) == len(vms)
    needs = {(n.region, n.family): n for n in res.vcpus}
    for (region, family), need in needs.items():
        if family == "cores":
            mine = [i for i in items if i.region == region]
        else:
            mine = [i for i in items if i.region == region and i.family == family]
        assert need.vcpus == sum(i.vcpus for i in mine)
        assert need.by_stack == {s: sum(i.vcpus for i in mine if i.stack == s) for s in sorted({i.stack for i in mine})}
    dsv5 = needs[("uksouth", "standardDSv5Family")]
    assert dsv5.vcpus >= 480 + 780 + 552
    assert needs[("uksouth", "cores")].vcpus == sum(i.vcpus for i in items)
    assert needs[("uksouth", "cores")].local_name == "Total Regional vCPUs"


def test_every_size_the_framework_allows_is_in_the_table() -> None:
    fw = repo_estate().framework
    allowed = {*fw.desktop.vm_sizes.allowed, *fw.data_centre.vm_skus.allowed, fw.helpdesk.platform.vm_size}
    assert allowed <= set(catalogue().sizes)


def test_a_planned_size_missing_from_the_table_is_one_line_naming_it() -> None:
    cat = catalogue()
    smaller = dataclasses.replace(cat, sizes={k: v for k, v in cat.sizes.items() if k != "Standard_D4s_v5"})
    with pytest.raises(EstateError) as exc:
        preflight(repo_plan(), cat=smaller)
    line = str(exc.value)
    assert "\n" not in line and "Standard_D4s_v5" in line and line.startswith("estate/preflight.yaml")


# --------------------------------------------------------------------------- providers and features


def test_providers_are_the_namespaces_of_every_planned_type() -> None:
    planned = {NAMESPACES[r.type.split(":")[1]] for r in repo_plan().resources if r.type.startswith("azure-native:")}
    providers = result().providers
    assert {p.namespace for p in providers} == planned
    assert {"Microsoft.Compute", "Microsoft.DesktopVirtualization", "Microsoft.Network",
            "Microsoft.OperationalInsights"} <= planned
    compute = next(p for p in providers if p.namespace == "Microsoft.Compute")
    assert compute.command == "az provider register --namespace Microsoft.Compute --wait"
    assert "Microsoft.Compute/virtualMachineScaleSets" in compute.types


def test_encryption_at_host_needs_the_feature_for_every_vm_and_scale_set() -> None:
    machines = {f"{r.stack}/{r.name}" for r in repo_plan().resources if r.type in (VM, VMSS)}
    (feature,) = result().features
    assert (feature.namespace, feature.name) == ("Microsoft.Compute", "EncryptionAtHost")
    assert set(feature.resources) == machines
    assert feature.commands[0] == "az feature register --namespace Microsoft.Compute --name EncryptionAtHost"
    assert feature.commands[-1] == "az provider register --namespace Microsoft.Compute"


# --------------------------------------------------------------------------- rights


def _hub_id(type_token: str) -> str:
    from estate.preflight import arm_id

    (res,) = [r for r in repo_plan().resources if r.stack == HUB and r.type == type_token]
    found = arm_id(res)
    assert found is not None
    return found


def test_councils_need_shared_keys_on_the_hub_workspace_for_every_diagnostic_setting() -> None:
    workspace = _hub_id("azure-native:operationalinsights:Workspace")
    assert workspace.startswith(SUBSCRIPTION_SCOPE + "/resourceGroups/")
    for council in _councils():
        diags = {r.name for r in repo_plan().resources if r.stack == council and r.type == DIAG}
        assert diags
        (row,) = [r for r in result().roles if r.stack == council and r.scope == workspace
                  and r.action == "Microsoft.OperationalInsights/workspaces/sharedKeys/action"]
        assert row.role == "Log Analytics Contributor"
        assert {w.split(" ")[0] for w in row.why} == diags
        assert "LinkedAuthorizationFailed" in row.note
    # the hub writes into its own workspace: Contributor on its resource group covers it
    assert not [r for r in result().roles if r.stack == HUB and r.scope == workspace]


def test_councils_need_the_hub_vnet_and_dns_zones_but_not_its_resource_groups() -> None:
    vnet = _hub_id("azure-native:network:VirtualNetwork")
    storage = _hub_id("azure-native:storage:StorageAccount")
    workspace = _hub_id("azure-native:operationalinsights:Workspace")
    zones = {r.inputs["privateZoneName"] for r in repo_plan().resources
             if r.stack == HUB and r.type == "azure-native:privatedns:PrivateZone"}
    hub_rgs = {r.inputs["resourceGroupName"] for r in repo_plan().resources
               if r.stack == HUB and r.type == "azure-native:resources:ResourceGroup"}
    for council in _councils():
        rows = [r for r in result().roles if r.stack == council]
        on_vnet = {(r.role, r.action) for r in rows if r.scope == vnet}
        # the hub's side of the peering and the DNS links belong to the hub stack: a council only peers its own
        # VNet with the hub's (Azure wants peer/action on the remote VNet of a peering)
        assert on_vnet == {("Network Contributor", "Microsoft.Network/virtualNetworks/peer/action")}
        assert zones
        assert not [r for r in rows if r.action == "Microsoft.Network/privateDnsZones/virtualNetworkLinks/write"]
        assert all("/privateDnsZones/" in r.scope for r in rows if r.role == "Private DNS Zone Contributor")
        # nothing asks for Contributor on the hub's resource groups, nor on NetworkWatcherRG
        assert not [r for r in rows if r.role == "Contributor" and r.scope.split("/")[4:5] in ([g] for g in hub_rgs)]
        assert not [r for r in rows if r.scope.endswith("/resourceGroups/NetworkWatcherRG")]
        # the VNet flow log: Network Watcher's flowLogs/write on the region's watcher, the SAS and key actions on
        # the hub's storage account, the workspace actions of traffic analytics (required-rbac-permissions)
        (log,) = [r for r in repo_plan().resources if r.stack == council and r.type == "azure-native:network:FlowLog"]
        watcher = (f"{SUBSCRIPTION_SCOPE}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/"
                   f"networkWatchers/{log.inputs['networkWatcherName']}")
        assert {(r.role, r.action) for r in rows if r.scope == watcher} == {
            ("Network Contributor", "Microsoft.Network/networkWatchers/flowLogs/write")}
        on_storage = [r for r in rows if r.scope == storage]
        assert [r.role for r in on_storage] == ["Storage Account Contributor"]
        assert {a.strip() for a in on_storage[0].action.split(",")} == {
            f"Microsoft.Storage/storageAccounts/{a}/Action" for a in ("listServiceSas", "listAccountSas", "listKeys")}
        assert "custom role" in on_storage[0].note
        on_workspace = {r.action for r in rows if r.scope == workspace and r.role == "Log Analytics Contributor"}
        assert "Microsoft.OperationalInsights/workspaces/* (read, sharedKeys/action)" in on_workspace
        # every reference into the hub has a named, narrow rule
        assert not [r for r in rows if r.action.startswith("read and link")]


def test_every_role_assignment_scope_needs_role_assignment_write() -> None:
    from estate.preflight import shown_scope

    assigned = {(r.stack, shown_scope(r.inputs["scope"])) for r in repo_plan().resources
                if r.type == "azure-native:authorization:RoleAssignment"}
    rows = {(r.stack, r.scope) for r in result().roles
            if r.action == "Microsoft.Authorization/roleAssignments/write"}
    assert rows == assigned
    assert all("User Access Administrator" in r.role and "Role Based Access Control Administrator" in r.role
               for r in result().roles if r.action == "Microsoft.Authorization/roleAssignments/write")


def test_the_hubs_spoke_guard_needs_resource_policy_contributor_where_it_writes() -> None:
    from estate.preflight import shown_scope

    # Contributor cannot write policy definitions or assignments (Azure Policy overview, "Azure RBAC permissions
    # in Azure Policy"): the hub's deployer needs Resource Policy Contributor at the subscription (the definition)
    # and on each spoke's network resource group (the assignment); a council's deployer needs neither
    planned = [r for r in repo_plan().resources if r.type.startswith("azure-native:authorization:Policy")]
    assert planned and {r.stack for r in planned} == {HUB}
    want = {(SUBSCRIPTION_SCOPE, "Microsoft.Authorization/policyDefinitions/write")} | {
        (shown_scope(r.inputs["scope"]), "Microsoft.Authorization/policyAssignments/write")
        for r in planned if r.type == "azure-native:authorization:PolicyAssignment"}
    rows = {(r.scope, r.action) for r in result().roles if r.role == "Resource Policy Contributor"}
    assert rows == want
    assert len(want) == 1 + len(_councils())
    assert not [r for r in result().roles if r.stack != HUB and r.role == "Resource Policy Contributor"]


def test_each_stack_creates_its_resource_groups_from_the_subscription() -> None:
    for stack in (HUB, *_councils()):
        (row,) = [r for r in result().roles if r.stack == stack and r.scope == SUBSCRIPTION_SCOPE
                  and r.role != "Resource Policy Contributor"]
        assert row.action == "Microsoft.Resources/subscriptions/resourceGroups/write"
        assert len(row.why) == 3 and all(w.startswith(f"creates rg-{stack}-") for w in row.why)


# --------------------------------------------------------------------------- names


def test_globally_unique_names_are_the_vaults_and_the_database_server() -> None:
    names = result().names
    vaults = [r for r in repo_plan().resources if r.type == "azure-native:keyvault:Vault"]
    assert {n.name for n in names if n.type == "Microsoft.KeyVault/vaults"} == {r.inputs["vaultName"] for r in vaults}
    assert all(n.check == f"az keyvault check-name --name {n.name}" for n in names
               if n.type == "Microsoft.KeyVault/vaults")
    (server,) = [n for n in names if n.type == "Microsoft.DBforPostgreSQL/flexibleServers"]
    assert server.dns == f"{server.name}.postgres.database.azure.com"
    assert "checkNameAvailability" in server.check and "{subscriptionId}" in server.check


# --------------------------------------------------------------------------- quota


def test_quota_enough_and_short() -> None:
    ok = check_quota(result(), {"uksouth": ("ok.json", read_usage(OK))})
    assert ok.quota and not ok.short
    short = check_quota(result(), {"uksouth": ("default.json", read_usage(DEFAULT_QUOTA))})
    assert {q.family for q in short.short} == {"standardDSv5Family", "cores"}
    dsv5 = next(q for q in short.short if q.family == "standardDSv5Family")
    assert (dsv5.current, dsv5.limit, dsv5.free) == (24, 350, 326)


def test_a_family_missing_from_the_quota_file_is_short() -> None:
    rows = [u for u in read_usage(OK) if u.family != "standardESv5Family"]
    checked = check_quota(result(), {"uksouth": ("f.json", rows)})
    (missing,) = checked.short
    assert missing.family == "standardESv5Family" and "not in f.json" in missing.describe()


@pytest.mark.parametrize(("name", "expected"), [
    ("usage-bad-limit.json", "usage-bad-limit.json: [0].limit: 'lots' is not a number"),
    ("usage-nan.json", "usage-nan.json: 'NaN' is not a finite number"),  # refused by the JSON reader
    ("usage-wrong-shape.json", "usage-wrong-shape.json: expected the JSON list of"),
    ("usage-truncated.json", "usage-truncated.json:3: not JSON:"),
])
def test_a_malformed_quota_file_is_one_line(name: str, expected: str) -> None:
    with pytest.raises(EstateError) as exc:
        read_usage(DATA / name)
    line = str(exc.value)
    assert "\n" not in line and line.startswith("tests/data/preflight/" + expected[: expected.index(":")])
    assert expected.split(": ", 1)[1] in line


# --------------------------------------------------------------------------- the command


def _invoke(monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("COLUMNS", "200")
    return runner.invoke(app, ["preflight", *args])


def test_cli_quota_ok_exits_0_with_json(monkeypatch: pytest.MonkeyPatch) -> None:
    res = _invoke(monkeypatch, "--council", "havering", "--quota", str(OK), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["stacks"] == ["havering"] and doc["short"] == []
    hosts = [i for i in doc["vcpus"]["items"] if i["kind"] == "scale set"]
    assert [(i["stack"], i["vcpus"]) for i in hosts] == [("havering", 480)]
    assert any(r["scope"].endswith("/workspaces/log-shared")
               and r["action"] == "Microsoft.OperationalInsights/workspaces/sharedKeys/action" for r in doc["roles"])


def test_cli_quota_short_exits_1_naming_the_family(monkeypatch: pytest.MonkeyPatch) -> None:
    res = _invoke(monkeypatch, "--council", "havering", "--quota", f"uksouth={DEFAULT_QUOTA}")
    assert res.exit_code == 1, res.output
    err = res.stderr.strip()
    assert err.startswith("exit 1: quota short:") and "\n" not in err
    assert "uksouth standardDSv5Family: needs 488, 326 free (limit 350, 24 in use)" in err
    assert "uksouth cores: needs 488" in err
    assert "SHORT" in res.stdout


def test_cli_malformed_quota_file_exits_2_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    res = _invoke(monkeypatch, "--quota", str(DATA / "usage-bad-limit.json"))
    assert res.exit_code == 2
    expected = "tests/data/preflight/usage-bad-limit.json: [0].limit: 'lots' is not a number"
    assert res.stderr.strip() == expected


def test_cli_unknown_council_exits_2_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    res = _invoke(monkeypatch, "--council", "atlantis")
    assert res.exit_code == 2
    err = res.stderr.strip()
    assert "\n" not in err and "unknown council 'atlantis'" in err


def test_quota_file_for_a_region_the_plan_does_not_use_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EstateError, match="no quota file for region uksouth"):
        check_quota(result(), {"ukwest": ("w.json", read_usage(OK))})

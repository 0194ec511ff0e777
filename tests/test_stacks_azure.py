"""The stacks under mocks make requests Azure accepts and that meet Azure's security baseline (issue 13): each
test names the Azure rule it stands for. Mock tests are no proof Azure accepts a request: these pin the shapes
that Microsoft's documentation and templates give."""

from __future__ import annotations

import re
from typing import Any

import pytest

from estate.loader import Estate
from estate.plan import Plan
from tests.stacks_support import only, repo_estate, repo_plan

COUNCILS = ["havering", "newham", "waltham-forest"]
SITES = ["shared", *COUNCILS]
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def estate() -> Estate:
    return repo_estate()


@pytest.fixture(scope="module")
def planned() -> Plan:
    return repo_plan()


@pytest.mark.parametrize("site", SITES)
def test_trusted_launch_servers_are_backed_up_by_an_enhanced_policy(estate: Estate, planned: Plan, site: str) -> None:
    """recoveryservices 2024-10-01 refuses a Trusted Launch VM under a Standard (V1) policy."""
    backup = estate.framework.data_centre.backup
    policy = only(planned.of_type("azure-native:recoveryservices:ProtectionPolicy", site), f"bkpol-{site}-vm")
    props = policy.inputs["properties"]
    assert props["policyType"] == "V2"
    schedule = props["schedulePolicy"]
    assert schedule["schedulePolicyType"] == "SimpleSchedulePolicyV2"
    assert schedule["scheduleRunFrequency"] == backup.frequency
    assert "scheduleRunTimes" not in schedule  # a V2 schedule keeps its times in its daily/weekly schedule
    runs = schedule["dailySchedule" if backup.frequency == "Daily" else "weeklySchedule"]["scheduleRunTimes"]
    assert [t[11:16] for t in runs] == [backup.time]
    vms = planned.of_type("azure-native:compute:VirtualMachine", site)
    assert vms and all(vm.inputs["securityProfile"]["securityType"] == "TrustedLaunch" for vm in vms)


@pytest.mark.parametrize("council", COUNCILS)
def test_session_hosts_hand_the_registration_token_as_microsofts_templates_do(planned: Plan, council: str) -> None:
    """The DSC extension reads the token from protectedSettings.Items, referenced by the credential in settings."""
    from stacks.desktop import dsc_protected_settings

    vmss = only(planned.of_type("azure-native:compute:VirtualMachineScaleSet", council), f"vmss-{council}-avd")
    extensions = {e["name"]: e for e in vmss.inputs["virtualMachineProfile"]["extensionProfile"]["extensions"]}
    dsc = extensions["AddSessionHost"]
    assert (dsc["publisher"], dsc["type"]) == ("Microsoft.Powershell", "DSC")
    properties = dsc["settings"]["properties"]
    assert properties["hostPoolName"] == f"vdpool-{council}"
    assert properties["registrationInfoTokenCredential"] == {
        "UserName": "PLACEHOLDER_DO_NOT_USE", "Password": "PrivateSettingsRef:RegistrationInfoToken"}
    assert "registrationInfoToken" not in properties  # the token is never a plain setting
    assert dsc["protectedSettings"] == "[secret]"  # the plan shows secrets redacted: judge the shape below
    assert dsc_protected_settings("tok") == {"Items": {"RegistrationInfoToken": "tok"}}


def test_the_entra_only_helpdesk_database_has_the_operations_group_and_the_vm_as_administrators(
        estate: Estate, planned: Plan) -> None:
    from estate.plan import stack_config

    config = stack_config(estate, "shared")
    [server] = planned.of_type("azure-native:dbforpostgresql:Server", "shared")
    assert server.inputs["authConfig"]["passwordAuth"] == "Disabled"
    admins = {a.inputs["principalType"]: a.inputs
              for a in planned.of_type("azure-native:dbforpostgresql:Administrator")}
    assert set(admins) == {"Group", "ServicePrincipal"}  # ARM's spelling (the SDK's enum is lower case)
    group, vm = admins["Group"], admins["ServicePrincipal"]
    assert group["objectId"] == config["shared-estate:adminGroupObjectId"]
    assert group["principalName"] == config["shared-estate:adminGroupName"]
    helpdesk = only(planned.of_type("azure-native:compute:VirtualMachine", "shared"), "vm-hub-hd01")
    assert helpdesk.inputs["identity"]["type"] == "SystemAssigned"
    assert vm["principalName"] == helpdesk.inputs["vmName"] and vm["objectId"]  # the VM's identity's object id
    for admin in (group, vm):
        assert admin["serverName"] == server.inputs["serverName"]
        assert admin["tenantId"] == server.inputs["authConfig"]["tenantId"]


def test_the_hub_needs_the_operations_group_name(estate: Estate) -> None:
    from estate.errors import EstateError
    from estate.plan import stack_config
    from stacks.props import StackConfig, build

    values = stack_config(estate, "shared")
    config = StackConfig(stack="shared", location="uksouth", admin_group=values["shared-estate:adminGroupObjectId"],
                         ssh_public_key="ssh-ed25519 AAAA x")
    with pytest.raises(EstateError) as caught:
        build(estate, "shared", config)
    assert [p.field for p in caught.value.problems] == ["shared-estate:adminGroupName"]


@pytest.mark.parametrize("council", COUNCILS)
def test_start_vm_on_connect_has_the_avd_service_principal_as_power_on_contributor(
        estate: Estate, planned: Plan, council: str) -> None:
    from estate.plan import stack_config

    assert estate.framework.desktop.avd.start_vm_on_connect
    pool = only(planned.of_type("azure-native:desktopvirtualization:HostPool", council), f"vdpool-{council}")
    assert pool.inputs["startVMOnConnect"] is True
    principal = stack_config(estate, council)["shared-estate:avdServicePrincipalObjectId"]
    [grant] = [r.inputs for r in planned.of_type("azure-native:authorization:RoleAssignment", council)
               if r.inputs["principalId"] == principal]
    assert grant["roleDefinitionId"].endswith("/roleDefinitions/489581de-a3bd-480d-9518-53dea7416b33")
    assert grant["principalType"] == "ServicePrincipal"
    assert grant["scope"].endswith(f"/resourceGroups/rg-{council}-desktop")


def test_the_avd_service_principal_is_validated_as_an_object_id(estate: Estate) -> None:
    from estate.errors import EstateError
    from estate.plan import stack_config
    from stacks.props import StackConfig, build

    values = stack_config(estate, "newham")
    config = StackConfig(stack="newham", location="uksouth", admin_group=values["shared-estate:adminGroupObjectId"],
                         desktop_users_group=values["shared-estate:desktopUsersGroupObjectId"],
                         avd_service_principal="9cdead84", ssh_public_key="ssh-ed25519 AAAA x",
                         hub_stack="organization/shared-estate/shared",
                         registration_expiry=values["shared-estate:registrationTokenExpiry"])
    with pytest.raises(EstateError) as caught:
        build(estate, "newham", config)
    assert [p.field for p in caught.value.problems] == ["shared-estate:avdServicePrincipalObjectId"]


def test_the_key_vault_is_protected_from_pulumi_destroy(estate: Estate) -> None:
    """Under purge protection a destroyed vault's name stays taken for 90 days: the stack refuses to destroy it."""
    import pulumi

    from estate.plan import plan
    from stacks.program import read_config, run

    protected: dict[str, bool] = {}

    def spy(args: pulumi.ResourceTransformationArgs) -> None:
        protected[args.type_] = protected.get(args.type_, False) or bool(args.opts.protect)

    def program(e: Estate, stack: str) -> dict[str, object]:
        pulumi.runtime.register_stack_transformation(spy)
        return run(e, stack, read_config(stack))

    plan(estate, ["newham"], program=program, workers=1)
    assert protected["azure-native:keyvault:Vault"] is True
    assert protected["azure-native:network:VirtualNetwork"] is False  # only what cannot come back at once


def test_the_key_vault_name_carries_its_generation(estate: Estate, planned: Plan) -> None:
    from estate.plan import stack_config
    from stacks.props import CouncilProps, StackConfig, build, key_vault_name

    [vault] = planned.of_type("azure-native:keyvault:Vault", "newham")
    assert vault.inputs["vaultName"] == key_vault_name("newham", estate.framework.name)  # generation 1: unchanged
    names = {key_vault_name("newham", estate.framework.name, g) for g in (1, 2, 3)}
    assert len(names) == 3 and all(3 <= len(n) <= 24 for n in names)
    values = stack_config(estate, "newham")
    base: dict[str, Any] = {
        "stack": "newham", "location": "uksouth", "admin_group": values["shared-estate:adminGroupObjectId"],
        "desktop_users_group": values["shared-estate:desktopUsersGroupObjectId"],
        "avd_service_principal": values["shared-estate:avdServicePrincipalObjectId"],
        "ssh_public_key": "ssh-ed25519 AAAA x", "hub_stack": "organization/shared-estate/shared",
        "registration_expiry": values["shared-estate:registrationTokenExpiry"]}
    rebuilt = build(estate, "newham", StackConfig(**base, key_vault_generation="2"))
    assert isinstance(rebuilt, CouncilProps)
    assert rebuilt.key_vault_name == key_vault_name("newham", estate.framework.name, 2) != vault.inputs["vaultName"]
    from estate.errors import EstateError
    with pytest.raises(EstateError) as caught:
        build(estate, "newham", StackConfig(**base, key_vault_generation="0"))
    assert [p.field for p in caught.value.problems] == ["shared-estate:keyVaultGeneration"]


@pytest.mark.parametrize("site", SITES)
def test_every_trusted_launch_machine_has_the_guest_attestation_extension(planned: Plan, site: str) -> None:
    vms = planned.of_type("azure-native:compute:VirtualMachine", site)
    extensions = {(e.inputs["vmName"], e.inputs["publisher"], e.inputs["type"])
                  for e in planned.of_type("azure-native:compute:VirtualMachineExtension", site)}
    for vm in vms:
        assert vm.inputs["securityProfile"]["uefiSettings"] == {"secureBootEnabled": True, "vTpmEnabled": True}
        assert (vm.inputs["vmName"], "Microsoft.Azure.Security.LinuxAttestation", "GuestAttestation") in extensions
    for vmss in planned.of_type("azure-native:compute:VirtualMachineScaleSet", site):
        profile = vmss.inputs["virtualMachineProfile"]
        assert profile["securityProfile"]["securityType"] == "TrustedLaunch"
        assert {(e["publisher"], e["type"]) for e in profile["extensionProfile"]["extensions"]} >= {
            ("Microsoft.Azure.Security.WindowsAttestation", "GuestAttestation")}
    assert vms or site != "shared"


def test_every_vnet_keeps_flow_logs_in_the_hub(estate: Estate, planned: Plan) -> None:
    control = estate.framework.network.flow_logs
    [account] = planned.of_type("azure-native:storage:StorageAccount", "shared")
    assert account.inputs["sku"]["name"] == control.storage_sku
    assert account.inputs["enableHttpsTrafficOnly"] is True and account.inputs["minimumTlsVersion"] == "TLS1_2"
    assert account.inputs["allowBlobPublicAccess"] is False
    [workspace] = planned.of_type("azure-native:operationalinsights:Workspace", "shared")
    logs = {r.inputs["targetResourceId"].rsplit("/", 1)[-1]: r.inputs for r in planned.of_type(
        "azure-native:network:FlowLog")}
    assert set(logs) == {f"vnet-{s}" for s in SITES}
    for log in logs.values():
        assert (log["resourceGroupName"], log["networkWatcherName"]) == ("NetworkWatcherRG", "NetworkWatcher_uksouth")
        assert log["enabled"] is True
        assert log["retentionPolicy"] == {"enabled": True, "days": control.retention_days}
        assert log["storageId"].endswith("/" + account.inputs["accountName"])
        analytics = log["flowAnalyticsConfiguration"]["networkWatcherFlowAnalyticsConfiguration"]
        assert analytics["enabled"] is True
        assert analytics["trafficAnalyticsInterval"] == control.traffic_analytics_minutes
        assert analytics["workspaceResourceId"].endswith("/workspaces/" + workspace.inputs["workspaceName"])
        # Traffic analytics names the workspace by its customer id and region (the hub's, whatever the VNet's):
        # learn.microsoft.com/azure/network-watcher/traffic-analytics
        assert _GUID.fullmatch(str(analytics["workspaceId"]))
        assert analytics["workspaceRegion"] == workspace.inputs["location"]
    assert len({log["flowAnalyticsConfiguration"]["networkWatcherFlowAnalyticsConfiguration"]["workspaceId"]
                for log in logs.values()}) == 1

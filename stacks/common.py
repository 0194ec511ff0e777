"""What the components share: resource options, role assignments, diagnostic settings, backup, Linux VMs.

Azure built-in role ids, private DNS zone names and the like are Azure's constants, not facts about a council:
they live here. Every argument is a typed azure-native `*Args` class (under mocks a dict literal would hide a
misspelt key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.compute as compute
import pulumi_azure_native.monitor as monitor
import pulumi_azure_native.network as network
import pulumi_azure_native.recoveryservices as recoveryservices
import pulumi_azure_native.resources as resources

from .props import Backup, Common, Server, deterministic_guid

# Azure built-in roles (ids are the same in every tenant).
ROLE_CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
ROLE_DESKTOP_VIRTUALIZATION_USER = "1d18fff3-a72a-46b5-b4a9-0b38a3cd7e63"
ROLE_VM_USER_LOGIN = "fb879df8-f326-4884-b1cf-06f3ad86be52"
ROLE_KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
ROLE_DESKTOP_VIRTUALIZATION_POWER_ON_CONTRIBUTOR = "489581de-a3bd-480d-9518-53dea7416b33"

# Private DNS zones of the Azure services the estate reaches over private endpoints.
ZONE_KEY_VAULT = "privatelink.vaultcore.azure.net"
ZONE_POSTGRES = "privatelink.postgres.database.azure.com"
PRIVATE_ZONES = (ZONE_KEY_VAULT, ZONE_POSTGRES)

ADMIN_USER = "estate-admin"

# Network Watcher: Azure enables it per region in a subscription's first VNet there, as NetworkWatcher_<region> in
# the resource group NetworkWatcherRG (learn.microsoft.com/azure/network-watcher/network-watcher-create): flow logs
# are its children.
NETWORK_WATCHER_RG = "NetworkWatcherRG"


def network_watcher(location: str) -> str:
    return f"NetworkWatcher_{location}"

# The Guest Attestation extension of Trusted Launch (boot integrity monitoring), per OS: Azure's publisher and type
# names (learn.microsoft.com/azure/virtual-machines/trusted-launch-existing-vm, "Enable guest attestation";
# learn.microsoft.com/azure/virtual-machines/boot-integrity-monitoring-overview).
GUEST_ATTESTATION = "GuestAttestation"
GUEST_ATTESTATION_LINUX = "Microsoft.Azure.Security.LinuxAttestation"
GUEST_ATTESTATION_WINDOWS = "Microsoft.Azure.Security.WindowsAttestation"
GUEST_ATTESTATION_VERSION = "1.0"
DIAGNOSTIC_SETTING = "to-log-analytics"


@dataclass(frozen=True)
class Env:
    """Values known only once the program runs: the subscription and tenant of the caller."""

    subscription_id: pulumi.Output[str]
    tenant_id: pulumi.Output[str]

    @classmethod
    def current(cls) -> Env:
        client = authorization.get_client_config_output()
        return cls(client.subscription_id, client.tenant_id)


def child(parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on) if depends_on else None)


def resource_group(common: Common, service: str, parent: pulumi.Resource) -> resources.ResourceGroup:
    name = common.rg(service)
    return resources.ResourceGroup(
        name,
        resources.ResourceGroupArgs(resource_group_name=name, location=common.location, tags=common.tags(service)),
        opts=child(parent),
    )


def role_assignment(name: str, env: Env, *, scope: pulumi.Input[str], role: str, principal: str,
                    parent: pulumi.Resource, principal_type: str = "Group") -> authorization.RoleAssignment:
    """A role for an Entra group (or another principal type) at a scope; the assignment's GUID name is derived
    from stack, name and role."""
    return authorization.RoleAssignment(
        name,
        authorization.RoleAssignmentArgs(
            role_assignment_name=deterministic_guid(pulumi.get_stack(), name, role, principal),
            scope=scope,
            principal_id=principal,
            principal_type=principal_type,
            role_definition_id=env.subscription_id.apply(
                lambda sub: f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
        ),
        opts=child(parent),
    )


def diagnostics(name: str, *, resource_uri: pulumi.Input[str], workspace_id: pulumi.Input[str],
                parent: pulumi.Resource, metrics: bool = True, dedicated: bool = False) -> monitor.DiagnosticSetting:
    """Every log category (and the platform metrics, where the resource has them) to Log Analytics;
    `dedicated` for resources with resource-specific tables (Azure Firewall)."""
    return monitor.DiagnosticSetting(
        name,
        monitor.DiagnosticSettingArgs(
            name=DIAGNOSTIC_SETTING,
            resource_uri=resource_uri,
            workspace_id=workspace_id,
            log_analytics_destination_type="Dedicated" if dedicated else None,
            logs=[monitor.DiagnosticsLogSettingsArgs(category_group="allLogs", enabled=True)],
            metrics=[monitor.DiagnosticsMetricSettingsArgs(category="AllMetrics", enabled=True)] if metrics else None,
        ),
        opts=child(parent),
    )


def flow_log(common: Common, *, vnet_name: str, vnet_id: pulumi.Input[str], storage_id: pulumi.Input[str],
             workspace_id: pulumi.Input[str], workspace_guid: pulumi.Input[str | None],
             workspace_region: pulumi.Input[str], service: str, parent: pulumi.Resource) -> network.FlowLog:
    """A virtual network flow log (learn.microsoft.com/azure/network-watcher/vnet-flow-logs-overview): kept in the
    hub's storage account for the framework's days and analysed by traffic analytics in the hub's workspace."""
    f = common.flow_logs
    name = f"fl-{vnet_name}"
    return network.FlowLog(
        name,
        network.FlowLogArgs(
            flow_log_name=name,
            network_watcher_name=network_watcher(common.location),
            resource_group_name=NETWORK_WATCHER_RG,
            location=common.location,
            target_resource_id=vnet_id,
            storage_id=storage_id,
            enabled=True,
            format=network.FlowLogFormatParametersArgs(type="JSON", version=2),
            retention_policy=network.RetentionPolicyParametersArgs(days=f.retention_days, enabled=True),
            flow_analytics_configuration=network.TrafficAnalyticsPropertiesArgs(
                network_watcher_flow_analytics_configuration=network.TrafficAnalyticsConfigurationPropertiesArgs(
                    enabled=True,
                    traffic_analytics_interval=f.traffic_analytics_minutes,
                    workspace_id=workspace_guid,
                    workspace_region=workspace_region,  # the workspace's region, not the VNet's
                    workspace_resource_id=workspace_id,
                )),
            tags=common.tags(service),
        ),
        opts=child(parent),
    )


def _run_time(time: str) -> str:
    return f"2000-01-01T{time}:00Z"  # Azure wants a full timestamp; only the time of day counts


def backup_vault(common: Common, rg: resources.ResourceGroup, service: str, parent: pulumi.Resource,
                 ) -> tuple[recoveryservices.Vault, recoveryservices.ProtectionPolicy]:
    """A Recovery Services vault and the framework's VM backup policy in it."""
    vault = recoveryservices.Vault(
        f"rsv-{common.key}",
        recoveryservices.VaultArgs(
            vault_name=f"rsv-{common.key}",
            resource_group_name=rg.name,
            location=common.location,
            sku=recoveryservices.SkuArgs(name="RS0", tier="Standard"),  # the only vault SKU Azure offers
            properties=recoveryservices.VaultPropertiesArgs(public_network_access="Disabled"),
            tags=common.tags(service),
        ),
        opts=child(parent),
    )
    policy = recoveryservices.ProtectionPolicy(
        f"bkpol-{common.key}-vm",
        recoveryservices.ProtectionPolicyArgs(
            policy_name="vm-framework",
            vault_name=vault.name,
            resource_group_name=rg.name,
            properties=_vm_policy(common.backup),
            tags=common.tags(service),
        ),
        opts=child(parent),
    )
    return vault, policy


def _vm_policy(backup: Backup) -> recoveryservices.AzureIaaSVMProtectionPolicyArgs:
    """The Enhanced (V2) policy: every server is a Trusted Launch VM, and recoveryservices 2024-10-01 (what
    azure-native 3.29 sends) accepts Trusted Launch VMs only under an Enhanced policy; the Standard (V1) policy
    protects them from REST API 2025-01-01 on
    (learn.microsoft.com/azure/backup/backup-azure-vms-enhanced-policy). V2 schedules carry their run times in
    `dailySchedule` / `weeklySchedule`, not in `scheduleRunTimes`."""
    times = [_run_time(backup.time)]
    weekly = backup.frequency == "Weekly"
    return recoveryservices.AzureIaaSVMProtectionPolicyArgs(
        backup_management_type="AzureIaasVM",
        policy_type=recoveryservices.IAASVMPolicyType.V2,
        time_zone="UTC",
        schedule_policy=recoveryservices.SimpleSchedulePolicyV2Args(
            schedule_policy_type="SimpleSchedulePolicyV2",
            schedule_run_frequency=backup.frequency,
            daily_schedule=None if weekly else recoveryservices.DailyScheduleArgs(schedule_run_times=times),
            weekly_schedule=recoveryservices.WeeklyScheduleArgs(
                schedule_run_days=[recoveryservices.DayOfWeek.SUNDAY], schedule_run_times=times) if weekly else None,
        ),
        retention_policy=recoveryservices.LongTermRetentionPolicyArgs(
            retention_policy_type="LongTermRetentionPolicy",
            daily_schedule=None if weekly else recoveryservices.DailyRetentionScheduleArgs(
                retention_times=times,
                retention_duration=recoveryservices.RetentionDurationArgs(count=backup.daily_days,
                                                                          duration_type="Days"),
            ),
            weekly_schedule=recoveryservices.WeeklyRetentionScheduleArgs(
                days_of_the_week=[recoveryservices.DayOfWeek.SUNDAY],
                retention_times=times,
                retention_duration=recoveryservices.RetentionDurationArgs(count=backup.weekly_weeks,
                                                                          duration_type="Weeks"),
            ),
        ),
    )


@dataclass(frozen=True)
class Vm:
    nic: network.NetworkInterface
    vm: compute.VirtualMachine
    protected: recoveryservices.ProtectedItem
    attestation: compute.VirtualMachineExtension


def linux_vm(common: Common, server: Server, *, service: str, rg_name: str, rg: resources.ResourceGroup,
             subnet_id: pulumi.Input[str], vault: recoveryservices.Vault, vault_group: pulumi.Input[str],
             policy: recoveryservices.ProtectionPolicy, parent: pulumi.Resource) -> Vm:
    """A server as the framework wants it: approved image and size, encryption at host, Trusted Launch,
    no public IP, SSH keys only, backed up by the framework policy."""
    tags = common.tags(service)
    nic = network.NetworkInterface(
        f"nic-{server.name}",
        network.NetworkInterfaceArgs(
            network_interface_name=f"nic-{server.name}",
            resource_group_name=rg.name,
            location=common.location,
            ip_configurations=[network.NetworkInterfaceIPConfigurationArgs(
                name="ipconfig1",
                primary=True,
                subnet=network.SubnetArgs(id=subnet_id),
                private_ip_allocation_method="Static" if server.private_ip else "Dynamic",
                private_ip_address=server.private_ip,
            )],
            tags=tags,
        ),
        opts=child(parent),
    )
    image = common.server_image
    vm = compute.VirtualMachine(
        f"vm-{server.name}",
        compute.VirtualMachineArgs(
            vm_name=server.name,
            resource_group_name=rg.name,
            location=common.location,
            hardware_profile=compute.HardwareProfileArgs(vm_size=server.size),
            storage_profile=compute.StorageProfileArgs(
                image_reference=compute.ImageReferenceArgs(publisher=image.publisher, offer=image.offer,
                                                           sku=image.sku, version=image.version),
                os_disk=compute.OSDiskArgs(
                    name=f"osdisk-{server.name}",
                    create_option="FromImage",
                    delete_option="Delete",
                    managed_disk=compute.ManagedDiskParametersArgs(storage_account_type="Premium_LRS"),
                ),
            ),
            os_profile=compute.OSProfileArgs(
                computer_name=server.name,
                admin_username=ADMIN_USER,
                linux_configuration=compute.LinuxConfigurationArgs(
                    disable_password_authentication=True,
                    ssh=compute.SshConfigurationArgs(public_keys=[compute.SshPublicKeyArgs(
                        path=f"/home/{ADMIN_USER}/.ssh/authorized_keys", key_data=common.ssh_public_key)]),
                ),
            ),
            network_profile=compute.NetworkProfileArgs(
                network_interfaces=[compute.NetworkInterfaceReferenceArgs(id=nic.id, primary=True)]),
            security_profile=compute.SecurityProfileArgs(
                encryption_at_host=common.encryption_at_host,
                security_type="TrustedLaunch",
                uefi_settings=compute.UefiSettingsArgs(secure_boot_enabled=True, v_tpm_enabled=True),
            ),
            identity=compute.VirtualMachineIdentityArgs(type=compute.ResourceIdentityType.SYSTEM_ASSIGNED),
            diagnostics_profile=compute.DiagnosticsProfileArgs(
                boot_diagnostics=compute.BootDiagnosticsArgs(enabled=True)),
            tags=tags,
        ),
        opts=child(parent),
    )
    # Trusted Launch's boot integrity monitoring: Secure Boot and vTPM measure the boot, this extension attests it
    attestation = compute.VirtualMachineExtension(
        f"vmext-{server.name}-attestation",
        compute.VirtualMachineExtensionArgs(
            vm_extension_name=GUEST_ATTESTATION,
            vm_name=vm.name,
            resource_group_name=rg.name,
            location=common.location,
            publisher=GUEST_ATTESTATION_LINUX,
            type=GUEST_ATTESTATION,
            type_handler_version=GUEST_ATTESTATION_VERSION,
            auto_upgrade_minor_version=True,
            enable_automatic_upgrade=True,
            tags=tags,
        ),
        opts=child(parent),
    )
    container = f"iaasvmcontainerv2;{rg_name};{server.name}"
    protected = recoveryservices.ProtectedItem(
        f"backup-{server.name}",
        recoveryservices.ProtectedItemArgs(
            vault_name=vault.name,
            resource_group_name=vault_group,
            fabric_name="Azure",
            container_name=f"iaasvmcontainer;{container}",
            protected_item_name=f"vm;{container}",
            properties=recoveryservices.AzureIaaSComputeVMProtectedItemArgs(
                protected_item_type="Microsoft.Compute/virtualMachines",
                policy_id=policy.id,
                source_resource_id=vm.id,
            ),
            tags=tags,
        ),
        opts=child(parent),
    )
    return Vm(nic, vm, protected, attestation)


"""Desktop: a council's Azure Virtual Desktop host pool, desktop application group and workspace, and its
session hosts: a flexible scale set of the approved image and size, as many as the council's concurrent
users need at the spec's sessions per host, Entra-joined and registered to the host pool."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_azure_native.compute as compute
import pulumi_azure_native.desktopvirtualization as desktopvirtualization
import pulumi_random as random

from .common import (
    ADMIN_USER,
    GUEST_ATTESTATION,
    GUEST_ATTESTATION_VERSION,
    GUEST_ATTESTATION_WINDOWS,
    ROLE_DESKTOP_VIRTUALIZATION_POWER_ON_CONTRIBUTOR,
    ROLE_DESKTOP_VIRTUALIZATION_USER,
    ROLE_VM_USER_LOGIN,
    Env,
    child,
    diagnostics,
    resource_group,
    role_assignment,
)
from .network import HubRef, SpokeNetwork
from .props import CouncilProps

SERVICE = "desktop"
# Microsoft's AVD agent package for the PowerShell DSC extension (AddSessionHost registers a VM to a pool).
AVD_AGENT_PACKAGE = ("https://wvdportalstorageblob.blob.core.windows.net/galleryartifacts/"
                     "Configuration_1.0.02790.438.zip")

# Windows requires an administrator password in a VM's osProfile (adminPassword: "Minimum-length (Windows): 8
# characters ... Max-length (Windows): 123 characters", and 3 of lower case, upper case, digit, special
# character: learn.microsoft.com/rest/api/compute/virtual-machine-scale-sets/create-or-update, OSProfile). A scale
# set has one osProfile, so its hosts start with one password: a generated one (pulumi_random, kept only as a
# secret in the stack's state; random's state keeps it stable, so a second `pulumi up` replaces no host) that no
# person chooses or types. Windows LAPS then rotates each host's own estate-admin password and backs it up to
# Microsoft Entra ID (LAPS_EXTENSION): from its first policy cycle every host has its own password.
ADMIN_PASSWORD_LENGTH = 32
# Windows LAPS with Microsoft Entra ID (learn.microsoft.com/entra/identity/devices/howto-manage-local-admin-passwords;
# policy settings and their Group Policy registry root: learn.microsoft.com/windows-server/identity/laps/
# laps-management-policy-settings): BackupDirectory 1 = back the password up to Microsoft Entra ID,
# AdministratorAccountName = the account to manage (ours, not the built-in Administrator); then apply the policy now
# (Invoke-LAPSPolicyProcessing) rather than at the next hourly cycle.
LAPS_EXTENSION = "WindowsLAPS"
LAPS_POLICY_KEY = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\LAPS"
LAPS_BACKUP_TO_ENTRA = 1


def rdp_properties(usb_storage_blocked: bool) -> str:
    """Entra-joined session hosts with Entra single sign-on; no drive or USB storage redirection when the
    framework blocks USB mass storage."""
    props = ["targetisaadjoined:i:1", "enablerdsaadauth:i:1"]
    if usb_storage_blocked:
        props += ["drivestoredirect:s:", "usbdevicestoredirect:s:"]
    return "".join(f"{p};" for p in props)


class Desktop(pulumi.ComponentResource):
    def __init__(self, name: str, props: CouncilProps, env: Env, hub: HubRef, spoke: SpokeNetwork,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shared-estate:desktop:Desktop", name, None, opts)
        c, d = props.common, props.desktop
        self.rg = resource_group(c, SERVICE, self)
        tags = c.tags(SERVICE)
        self.host_pool = desktopvirtualization.HostPool(
            f"vdpool-{c.key}",
            desktopvirtualization.HostPoolArgs(
                host_pool_name=f"vdpool-{c.key}",
                resource_group_name=self.rg.name,
                location=c.location,
                friendly_name=c.name,
                host_pool_type=d.host_pool_type,
                load_balancer_type=d.load_balancer_type,
                preferred_app_group_type=d.preferred_app_group_type,
                max_session_limit=d.max_sessions,
                start_vm_on_connect=d.start_vm_on_connect,
                validation_environment=d.validation_environment,
                custom_rdp_property=rdp_properties(d.usb_storage_blocked),
                registration_info=desktopvirtualization.RegistrationInfoArgs(
                    expiration_time=d.registration_expiry, registration_token_operation="Update"),
                tags=tags,
            ),
            opts=child(self),
        )
        diagnostics(f"diag-vdpool-{c.key}", resource_uri=self.host_pool.id, workspace_id=hub.workspace_id,
                    parent=self, metrics=False)
        self.app_group = desktopvirtualization.ApplicationGroup(
            f"vdag-{c.key}-desktop",
            desktopvirtualization.ApplicationGroupArgs(
                application_group_name=f"vdag-{c.key}-desktop",
                resource_group_name=self.rg.name,
                location=c.location,
                application_group_type="Desktop",
                host_pool_arm_path=self.host_pool.id,
                friendly_name=f"{c.name} desktop",
                tags=tags,
            ),
            opts=child(self),
        )
        desktopvirtualization.Workspace(
            f"vdws-{c.key}",
            desktopvirtualization.WorkspaceArgs(
                workspace_name=f"vdws-{c.key}",
                resource_group_name=self.rg.name,
                location=c.location,
                friendly_name=c.name,
                application_group_references=[self.app_group.id],
                tags=tags,
            ),
            opts=child(self),
        )
        role_assignment(f"ra-{c.key}-desktop-users-appgroup", env, scope=self.app_group.id,
                        role=ROLE_DESKTOP_VIRTUALIZATION_USER, principal=d.users_group, parent=self)
        role_assignment(f"ra-{c.key}-desktop-users-login", env, scope=self.rg.id,
                        role=ROLE_VM_USER_LOGIN, principal=d.users_group, parent=self)
        if d.start_vm_on_connect:
            # Start VM on Connect powers session hosts on as the Azure Virtual Desktop service principal, which needs
            # Desktop Virtualization Power On Contributor over them
            # (learn.microsoft.com/azure/virtual-desktop/start-virtual-machine-connect). Scope: this council's
            # desktop resource group, which holds the host pool and every session host; a subscription-wide
            # assignment would be one resource shared by every council's stack.
            role_assignment(f"ra-{c.key}-avd-power-on", env, scope=self.rg.id,
                            role=ROLE_DESKTOP_VIRTUALIZATION_POWER_ON_CONTRIBUTOR, principal=d.avd_service_principal,
                            principal_type="ServicePrincipal", parent=self)

        token = pulumi.Output.secret(desktopvirtualization.get_host_pool_registration_token_output(
            host_pool_name=self.host_pool.name, resource_group_name=self.rg.name).token)
        self.admin_password = random.RandomPassword(
            f"pw-{c.key}-avd-admin",
            random.RandomPasswordArgs(length=ADMIN_PASSWORD_LENGTH, special=True, min_lower=1, min_upper=1,
                                      min_numeric=1, min_special=1, override_special="!#%*-_=+:?"),
            opts=child(self),
        )
        image = d.image
        security = compute.SecurityProfileArgs(
            encryption_at_host=c.encryption_at_host,
            security_type="TrustedLaunch",
            uefi_settings=compute.UefiSettingsArgs(secure_boot_enabled=True, v_tpm_enabled=True),
        )
        self.session_hosts = compute.VirtualMachineScaleSet(
            f"vmss-{c.key}-avd",
            compute.VirtualMachineScaleSetArgs(
                vm_scale_set_name=f"vmss-{c.key}-avd",
                resource_group_name=self.rg.name,
                location=c.location,
                orchestration_mode="Flexible",
                platform_fault_domain_count=1,
                single_placement_group=False,
                sku=compute.SkuArgs(name=d.size, tier="Standard", capacity=d.session_hosts),
                identity=compute.VirtualMachineScaleSetIdentityArgs(
                    type=compute.ResourceIdentityType.SYSTEM_ASSIGNED),
                virtual_machine_profile=compute.VirtualMachineScaleSetVMProfileArgs(
                    license_type="Windows_Client",
                    storage_profile=compute.VirtualMachineScaleSetStorageProfileArgs(
                        image_reference=compute.ImageReferenceArgs(publisher=image.publisher, offer=image.offer,
                                                                   sku=image.sku, version=image.version),
                        os_disk=compute.VirtualMachineScaleSetOSDiskArgs(
                            create_option="FromImage",
                            caching=compute.CachingTypes.READ_WRITE,
                            delete_option="Delete",
                            managed_disk=compute.VirtualMachineScaleSetManagedDiskParametersArgs(
                                storage_account_type="Premium_LRS"),
                        ),
                    ),
                    os_profile=compute.VirtualMachineScaleSetOSProfileArgs(
                        computer_name_prefix=d.computer_name_prefix,
                        admin_username=ADMIN_USER,
                        admin_password=pulumi.Output.secret(self.admin_password.result),
                        windows_configuration=compute.WindowsConfigurationArgs(
                            enable_automatic_updates=d.automatic_updates,
                            provision_vm_agent=True,
                            time_zone="GMT Standard Time",
                        ),
                    ),
                    network_profile=compute.VirtualMachineScaleSetNetworkProfileArgs(
                        network_api_version="2020-11-01",
                        network_interface_configurations=[compute.VirtualMachineScaleSetNetworkConfigurationArgs(
                            name="nic",
                            primary=True,
                            delete_option="Delete",
                            ip_configurations=[compute.VirtualMachineScaleSetIPConfigurationArgs(
                                name="ipconfig1",
                                primary=True,
                                subnet=compute.ApiEntityReferenceArgs(id=spoke.segments.ids[d.segment]),
                            )],
                        )],
                    ),
                    security_profile=security,
                    diagnostics_profile=compute.DiagnosticsProfileArgs(
                        boot_diagnostics=compute.BootDiagnosticsArgs(enabled=True)),
                    extension_profile=compute.VirtualMachineScaleSetExtensionProfileArgs(extensions=[
                        compute.VirtualMachineScaleSetExtensionArgs(
                            name="AADLoginForWindows",
                            publisher="Microsoft.Azure.ActiveDirectory",
                            type="AADLoginForWindows",
                            type_handler_version="2.0",
                            auto_upgrade_minor_version=True,
                        ),
                        compute.VirtualMachineScaleSetExtensionArgs(
                            name="AddSessionHost",
                            publisher="Microsoft.Powershell",
                            type="DSC",
                            type_handler_version="2.73",
                            auto_upgrade_minor_version=True,
                            provision_after_extensions=["AADLoginForWindows"],
                            settings=dsc_settings(f"vdpool-{c.key}"),
                            protected_settings=token.apply(lambda t: dsc_protected_settings(str(t))),
                        ),
                        compute.VirtualMachineScaleSetExtensionArgs(
                            name=LAPS_EXTENSION,
                            publisher="Microsoft.Compute",
                            type="CustomScriptExtension",
                            type_handler_version="1.10",
                            auto_upgrade_minor_version=True,
                            provision_after_extensions=["AADLoginForWindows"],  # LAPS backs up to Entra ID
                            settings={"commandToExecute": laps_command()},
                        ),
                        compute.VirtualMachineScaleSetExtensionArgs(
                            name=GUEST_ATTESTATION,  # Trusted Launch's boot integrity monitoring
                            publisher=GUEST_ATTESTATION_WINDOWS,
                            type=GUEST_ATTESTATION,
                            type_handler_version=GUEST_ATTESTATION_VERSION,
                            auto_upgrade_minor_version=True,
                            enable_automatic_upgrade=True,
                        ),
                    ]),
                ),
                tags=tags,
            ),
            opts=child(self, [self.host_pool]),
        )
        self.register_outputs({"hostPoolId": self.host_pool.id, "sessionHosts": d.session_hosts})


def laps_command() -> str:
    """The Custom Script Extension's command: the Windows LAPS policy (Entra ID backup of ADMIN_USER's password),
    then the policy applied at once."""
    key = LAPS_POLICY_KEY.replace("\\\\", "\\")
    return (f'cmd /c reg add "{key}" /v BackupDirectory /t REG_DWORD /d {LAPS_BACKUP_TO_ENTRA} /f'
            f' && reg add "{key}" /v AdministratorAccountName /t REG_SZ /d {ADMIN_USER} /f'
            " && powershell -NoProfile -ExecutionPolicy Bypass -Command Invoke-LAPSPolicyProcessing")


# The DSC extension reads protectedSettings only under its own keys (`Items`, `configurationArguments`, ...): a token
# under protectedSettings.properties never reaches AddSessionHost, so no host joined its pool. AddSessionHost (the
# configuration in AVD_AGENT_PACKAGE) takes the token either as a plain setting, settings.properties.
# registrationInfoToken, as Azure/RDS-Templates ARM-wvd-templates/nestedtemplates/managedDisks-galleryvm.json does
# (readable by anyone who can read the VM), or as the credential settings.properties.registrationInfoTokenCredential
# whose password `PrivateSettingsRef:RegistrationInfoToken` the extension resolves from protectedSettings.Items (kept
# encrypted to the VM), the form Microsoft's AVD templates in Bicep use (e.g. Azure/avdaccelerator). The DSC
# extension's credential references: learn.microsoft.com/azure/virtual-machines/extensions/dsc-template.
REGISTRATION_TOKEN_ITEM = "RegistrationInfoToken"
REGISTRATION_CREDENTIAL_USER = "PLACEHOLDER_DO_NOT_USE"  # AddSessionHost reads only the credential's password


def dsc_settings(host_pool: str) -> dict[str, Any]:
    # `settings` is free-form JSON for the extension, not an azure-native type
    return {
        "modulesUrl": AVD_AGENT_PACKAGE,
        "configurationFunction": "Configuration.ps1\\AddSessionHost",
        "properties": {
            "hostPoolName": host_pool,
            "registrationInfoTokenCredential": {
                "UserName": REGISTRATION_CREDENTIAL_USER,
                "Password": f"PrivateSettingsRef:{REGISTRATION_TOKEN_ITEM}",
            },
            "aadJoin": True,
        },
    }


def dsc_protected_settings(token: str) -> dict[str, Any]:
    """The registration token where `PrivateSettingsRef:` finds it."""
    return {"Items": {REGISTRATION_TOKEN_ITEM: token}}

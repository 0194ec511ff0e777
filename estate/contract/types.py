"""Which ARM resource type, api-version and vendored schema definition each azure-native type is checked
against, and how azure-native's flattened inputs map onto ARM's request body.

The api-version is the one pulumi-azure-native 3.29 sends: its class docstring says "Uses Azure REST API
version ...". `azure_native_api_version` reads that docstring; a test fails when the table and azure-native
disagree (then re-vendor with `python -m estate.contract.vendor`).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

SCHEMA_REPO = "https://github.com/Azure/azure-resource-manager-schemas"
SCHEMA_COMMIT = "a1454431151fd3e9c1b254b1a11d00c2d8474611"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
RG = "resourceGroupName"


@dataclass(frozen=True)
class ArmType:
    resource_type: str  # e.g. "Microsoft.Network/virtualNetworks/subnets"
    api_version: str  # what azure-native 3.29 sends
    namespace_file: str  # schema file name within schemas/<api_version>/
    definition: str  # JSON pointer into that file, e.g. "resourceDefinitions/virtualNetworks_subnets"
    name_param: str  # the azure-native input that names the resource itself (becomes `name`)
    path_params: tuple[str, ...] = (RG,)  # inputs that only exist in the request URL
    # azure-native inputs that go under `properties` in the request body, by their ARM name there: where
    # azure-native renames a property (its REST spec's x-ms-client-name: a storage account's networkAcls is its
    # `networkRuleSet` input) or where the flattened name collides with a top-level ARM key (a VM extension's
    # `type` input is properties.type)
    renames: tuple[tuple[str, str], ...] = ()

    @property
    def file(self) -> str:
        return f"{self.api_version}/{self.namespace_file}"

    @property
    def source(self) -> str:
        return f"{self.file}#/{self.definition}"


def _t(resource_type: str, api_version: str, namespace_file: str, definition: str, name_param: str,
       *path_params: str, renames: tuple[tuple[str, str], ...] = ()) -> ArmType:
    return ArmType(resource_type, api_version, namespace_file, definition, name_param, path_params or (RG,), renames)


_NET, _NV = "Microsoft.Network.NRP.json", "2024-05-01"
_CMP, _CV = "Microsoft.Compute.json", "2024-11-01"
_AVD, _AV = "Microsoft.DesktopVirtualization.json", "2024-04-03"
_BKP, _BV = "Microsoft.RecoveryServices.Backup.json", "2024-10-01"
_RD = "resourceDefinitions/"

ARM_TYPES: dict[str, ArmType] = {
    # Azure Policy: a definition is a subscription resource (no resource group in its URL); an assignment is an
    # extension resource at its `scope` (the hub's hold on each council's spoke: stacks/guard.py)
    "azure-native:authorization:PolicyDefinition": ArmType(
        "Microsoft.Authorization/policyDefinitions", "2025-01-01", "Microsoft.Authorization.json",
        "subscription_resourceDefinitions/policyDefinitions", "policyDefinitionName", ()),
    "azure-native:authorization:PolicyAssignment": _t(
        "Microsoft.Authorization/policyAssignments", "2025-01-01", "Microsoft.Authorization.json",
        _RD + "policyAssignments", "policyAssignmentName", "scope"),
    "azure-native:authorization:RoleAssignment": _t(
        "Microsoft.Authorization/roleAssignments", "2022-04-01", "Microsoft.Authorization.json",
        _RD + "roleAssignments", "roleAssignmentName", "scope"),
    "azure-native:compute:VirtualMachine": _t(
        "Microsoft.Compute/virtualMachines", _CV, _CMP, _RD + "virtualMachines", "vmName"),
    "azure-native:compute:VirtualMachineExtension": _t(
        "Microsoft.Compute/virtualMachines/extensions", _CV, "Microsoft.Compute.Extensions.json",
        _RD + "virtualMachines_extensions", "vmExtensionName", RG, "vmName",
        renames=(("type", "type"), ("autoUpgradeMinorVersion", "autoUpgradeMinorVersion"),
                 ("enableAutomaticUpgrade", "enableAutomaticUpgrade"))),
    "azure-native:compute:VirtualMachineScaleSet": _t(
        "Microsoft.Compute/virtualMachineScaleSets", _CV, _CMP, _RD + "virtualMachineScaleSets", "vmScaleSetName"),
    "azure-native:dbforpostgresql:Database": _t(
        "Microsoft.DBforPostgreSQL/flexibleServers/databases", "2025-08-01", "Microsoft.DBforPostgreSQL.json",
        _RD + "flexibleServers_databases", "databaseName", RG, "serverName"),
    "azure-native:dbforpostgresql:Administrator": _t(
        "Microsoft.DBforPostgreSQL/flexibleServers/administrators", "2025-01-01-preview",
        "Microsoft.DBforPostgreSQL.json", _RD + "flexibleServers_administrators", "objectId", RG, "serverName"),
    "azure-native:dbforpostgresql:Server": _t(
        "Microsoft.DBforPostgreSQL/flexibleServers", "2025-08-01", "Microsoft.DBforPostgreSQL.json",
        _RD + "flexibleServers", "serverName"),
    "azure-native:desktopvirtualization:ApplicationGroup": _t(
        "Microsoft.DesktopVirtualization/applicationGroups", _AV, _AVD, _RD + "applicationGroups",
        "applicationGroupName"),
    "azure-native:desktopvirtualization:HostPool": _t(
        "Microsoft.DesktopVirtualization/hostPools", _AV, _AVD, _RD + "hostPools", "hostPoolName"),
    "azure-native:desktopvirtualization:Workspace": _t(
        "Microsoft.DesktopVirtualization/workspaces", _AV, _AVD, _RD + "workspaces", "workspaceName"),
    "azure-native:keyvault:Vault": _t(
        "Microsoft.KeyVault/vaults", "2024-11-01", "Microsoft.KeyVault.json", _RD + "vaults", "vaultName"),
    "azure-native:monitor:DiagnosticSetting": _t(
        "Microsoft.Insights/diagnosticSettings", "2021-05-01-preview", "Microsoft.Insights.json",
        _RD + "diagnosticSettings", "name", "resourceUri"),
    "azure-native:network:AzureFirewall": _t(
        "Microsoft.Network/azureFirewalls", _NV, _NET, _RD + "azureFirewalls", "azureFirewallName"),
    "azure-native:network:BastionHost": _t(
        "Microsoft.Network/bastionHosts", _NV, _NET, _RD + "bastionHosts", "bastionHostName"),
    "azure-native:network:FirewallPolicy": _t(
        "Microsoft.Network/firewallPolicies", _NV, _NET, _RD + "firewallPolicies", "firewallPolicyName"),
    "azure-native:network:FirewallPolicyRuleCollectionGroup": _t(
        "Microsoft.Network/firewallPolicies/ruleCollectionGroups", _NV, _NET,
        _RD + "firewallPolicies_ruleCollectionGroups", "ruleCollectionGroupName", RG, "firewallPolicyName"),
    "azure-native:network:FlowLog": _t(
        "Microsoft.Network/networkWatchers/flowLogs", _NV, _NET, _RD + "networkWatchers_flowLogs", "flowLogName",
        RG, "networkWatcherName"),
    "azure-native:network:NetworkInterface": _t(
        "Microsoft.Network/networkInterfaces", _NV, _NET, _RD + "networkInterfaces", "networkInterfaceName"),
    "azure-native:network:NetworkSecurityGroup": _t(
        "Microsoft.Network/networkSecurityGroups", _NV, _NET, _RD + "networkSecurityGroups",
        "networkSecurityGroupName"),
    "azure-native:network:PrivateDnsZoneGroup": _t(
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups", _NV, _NET,
        _RD + "privateEndpoints_privateDnsZoneGroups", "privateDnsZoneGroupName", RG, "privateEndpointName"),
    "azure-native:network:PrivateEndpoint": _t(
        "Microsoft.Network/privateEndpoints", _NV, _NET, _RD + "privateEndpoints", "privateEndpointName"),
    "azure-native:network:PublicIPAddress": _t(
        "Microsoft.Network/publicIPAddresses", _NV, _NET, _RD + "publicIPAddresses", "publicIpAddressName"),
    "azure-native:network:RouteTable": _t(
        "Microsoft.Network/routeTables", _NV, _NET, _RD + "routeTables", "routeTableName"),
    "azure-native:network:Subnet": _t(
        "Microsoft.Network/virtualNetworks/subnets", _NV, _NET, _RD + "virtualNetworks_subnets", "subnetName",
        RG, "virtualNetworkName"),
    "azure-native:network:VirtualNetwork": _t(
        "Microsoft.Network/virtualNetworks", _NV, _NET, _RD + "virtualNetworks", "virtualNetworkName"),
    "azure-native:network:VirtualNetworkPeering": _t(
        "Microsoft.Network/virtualNetworks/virtualNetworkPeerings", _NV, _NET,
        _RD + "virtualNetworks_virtualNetworkPeerings", "virtualNetworkPeeringName", RG, "virtualNetworkName"),
    "azure-native:operationalinsights:Workspace": _t(
        "Microsoft.OperationalInsights/workspaces", "2023-09-01", "Microsoft.OperationalInsights.json",
        _RD + "workspaces", "workspaceName"),
    "azure-native:privatedns:PrivateZone": _t(
        "Microsoft.Network/privateDnsZones", "2024-06-01", "Microsoft.Network.privateDns.json",
        _RD + "privateDnsZones", "privateZoneName"),
    "azure-native:privatedns:VirtualNetworkLink": _t(
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks", "2024-06-01", "Microsoft.Network.privateDns.json",
        _RD + "privateDnsZones_virtualNetworkLinks", "virtualNetworkLinkName", RG, "privateZoneName"),
    "azure-native:recoveryservices:ProtectedItem": _t(
        "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems", _BV, _BKP,
        _RD + "vaults_backupFabrics_protectionContainers_protectedItems", "protectedItemName",
        RG, "vaultName", "fabricName", "containerName"),
    "azure-native:recoveryservices:ProtectionPolicy": _t(
        "Microsoft.RecoveryServices/vaults/backupPolicies", _BV, _BKP, _RD + "vaults_backupPolicies", "policyName",
        RG, "vaultName"),
    "azure-native:recoveryservices:Vault": _t(
        "Microsoft.RecoveryServices/vaults", _BV, "Microsoft.RecoveryServices.json", _RD + "vaults", "vaultName"),
    "azure-native:resources:ResourceGroup": ArmType(
        "Microsoft.Resources/resourceGroups", "2024-03-01", "Microsoft.Resources.json",
        "subscription_resourceDefinitions/resourceGroups", "resourceGroupName", ()),
    "azure-native:storage:StorageAccount": _t(
        "Microsoft.Storage/storageAccounts", "2024-01-01", "Microsoft.Storage.json", _RD + "storageAccounts",
        "accountName",
        renames=(("enableHttpsTrafficOnly", "supportsHttpsTrafficOnly"), ("networkRuleSet", "networkAcls"))),
}


def schema_files() -> set[str]:
    return {arm.file for arm in ARM_TYPES.values()}


_DOC_VERSION = re.compile(r"Uses Azure REST API version ([0-9]{4}-[0-9]{2}-[0-9]{2}(?:-preview)?)")


def azure_native_api_version(type_token: str) -> str | None:
    """The api-version azure-native's class for `type_token` sends, read from its docstring (the class is found
    by its `pulumi.type_token` decorator, without importing the module: azure-native imports are slow)."""
    _, module, name = type_token.split(":")
    spec = importlib.util.find_spec(f"pulumi_azure_native.{module}")
    if spec is None or not spec.submodule_search_locations:
        return None
    needle = f'@pulumi.type_token("{type_token}")'
    for folder in spec.submodule_search_locations:
        guess = Path(folder) / (re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower() + ".py")
        for path in [guess, *sorted(Path(folder).glob("*.py"))]:
            if not path.is_file():
                continue
            text = path.read_text()
            at = text.find(needle)
            if at < 0:
                continue
            found = _DOC_VERSION.search(text, at)
            return found.group(1) if found else None
    return None

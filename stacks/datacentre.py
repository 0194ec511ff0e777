"""Data centre: Log Analytics and the private DNS zones in the hub; per council a Recovery Services vault with
the framework's backup policy, a Key Vault (RBAC, purge protection, private endpoint) and the council's
servers as the framework's target state."""

from __future__ import annotations

import pulumi
import pulumi_azure_native.keyvault as keyvault
import pulumi_azure_native.network as network
import pulumi_azure_native.operationalinsights as operationalinsights
import pulumi_azure_native.privatedns as privatedns
import pulumi_azure_native.storage as storage

from .common import (
    PRIVATE_ZONES,
    ZONE_KEY_VAULT,
    Env,
    Vm,
    backup_vault,
    child,
    diagnostics,
    flow_log,
    linux_vm,
    resource_group,
)
from .network import HubRef, SpokeNetwork, spoke_vnet_id
from .props import Common, CouncilProps, HubProps, Spoke, vnet_name

SERVICE = "datacentre"


def _zone_label(zone: str) -> str:
    return zone.removeprefix("privatelink.").split(".")[0]


def zone_link(common: Common, zone: str, *, zone_rg: pulumi.Input[str], vnet_id: pulumi.Input[str],
              parent: pulumi.Resource, depends_on: list[pulumi.Resource] | None = None, key: str | None = None,
              ) -> privatedns.VirtualNetworkLink:
    """Zone `zone` linked to the VNet of `key` (default: the stack's own site)."""
    key = key or common.key
    name = f"link-{_zone_label(zone)}-{key}"
    return privatedns.VirtualNetworkLink(
        name,
        privatedns.VirtualNetworkLinkArgs(
            virtual_network_link_name=vnet_name(key),
            private_zone_name=zone,
            resource_group_name=zone_rg,
            location="Global",
            virtual_network=privatedns.SubResourceArgs(id=vnet_id),
            registration_enabled=False,
            tags=common.tags(SERVICE),
        ),
        opts=child(parent, depends_on),
    )


def private_endpoint(common: Common, name: str, *, rg_name: pulumi.Input[str], subnet_id: pulumi.Input[str],
                     target_id: pulumi.Input[str], group: str, zone_id: pulumi.Input[str], service: str,
                     parent: pulumi.Resource) -> network.PrivateEndpoint:
    """A private endpoint for an Azure service, registered in the service's private DNS zone."""
    endpoint = network.PrivateEndpoint(
        name,
        network.PrivateEndpointArgs(
            private_endpoint_name=name,
            resource_group_name=rg_name,
            location=common.location,
            subnet=network.SubnetArgs(id=subnet_id),
            private_link_service_connections=[network.PrivateLinkServiceConnectionArgs(
                name=name, private_link_service_id=target_id, group_ids=[group])],
            tags=common.tags(service),
        ),
        opts=child(parent),
    )
    network.PrivateDnsZoneGroup(
        f"{name}-dns",
        network.PrivateDnsZoneGroupArgs(
            private_dns_zone_group_name="default",
            private_endpoint_name=endpoint.name,
            resource_group_name=rg_name,
            private_dns_zone_configs=[network.PrivateDnsZoneConfigArgs(name=group, private_dns_zone_id=zone_id)],
        ),
        opts=child(parent),
    )
    return endpoint


class HubDataCentre(pulumi.ComponentResource):
    """The hub's platform services: Log Analytics (retention from the spec), the private DNS zones every VNet
    links to, and the hub's Recovery Services vault with the framework backup policy."""

    def __init__(self, name: str, props: HubProps, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shared-estate:datacentre:Hub", name, None, opts)
        c = props.common
        self.common = c
        self.rg = resource_group(c, SERVICE, self)
        self.workspace = operationalinsights.Workspace(
            f"log-{c.key}",
            operationalinsights.WorkspaceArgs(
                workspace_name=f"log-{c.key}",
                resource_group_name=self.rg.name,
                location=c.location,
                sku=operationalinsights.WorkspaceSkuArgs(name=props.log_sku),
                retention_in_days=props.log_retention_days,
                tags=c.tags(SERVICE),
            ),
            opts=child(self),
        )
        self.vault, self.policy = backup_vault(c, self.rg, SERVICE, self)
        diagnostics(f"diag-rsv-{c.key}", resource_uri=self.vault.id, workspace_id=self.workspace.id, parent=self)
        self.zones = {
            zone: privatedns.PrivateZone(
                f"zone-{_zone_label(zone)}",
                privatedns.PrivateZoneArgs(private_zone_name=zone, resource_group_name=self.rg.name,
                                           location="Global", tags=c.tags(SERVICE)),
                opts=child(self),
            )
            for zone in PRIVATE_ZONES
        }
        # Every VNet's flow logs (framework control network.flow_logs): https and TLS 1.2 only, no anonymous blob
        # access, reached by Network Watcher as a trusted Azure service. Shared keys stay on: flow logs write with
        # the account's key unless each flow log is given a user-assigned identity with a data role
        # (learn.microsoft.com/azure/network-watcher/vnet-flow-logs-managed-identity).
        self.flow_log_storage = storage.StorageAccount(
            props.flow_log_storage,
            storage.StorageAccountArgs(
                account_name=props.flow_log_storage,
                resource_group_name=self.rg.name,
                location=c.location,
                kind=storage.Kind.STORAGE_V2,
                sku=storage.SkuArgs(name=c.flow_logs.storage_sku),
                enable_https_traffic_only=True,
                minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
                allow_blob_public_access=False,
                allow_cross_tenant_replication=False,
                network_rule_set=storage.NetworkRuleSetArgs(default_action=storage.DefaultAction.DENY,
                                                            bypass=storage.Bypass.AZURE_SERVICES),
                tags=c.tags(SERVICE),
            ),
            opts=child(self),
        )
        self.register_outputs({"workspaceId": self.workspace.id})

    def link(self, vnet_id: pulumi.Input[str]) -> None:
        """Link every private zone to the hub VNet, and keep the hub VNet's flow logs."""
        for zone, resource in self.zones.items():
            zone_link(self.common, zone, zone_rg=self.rg.name, vnet_id=vnet_id, parent=self, depends_on=[resource])
        flow_log(self.common, vnet_name=f"vnet-{self.common.key}", vnet_id=vnet_id,
                 storage_id=self.flow_log_storage.id, workspace_id=self.workspace.id,
                 workspace_guid=self.workspace.customer_id, workspace_region=self.common.location, service=SERVICE,
                 parent=self)

    def link_spokes(self, env: Env, spokes: tuple[Spoke, ...]) -> None:
        """Link every private zone to each deployed spoke's VNet: the links live in the hub's zones, so the hub
        stack owns them and a council's stack needs no right on the hub's zones."""
        for spoke in spokes:
            for zone, resource in self.zones.items():
                zone_link(self.common, zone, zone_rg=self.rg.name, vnet_id=spoke_vnet_id(env, spoke), parent=self,
                          depends_on=[resource], key=spoke.key)

    def flow_log_targets(self) -> pulumi.Output[dict[str, str]]:
        """Where council stacks send their VNets' flow logs: the storage account and the workspace (its id and
        the GUID traffic analytics names it by)."""
        return pulumi.Output.all(self.flow_log_storage.id, self.workspace.id, self.workspace.customer_id).apply(
            lambda v: {"storageId": v[0], "workspaceId": v[1], "workspaceGuid": v[2],
                       "workspaceRegion": self.common.location})

    def zone_ids(self) -> pulumi.Output[dict[str, str]]:
        zones = sorted(self.zones)
        return pulumi.Output.all(*[self.zones[z].id for z in zones]).apply(
            lambda ids: dict(zip(zones, ids, strict=True)))


class CouncilDataCentre(pulumi.ComponentResource):
    """A council's data centre: vault and backup policy, Key Vault behind a private endpoint, its servers as
    the framework's target state (each backed up). Its VNet's links to the hub's private DNS zones belong to the
    hub stack (HubDataCentre.link_spokes)."""

    def __init__(self, name: str, props: CouncilProps, env: Env, hub: HubRef, spoke: SpokeNetwork,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shared-estate:datacentre:Council", name, None, opts)
        c = props.common
        self.rg = resource_group(c, SERVICE, self)
        flow_log(c, vnet_name=f"vnet-{c.key}", vnet_id=spoke.vnet.id,
                 storage_id=hub.flow_log_targets.apply(lambda t: t["storageId"]),
                 workspace_id=hub.flow_log_targets.apply(lambda t: t["workspaceId"]),
                 workspace_guid=hub.flow_log_targets.apply(lambda t: t.get("workspaceGuid")),
                 workspace_region=hub.flow_log_targets.apply(lambda t: t["workspaceRegion"]),
                 service=SERVICE, parent=self)
        vault, policy = backup_vault(c, self.rg, SERVICE, self)
        diagnostics(f"diag-rsv-{c.key}", resource_uri=vault.id, workspace_id=hub.workspace_id, parent=self)
        self.key_vault = keyvault.Vault(
            props.key_vault_name,
            keyvault.VaultArgs(
                vault_name=props.key_vault_name,
                resource_group_name=self.rg.name,
                location=c.location,
                properties=keyvault.VaultPropertiesArgs(
                    tenant_id=env.tenant_id,
                    sku=keyvault.SkuArgs(family="A", name=keyvault.SkuName(c.key_vault_sku)),
                    enable_rbac_authorization=True,
                    enable_purge_protection=True,
                    enable_soft_delete=True,
                    soft_delete_retention_in_days=c.key_vault_soft_delete_days,
                    public_network_access="Disabled",
                    network_acls=keyvault.NetworkRuleSetArgs(default_action="Deny", bypass="AzureServices"),
                ),
                tags=c.tags(SERVICE),
            ),
            # purge protection keeps a deleted vault's name for its soft-delete days: `pulumi destroy` refuses
            # to delete it until someone unprotects it on purpose (then bump keyVaultGeneration to rebuild sooner)
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        diagnostics(f"diag-{props.key_vault_name}", resource_uri=self.key_vault.id, workspace_id=hub.workspace_id,
                    parent=self)
        private_endpoint(c, f"pe-{props.key_vault_name}", rg_name=self.rg.name,
                         subnet_id=spoke.segments.ids[props.services_segment], target_id=self.key_vault.id,
                         group="vault", zone_id=hub.zone_id(ZONE_KEY_VAULT), service=SERVICE, parent=self)
        self.servers: list[Vm] = [
            linux_vm(c, server, service=SERVICE, rg_name=c.rg(SERVICE), rg=self.rg,
                     subnet_id=spoke.segments.ids[server.segment], vault=vault, vault_group=self.rg.name,
                     policy=policy, parent=self)
            for server in props.servers
        ]
        self.register_outputs({"keyVaultId": self.key_vault.id})

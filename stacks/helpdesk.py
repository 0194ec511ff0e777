"""Helpdesk: the consortium's shared helpdesk in the hub's shared-services segment: its VM (backed up by the
framework policy), its PostgreSQL flexible server behind a private endpoint, Entra authentication only.
Every council's desktops reach it on the flow matrix's ports only: the NSG of its segment says so."""

from __future__ import annotations

import pulumi
import pulumi_azure_native.dbforpostgresql as dbforpostgresql

from .common import ZONE_POSTGRES, Env, child, diagnostics, linux_vm, resource_group
from .datacentre import HubDataCentre, private_endpoint
from .network import HubNetwork
from .props import HubProps, Server

SERVICE = "helpdesk"


class Helpdesk(pulumi.ComponentResource):
    def __init__(self, name: str, props: HubProps, env: Env, net: HubNetwork, dc: HubDataCentre,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shared-estate:helpdesk:Helpdesk", name, None, opts)
        c, h = props.common, props.helpdesk
        self.rg = resource_group(c, SERVICE, self)
        subnet_id = net.segments.ids[h.segment]
        server = Server(name=h.vm_name, role=h.platform, size=h.vm_size, segment=h.segment, private_ip=h.private_ip)
        self.vm = linux_vm(c, server, service=SERVICE, rg_name=c.rg(SERVICE), rg=self.rg, subnet_id=subnet_id,
                           vault=dc.vault, vault_group=dc.rg.name, policy=dc.policy, parent=self)
        self.database = dbforpostgresql.Server(
            h.db_server_name,
            dbforpostgresql.ServerArgs(
                server_name=h.db_server_name,
                resource_group_name=self.rg.name,
                location=c.location,
                version=h.db_version,
                sku=dbforpostgresql.SkuArgs(name=h.db_sku, tier=h.db_tier),
                storage=dbforpostgresql.StorageArgs(storage_size_gb=h.db_storage_gb, auto_grow="Enabled"),
                backup=dbforpostgresql.BackupArgs(backup_retention_days=h.db_backup_days,
                                                  geo_redundant_backup="Disabled"),
                network=dbforpostgresql.NetworkArgs(public_network_access="Disabled"),
                auth_config=dbforpostgresql.AuthConfigArgs(active_directory_auth="Enabled", password_auth="Disabled",
                                                           tenant_id=env.tenant_id),
                tags=c.tags(SERVICE),
            ),
            opts=child(self),
        )
        # Entra authentication only: nobody signs in until the server has an Entra administrator. The consortium
        # operations group, and the helpdesk VM's system-assigned identity, so RT on that VM signs in with its
        # managed identity's token (learn.microsoft.com/azure/postgresql/flexible-server/how-to-manage-azure-ad-users;
        # a managed identity is a service principal). Azure takes one administrator change at a time: in sequence.
        group_admin = dbforpostgresql.Administrator(
            f"{h.db_server_name}-admin-operations",
            dbforpostgresql.AdministratorArgs(
                server_name=self.database.name,
                resource_group_name=self.rg.name,
                object_id=c.admin_group,
                principal_name=props.admin_group_name,
                # ARM's enum is "Group"/"ServicePrincipal" (its schema for the API version azure-native sends);
                # azure-native's PrincipalType enum spells them in lower case, which that schema refuses
                principal_type="Group",
                tenant_id=env.tenant_id,
            ),
            opts=child(self),
        )
        vm_identity = self.vm.vm.identity.apply(lambda i: i.principal_id if i else None)
        dbforpostgresql.Administrator(
            f"{h.db_server_name}-admin-{h.vm_name}",
            dbforpostgresql.AdministratorArgs(
                server_name=self.database.name,
                resource_group_name=self.rg.name,
                object_id=vm_identity,
                principal_name=h.vm_name,  # a VM's system-assigned identity is named after the VM
                principal_type="ServicePrincipal",
                tenant_id=env.tenant_id,
            ),
            opts=child(self, [group_admin]),
        )
        dbforpostgresql.Database(
            f"{h.db_server_name}-helpdesk",
            dbforpostgresql.DatabaseArgs(
                database_name="helpdesk",
                server_name=self.database.name,
                resource_group_name=self.rg.name,
                charset="UTF8",
                collation="en_US.utf8",
            ),
            opts=child(self),
        )
        diagnostics(f"diag-{h.db_server_name}", resource_uri=self.database.id, workspace_id=dc.workspace.id,
                    parent=self)
        private_endpoint(c, f"pe-{h.db_server_name}", rg_name=self.rg.name, subnet_id=subnet_id,
                         target_id=self.database.id, group="postgresqlServer", zone_id=dc.zones[ZONE_POSTGRES].id,
                         service=SERVICE, parent=self)
        self.register_outputs({"vmId": self.vm.vm.id})


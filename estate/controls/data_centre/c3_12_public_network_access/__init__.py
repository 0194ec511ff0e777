"""3.12 Key Vaults, Recovery Services vaults and databases accept no traffic from public networks (framework.yaml
`data_centre.public_network_access`).

Cloud-only: the stacks turn public network access off on these services and reach them over private endpoints.
Judged on the planned or deployed Key Vaults, Recovery Services vaults and PostgreSQL flexible servers
(DCN-015).
"""

from __future__ import annotations

from collections.abc import Iterable

from estate.controls.base import CloudResource, Context, Outcome, Rule, failed, get, passed, rule
from estate.controls.data_centre.common import VAULT
from estate.controls.spec import declare

CONTROL = declare(
    "data_centre.public_network_access",
    rationale=("A vault or database with public network access answers the whole internet, guarded by its "
               "credentials alone; reached only through private endpoints, it is inside the councils' "
               "segmented networks like everything else."),
    # CAF: systems segregated into security zones (B4.a.A.2) and from external systems (B5.b.A.1): the
    # services are reachable from the estate's own networks only. Same ids in both versions.
    caf={"3.2": ("B4.a.A.2", "B5.b.A.1"),
         "4.0": ("B4.a.A.2", "B5.b.A.1")},
    # Cyber Essentials: unauthenticated inbound connections are blocked by default (CE-FW.4); for these
    # platform services the public network access switch is that boundary.
    ce=("CE-FW.4",),
    roles=(),  # cloud-only: the stacks turn it off
)

RECOVERY_VAULT = "azure-native:recoveryservices:Vault"
POSTGRES_SERVER = "azure-native:dbforpostgresql:Server"


@rule
class NoPublicNetworkAccess(Rule):
    id = "DCN-015"
    title = "Key Vaults, Recovery Services vaults and PostgreSQL servers refuse public network access"
    severity = "high"
    control = "data_centre.public_network_access"
    area = "datacentre"
    fix = ("Set publicNetworkAccess to Disabled (properties.publicNetworkAccess on vaults, "
           "network.publicNetworkAccess on PostgreSQL flexible servers) and reach the service over its private "
           "endpoint. Azure enables it when unset.")
    types = (VAULT, RECOVERY_VAULT, POSTGRES_SERVER)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if ctx.fw.data_centre.public_network_access.allowed:
            return []
        path = "network.publicNetworkAccess" if res.type == POSTGRES_SERVER else "properties.publicNetworkAccess"
        value = get(res.inputs, path)
        if str(value).lower() == "disabled":
            return [passed(res.urn, f"{res.name} refuses public network access")]
        shown = "unset (Azure enables it)" if value is None else repr(value)
        return [failed(res.urn, f"{res.name}: {path} is {shown}, not Disabled")]

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

CONTROL = declare()

RECOVERY_VAULT = "azure-native:recoveryservices:Vault"
POSTGRES_SERVER = "azure-native:dbforpostgresql:Server"


@rule
class NoPublicNetworkAccess(Rule):
    id = "DCN-015"
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

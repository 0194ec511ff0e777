"""3.8 Key Vaults use RBAC and purge protection (framework.yaml `data_centre.key_vault`).

Cloud-only: the stacks make every council's and the hub's Key Vault with Azure RBAC, purge protection, the
agreed soft-delete period and SKU. Judged on the planned or deployed vaults (DCN-010, DCN-011).
"""

from __future__ import annotations

from collections.abc import Iterable

from estate.controls.base import CloudResource, Context, Outcome, Rule, mapping, rule
from estate.controls.data_centre.common import VAULT, RetentionOnSku, verdict
from estate.controls.spec import declare

CONTROL = declare()


@rule
class KeyVaultAccess(Rule):
    id = "DCN-010"
    types = (VAULT,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        c = ctx.fw.data_centre.key_vault
        props = mapping(res, "properties")
        wrong = []
        if c.rbac and props.get("enableRbacAuthorization") is not True:
            wrong.append("RBAC authorisation is off")
        if c.purge_protection and props.get("enablePurgeProtection") is not True:
            wrong.append("purge protection is off")
        return [verdict(res, wrong, f"{res.name} uses RBAC and purge protection", " and ")]


@rule
class KeyVaultRecovery(RetentionOnSku):
    id = "DCN-011"
    types = (VAULT,)
    days_key = "properties.softDeleteRetentionInDays"
    sku_key = "properties.sku.name"
    kept = "deleted secrets"

    def wanted(self, ctx: Context) -> tuple[int, str]:
        c = ctx.fw.data_centre.key_vault
        return c.soft_delete_days, c.sku

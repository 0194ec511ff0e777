"""3.8 Key Vaults use RBAC and purge protection (framework.yaml `data_centre.key_vault`).

Cloud-only: the stacks make every council's and the hub's Key Vault with Azure RBAC, purge protection, the
agreed soft-delete period and SKU. Judged on the planned or deployed vaults (DCN-010, DCN-011).
"""

from __future__ import annotations

from collections.abc import Iterable

from estate.controls.base import CloudResource, Context, Outcome, Rule, mapping, rule
from estate.controls.data_centre.common import VAULT, RetentionOnSku, verdict
from estate.controls.spec import declare

CONTROL = declare(
    "data_centre.key_vault",
    rationale=("Key Vaults hold the secrets and keys every other control relies on: access must go through the "
               "same role assignments as the rest of Azure, and a deleted or purged secret must be recoverable "
               "for long enough to notice."),
    # CAF: technical means protect stored data (here: secrets and keys) from unauthorised access, modification
    # and deletion (B3.c.A.2), and cryptographic material is managed with suitable technical means (B3.c.A.3).
    # Same ids in both versions.
    caf={"3.2": ("B3.c.A.2", "B3.c.A.3"),
         "4.0": ("B3.c.A.2", "B3.c.A.3")},
    ce=(),  # Cyber Essentials says nothing of key or secret stores
    roles=(),  # cloud-only: the stacks make the vaults
)


@rule
class KeyVaultAccess(Rule):
    id = "DCN-010"
    title = "Key Vaults use RBAC and purge protection"
    severity = "high"
    control = "data_centre.key_vault"
    area = "datacentre"
    fix = ("Set properties.enableRbacAuthorization to {c.rbac} and properties.enablePurgeProtection to "
           "{c.purge_protection}.")
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
    title = "Key Vaults keep deleted secrets for the agreed period on the agreed SKU"
    severity = "medium"
    control = "data_centre.key_vault"
    area = "datacentre"
    fix = "Set properties.softDeleteRetentionInDays to {c.soft_delete_days} and properties.sku.name to {c.sku}."
    types = (VAULT,)
    days_key = "properties.softDeleteRetentionInDays"
    sku_key = "properties.sku.name"
    kept = "deleted secrets"

    def wanted(self, ctx: Context) -> tuple[int, str]:
        c = ctx.fw.data_centre.key_vault
        return c.soft_delete_days, c.sku

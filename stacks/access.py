"""RBAC: a stack's administrators group gets Contributor on that stack's own resource groups and nothing
else (a council's admins never see another council's or the hub's groups), and Key Vault Administrator on the
council's vault (RBAC vaults give Contributor no data access)."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_azure_native.resources as resources

from .common import ROLE_CONTRIBUTOR, ROLE_KEY_VAULT_ADMINISTRATOR, Env, role_assignment
from .props import Common


class Access(pulumi.ComponentResource):
    def __init__(self, name: str, common: Common, env: Env, groups: Mapping[str, resources.ResourceGroup],
                 key_vault_id: pulumi.Input[str] | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shared-estate:access:Access", name, None, opts)
        for service in sorted(groups):
            role_assignment(f"ra-{common.key}-admins-{service}", env, scope=groups[service].id,
                            role=ROLE_CONTRIBUTOR, principal=common.admin_group, parent=self)
        if key_vault_id is not None:
            role_assignment(f"ra-{common.key}-admins-keyvault", env, scope=key_vault_id,
                            role=ROLE_KEY_VAULT_ADMINISTRATOR, principal=common.admin_group, parent=self)
        self.register_outputs({})

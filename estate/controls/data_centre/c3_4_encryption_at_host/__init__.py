"""3.4 Virtual machines encrypt at host (framework.yaml `data_centre.encryption_at_host`).

Cloud-only: the stacks set `securityProfile.encryptionAtHost` on every VM and scale set; servers outside Azure
are encrypted by their owners (BitLocker, LUKS, the SAN) and the asset register says so. Judged on the planned
or deployed VMs and scale sets and on the register's servers (DCN-004).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from estate.controls.azure import COMPUTE, vm_profile
from estate.controls.base import CloudResource, Context, Outcome, get, rule
from estate.controls.checks import AssetCheck, ResourceValueCheck
from estate.controls.spec import declare
from estate.models import Council

CONTROL = declare()


class EncryptedServers(AssetCheck):
    """DCN-004 on the asset register: each server, in Azure or not, encrypts its data at rest."""

    collection = "servers"
    passing = "{name} encrypts its data at rest"
    failing = "{name} ({a.location}) does not encrypt its data at rest"

    def enabled(self, ctx: Context) -> bool:
        return ctx.fw.data_centre.encryption_at_host.required

    def holds(self, asset: Any, ctx: Context) -> bool:
        return bool(asset.encrypted)


@rule
class Encryption(ResourceValueCheck):
    id = "DCN-004"
    types = COMPUTE

    def applies(self, res: CloudResource, ctx: Context) -> bool:
        return ctx.fw.data_centre.encryption_at_host.required

    def value(self, res: CloudResource) -> Any:
        return get(vm_profile(res), self.key)

    def expected(self, ctx: Context) -> Collection[Any]:
        return (True,)

    def holds(self, value: Any, expected: Collection[Any]) -> bool:
        return value is True

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        return EncryptedServers().assets(key, council, ctx)

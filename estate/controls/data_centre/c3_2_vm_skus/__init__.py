"""3.2 Servers use an approved VM SKU (framework.yaml `data_centre.vm_skus`).

Cloud-only: the stacks size every server VM and scale set from the framework's list. Judged on the planned or
deployed VMs and scale sets (session hosts aside: the desktop controls size those) and on the asset register's
Azure servers (DCN-002).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from estate.controls.azure import COMPUTE, DESKTOP, vm_size
from estate.controls.base import CloudResource, Context, Outcome, rule, service_of
from estate.controls.checks import ResourceValueCheck
from estate.controls.data_centre.common import azure_servers
from estate.controls.spec import declare
from estate.models import Council

CONTROL = declare()


@rule
class ServerSku(ResourceValueCheck):
    id = "DCN-002"
    types = COMPUTE

    def applies(self, res: CloudResource, ctx: Context) -> bool:
        return service_of(res) != DESKTOP

    def value(self, res: CloudResource) -> Any:
        return vm_size(res)

    def expected(self, ctx: Context) -> Collection[Any]:
        return ctx.fw.data_centre.vm_skus.allowed

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        return azure_servers(council, "sku", ctx.fw.data_centre.vm_skus.allowed, "{name} is {value}",
                             "Azure server {name} is {value}, not one of {expected}", "of no recorded SKU")

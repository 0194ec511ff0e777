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

CONTROL = declare(
    "data_centre.vm_skus",
    rationale=("A short list of VM sizes is what the consortium's cost and capacity model is priced on, and what "
               "the shared image and backup policy are tested with; an odd size breaks the budget and the support."),
    # CAF: servers sized to the capacity planned for them, resource limitations identified and mitigated (3.2
    # B5.b.A.2, numbered B5.b.A.3 in 4.0), and every server built to the defined baseline (B4.b.A.2).
    caf={"3.2": ("B5.b.A.2", "B4.b.A.2"),
         "4.0": ("B5.b.A.3", "B4.b.A.2")},
    ce=(),  # Cyber Essentials has no requirement on machine sizes
    roles=(),  # cloud-only: the stacks choose the size
)


@rule
class ServerSku(ResourceValueCheck):
    id = "DCN-002"
    title = "servers use an approved VM SKU"
    severity = "medium"
    control = "data_centre.vm_skus"
    area = "datacentre"
    fix = "Set hardwareProfile.vmSize (or the register's sku) to one of {c.allowed} (default {c.default})."
    types = COMPUTE
    key = "hardwareProfile.vmSize"  # a scale set's sku.name (azure.vm_size)
    passing = "{name} is {value}"
    failing = "server {name} is {value}, not one of {expected}"

    def applies(self, res: CloudResource, ctx: Context) -> bool:
        return service_of(res) != DESKTOP

    def value(self, res: CloudResource) -> Any:
        return vm_size(res)

    def expected(self, ctx: Context) -> Collection[Any]:
        return ctx.fw.data_centre.vm_skus.allowed

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        return azure_servers(council, "sku", ctx.fw.data_centre.vm_skus.allowed, "{name} is {value}",
                             "Azure server {name} is {value}, not one of {expected}", "of no recorded SKU")

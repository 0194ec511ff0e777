"""2.3 Session hosts use an approved VM size (framework.yaml `desktop.vm_sizes`).

Every AVD session host (a VM's hardwareProfile.vmSize, a scale set's sku.name) is one of the sizes the capacity
model was worked out for. Built by the desktop stack; judged on the planned or deployed session hosts (DSK-005).
No Ansible role enforces it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from estate.controls.azure import COMPUTE, DESKTOP, vm_size
from estate.controls.base import CloudResource, Context, rule, service_of
from estate.controls.checks import ResourceValueCheck
from estate.controls.spec import declare

CONTROL = declare(
    "desktop.vm_sizes",
    rationale=("The sessions per host, the cost per desktop and the reserved capacity were all worked out for a "
               "few VM sizes; a session host of another size breaks the capacity model and the bill."),
    # CAF: resource limitations are identified and mitigated (3.2 B5.b.A.2; 4.0 renumbers the same statement
    # B5.b.A.3): hosts sized for the sessions they carry.
    caf={"3.2": ("B5.b.A.2",),
         "4.0": ("B5.b.A.3",)},
    # Cyber Essentials: none; a VM size is capacity and cost, not a security requirement.
    ce=(),
)


@rule
class SessionHostSize(ResourceValueCheck):
    id = "DSK-005"
    title = "session hosts use an approved VM size"
    severity = "medium"
    control = "desktop.vm_sizes"
    area = "desktop"
    fix = "Set hardwareProfile.vmSize (a scale set's sku.name) to one of {c.allowed} (default {c.default})."
    types = COMPUTE
    passing = "{name} is {value}"
    failing = "session host {name} is {value}, not one of {expected}"

    def applies(self, res: CloudResource, ctx: Context) -> bool:
        return service_of(res) == DESKTOP

    def value(self, res: CloudResource) -> Any:
        return vm_size(res)

    def expected(self, ctx: Context) -> Collection[Any]:
        return ctx.fw.desktop.vm_sizes.allowed

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

CONTROL = declare()


@rule
class SessionHostSize(ResourceValueCheck):
    id = "DSK-005"
    types = COMPUTE

    def applies(self, res: CloudResource, ctx: Context) -> bool:
        return service_of(res) == DESKTOP

    def value(self, res: CloudResource) -> Any:
        return vm_size(res)

    def expected(self, ctx: Context) -> Collection[Any]:
        return ctx.fw.desktop.vm_sizes.allowed

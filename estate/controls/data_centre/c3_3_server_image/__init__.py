"""3.3 Servers run the approved image (framework.yaml `data_centre.server_image`).

Cloud-only: the stacks build every server VM and scale set from the framework's marketplace image. Judged on
the planned or deployed VMs and scale sets, session hosts aside (DCN-003).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from estate.controls.azure import COMPUTE, DESKTOP, image_of
from estate.controls.base import CloudResource, Context, rule, service_of
from estate.controls.checks import ResourceValueCheck
from estate.controls.spec import declare

CONTROL = declare()


@rule
class ServerImage(ResourceValueCheck):
    id = "DCN-003"
    types = COMPUTE

    def applies(self, res: CloudResource, ctx: Context) -> bool:
        return service_of(res) != DESKTOP

    def value(self, res: CloudResource) -> Any:
        return image_of(res)

    def expected(self, ctx: Context) -> Collection[Any]:
        c = ctx.fw.data_centre.server_image
        return ("/".join((c.publisher, c.offer, c.sku, c.version)),)

    def shown(self, value: Any) -> str:
        return "/".join(str(x) for x in value)

    def holds(self, value: Any, expected: Collection[Any]) -> bool:
        # the four parts are text and equal the framework's (no part of an image reference holds a "/")
        return all(isinstance(x, str) for x in value) and "/".join(value) in expected

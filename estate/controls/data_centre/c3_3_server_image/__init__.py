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

CONTROL = declare(
    "data_centre.server_image",
    rationale=("Every server starts from one image the consortium has vetted and the baseline role is tested "
               "on; a server built from another image starts outside the secure configuration."),
    # CAF: platforms conform to the secure, defined baseline build (B4.b.A.2, both versions).
    caf={"3.2": ("B4.b.A.2",),
         "4.0": ("B4.b.A.2",)},
    # Cyber Essentials' secure configuration theme names no build image of its own; what the image leaves out is
    # judged by the security controls (5.5), so none is claimed here.
    ce=(),
    roles=(),  # cloud-only: the stacks choose the image
)


@rule
class ServerImage(ResourceValueCheck):
    id = "DCN-003"
    title = "servers run the approved server image"
    severity = "high"
    control = "data_centre.server_image"
    area = "datacentre"
    fix = "Build servers from storageProfile.imageReference {c.publisher}/{c.offer}/{c.sku} version {c.version}."
    types = COMPUTE
    key = "storageProfile.imageReference"  # publisher/offer/sku/version (azure.image_of)
    passing = "{name} runs {value}"
    failing = "server {name} runs image {value}, not {expected}"

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

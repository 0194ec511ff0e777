"""2.2 Session hosts run the approved image (framework.yaml `desktop.image`).

Every AVD session host (a VM or scale set of the desktop service) is built from the one Windows 11 multi-session
image the consortium approved (publisher, offer, SKU, version). Built by the desktop stack; judged on the planned
or deployed session hosts (DSK-004). No Ansible role enforces it.
"""

from __future__ import annotations

from collections.abc import Iterable

from estate.controls.azure import COMPUTE, DESKTOP, image_of
from estate.controls.base import CloudResource, Context, Outcome, Rule, failed, passed, rule, service_of
from estate.controls.spec import declare

CONTROL = declare()


@rule
class SessionHostImage(Rule):
    id = "DSK-004"
    types = COMPUTE

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if service_of(res) != DESKTOP:
            return []
        c = ctx.fw.desktop.image
        got = image_of(res)
        want = (c.publisher, c.offer, c.sku, c.version)
        shown = "/".join(str(x) for x in got)
        if got == want:
            return [passed(res.urn, f"{res.name} runs {shown}")]
        return [failed(res.urn, f"{res.name} runs image {shown}, not {'/'.join(want)}")]

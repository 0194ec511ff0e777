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

CONTROL = declare(
    "desktop.image",
    rationale=("Every session host built from one approved, supported image is configured, licensed and patched "
               "the same way, so a setting fixed once is fixed for every council's desktops."),
    # CAF: every platform conforms to the secure, defined baseline build (B4.b.A.2), a supported release
    # (B4.d.A.4: maximise the use of supported software). The same ids and statements in 3.2 and 4.0.
    caf={"3.2": ("B4.b.A.2", "B4.d.A.4"),
         "4.0": ("B4.b.A.2", "B4.d.A.4")},
    # Cyber Essentials: secure configuration, the approved build carrying no unneeded software (CE-SC.3), and
    # software licensed and supported by its vendor (CE-SUM.1).
    ce=("CE-SC.3", "CE-SUM.1"),
)


@rule
class SessionHostImage(Rule):
    id = "DSK-004"
    title = "session hosts run the approved desktop image"
    severity = "high"
    control = "desktop.image"
    area = "desktop"
    fix = ("Build session hosts from storageProfile.imageReference {c.publisher}/{c.offer}/{c.sku} "
           "version {c.version}.")
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

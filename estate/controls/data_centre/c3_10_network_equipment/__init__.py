"""3.10 Network equipment is within vendor support (framework.yaml `data_centre.network_equipment`).

Register-only: each council's asset register lists its switches, routers, firewalls and access points with the
vendor's end-of-support date. Judged on the register (NET-010).
"""

from __future__ import annotations

from typing import Any

from estate.controls.base import Context, rule
from estate.controls.checks import AssetCheck
from estate.controls.spec import declare

CONTROL = declare(
    "data_centre.network_equipment",
    rationale=("A switch or firewall past its vendor's end of support gets no more firmware fixes, and network "
               "equipment is what every other control's traffic crosses; it is replaced or its support extended "
               "before that date."),
    # CAF: supported hardware and firmware are used throughout (B4.d.A.4), and assets are managed through their
    # lifecycle to disposal (A3.a.A.5). Same ids in both versions.
    caf={"3.2": ("B4.d.A.4", "A3.a.A.5"),
         "4.0": ("B4.d.A.4", "A3.a.A.5")},
    # Cyber Essentials: firmware in scope is supported by its vendor (CE-SUM.1), unsupported devices are removed
    # from scope (CE-SUM.2).
    ce=("CE-SUM.1", "CE-SUM.2"),
    # https://www.ncsc.gov.uk/collection/device-security-principles-for-manufacturers
    device_principle="NCSC device security principles: 1 (provide updates securely)",
    roles=(),  # register-only: no role manages council network equipment
)


@rule
class NetworkEquipmentSupported(AssetCheck):
    id = "NET-010"
    title = "network equipment is within vendor support"
    severity = "high"
    control = "data_centre.network_equipment"
    area = "network"
    fix = "Replace the device, or buy extended vendor support, before its end-of-support date."
    collection = "network"
    passing = "{name} ({a.vendor} {a.model}) is supported until {a.end_of_support}"
    failing = "{name} ({a.vendor} {a.model}): vendor support ended on {a.end_of_support}"

    def enabled(self, ctx: Context) -> bool:
        return ctx.fw.data_centre.network_equipment.support_required

    def holds(self, asset: Any, ctx: Context) -> bool:
        return bool(ctx.today <= asset.end_of_support)

"""3.10 Network equipment is within vendor support (framework.yaml `data_centre.network_equipment`).

Register-only: each council's asset register lists its switches, routers, firewalls and access points with the
vendor's end-of-support date. Judged on the register (NET-010).
"""

from __future__ import annotations

from typing import Any

from estate.controls.base import Context, rule
from estate.controls.checks import AssetCheck
from estate.controls.spec import declare

CONTROL = declare()


@rule
class NetworkEquipmentSupported(AssetCheck):
    id = "NET-010"

    def enabled(self, ctx: Context) -> bool:
        return ctx.fw.data_centre.network_equipment.support_required

    def holds(self, asset: Any, ctx: Context) -> bool:
        return bool(ctx.today <= asset.end_of_support)

"""3.1 Resources are deployed in approved UK regions (framework.yaml `data_centre.regions`).

Cloud-only: the stacks place every resource in the framework's primary region or its disaster-recovery pair.
Judged on the planned or deployed resources' `location` (DCN-001) and on the asset register's Azure servers
(DCN-012).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from estate.controls.base import CloudResource, Context, Outcome, Rule, rule
from estate.controls.checks import ResourceValueCheck
from estate.controls.data_centre.common import azure_servers
from estate.controls.spec import declare
from estate.models import Council

CONTROL = declare()

# Locations that are no region: the resource is global by nature (DNS zones, policy assignments).
NOT_A_REGION = frozenset({"global"})


@rule
class Regions(ResourceValueCheck):
    id = "DCN-001"
    types = ("azure-native:*",)

    def applies(self, res: CloudResource, ctx: Context) -> bool:
        location = res.inputs.get("location")
        return isinstance(location, str) and location.lower() not in NOT_A_REGION

    def expected(self, ctx: Context) -> Collection[Any]:
        return ctx.fw.data_centre.regions.allowed

    def holds(self, value: Any, expected: Collection[Any]) -> bool:
        return str(value).replace(" ", "").lower() in expected


@rule
class ServerRegion(Rule):
    id = "DCN-012"

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        return azure_servers(council, "region", ctx.fw.data_centre.regions.allowed, "{name} is in {value}",
                             "{name} is in {value}, outside {expected}", "no recorded region")

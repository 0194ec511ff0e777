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

CONTROL = declare(
    "data_centre.regions",
    rationale=("Councils' data must stay in the UK under UK GDPR, and a second UK region gives disaster recovery "
               "somewhere to go: resources outside the agreed pair break both."),
    # CAF: where the data lives is known and kept (B3.a.A.3, location of important data); the DR pair answers
    # geographical weakness (3.2 B5.b.A.3, numbered B5.b.A.4 in 4.0, which inserts an internet-services indicator).
    caf={"3.2": ("B3.a.A.3", "B5.b.A.3"),
         "4.0": ("B3.a.A.3", "B5.b.A.4")},
    ce=(),  # Cyber Essentials says nothing of where data is held
    roles=(),  # cloud-only: the stacks choose the region
)

# Locations that are no region: the resource is global by nature (DNS zones, policy assignments).
NOT_A_REGION = frozenset({"global"})


@rule
class Regions(ResourceValueCheck):
    id = "DCN-001"
    title = "cloud resources are deployed in approved UK regions"
    severity = "high"
    control = "data_centre.regions"
    area = "datacentre"
    fix = "Deploy in {c.primary} (disaster recovery pair {c.dr_pair}); allowed: {c.allowed}."
    types = ("azure-native:*",)
    key = "location"
    passing = "{name} is in {value}"
    failing = "{name} is in {value}, outside {expected}"

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
    title = "Azure servers in the asset register are in approved regions"
    severity = "high"
    control = "data_centre.regions"
    area = "datacentre"
    fix = "Move the server to {c.primary} (disaster recovery pair {c.dr_pair})."

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        return azure_servers(council, "region", ctx.fw.data_centre.regions.allowed, "{name} is in {value}",
                             "{name} is in {value}, outside {expected}", "no recorded region")

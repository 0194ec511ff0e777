"""3.13 Every cloud resource is a request Azure Resource Manager accepts at the API version deployed
(framework.yaml `data_centre.platform_contract`).

Cloud-only: DCN-020 runs `estate.contract.check_plan` on each stack's resources: every resource validated against
the ARM deployment schema of its type at the api-version azure-native sends, and Azure's service rules a schema
cannot express (each citing its Microsoft Learn page). A resource with a contract finding fails, naming the
property and the source; every other cloud resource passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from estate.contract import check_plan
from estate.controls.base import CloudResource, Context, Outcome, Rule, failed, passed, rule, service_of
from estate.controls.spec import declare
from estate.plan import PlannedResource, is_cloud_type

CONTROL = declare()

# The service a resource serves (its `service` tag) -> the area its finding counts towards.
_AREAS = {"network": "network", "desktop": "desktop", "helpdesk": "helpdesk", "datacentre": "datacentre"}


def _planned(res: CloudResource) -> PlannedResource:
    return PlannedResource(urn=res.urn, type=res.type, name=res.name, stack=res.stack, parent=res.parent,
                           inputs=dict(res.inputs))


@rule
class PlatformContract(Rule):
    id = "DCN-020"

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        cloud = [_planned(r) for r in resources if is_cloud_type(r.type)]
        if not cloud:
            return
        by_resource: dict[str, list[str]] = {}
        for f in check_plan(cloud):
            by_resource.setdefault(f.resource, []).append(f"{f.rule} {f.property}: {f.message} [{f.source}]")
        for res in cloud:
            area = _AREAS.get(service_of(res), self.area)
            problems = by_resource.get(res.urn)
            if problems:
                more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
                yield failed(res.urn, f"{res.name}: " + "; ".join(problems[:3]) + more, area)
            else:
                yield passed(res.urn, f"{res.name} is a request Azure accepts ({res.type})", area)

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

CONTROL = declare(
    "data_centre.platform_contract",
    rationale=("No Azure is reachable from the pipeline, so a request Azure would refuse (a wrong type, an "
               "out-of-range value, a rule of the service) must be caught before deployment, not half-way "
               "through one."),
    # CAF: changes to the environment are closely managed so configurations stay secure and documented
    # (B4.b.A.3), and the systems are validated against their expected settings (B4.b.A.4). Same ids in both
    # versions.
    caf={"3.2": ("B4.b.A.3", "B4.b.A.4"),
         "4.0": ("B4.b.A.3", "B4.b.A.4")},
    ce=(),  # Cyber Essentials has no requirement on deployment requests
    roles=(),  # cloud-only: the stacks make the requests
)

# The service a resource serves (its `service` tag) -> the area its finding counts towards.
_AREAS = {"network": "network", "desktop": "desktop", "helpdesk": "helpdesk", "datacentre": "datacentre"}


def _planned(res: CloudResource) -> PlannedResource:
    return PlannedResource(urn=res.urn, type=res.type, name=res.name, stack=res.stack, parent=res.parent,
                           inputs=dict(res.inputs))


@rule
class PlatformContract(Rule):
    id = "DCN-020"
    title = "every cloud resource is a request Azure Resource Manager accepts at the API version deployed"
    severity = "critical"
    control = "data_centre.platform_contract"
    area = "datacentre"
    fix = ("Change the stack so the request matches the ARM schema of its api-version and Azure's service rule "
           "named in the finding (its source says where Azure publishes it); `make test` runs the same check.")

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

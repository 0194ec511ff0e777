"""1.6 Every virtual network keeps flow logs, analysed in Log Analytics (framework.yaml `network.flow_logs`:
`retention_days`, `traffic_analytics_minutes`, `storage_sku`).

The stacks give each virtual network a Network Watcher flow log with traffic analytics to the hub's Log Analytics
workspace. Judged on the planned or deployed networks: every virtual network keeps enabled flow logs for the agreed
days, analysed at the agreed interval (NET-011). No role enforces it: it is a property of the cloud networks alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from estate.controls.base import CloudResource, Context, Outcome, Rule, failed, get, mapping, number, passed, rule
from estate.controls.network.common import FLOW_LOG, VNET
from estate.controls.spec import declare

CONTROL = declare()


@rule
class VnetFlowLogs(Rule):
    id = "NET-011"

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        c = ctx.fw.network.flow_logs
        logs = [r for r in resources if r.type == FLOW_LOG]
        for vnet in (r for r in resources if r.type == VNET):
            name = str(vnet.inputs.get("virtualNetworkName") or vnet.name)
            mine = [f for f in logs
                    if str(f.inputs.get("targetResourceId", "")).lower().endswith(f"/virtualnetworks/{name.lower()}")]
            if not mine:
                yield failed(vnet.urn, f"{vnet.name} keeps no flow logs")
                continue
            wrong: list[str] = []
            for f in mine:
                days = number(f, "retentionPolicy.days")
                analytics = mapping(f, "flowAnalyticsConfiguration.networkWatcherFlowAnalyticsConfiguration")
                problems = []
                if f.inputs.get("enabled") is not True:
                    problems.append("is not enabled")
                if get(f.inputs, "retentionPolicy.enabled") is not True or days is None or days < c.retention_days:
                    problems.append(f"keeps records {days!r} days, not {c.retention_days}")
                if analytics.get("enabled") is not True or not analytics.get("workspaceResourceId"):
                    problems.append("has no traffic analytics")
                elif analytics.get("trafficAnalyticsInterval") != c.traffic_analytics_minutes:
                    problems.append(f"analyses every {analytics.get('trafficAnalyticsInterval')!r} minutes, "
                                    f"not {c.traffic_analytics_minutes}")
                if not problems:
                    yield passed(vnet.urn, f"{vnet.name} keeps flow logs {days:g} days ({f.name})")
                    break
                wrong.append(f"{f.name} " + ", ".join(problems))
            else:
                yield failed(vnet.urn, f"{vnet.name}: " + "; ".join(wrong))

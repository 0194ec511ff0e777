"""3.7 Platform logs are kept in Log Analytics (framework.yaml `data_centre.log_analytics`).

Cloud-only: the hub stack's Log Analytics workspace, which the platform's diagnostic settings and flow logs send
to, keeps them the agreed days on the agreed SKU. Judged on the planned or deployed workspaces (DCN-008).
"""

from __future__ import annotations

from estate.controls.base import Context, rule
from estate.controls.data_centre.common import RetentionOnSku
from estate.controls.spec import declare

CONTROL = declare(
    "data_centre.log_analytics",
    rationale=("An incident is often found weeks after it began; platform logs kept half a year let the "
               "consortium trace it back, on a pricing tier every council can afford."),
    # CAF: monitoring data detailed, and kept, enough to detect incidents and support investigations
    # (C1.a.A.2, both versions).
    caf={"3.2": ("C1.a.A.2",),
         "4.0": ("C1.a.A.2",)},
    ce=(),  # Cyber Essentials has no logging requirement
    roles=(),  # cloud-only: the hub stack makes the workspace
)

WORKSPACE = "azure-native:operationalinsights:Workspace"


@rule
class LogRetention(RetentionOnSku):
    id = "DCN-008"
    title = "Log Analytics keeps platform logs for the agreed period"
    severity = "medium"
    control = "data_centre.log_analytics"
    area = "datacentre"
    fix = "Set retentionInDays to at least {c.retention_days} and sku.name to {c.sku}."
    types = (WORKSPACE,)
    days_key = "retentionInDays"
    sku_key = "sku.name"
    kept = "logs"

    def wanted(self, ctx: Context) -> tuple[int, str]:
        c = ctx.fw.data_centre.log_analytics
        return c.retention_days, c.sku

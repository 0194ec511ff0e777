"""3.7 Platform logs are kept in Log Analytics (framework.yaml `data_centre.log_analytics`).

Cloud-only: the hub stack's Log Analytics workspace, which the platform's diagnostic settings and flow logs send
to, keeps them the agreed days on the agreed SKU. Judged on the planned or deployed workspaces (DCN-008).
"""

from __future__ import annotations

from estate.controls.base import Context, rule
from estate.controls.data_centre.common import RetentionOnSku
from estate.controls.spec import declare

CONTROL = declare()

WORKSPACE = "azure-native:operationalinsights:Workspace"


@rule
class LogRetention(RetentionOnSku):
    id = "DCN-008"
    types = (WORKSPACE,)
    days_key = "retentionInDays"
    sku_key = "sku.name"
    kept = "logs"

    def wanted(self, ctx: Context) -> tuple[int, str]:
        c = ctx.fw.data_centre.log_analytics
        return c.retention_days, c.sku

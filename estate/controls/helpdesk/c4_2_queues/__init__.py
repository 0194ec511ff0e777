"""4.2 One queue per council, visible only to that council's agents (framework.yaml `helpdesk.queues`).

Each council on the shared helpdesk has its own queue and agent group, with rights for its agents only, so no
council reads another's tickets. Enforced by the helpdesk role's setup tasks (tag `control_4.2`: queues, groups,
rights and the REST user from the councils), judged on each council's register (HLP-002).
"""

from __future__ import annotations

from collections.abc import Iterable

from estate.controls.base import Context, Outcome, Rule, failed, passed, rule
from estate.controls.helpdesk.common import on_shared_platform
from estate.controls.spec import declare
from estate.models import Council

CONTROL = declare()


@rule
class CouncilQueue(Rule):
    id = "HLP-002"

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        if not ctx.fw.helpdesk.queues.per_council or not on_shared_platform(council, ctx)[0]:
            return  # a council not on the shared platform has no queue there to judge (HLP-001 fails)
        h = council.assets.helpdesk
        if h is None:
            return
        if h.shared_queue:
            yield passed(h.system, f"{key} has its own queue on {h.system}")
        else:
            yield failed(h.system, f"{key} has no queue of its own on {h.system}")

"""The reachability rules' shared judging (NET-021..NET-024, one in each of the controls segmentation, hub routing,
egress and administration): the flow matrix, egress purposes, administration paths and hub routing, judged by
tracing packets through the whole planned network (estate.reach).

A council's packets cross the hub (its firewall, its peerings), so these rules judge every stack's resources at
once (`Rule.estate`): each outcome counts for the stack of the packet's source (a VM's stack for administration).
The CrossGuard pack sees one stack at a time, so it does not run them: `estate check --plan` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from estate.controls.base import CloudResource, Context, Outcome, Rule, failed, passed
from estate.reach import Network, Tally, Verification, verify

SHOWN = 10  # failures listed per stack; the rest are counted


def verification(resources: Sequence[CloudResource], ctx: Context) -> Verification:
    """The plan-wide verification, made once per evaluation and shared by the four rules."""
    key = (id(resources), len(resources))
    cached = ctx.notes.get("reach")
    if cached is not None and cached[0] == key:
        result: Verification = cached[1]
        return result
    result = verify(Network.from_plan(resources, ctx.estate), ctx.estate)
    ctx.notes["reach"] = (key, result)
    return result


class Reachability(Rule):
    """A rule judged by one check of the plan-wide verification (`check`: segmentation, hub_routing, egress or
    administration); `summary` says what a stack with no failure passed."""

    check: ClassVar[str]
    area = "network"

    def estate(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[tuple[str, Outcome]]:
        found = verification(resources, ctx)
        for stack in found.stacks(self.check):
            t = found.tallies[(self.check, stack)]
            failures = found.failing(self.check, stack)
            for f in failures[:SHOWN]:
                protocol, port = f.service
                what = f" {protocol}/{port}" if port else ""
                yield stack, failed(f"{f.source} -> {f.destination}{what}", f.message)
            if t.failed > SHOWN:
                yield stack, failed(f"{stack}: {t.failed - SHOWN} more", f"and {t.failed - SHOWN} more probes of "
                                    f"{stack} that do not hold (estate reach --all lists them)")
            if not t.failed and t.allowed + t.denied:
                yield stack, passed(f"reachability:{stack}", self.summary(t))

    def summary(self, t: Tally) -> str:
        raise NotImplementedError

"""Reachability rules (NET-021..NET-024): the flow matrix, egress purposes, administration paths and hub routing,
judged by tracing packets through the whole planned network (estate.reach).

A council's packets cross the hub (its firewall, its peerings), so these rules judge every stack's resources at
once (`Rule.estate`): each outcome counts for the stack of the packet's source (a VM's stack for administration).
The CrossGuard pack sees one stack at a time, so it does not run them: `estate check --plan` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from estate.controls.base import CloudResource, Context, Outcome, Rule, failed, passed, rule
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


class _Reachability(Rule):
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


@rule
class MatrixReachable(_Reachability):
    """Every flow the matrix allows is reachable through the planned NSGs, routes, peerings and firewall, and every
    pair of segments it does not list is denied: all scopes, every port the matrix names (the lab probe's table)."""

    id = "NET-021"
    title = "the planned network allows exactly the flow matrix, end to end"
    severity = "critical"
    control = "network.segmentation"
    fix = ("Trace the failing pair with `estate reach SRC DST --port P` and fix the deciding rule: the NSG rule, route "
           "or firewall rule it names (framework control {c.id}).")
    check = "segmentation"

    def summary(self, t: Tally) -> str:
        return (f"{t.allowed_ok}/{t.allowed} allowed probes reach, {t.denied_ok}/{t.denied} others denied "
                "(every pair of segments, every port of the matrix)")


@rule
class HubRoutingHolds(_Reachability):
    """Council traffic to other councils and to the internet passes the hub firewall (or is dropped): no route
    delivers it around the firewall."""

    id = "NET-022"
    title = "council traffic to other councils and the internet passes the hub firewall"
    severity = "critical"
    control = "network.hub_routing"
    fix = ("Route 0.0.0.0/0 and the consortium supernet ({fw.network.supernet}) from every council subnet to the hub "
           "firewall (nextHopType VirtualAppliance); remove the route the finding names.")
    check = "hub_routing"

    def summary(self, t: Tally) -> str:
        return f"{t.allowed_ok}/{t.allowed} paths to other councils and the internet pass the hub firewall"


@rule
class EgressAsPurposed(_Reachability):
    """Each egress purpose is reachable from its sources and from no other segment; an unlisted name or a bare
    internet address only where a purpose allows any name."""

    id = "NET-023"
    title = "each egress purpose is reachable from its sources and from no other segment"
    severity = "critical"
    control = "network.egress"
    fix = ("Give each purpose of framework.yaml network.egress its firewall rule (application rules for HTTP/S, "
           "network rules with the DNS proxy for other ports) from exactly its sources, and NSG outbound rules to "
           "match; remove any rule that lets other segments or other names out.")
    check = "egress"

    def summary(self, t: Tally) -> str:
        return (f"{t.allowed_ok}/{t.allowed} purpose destinations reach, {t.denied_ok}/{t.denied} others "
                "denied")


@rule
class AdministrationPaths(_Reachability):
    """Bastion reaches every VM and scale set on its admin port; nothing reaches any of them from the internet."""

    id = "NET-024"
    title = "Bastion reaches every VM on its admin port and the internet reaches none"
    severity = "high"
    control = "network.administration"
    fix = ("Allow the hub's AzureBastionSubnet in on port {c.linux_port} (Linux) or {c.windows_port} (Windows) in "
           "the VM's NSGs; give no VM a public IP or a firewall DNAT rule.")
    check = "administration"

    def summary(self, t: Tally) -> str:
        return (f"Bastion reaches {t.allowed_ok}/{t.allowed} admin ports; the internet reaches none of "
                f"{t.denied} VM ports ({t.denied_ok} denied)")

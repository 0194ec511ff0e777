"""1.1 Networks use the address blocks and subnets the address plan assigns (framework.yaml `network.address_plan`).

`estate ipam` gives every site (the hub and each council) one block of the consortium supernet and every segment
its prefix within it; the stacks build the virtual networks and subnets from that plan. Judged on the planned or
deployed networks: each virtual network uses its site's block (NET-001) and each subnet is a segment of the plan
with its planned prefix (NET-002). No role enforces it: it is a property of the cloud networks alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from estate.controls.base import CloudResource, Context, Outcome, Rule, as_list, failed, get, passed, rule
from estate.controls.network.common import SUBNET, VNET, site, subnet_values
from estate.controls.spec import declare

CONTROL = declare()


@rule
class VnetAddressSpace(Rule):
    id = "NET-001"
    types = (VNET,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        plan = site(ctx, res.stack)
        got = [str(p) for p in as_list(get(res.inputs, "addressSpace.addressPrefixes"))]
        if plan is None:
            return [failed(res.urn, f"{res.name} is in stack {res.stack!r}, which is no site of the address plan")]
        if got == [str(plan.block)]:
            return [passed(res.urn, f"{res.name} uses {plan.block}")]
        return [failed(res.urn, f"{res.name} uses {', '.join(got) or 'no address space'}, not {plan.block}")]


@rule
class SubnetPrefixes(Rule):
    id = "NET-002"
    types = (SUBNET, VNET)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        plan = site(ctx, res.stack)
        subnets = subnet_values(res, "addressPrefix")
        if not subnets:
            return []  # a VirtualNetwork with no inline subnets
        if plan is None:
            return [failed(res.urn, f"{res.name} is in stack {res.stack!r}, which is no site of the address plan")]
        by_name = {seg.azure_name: seg for seg in plan.segments}
        wrong = []
        for name, prefix in subnets:
            seg = by_name.get(name)
            if seg is None:
                wrong.append(f"subnet {name} is no segment of {plan.key}")
            elif str(prefix) != str(seg.network):
                wrong.append(f"subnet {name} is {prefix}, not {seg.network}")
        if wrong:
            return [failed(res.urn, "; ".join(wrong))]
        return [passed(res.urn, ", ".join(f"{n} {p}" for n, p in subnets) + " as planned")]

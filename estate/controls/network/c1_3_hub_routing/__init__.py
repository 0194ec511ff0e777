"""1.3 Council networks reach other councils and the internet only through the hub firewall (framework.yaml
`network.hub_routing`).

The stacks peer each council's virtual network with the hub's and give every council subnet a route table sending
the default route and the consortium supernet to the hub firewall. Judged on the planned or deployed networks:
each council network is peered with the hub and accepts forwarded traffic (NET-008), its route tables send
0.0.0.0/0 to the hub firewall (NET-009), and no path of the planned network takes council traffic to another
council or the internet around the firewall (NET-022). No role enforces it: it is a property of the cloud
networks alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

from estate.azure import FIREWALL_SUBNET
from estate.controls.base import CloudResource, Context, Outcome, Rule, as_list, failed, get, passed, rule
from estate.controls.network.common import PEERING, ROUTE_TABLE, VNET
from estate.controls.network.reachability import Reachability
from estate.controls.spec import declare
from estate.ipam import HUB
from estate.reach import Tally

CONTROL = declare()


@rule
class SpokePeered(Rule):
    id = "NET-008"

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        vnets = [r for r in resources if r.type == VNET and r.stack != HUB]
        peerings = [r for r in resources if r.type == PEERING]
        for vnet in vnets:
            names = {vnet.name, str(vnet.inputs.get("virtualNetworkName", ""))}
            mine = [p for p in peerings
                    if not isinstance(p.inputs.get("virtualNetworkName"), str)
                    or p.inputs.get("virtualNetworkName") in names]
            good = [p for p in mine if get(p.inputs, "remoteVirtualNetwork.id")
                    and p.inputs.get("allowForwardedTraffic") is True]
            if good:
                yield passed(vnet.urn, f"{vnet.name} is peered with the hub by {good[0].name}")
            elif mine:
                yield failed(vnet.urn, f"{vnet.name}'s peering {mine[0].name} does not accept forwarded traffic "
                                       "or names no remote network")
            else:
                yield failed(vnet.urn, f"{vnet.name} is not peered with the hub")


@rule
class DefaultRouteViaHub(Rule):
    id = "NET-009"
    types = (ROUTE_TABLE,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if res.stack == HUB:
            return []
        firewall = [seg.network for seg in ctx.addresses.hub.segments if seg.azure_name == FIREWALL_SUBNET]
        for route in as_list(res.inputs.get("routes")):
            if not isinstance(route, Mapping) or route.get("addressPrefix") != "0.0.0.0/0":
                continue
            hop = str(route.get("nextHopIpAddress", ""))
            try:
                addr = ipaddress.IPv4Address(hop)
            except ValueError:
                addr = None
            if route.get("nextHopType") == "VirtualAppliance" and addr and any(addr in n for n in firewall):
                return [passed(res.urn, f"{res.name} sends 0.0.0.0/0 to the hub firewall {hop}")]
            return [failed(res.urn, f"{res.name} sends 0.0.0.0/0 to {route.get('nextHopType')} {hop or ''}, "
                                    "not the hub firewall")]
        return [failed(res.urn, f"{res.name} has no default route to the hub firewall")]


@rule
class HubRoutingHolds(Reachability):
    """Council traffic to other councils and to the internet passes the hub firewall (or is dropped): no route
    delivers it around the firewall."""

    id = "NET-022"
    check = "hub_routing"

    def summary(self, t: Tally) -> str:
        return f"{t.allowed_ok}/{t.allowed} paths to other councils and the internet pass the hub firewall"

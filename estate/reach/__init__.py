"""Reachability: an offline verifier of the planned Azure network (the cloud plane of the flow matrix).

`Network.from_plan(resources, estate)` reads the planned resources (VNets, subnets, NSGs, route tables, peerings,
Azure Firewall and its policy, NICs, VMs, scale sets, Bastion) and nothing else; `network.trace(src, dst,
protocol, port)` follows a packet as Azure would and names the rule that decided each hop (the idea of Network
Watcher's IP flow verify, next hop and effective security rules, and of Batfish's reachability questions);
`verify(network, estate)` checks the plan-wide properties (estate.reach.verify). The behaviours and their
Microsoft Learn sources are listed in estate.reach.network; the README's "Reachability" section has the table.
"""

from estate.reach.network import Endpoint, Hop, Network, Path, ReachError, Service, Services, Trace
from estate.reach.verify import CHECKS, CONTROLS, Failure, Tally, Verification, verify

__all__ = ["CHECKS", "CONTROLS", "Endpoint", "Failure", "Hop", "Network", "Path", "ReachError", "Service",
           "Services", "Tally", "Trace", "Verification", "verify"]

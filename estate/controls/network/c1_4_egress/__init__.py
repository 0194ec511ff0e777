"""1.4 Council and hub networks reach the internet only for the purposes the framework names (framework.yaml
`network.egress`, its `purposes`).

Each egress purpose names its sources (segments), destinations (FQDNs, FQDN tags or service tags) and protocols;
the stacks turn them into the hub firewall's application and network rules and the segments' outbound NSG rules.
Judged on the planned or deployed networks: every purpose has its firewall rule from all its sources (NET-012), and
the planned network as a whole lets each purpose out from its sources and from no other segment (NET-023); that
no rule allows more than the purposes is judged with the flow matrix (NET-006, NET-007, control 1.2). No role
enforces it: it is a property of the cloud networks alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from estate.controls.base import CloudResource, Context, Outcome, Rule, as_list, failed, get, passed, rule
from estate.controls.network.common import FIREWALL_POLICY, RULE_GROUP, allow_rules, app_protocols
from estate.controls.network.flows import (
    Destination,
    Service,
    fqdn_covers,
    port_covered,
    port_ranges,
    protocols,
    purpose_destinations,
    purpose_prefixes,
    purpose_services,
)
from estate.controls.network.reachability import Reachability
from estate.controls.spec import declare
from estate.ipam import HUB
from estate.reach import Tally

CONTROL = declare()


class _Sources:
    """A firewall rule's source addresses, parsed once: whether they cover a prefix is a look-up of the prefix
    and its supernets (at most 33), not a scan of every address (a rule lists every council's prefix)."""

    def __init__(self, addresses: Iterable[str]) -> None:
        self.anywhere = False
        self.networks: set[ipaddress.IPv4Network] = set()
        for a in addresses:
            text = a.strip()
            if text.lower() in ("*", "any", "0.0.0.0/0"):
                self.anywhere = True
                continue
            try:
                self.networks.add(ipaddress.IPv4Network(text, strict=False))
            except ValueError:
                continue

    def cover(self, prefix: ipaddress.IPv4Network) -> bool:
        if self.anywhere or prefix in self.networks:
            return True
        return any(prefix.supernet(new_prefix=length) in self.networks for length in range(prefix.prefixlen))


def _rule_allows(r: Mapping[str, Any], sources: _Sources, prefix: ipaddress.IPv4Network, dest: Destination,
                 service: Service) -> bool:
    """Whether one firewall allow rule (its sources parsed) lets `prefix` reach `dest` with `service` (as a
    purpose names them)."""
    if not sources.cover(prefix):
        return False
    kind, value = dest
    proto, rng = service
    if r.get("ruleType") == "ApplicationRule":
        if (proto, rng[0]) not in app_protocols(r) or rng[0] != rng[1]:
            return False
        if kind == "fqdn":
            return any(fqdn_covers(str(t), value) for t in as_list(r.get("targetFqdns")))
        return kind == "fqdn_tag" and value.lower() in {str(t).lower() for t in as_list(r.get("fqdnTags"))}
    if r.get("ruleType") != "NetworkRule":
        return False
    protos = set(protocols(str(p) for p in as_list(r.get("ipProtocols"))))
    try:
        ports = port_ranges(str(p) for p in as_list(r.get("destinationPorts")))
    except ValueError:
        return False
    if not ({proto, "any"} & protos) or not port_covered(rng, ports):
        return False
    if kind == "fqdn":
        return any(fqdn_covers(str(t), value) for t in as_list(r.get("destinationFqdns")))
    addresses = {str(a).strip().lower() for a in as_list(r.get("destinationAddresses"))}
    return kind == "service_tag" and (value.lower() in addresses or "*" in addresses)


@rule
class EgressPurposesAllowed(Rule):
    id = "NET-012"

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        groups = [r for r in resources if r.type == RULE_GROUP]
        anchor = next((r for r in resources if r.type == FIREWALL_POLICY), groups[0] if groups else None)
        if anchor is None or anchor.stack != HUB:
            return
        allows = [r for g in groups for _, r in allow_rules(g)]
        # Network rules match FQDNs only through the policy's DNS proxy
        # (learn.microsoft.com/azure/firewall/fqdn-filtering-network-rules).
        by_name = [str(r.get("name")) for r in allows if r.get("ruleType") == "NetworkRule"
                   and as_list(r.get("destinationFqdns"))]
        if by_name and anchor.type == FIREWALL_POLICY and get(anchor.inputs, "dnsSettings.enableProxy") is not True:
            yield failed(anchor.urn, f"network rules {', '.join(by_name)} name FQDNs but the policy's DNS proxy is off "
                                     "(dnsSettings.enableProxy): they match nothing", path="dnsSettings.enableProxy")
        parsed = [(r, _Sources(str(a) for a in as_list(r.get("sourceAddresses")))) for r in allows]
        for purpose in ctx.fw.network.egress.purposes:
            missing = [f"{label} -> {dest[1]} {proto}/{rng[0]}" + (f"-{rng[1]}" if rng[1] != rng[0] else "")
                       for label, prefix in purpose_prefixes(ctx.addresses, purpose)
                       for dest in purpose_destinations(purpose)
                       for proto, rng in purpose_services(purpose)
                       if not any(_rule_allows(r, src, prefix, dest, (proto, rng)) for r, src in parsed)]
            judged = f"egress.purposes.{purpose.name}"  # one outcome per purpose on the one anchor
            if missing:
                yield failed(anchor.urn, f"egress purpose {purpose.name}: no firewall rule allows "
                                         + ", ".join(missing[:4]) + (f" (+{len(missing) - 4} more)"
                                                                      if len(missing) > 4 else ""), path=judged)
            else:
                yield passed(anchor.urn, f"egress purpose {purpose.name} is allowed from its sources by the firewall",
                             path=judged)


@rule
class EgressAsPurposed(Reachability):
    """Each egress purpose is reachable from its sources and from no other segment; an unlisted name or a bare
    internet address only where a purpose allows any name."""

    id = "NET-023"
    check = "egress"

    def summary(self, t: Tally) -> str:
        return (f"{t.allowed_ok}/{t.allowed} purpose destinations reach, {t.denied_ok}/{t.denied} others "
                "denied")

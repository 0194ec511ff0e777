"""5.6 The host firewall denies by default (framework.yaml `security.host_firewall`).

Every host's nftables input hook drops (`default_policy`) what its role does not need. Enforced by the baseline
role's firewall tasks (tag `control_5.6`), judged on live hosts (the policy of the base chains on the input hook,
`nft -j list chains`: SEC-005).
"""

from __future__ import annotations

import json
from typing import Any

from estate.controls.base import Context, rule
from estate.controls.checks import HostFactCheck
from estate.controls.probing import probe
from estate.controls.spec import declare


def parse_nft_input_policy(text: str) -> str | None:
    """The effective default of the input hook: "drop" if any base chain on it drops, else "accept"; None
    when no chain filters input (no host firewall). Every base chain on a hook sees the packet, so one
    dropping chain is enough to deny by default."""
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        return None
    policies = []
    for item in data.get("nftables", []) if isinstance(data, dict) else []:
        chain = item.get("chain") if isinstance(item, dict) else None
        if isinstance(chain, dict) and chain.get("hook") == "input" and chain.get("family") in ("inet", "ip"):
            policies.append(str(chain.get("policy", "accept")))
    if not policies:
        return None
    return "drop" if "drop" in policies else policies[0]


CONTROL = declare(
    "security.host_firewall",
    rationale=("The network's firewalls stop traffic between zones, not between two hosts in the same one; a host "
               "that drops by default exposes only the services its role runs, even to its neighbours."),
    # CAF: the platforms conform to the defined secure baseline (B4.b.A.2), and systems are segregated into
    # security zones (B4.a.A.2), the host itself being the innermost - the same indicators in 3.2 and 4.0.
    caf={"3.2": ("B4.b.A.2", "B4.a.A.2"),
         "4.0": ("B4.b.A.2", "B4.a.A.2")},
    # Cyber Essentials: every device protected by a firewall, its own where need be (CE-FW.1), unauthenticated
    # inbound connections blocked by default (CE-FW.4).
    ce=("CE-FW.1", "CE-FW.4"),
    roles=("baseline",),
    probes=(probe("nft_input_policy", {"nft": "nft -j list chains 2>/dev/null"}, parse_nft_input_policy),),
)


@rule
class HostFirewall(HostFactCheck):
    id = "SEC-005"
    title = "the host firewall denies by default"
    severity = "critical"
    control = "security.host_firewall"
    area = "datacentre"
    fix = "Give the nftables input chain policy {c.default_policy} and allow only the host's own services."
    fact = "nft_input_policy"
    passing = "{host}'s input chain policy is {value}"
    failing = "{host}'s input chain policy is {value}, not {expected}"

    def expected(self, ctx: Context) -> Any:
        return ctx.fw.security.host_firewall.default_policy

    def shown(self, value: Any) -> str:
        return str(value or "missing (no firewall)")  # passing, the value is the framework's policy

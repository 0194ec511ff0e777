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


CONTROL = declare(probes=(
    probe("nft_input_policy", {"nft": "nft -j list chains 2>/dev/null"}, parse_nft_input_policy),
))


@rule
class HostFirewall(HostFactCheck):
    id = "SEC-005"

    def expected(self, ctx: Context) -> Any:
        return ctx.fw.security.host_firewall.default_policy

    def shown(self, value: Any) -> str:
        return str(value or "missing (no firewall)")  # passing, the value is the framework's policy

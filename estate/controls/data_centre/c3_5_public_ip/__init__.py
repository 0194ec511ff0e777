"""3.5 No server or desktop has a public IP address (framework.yaml `data_centre.public_ip`).

Cloud-only: the stacks give council servers and session hosts private addresses only, published (where at all)
through the hub firewall. Judged on the asset register's servers (DCN-005) and on the planned or deployed network
interfaces, VMs, scale sets and public IP addresses of the council stacks (NET-005).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from estate.controls.azure import VM, VMSS, vm_profile
from estate.controls.base import HUB, CloudResource, Context, Outcome, Rule, as_list, failed, get, passed, rule
from estate.controls.checks import AssetCheck
from estate.controls.spec import declare

CONTROL = declare(
    "data_centre.public_ip",
    rationale=("A server or desktop with a public address is reachable from the whole internet, around the hub "
               "firewall and its logs; everything councils publish goes through the hub instead."),
    # CAF: systems segregated into security zones (B4.a.A.2) and from external systems (B5.b.A.1): no host of
    # a council network is on the internet itself. Same ids in both versions.
    caf={"3.2": ("B4.a.A.2", "B5.b.A.1"),
         "4.0": ("B4.a.A.2", "B5.b.A.1")},
    # Cyber Essentials: every device sits behind a boundary firewall (CE-FW.1) that blocks unauthenticated
    # inbound connections by default (CE-FW.4); a public address on the host bypasses both.
    ce=("CE-FW.1", "CE-FW.4"),
    roles=(),  # cloud-only: the stacks give no public address
)

NIC = "azure-native:network:NetworkInterface"
PIP = "azure-native:network:PublicIPAddress"


@rule
class NoPublicIpServers(AssetCheck):
    id = "DCN-005"
    title = "no server has a public IP address"
    severity = "critical"
    control = "data_centre.public_ip"
    area = "datacentre"
    fix = "Remove the public IP; publish the service through the hub firewall (framework control {c.id})."
    collection = "servers"
    passing = "{name} has no public IP address"
    failing = "{name} has a public IP address"

    def enabled(self, ctx: Context) -> bool:
        return not ctx.fw.data_centre.public_ip.allowed

    def holds(self, asset: Any, ctx: Context) -> bool:
        return not asset.public_ip


def _nic_public_ips(configs: Iterable[Any], key: str) -> list[str]:
    return [str(c.get("name", "?")) for c in configs if isinstance(c, Mapping) and c.get(key)]


@rule
class NoPublicIp(Rule):
    id = "NET-005"
    title = "no server or desktop network interface has a public IP address"
    severity = "critical"
    control = "data_centre.public_ip"
    area = "network"
    fix = ("Remove the public IP from the network interface; reach the host through the hub (Bastion, firewall "
           "DNAT). Framework control {c.id}.")
    types = (NIC, VM, VMSS, PIP)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if ctx.fw.data_centre.public_ip.allowed:
            return []
        if res.type == PIP:
            if res.stack == HUB:
                return []  # the hub's firewall, Bastion and gateway have public addresses by design
            return [failed(res.urn, f"public IP address {res.name} in council stack {res.stack}")]
        if res.type == NIC:
            bad = _nic_public_ips(as_list(res.inputs.get("ipConfigurations")), "publicIPAddress")
        else:
            configs = as_list(get(vm_profile(res), "networkProfile.networkInterfaceConfigurations"))
            if not configs:
                return []
            ipconfigs = [ip for c in configs if isinstance(c, Mapping) for ip in as_list(c.get("ipConfigurations"))]
            bad = _nic_public_ips(ipconfigs, "publicIPAddressConfiguration")
        if bad:
            return [failed(res.urn, f"{res.name} has a public IP address on {', '.join(bad)}")]
        return [passed(res.urn, f"{res.name} has no public IP address")]

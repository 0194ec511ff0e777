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

CONTROL = declare()

NIC = "azure-native:network:NetworkInterface"
PIP = "azure-native:network:PublicIPAddress"


@rule
class NoPublicIpServers(AssetCheck):
    id = "DCN-005"

    def enabled(self, ctx: Context) -> bool:
        return not ctx.fw.data_centre.public_ip.allowed

    def holds(self, asset: Any, ctx: Context) -> bool:
        return not asset.public_ip


def _nic_public_ips(configs: Iterable[Any], key: str) -> list[str]:
    return [str(c.get("name", "?")) for c in configs if isinstance(c, Mapping) and c.get(key)]


@rule
class NoPublicIp(Rule):
    id = "NET-005"
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

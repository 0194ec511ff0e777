"""1.5 Administrators reach hosts only from the hub's Bastion and management segments, on the admin ports
(framework.yaml `network.administration`: its sources, `linux_port`, `windows_port`).

The stacks let the hub's AzureBastionSubnet in on the admin port in each server segment's NSG and give no VM a
public address or a firewall DNAT rule. Judged on the planned network as a whole: Bastion reaches every VM and
scale set on its admin port and the internet reaches none of them (NET-024). No role enforces it: it is a property
of the cloud networks alone (SSH's own hardening is control 5.7).
"""

from __future__ import annotations

from estate.controls.base import rule
from estate.controls.network.reachability import Reachability
from estate.controls.spec import declare
from estate.reach import Tally

CONTROL = declare()


@rule
class AdministrationPaths(Reachability):
    """Bastion reaches every VM and scale set on its admin port; nothing reaches any of them from the internet."""

    id = "NET-024"
    check = "administration"

    def summary(self, t: Tally) -> str:
        return (f"Bastion reaches {t.allowed_ok}/{t.allowed} admin ports; the internet reaches none of "
                f"{t.denied} VM ports ({t.denied_ok} denied)")

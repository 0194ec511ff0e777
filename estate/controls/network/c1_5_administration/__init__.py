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

CONTROL = declare(
    "network.administration",
    rationale=("An administrative port open to the internet is the most attacked door there is: taking every "
               "administrator through the hub's Bastion gives one place to authenticate, log and cut off admin "
               "access, and leaves nothing to find from outside."),
    # CAF: systems are administered only by privileged users from trusted places set aside for it (B4.c.A.1: the
    # hub's Bastion and management segments); the indicator reads the same in 3.2 and 4.0.
    caf={"3.2": ("B4.c.A.1",),
         "4.0": ("B4.c.A.1",)},
    # Cyber Essentials: unauthenticated inbound connections are blocked by default (CE-FW.4: no admin port is
    # reachable from the internet).
    ce=("CE-FW.4",),
    roles=(),
)


@rule
class AdministrationPaths(Reachability):
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

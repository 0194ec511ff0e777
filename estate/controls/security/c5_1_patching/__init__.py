"""5.1 High and critical patches are applied in time (framework.yaml `security.patching`).

Every server installs security updates unattended, every day, in the council's patch window. Enforced by the
baseline role's update tasks (tag `control_5.1`), judged on live hosts (unattended-upgrades installed, switched
on in APT's periodic settings and its timer enabled, SEC-001); thin clients' updates are the desktop's (DSK-008).
"""

from __future__ import annotations

import re

from estate.controls.base import rule
from estate.controls.checks import HostFactCheck
from estate.controls.probing import probe
from estate.controls.spec import declare


def parse_unattended(status: str, periodic: str, timer: str) -> bool:
    installed = "install ok installed" in status
    values = dict(re.findall(r'^(APT::Periodic::\S+) "([^"]*)";', periodic, re.M))
    enabled = values.get("APT::Periodic::Unattended-Upgrade", "0") not in ("0", "")
    return installed and enabled and timer.strip() == "enabled"


CONTROL = declare(
    "security.patching",
    rationale=("Most compromises use a vulnerability its vendor had already fixed; installing security updates "
               "automatically, every day, closes that gap within the patch window without waiting on anyone."),
    # CAF: assets actively managed, patching included (B4.b.A.1); announced vulnerabilities tracked and fixed
    # promptly (B4.d.A.2) - the same indicators in 3.2 and 4.0.
    caf={"3.2": ("B4.b.A.1", "B4.d.A.2"),
         "4.0": ("B4.b.A.1", "B4.d.A.2")},
    # Cyber Essentials: automatic updates on (CE-SUM.3), critical and high-risk fixes within 14 days (CE-SUM.4).
    ce=("CE-SUM.3", "CE-SUM.4"),
    # https://www.ncsc.gov.uk/guidance/end-user-devices-security-principles (the baseline runs on thin clients too)
    device_principle="NCSC end user device security principles: 10 (device update policy)",
    roles=("baseline",),
    probes=(probe("unattended_upgrades",
                  {"uu-status": "dpkg-query -W -f='${{Status}}\\n' unattended-upgrades 2>/dev/null",
                   "uu-periodic": "apt-config dump 2>/dev/null | grep -E "
                                  "'^APT::Periodic::(Unattended-Upgrade|Update-Package-Lists) '",
                   "uu-timer": "systemctl is-enabled apt-daily-upgrade.timer 2>/dev/null"},
                  parse_unattended),),
)


@rule
class Patching(HostFactCheck):
    id = "SEC-001"
    title = "servers apply security updates automatically"
    severity = "high"
    control = "security.patching"
    area = "datacentre"
    fix = "Install and enable unattended-upgrades so that critical patches land within {c.critical_days} days."
    skip_roles = ("thin_client",)  # thin clients: DSK-008
    fact = "unattended_upgrades"
    passing = "{host} applies security updates automatically"
    failing = "{host} does not apply security updates automatically"

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


CONTROL = declare(probes=(probe("unattended_upgrades",
                  {"uu-status": "dpkg-query -W -f='${{Status}}\\n' unattended-upgrades 2>/dev/null",
                   "uu-periodic": "apt-config dump 2>/dev/null | grep -E "
                                  "'^APT::Periodic::(Unattended-Upgrade|Update-Package-Lists) '",
                   "uu-timer": "systemctl is-enabled apt-daily-upgrade.timer 2>/dev/null"},
                  parse_unattended),))


@rule
class Patching(HostFactCheck):
    id = "SEC-001"
    skip_roles = ("thin_client",)  # thin clients: DSK-008

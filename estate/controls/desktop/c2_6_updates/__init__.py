"""2.6 Thin clients update automatically (framework.yaml `desktop.updates`).

A thin client installs its updates unattended, as every host does: the baseline role's update tasks
(unattended-upgrades, tagged with the security patching control, 5.1) run on thin clients too. Judged on live thin
clients (DSK-008) from the fact security.patching's probe gathers (`unattended_upgrades`).
"""

from __future__ import annotations

from estate.controls.base import rule
from estate.controls.desktop.common import RequiredFact
from estate.controls.spec import declare

CONTROL = declare(
    "desktop.updates",
    rationale=("A thin client is the device staff touch every day and the one most exposed to what they open; it "
               "takes its vendor's fixes by itself, with nobody having to visit it."),
    # CAF: assets actively managed, patching and updating included (B4.b.A.1); announced vulnerabilities fixed
    # promptly (B4.d.A.2). The same ids and statements in 3.2 and 4.0.
    caf={"3.2": ("B4.b.A.1", "B4.d.A.2"),
         "4.0": ("B4.b.A.1", "B4.d.A.2")},
    # Cyber Essentials: automatic updates are enabled where possible (CE-SUM.3).
    ce=("CE-SUM.3",),
    # https://www.ncsc.gov.uk/guidance/end-user-devices-security-principles
    device_principle="NCSC end user device security principles: 10 (device update policy)",
    roles=("baseline",),
)


@rule
class ThinClientUpdates(RequiredFact):
    id = "DSK-008"
    title = "thin clients update automatically"
    severity = "high"
    control = "desktop.updates"
    area = "desktop"
    fix = "Install and enable unattended-upgrades on thin clients."
    fact = "unattended_upgrades"
    flag = "automatic"
    passing = "{host} installs updates automatically"
    failing = "{host} does not install updates automatically"

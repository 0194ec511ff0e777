"""2.6 Thin clients update automatically (framework.yaml `desktop.updates`).

A thin client installs its updates unattended, as every host does: the baseline role's update tasks
(unattended-upgrades, tagged with the security patching control, 5.1) run on thin clients too. Judged on live thin
clients (DSK-008) from the fact security.patching's probe gathers (`unattended_upgrades`).
"""

from __future__ import annotations

from estate.controls.base import rule
from estate.controls.desktop.common import RequiredFact
from estate.controls.spec import declare

CONTROL = declare()


@rule
class ThinClientUpdates(RequiredFact):
    id = "DSK-008"
    flag = "automatic"

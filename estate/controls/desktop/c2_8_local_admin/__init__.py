"""2.8 Desktop users have no local administrator rights (framework.yaml `desktop.local_admin`).

A thin client's kiosk user is in no admin group and may not sudo, so whoever sits at it cannot change what the
device enforces. Enforced by the thin_client role (tag `control_2.8`: the kiosk user without admin groups, sudo
rights or SSH login), judged on live thin clients (`sudo -l` and the groups of the kiosk user, DSK-011).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from estate.controls.base import rule
from estate.controls.checks import HostFactCheck
from estate.controls.desktop.common import THIN_CLIENT
from estate.controls.facts import HostFacts
from estate.controls.spec import Probe, ProbeParams, declare


def parse_kiosk_sudo(user: str, sudo: str, groups: str) -> bool | None:
    """Can the kiosk user sudo? None when there is no kiosk user."""
    if not user.strip():
        return None
    if set(groups.split()) & {"sudo", "admin", "wheel"}:
        return True
    if "is not allowed to run sudo" in sudo:
        return False
    if "may run the following" in sudo:
        return True
    # No sudo at all on the host: the kiosk cannot use it.
    return False if ("command not found" in sudo or "not found" in sudo or not sudo.strip()) else None


def _probe(sections: Mapping[str, str], params: ProbeParams) -> dict[str, Any]:
    return {"kiosk_sudo": parse_kiosk_sudo(sections["kiosk-user"], sections["kiosk-sudo"], sections["kiosk-groups"])}


CONTROL = declare(probes=(Probe(fields=("kiosk_sudo",),
                  commands={"kiosk-user": "getent passwd {p.kiosk_user}",
                            "kiosk-sudo": "sudo -n -l -U {p.kiosk_user} 2>&1",
                            "kiosk-groups": "id -nG {p.kiosk_user} 2>/dev/null"},
                  parse=_probe, roles=THIN_CLIENT),))


@rule
class NoLocalAdmin(HostFactCheck):
    id = "DSK-011"
    roles = THIN_CLIENT

    def holds(self, value: Any, expected: Any) -> bool:
        return bool(expected) or value is False

    def fail_message(self, facts: HostFacts, value: Any, expected: Any) -> str:
        if value is None:
            return f"{facts.host}: whether the desktop user can sudo is unknown"
        return super().fail_message(facts, value, expected)

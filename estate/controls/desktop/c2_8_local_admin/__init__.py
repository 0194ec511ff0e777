"""2.8 Desktop users have no local administrator rights (framework.yaml `desktop.local_admin`).

A thin client's kiosk user is in no admin group and may not sudo, so whoever sits at it cannot change what the
device enforces. Enforced by the thin_client role (tag `control_2.8`: the kiosk user without admin groups, sudo
rights or SSH login), judged on live thin clients (`sudo -l` and the groups of the kiosk user, DSK-011).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from estate.controls.base import Context, rule
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


CONTROL = declare(
    "desktop.local_admin",
    rationale=("A desktop user with administrator rights can switch off the screen lock, the USB block and the "
               "updates, and malware that user runs gets the same rights; the kiosk user has none."),
    # CAF 3.2: standard users cannot change settings that would impact security (B4.b.A.6); privileged access only
    # from separate, dedicated accounts (B2.c.A.1). CAF 4.0 moved the standard-user statement to the partially
    # achieved column (B4.b.PA.7) and has no achieved indicator for it; B2.c.A.1 stays.
    caf={"3.2": ("B4.b.A.6", "B2.c.A.1"),
         "4.0": ("B4.b.PA.7", "B2.c.A.1")},
    # Cyber Essentials: administrative accounts are separate and used only for administration (CE-UAC.5).
    ce=("CE-UAC.5",),
    # https://www.ncsc.gov.uk/guidance/end-user-devices-security-principles
    device_principle="NCSC end user device security principles: 8 (security policy enforcement)",
    roles=("thin_client",),
    probes=(Probe(fields=("kiosk_sudo",),
                  commands={"kiosk-user": "getent passwd {p.kiosk_user}",
                            "kiosk-sudo": "sudo -n -l -U {p.kiosk_user} 2>&1",
                            "kiosk-groups": "id -nG {p.kiosk_user} 2>/dev/null"},
                  parse=_probe, roles=THIN_CLIENT),),
)


@rule
class NoLocalAdmin(HostFactCheck):
    id = "DSK-011"
    title = "desktop users have no local administrator rights"
    severity = "high"
    control = "desktop.local_admin"
    area = "desktop"
    fix = "Remove the kiosk user from sudo (and the sudo group) on thin clients."
    roles = THIN_CLIENT
    fact = "kiosk_sudo"
    passing = "{host}: the desktop user has no administrator rights"
    failing = "{host}: the desktop user can sudo"

    def expected(self, ctx: Context) -> Any:
        return ctx.fw.desktop.local_admin.allowed

    def holds(self, value: Any, expected: Any) -> bool:
        return bool(expected) or value is False

    def fail_message(self, facts: HostFacts, value: Any, expected: Any) -> str:
        if value is None:
            return f"{facts.host}: whether the desktop user can sudo is unknown"
        return super().fail_message(facts, value, expected)

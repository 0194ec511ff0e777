"""2.9 Desktops run a supported operating system (framework.yaml `desktop.operating_systems`).

Every desktop a council registers (laptops, PCs, thin clients, by operating system and version) and every thin
client the estate manages runs an operating system on the framework's list and inside its vendor's support.
Judged on each council's register (DSK-009) and on live thin clients (their os-release, DSK-012, from the fact
the os probe gathers). No Ansible role changes a desktop's operating system.
"""

from __future__ import annotations

from collections.abc import Iterable

from estate.controls.base import Context, HostRule, Outcome, Rule, rule
from estate.controls.desktop.common import THIN_CLIENT
from estate.controls.facts import HostFacts
from estate.controls.spec import declare
from estate.controls.support import supported
from estate.models import Council

CONTROL = declare(
    "desktop.operating_systems",
    rationale=("An operating system past its end of support gets no more security fixes, so every flaw found in "
               "it afterwards stays open; councils plan replacements against the dates on the agreed list."),
    # CAF: maximise the use of supported software (B4.d.A.4), judged over the inventoried assets, the register of
    # desktops (A3.a.A.1). The same ids and statements in 3.2 and 4.0.
    caf={"3.2": ("B4.d.A.4", "A3.a.A.1"),
         "4.0": ("B4.d.A.4", "A3.a.A.1")},
    # Cyber Essentials: software licensed and supported (CE-SUM.1), unsupported software removed (CE-SUM.2).
    ce=("CE-SUM.1", "CE-SUM.2"),
    # https://www.ncsc.gov.uk/guidance/end-user-devices-security-principles: an unsupported system gets no updates
    device_principle="NCSC end user device security principles: 10 (device update policy)",
)


@rule
class DesktopOs(Rule):
    id = "DSK-009"
    title = "desktops run a supported operating system"
    severity = "high"
    control = "desktop.operating_systems"
    area = "desktop"
    fix = "Move these desktops to an operating system that is on the supported list and in support: {c.supported}."

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        counts: dict[str, int] = {}
        for d in council.assets.desktops:
            name = f"{d.os} {d.version}"
            counts[name] = counts.get(name, 0) + d.count
        for d in council.assets.desktops:
            name = f"{d.os} {d.version}"
            if name not in counts:
                continue
            n = counts.pop(name)
            ok, why = supported(ctx.fw.desktop.operating_systems.supported, d.os, d.version, ctx.today)
            yield Outcome(name, ok, f"{n} desktops: {why}")


@rule
class ThinClientOs(HostRule):
    id = "DSK-012"
    title = "thin clients run a supported operating system"
    severity = "high"
    control = "desktop.operating_systems"
    area = "desktop"
    fix = "Rebuild the thin client on a supported operating system from framework control {c.id}."
    roles = THIN_CLIENT

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        ok, why = supported(ctx.fw.desktop.operating_systems.supported, facts.os, facts.os_version, ctx.today)
        return ok, f"{facts.host}: {why}"

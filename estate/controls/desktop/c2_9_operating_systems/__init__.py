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

CONTROL = declare()


@rule
class DesktopOs(Rule):
    id = "DSK-009"

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
    roles = THIN_CLIENT

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        ok, why = supported(ctx.fw.desktop.operating_systems.supported, facts.os, facts.os_version, ctx.today)
        return ok, f"{facts.host}: {why}"

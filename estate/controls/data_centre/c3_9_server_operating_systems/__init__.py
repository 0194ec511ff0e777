"""3.9 Servers run a supported operating system (framework.yaml `data_centre.server_operating_systems`).

The framework lists the operating systems (and versions) the consortium supports, each with its vendor's
end-of-support date. Judged on the asset register's servers (DCN-009) and on what live hosts answer in
/etc/os-release (DCN-013; thin clients are judged by the desktop's operating-system control, from the same fact).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from estate.controls.base import Context, HostRule, Outcome, Rule, rule
from estate.controls.facts import HostFacts
from estate.controls.probing import key_values
from estate.controls.spec import Probe, ProbeParams, declare
from estate.controls.support import supported
from estate.models import Council


def parse_os(text: str) -> tuple[str, str]:
    """/etc/os-release: (ID, VERSION_ID), "" where absent."""
    kv = key_values(text)
    return kv.get("ID", ""), kv.get("VERSION_ID", "")


def _probe(sections: Mapping[str, str], params: ProbeParams) -> dict[str, Any]:
    return dict(zip(("os", "os_version"), parse_os(sections["os-release"]), strict=True))


CONTROL = declare(
    "data_centre.server_operating_systems",
    rationale=("An operating system past its vendor's end of support gets no more security fixes; servers stay "
               "on the versions the consortium supports and are rebuilt before their end-of-support date."),
    # CAF: supported software is used throughout (B4.d.A.4, both versions; 4.0 "actively maximise"), and the
    # assets' patching and updating are actively managed (B4.b.A.1).
    caf={"3.2": ("B4.d.A.4", "B4.b.A.1"),
         "4.0": ("B4.d.A.4", "B4.b.A.1")},
    # Cyber Essentials: software is licensed and supported (CE-SUM.1) and unsupported software is removed
    # (CE-SUM.2).
    ce=("CE-SUM.1", "CE-SUM.2"),
    roles=(),  # no role upgrades an operating system: a server is rebuilt on a supported one
    probes=(Probe(fields=("os", "os_version"), commands={"os-release": "cat /etc/os-release 2>/dev/null"},
                  parse=_probe),),
)


@rule
class ServerOs(Rule):
    id = "DCN-009"
    title = "servers run a supported operating system"
    severity = "high"
    control = "data_centre.server_operating_systems"
    area = "datacentre"
    fix = "Upgrade or rebuild the server on an operating system that is on the supported list: {c.supported}."

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        catalogue = ctx.fw.data_centre.server_operating_systems.supported
        for s in council.assets.servers:
            ok, why = supported(catalogue, s.os, s.version, ctx.today)
            yield Outcome(s.name, ok, f"{s.name}: {why}")


@rule
class HostServerOs(HostRule):
    id = "DCN-013"
    title = "servers answer with a supported operating system"
    severity = "high"
    control = "data_centre.server_operating_systems"
    area = "datacentre"
    fix = "Rebuild the host on a supported operating system from framework control {c.id}."
    skip_roles = ("thin_client",)

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        ok, why = supported(ctx.fw.data_centre.server_operating_systems.supported, facts.os, facts.os_version,
                            ctx.today)
        return ok, f"{facts.host}: {why}"

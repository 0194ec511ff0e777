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


CONTROL = declare(probes=(Probe(fields=("os", "os_version"), commands={"os-release": "cat /etc/os-release 2>/dev/null"},
                  parse=_probe),))


@rule
class ServerOs(Rule):
    id = "DCN-009"

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        catalogue = ctx.fw.data_centre.server_operating_systems.supported
        for s in council.assets.servers:
            ok, why = supported(catalogue, s.os, s.version, ctx.today)
            yield Outcome(s.name, ok, f"{s.name}: {why}")


@rule
class HostServerOs(HostRule):
    id = "DCN-013"
    skip_roles = ("thin_client",)

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        ok, why = supported(ctx.fw.data_centre.server_operating_systems.supported, facts.os, facts.os_version,
                            ctx.today)
        return ok, f"{facts.host}: {why}"

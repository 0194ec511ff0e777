"""2.7 Thin clients run the approved RDP client (framework.yaml `desktop.rdp_client`, advisory).

A thin client's kiosk session opens the consortium's desktops with one RDP client, the framework's package.
Enforced by the thin_client role (tag `control_2.7`: the client installed, the kiosk session starting it), judged
on live thin clients (which RDP client package is installed, the approved one first, DSK-010).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from estate.controls.base import rule
from estate.controls.checks import HostFactCheck
from estate.controls.desktop.common import THIN_CLIENT
from estate.controls.spec import Probe, ProbeParams, declare


def parse_rdp(text: str, candidates: Iterable[str]) -> str | None:
    installed = {line.split()[0] for line in text.splitlines() if "install ok installed" in line}
    return next((p for p in candidates if p in installed), None)


def _probe(sections: Mapping[str, str], params: ProbeParams) -> dict[str, Any]:
    return {"rdp_client": parse_rdp(sections["rdp"], params.rdp_packages)}


CONTROL = declare(probes=(Probe(fields=("rdp_client",),
                  commands={"rdp": "dpkg-query -W -f='${{Package}} ${{Status}}\\n' {p.rdp_packages} 2>/dev/null"},
                  parse=_probe, roles=THIN_CLIENT),))


@rule
class RdpClient(HostFactCheck):
    id = "DSK-010"
    roles = THIN_CLIENT

    def shown(self, value: Any) -> str:
        return str(value or "no RDP client")

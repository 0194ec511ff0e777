"""2.5 USB mass storage is blocked (framework.yaml `desktop.usb_storage`).

A thin client never loads the usb-storage kernel module (`install usb-storage /bin/false` in modprobe.d;
blacklisting alone still loads it on demand). Enforced by the thin_client role (tag `control_2.5`), judged on live
thin clients (DSK-007).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from estate.controls.base import rule
from estate.controls.desktop.common import THIN_CLIENT, RequiredFact
from estate.controls.spec import Probe, ProbeParams, declare


def parse_usb_blocked(modprobe: str) -> bool:
    active = [line.split("#", 1)[0].strip() for line in modprobe.splitlines()]
    return any(re.fullmatch(r"install\s+usb[-_]storage\s+/bin/(true|false)", line) for line in active)


def _probe(sections: Mapping[str, str], params: ProbeParams) -> dict[str, Any]:
    return {"usb_storage_blocked": parse_usb_blocked(sections["modprobe"])}


CONTROL = declare(probes=(Probe(fields=("usb_storage_blocked",),
                  commands={"modprobe": "cat /etc/modprobe.d/*.conf /lib/modprobe.d/*.conf 2>/dev/null"},
                  parse=_probe, roles=THIN_CLIENT),))


@rule
class UsbStorage(RequiredFact):
    id = "DSK-007"
    flag = "blocked"

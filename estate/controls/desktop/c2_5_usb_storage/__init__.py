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


CONTROL = declare(
    "desktop.usb_storage",
    rationale=("A USB stick is the easiest way to carry residents' data out of the council and malware in; thin "
               "clients have no work to do with local storage, so they take none."),
    # CAF: technical measures prevent malware and unauthorised software (B4.c.A.3), removable media being one way
    # in; the block is part of the defined baseline build (B4.b.A.2). The same ids and statements in 4.0.
    caf={"3.2": ("B4.b.A.2", "B4.c.A.3"),
         "4.0": ("B4.b.A.2", "B4.c.A.3")},
    # Cyber Essentials: none; v3.2 asks for auto-run off (CE-SC.4) but says nothing of blocking removable media.
    ce=(),
    # https://www.ncsc.gov.uk/guidance/end-user-devices-security-principles
    device_principle="NCSC end user device security principles: 9 (external interface protection)",
    roles=("thin_client",),
    probes=(Probe(fields=("usb_storage_blocked",),
                  commands={"modprobe": "cat /etc/modprobe.d/*.conf /lib/modprobe.d/*.conf 2>/dev/null"},
                  parse=_probe, roles=THIN_CLIENT),),
)


@rule
class UsbStorage(RequiredFact):
    id = "DSK-007"
    title = "thin clients block USB mass storage"
    severity = "medium"
    control = "desktop.usb_storage"
    area = "desktop"
    fix = "Block the usb-storage kernel module (blacklist it) on thin clients."
    fact = "usb_storage_blocked"
    flag = "blocked"
    passing = "{host} blocks USB mass storage"
    failing = "{host} allows USB mass storage"

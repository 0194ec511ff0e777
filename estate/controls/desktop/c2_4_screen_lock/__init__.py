"""2.4 The screen locks after a period of inactivity (framework.yaml `desktop.screen_lock`).

A thin client's kiosk session starts its screen saver, and with it its locker (xss-lock), after at most the
framework's minutes idle. Enforced by the thin_client role's session tasks (tag `control_2.4`), judged on live
thin clients (the kiosk session's `xset s`, DSK-006).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from estate.controls.base import rule
from estate.controls.checks import HostFactCheck
from estate.controls.desktop.common import THIN_CLIENT
from estate.controls.spec import Probe, ProbeParams, declare


def parse_screen_lock(session: str) -> int | None:
    """Minutes before the kiosk session's screen saver (and so its locker, xss-lock) starts: `xset s SECONDS`."""
    match = re.search(r"^\s*xset\s+s\s+(\d+)\b", session, re.M)
    if not match or int(match.group(1)) == 0:
        return None
    return math.ceil(int(match.group(1)) / 60)


def _probe(sections: Mapping[str, str], params: ProbeParams) -> dict[str, Any]:
    return {"screen_lock_minutes": parse_screen_lock(sections["kiosk-session"])}


CONTROL = declare(probes=(
    Probe(fields=("screen_lock_minutes",), commands={"kiosk-session": "cat {p.kiosk_session} 2>/dev/null"},
          parse=_probe, roles=THIN_CLIENT),
))


@rule
class ScreenLock(HostFactCheck):
    id = "DSK-006"
    roles = THIN_CLIENT

    def shown(self, value: Any) -> str:
        return "never" if value is None or value <= 0 else f"after {value} minutes"

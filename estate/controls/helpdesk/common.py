"""Helpers the helpdesk controls share: is a council's registered helpdesk the shared platform (HLP-001 judges it,
HLP-002 judges a queue only on it)?"""

from __future__ import annotations

from estate.controls.base import Context
from estate.models import Council


def on_shared_platform(council: Council, ctx: Context) -> tuple[bool, str]:
    c = ctx.fw.helpdesk.platform
    h = council.assets.helpdesk
    if h is None:
        return False, f"the council has registered no helpdesk, so it is not on the shared {c.name}"
    major = h.version.split(".", 1)[0]
    if h.system.lower() == c.name.lower() and major == c.version.split(".", 1)[0]:
        return True, f"{h.system} {h.version} is the shared {c.name} {c.version}"
    return False, f"{h.system} {h.version} is not the shared {c.name} {c.version}"

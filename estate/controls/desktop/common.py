"""Helpers the desktop controls share: the thin clients their host rules and probes run on, and the shape of a
thin-client fact the framework requires only when its control's flag is on (USB storage blocked, updates
automatic)."""

from __future__ import annotations

from typing import Any, ClassVar

from estate.controls.base import Context, control_at
from estate.controls.checks import HostFactCheck

THIN_CLIENT = ("thin_client",)  # the host role of the desktops the consortium manages


class RequiredFact(HostFactCheck):
    """A thin client's `fact` is true whenever its control's boolean `flag` (framework.yaml) asks for it; with the
    flag off every thin client passes."""

    flag: ClassVar[str]
    roles = THIN_CLIENT

    def expected(self, ctx: Context) -> Any:
        return getattr(control_at(ctx.fw, self.control), self.flag)

    def holds(self, value: Any, expected: Any) -> bool:
        return not expected or bool(value)

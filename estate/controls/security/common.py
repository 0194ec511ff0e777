"""Helpers the security controls share: the lab hosts a rule expects a host to use (logging, time sync), and a
PAM module's setting (lockout, passwords)."""

from __future__ import annotations

from estate.controls.base import HUB, Context
from estate.controls.probing import key_values
from estate.loader import host_addresses


def site_hosts(ctx: Context, site: str, role: str) -> list[tuple[str, str]]:
    """(name, address) of the lab hosts of a site (council key or "shared") with a role."""
    if site != HUB and site not in ctx.estate.councils:
        return []
    return [(name, str(addr)) for name, r, _, addr in host_addresses(ctx.estate, site) if r == role]


def pam_setting(conf: str, stack: str, module: str, key: str, default: int) -> int | None:
    """A PAM module's numeric setting from its configuration file (`key = value`; the module's `default` when
    unset or not a number), when the PAM `stack` uses the module (else None: the setting has no effect)."""
    if not any(module in line.split("#", 1)[0] for line in stack.splitlines()):
        return None
    value = key_values(conf).get(key)
    return int(value) if value and value.isdigit() else default

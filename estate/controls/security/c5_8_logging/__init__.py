"""5.8 Security logs are forwarded and retained (framework.yaml `security.logging`).

Every host's rsyslog forwards to the hub's log collector on `forward_port` (SEC-007), and auditd records
identity, authentication and privilege changes into that stream (SEC-008); the collector keeps them
`retention_days`. Enforced by the baseline role's logging tasks and the log_collector role (tag `control_5.8`),
judged on live hosts.
"""

from __future__ import annotations

import re

from estate.controls.base import HUB, Context, HostRule, rule
from estate.controls.checks import HostFactCheck
from estate.controls.facts import HostFacts
from estate.controls.probing import is_active, probe
from estate.controls.security.common import site_hosts
from estate.controls.spec import declare

_OMFWD = re.compile(r'type\s*=\s*"omfwd"', re.I)


def parse_log_forward(conf: str, active: str) -> str | None:
    """host:port of the first forwarding action (RainerScript omfwd or legacy @@host:port) of a running rsyslog."""
    if active.strip() != "active":
        return None
    text = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    for match in re.finditer(r"action\s*\((.*?)\)", text, re.S):
        body = match.group(1)
        if _OMFWD.search(body):
            target = re.search(r'target\s*=\s*"([^"]+)"', body)
            port = re.search(r'port\s*=\s*"(\d+)"', body)
            if target:
                return f"{target.group(1)}:{port.group(1) if port else '514'}"
    legacy = re.search(r"^\S+\s+@{1,2}(?:\([^)]*\))?([\w.\-]+)(?::(\d+))?", text, re.M)
    if legacy:
        return f"{legacy.group(1)}:{legacy.group(2) or '514'}"
    return None


CONTROL = declare(probes=(probe("log_forward", {"rsyslog": "cat /etc/rsyslog.conf /etc/rsyslog.d/*.conf 2>/dev/null",
                                  "rsyslog-active": "systemctl is-active rsyslog 2>/dev/null"}, parse_log_forward),
            probe("auditd_active", {"auditd": "systemctl is-active auditd 2>/dev/null"}, is_active)))


@rule
class LogForwarding(HostRule):
    id = "SEC-007"
    skip_roles = ("log_collector",)

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        port = ctx.fw.security.logging.forward_port
        collectors = site_hosts(ctx, HUB, "log_collector")
        target = facts.log_forward or ""
        host, _, got_port = target.rpartition(":")
        if not target:
            return False, f"{facts.host} forwards no logs"
        if got_port != str(port):
            return False, f"{facts.host} forwards logs to {target}, not port {port}"
        if collectors and not any(host in (name, addr) for name, addr in collectors):
            wanted = ", ".join(f"{addr}:{port}" for _, addr in collectors)
            return False, f"{facts.host} forwards logs to {target}, not the log collector {wanted}"
        return True, f"{facts.host} forwards logs to {target}"


@rule
class Auditd(HostFactCheck):
    id = "SEC-008"
    # The kernel lets only its initial PID namespace run an audit daemon: a container's audit trail is its
    # host machine's, judged there.
    in_containers = False

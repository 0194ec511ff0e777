"""5.9 Hosts keep time from the council's NTP service (framework.yaml `security.time_sync`).

Every host's chrony takes time from its council's infrastructure services host, which serves it to the council's
networks. Enforced by the baseline role's time tasks and the dc_services role's NTP tasks (tag `control_5.9`),
judged on live hosts (chronyd's sources and configured servers: SEC-009).
"""

from __future__ import annotations

from estate.controls.base import Context, HostRule, rule
from estate.controls.facts import HostFacts
from estate.controls.probing import probe
from estate.controls.security.common import site_hosts
from estate.controls.spec import declare


def parse_chrony_sources(text: str) -> list[str]:
    """Servers chronyd has as sources (`chronyc -n -c sources`: mode,state,address,...; mode ^ is a server)."""
    out: list[str] = []
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0] == "^" and fields[2] not in out:
            out.append(fields[2])
    return out


def parse_ntp_servers(active: str, sources: str, conf: str) -> list[str]:
    """The servers a running chronyd uses: its live sources, and the `server`/`pool` lines of its
    configuration (a name that does not resolve yet is configured but not yet a source). [] when
    chronyd is not running."""
    if active.strip() != "active":
        return []
    out = parse_chrony_sources(sources)
    for line in conf.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] in ("server", "pool", "peer") and words[1] not in out:
            out.append(words[1])
    return out


CONTROL = declare(probes=(probe("ntp_servers",
                  {"chrony-active": "systemctl is-active chrony 2>/dev/null",
                   "chrony": "chronyc -n -c sources 2>/dev/null",
                   "chrony-conf": "cat /etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf "
                                  "/etc/chrony/sources.d/*.sources 2>/dev/null"},
                  parse_ntp_servers),))


@rule
class TimeSync(HostRule):
    id = "SEC-009"

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        if not ctx.fw.security.time_sync.required:
            return True, "time sync is not required"
        if not facts.ntp_servers:
            return False, f"{facts.host} keeps time from no server"
        services = site_hosts(ctx, facts.council, "dc_services")
        if facts.role == "dc_services" or not services:
            return True, f"{facts.host} keeps time from {', '.join(facts.ntp_servers)}"
        if any(server in (name, addr) for server in facts.ntp_servers for name, addr in services):
            return True, f"{facts.host} keeps time from the council's service host"
        wanted = ", ".join(addr for _, addr in services)
        return False, f"{facts.host} keeps time from {', '.join(facts.ntp_servers)}, not {wanted}"

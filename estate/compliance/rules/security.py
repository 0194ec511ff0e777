"""Security baseline rules (SEC): patching, accounts, host firewall, SSH, logging, time, tagging."""

from __future__ import annotations

from collections.abc import Iterable

from estate.controls.base import (
    CloudResource,
    Context,
    HostRule,
    Outcome,
    Rule,
    failed,
    passed,
    rule,
    tags,
)
from estate.controls.facts import HostFacts
from estate.ipam import HUB


def site_hosts(ctx: Context, site: str, role: str) -> list[tuple[str, str]]:
    """(name, address) of the lab hosts of a site (council key or "shared") with a role."""
    from estate.loader import host_addresses

    if site != HUB and site not in ctx.estate.councils:
        return []
    return [(name, str(addr)) for name, r, _, addr in host_addresses(ctx.estate, site) if r == role]


@rule
class Patching(HostRule):
    id = "SEC-001"
    title = "servers apply security updates automatically"
    severity = "high"
    control = "security.patching"
    area = "datacentre"
    fix = "Install and enable unattended-upgrades so that critical patches land within {c.critical_days} days."
    skip_roles = ("thin_client",)  # thin clients: DSK-008

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        if facts.unattended_upgrades:
            return True, f"{facts.host} applies security updates automatically"
        return False, f"{facts.host} does not apply security updates automatically"


@rule
class Lockout(HostRule):
    id = "SEC-002"
    title = "accounts lock after repeated failed logins"
    severity = "high"
    control = "security.lockout"
    area = "identity"
    area_by_role = False
    fix = "Set deny = {c.max_attempts} (or fewer) and unlock_time = {c.unlock_minutes} minutes in faillock.conf."

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        limit = ctx.fw.security.lockout.max_attempts
        deny = facts.faillock_deny
        if deny is not None and 1 <= deny <= limit:
            return True, f"{facts.host} locks an account after {deny} failed logins"
        shown = "never locks accounts" if not deny else f"locks accounts after {deny} failed logins"
        return False, f"{facts.host} {shown}; the framework wants at most {limit}"


@rule
class PasswordLength(HostRule):
    id = "SEC-003"
    title = "passwords meet the minimum length"
    severity = "high"
    control = "security.passwords"
    area = "identity"
    area_by_role = False
    fix = "Set minlen = {c.min_length} in /etc/security/pwquality.conf."

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        want = ctx.fw.security.passwords.min_length
        got = facts.pass_min_len
        if got is not None and got >= want:
            return True, f"{facts.host} requires passwords of {got} characters"
        return False, f"{facts.host} requires passwords of {got or 'any'} characters, not {want}"


@rule
class DefaultAccounts(HostRule):
    id = "SEC-004"
    title = "no default or unused accounts"
    severity = "medium"
    control = "security.default_accounts"
    area = "identity"
    area_by_role = False
    fix = "Remove the default accounts {c.forbidden} (userdel)."

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        found = sorted(set(facts.accounts) & set(ctx.fw.security.default_accounts.forbidden))
        if found:
            return False, f"{facts.host} still has default accounts: {', '.join(found)}"
        return True, f"{facts.host} has none of the default accounts"


@rule
class HostFirewall(HostRule):
    id = "SEC-005"
    title = "the host firewall denies by default"
    severity = "critical"
    control = "security.host_firewall"
    area = "datacentre"
    fix = "Give the nftables input chain policy {c.default_policy} and allow only the host's own services."

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        want = ctx.fw.security.host_firewall.default_policy
        got = facts.nft_input_policy
        if got == want:
            return True, f"{facts.host}'s input chain policy is {got}"
        return False, f"{facts.host}'s input chain policy is {got or 'missing (no firewall)'}, not {want}"


@rule
class LogForwarding(HostRule):
    id = "SEC-007"
    title = "hosts forward their logs to the shared log collector"
    severity = "high"
    control = "security.logging"
    area = "datacentre"
    fix = "Forward rsyslog to the hub log collector on TCP port {c.forward_port}."
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
class Auditd(HostRule):
    id = "SEC-008"
    title = "the audit daemon records security events"
    severity = "medium"
    control = "security.logging"
    area = "datacentre"
    fix = "Install and enable auditd (its logs are forwarded and kept {c.retention_days} days)."
    # The kernel lets only its initial PID namespace run an audit daemon: a container's audit trail is its
    # host machine's, judged there.
    in_containers = False

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        if facts.auditd_active:
            return True, f"{facts.host} runs auditd"
        return False, f"{facts.host} does not run auditd"


@rule
class TimeSync(HostRule):
    id = "SEC-009"
    title = "hosts keep time from the council's NTP service"
    severity = "medium"
    control = "security.time_sync"
    area = "datacentre"
    fix = "Point chrony at the council's infrastructure services host (its dc_services host)."

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


@rule
class Tagging(Rule):
    id = "SEC-010"
    title = "every taggable resource carries the consortium tags"
    severity = "low"
    control = "security.tagging"
    area = "datacentre"
    fix = "Tag the resource with {c.required}; framework-version is {fw.version}, council the stack's council key."
    types = ("azure-native:*",)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        # ARM tracked resources (the ones that take tags) are the ones with a location.
        if "location" not in res.inputs and "tags" not in res.inputs:
            return []
        have = tags(res)
        required = ctx.fw.security.tagging.required
        missing = [k for k in required if not have.get(k)]
        wrong = []
        if "framework-version" in have and have["framework-version"] != ctx.fw.version:
            wrong.append(f"framework-version {have['framework-version']!r} is not {ctx.fw.version}")
        if "council" in have and have["council"] != res.stack:
            wrong.append(f"council {have['council']!r} is not the stack's {res.stack!r}")
        if missing or wrong:
            parts = ([f"missing tags {', '.join(missing)}"] if missing else []) + wrong
            return [failed(res.urn, f"{res.name}: " + "; ".join(parts))]
        return [passed(res.urn, f"{res.name} carries {', '.join(required)}")]

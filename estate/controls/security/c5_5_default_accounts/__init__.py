"""5.5 No default or unused accounts (framework.yaml `security.default_accounts`).

The accounts a distribution creates but nothing here uses (`forbidden`: guest, games, news...) are removed, and
system accounts have no login shell. Enforced by the baseline role's account, clean-up and hardening tasks (tag
`control_5.5`), judged on live hosts (the names in /etc/passwd: SEC-004).
"""

from __future__ import annotations

from typing import Any

from estate.controls.base import Context, rule
from estate.controls.checks import HostFactCheck
from estate.controls.facts import HostFacts
from estate.controls.probing import probe
from estate.controls.spec import declare

# Shells that do not log in: an account with one of these (or none) is no login account.
NO_LOGIN_SHELLS = {"/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false", "/bin/sync", ""}


def parse_passwd(text: str) -> tuple[list[str], list[str]]:
    accounts: list[str] = []
    login: list[str] = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 7:
            continue
        accounts.append(parts[0])
        if parts[6].strip() not in NO_LOGIN_SHELLS:
            login.append(parts[0])
    return accounts, login


CONTROL = declare(
    "security.default_accounts",
    rationale=("A default account has a name every attacker knows and often a password nobody changed; an account "
               "nothing uses is one nobody watches. Removing them leaves fewer ways in."),
    # CAF: generic, default and built-in accounts removed or disabled (3.2 B4.b.A.8, numbered B4.b.A.7 in 4.0),
    # the platforms conforming to the defined secure baseline (B4.b.A.2 in both).
    caf={"3.2": ("B4.b.A.8", "B4.b.A.2"),
         "4.0": ("B4.b.A.7", "B4.b.A.2")},
    # Cyber Essentials: unnecessary (guest, unused, default) accounts removed or disabled (CE-SC.1), accounts
    # removed when no longer needed (CE-UAC.3).
    ce=("CE-SC.1", "CE-UAC.3"),
    roles=("baseline",),
    probes=(probe(("accounts", "login_accounts"), {"passwd": "cat /etc/passwd 2>/dev/null"}, parse_passwd),),
)


@rule
class DefaultAccounts(HostFactCheck):
    id = "SEC-004"
    title = "no default or unused accounts"
    severity = "medium"
    control = "security.default_accounts"
    area = "identity"
    area_by_role = False
    fix = "Remove the default accounts {c.forbidden} (userdel)."
    fact = "accounts"
    passing = "{host} has none of the default accounts"
    failing = "{host} still has default accounts: {value}"

    def expected(self, ctx: Context) -> Any:
        return ctx.fw.security.default_accounts.forbidden

    def holds(self, value: Any, expected: Any) -> bool:
        return not set(value) & set(expected)

    def fail_message(self, facts: HostFacts, value: Any, expected: Any) -> str:
        found = sorted(set(value) & set(expected))
        return self.failing.format(host=facts.host, value=", ".join(found), expected=expected)

"""5.5 No default or unused accounts (framework.yaml `security.default_accounts`).

The accounts a distribution creates but nothing here uses (`forbidden`: guest, games, news...) are removed, and
system accounts have no login shell. Enforced by the baseline role's account, clean-up and hardening tasks (tag
`control_5.5`), judged on live hosts (the names in /etc/passwd: SEC-004).
"""

from __future__ import annotations

from typing import Any

from estate.controls.base import rule
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


CONTROL = declare(probes=(
    probe(("accounts", "login_accounts"), {"passwd": "cat /etc/passwd 2>/dev/null"}, parse_passwd),
))


@rule
class DefaultAccounts(HostFactCheck):
    id = "SEC-004"
    area_by_role = False

    def fail_message(self, facts: HostFacts, value: Any, expected: Any) -> str:
        found = sorted(set(value) & set(expected))
        return self.failing.format(host=facts.host, value=", ".join(found), expected=expected)

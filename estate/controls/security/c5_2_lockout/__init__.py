"""5.2 Accounts lock after repeated failed attempts (framework.yaml `security.lockout`).

pam_faillock counts failed logins and locks the account after at most `max_attempts` of them, for
`unlock_minutes`. Enforced by the baseline role's PAM tasks (tag `control_5.2`), judged on live hosts
(faillock.conf's `deny`, when pam_faillock is in the authentication stack: SEC-002).
"""

from __future__ import annotations

from typing import Any

from estate.controls.base import rule
from estate.controls.checks import HostFactCheck
from estate.controls.facts import HostFacts
from estate.controls.probing import probe
from estate.controls.security.common import pam_setting
from estate.controls.spec import declare


def parse_faillock(conf: str, common_auth: str) -> int | None:
    """deny= of faillock.conf, when pam_faillock is in the authentication stack (else None: nothing locks).
    pam_faillock's own default is 3."""
    return pam_setting(conf, common_auth, "pam_faillock.so", "deny", 3)


CONTROL = declare(probes=(probe("faillock_deny", {"faillock": "cat /etc/security/faillock.conf 2>/dev/null",
                                    "common-auth": "cat /etc/pam.d/common-auth 2>/dev/null"}, parse_faillock),))


@rule
class Lockout(HostFactCheck):
    id = "SEC-002"
    area_by_role = False

    def fail_message(self, facts: HostFacts, value: Any, expected: Any) -> str:
        shown = "never locks accounts" if not value else f"locks accounts after {value} failed logins"
        return self.failing.format(host=facts.host, value=shown, expected=expected)
